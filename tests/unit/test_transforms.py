"""Robustness transforms: the correct answer text survives every transform, and each is deterministic."""

from __future__ import annotations

import random
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rolegraph.envs.mcq import MCQ, option_label, parse_answer
from rolegraph.errors import UserError
from rolegraph.evals.transforms import (
    TRANSFORMS,
    LabelStyleTransform,
    Paraphrase,
    PunctuationNoise,
    ShuffleOptions,
    Transform,
    Typos,
    WhitespaceNoise,
    apply,
    parse_transforms,
)

ALL: list[Transform] = [
    ShuffleOptions(),
    LabelStyleTransform("a"),
    LabelStyleTransform("A"),
    LabelStyleTransform("1"),
    WhitespaceNoise(),
    WhitespaceNoise(rate=0.9),
    PunctuationNoise(),
    PunctuationNoise(rate=0.9),
    Typos(),
    Typos(rate=0.9),
]

STEMS = st.one_of(
    st.text(min_size=1, max_size=200),
    st.lists(st.sampled_from(["Which", "stain", "marks", "the", "nuclei", "in", "3.5", "µm", "cells,", "e.g.",
                              "CD45", "IL-2", "(GFP)", "?", "!", "well-known", "mitochondria.", "  ", "\n"]),
             min_size=1, max_size=30).map(" ".join),
)


@st.composite
def mcqs(draw: st.DrawFn) -> MCQ:
    choices = draw(st.lists(st.text(min_size=1, max_size=30), min_size=2, max_size=6, unique=True))
    return MCQ(
        key=draw(st.text(max_size=8)),
        question=draw(STEMS),
        choices=choices,
        correct_index=draw(st.integers(0, len(choices) - 1)),
        labels=draw(st.sampled_from(["a", "A", "1"])),
    )


def alnum(text: str) -> list[str]:
    return [c for c in text if c.isalnum()]


@settings(max_examples=200, deadline=None)
@given(mcq=mcqs(), transform=st.sampled_from(ALL), seed=st.integers())
def test_answer_text_survives(mcq: MCQ, transform: Transform, seed: int) -> None:
    before = mcq.model_copy(deep=True)
    new = apply(transform, mcq, seed)
    assert new.choices[new.correct_index] == mcq.answer
    assert sorted(new.choices) == sorted(mcq.choices)
    label = option_label(new.correct_index, new.labels)
    assert parse_answer(f"The answer is ({label})", len(new.choices), new.labels) == new.correct_index
    assert new.metadata["transform"][-1]["name"] == transform.name
    assert mcq == before  # the input is never changed


@settings(max_examples=200, deadline=None)
@given(mcq=mcqs(), transform=st.sampled_from(ALL), seed=st.integers())
def test_deterministic(mcq: MCQ, transform: Transform, seed: int) -> None:
    assert apply(transform, mcq, seed) == apply(transform, mcq, seed)


@settings(max_examples=200, deadline=None)
@given(mcq=mcqs(), rate=st.floats(0.0, 1.0), seed=st.integers())
def test_typos_change_only_the_stem(mcq: MCQ, rate: float, seed: int) -> None:
    new = apply(Typos(rate), mcq, seed)
    assert (new.choices, new.correct_index, new.labels, new.key) == (mcq.choices, mcq.correct_index, mcq.labels, mcq.key)
    assert len(new.question.split()) == len(mcq.question.split())


@settings(max_examples=200, deadline=None)
@given(mcq=mcqs(), rate=st.floats(0.0, 1.0), seed=st.integers())
def test_whitespace_keeps_words(mcq: MCQ, rate: float, seed: int) -> None:
    new = apply(WhitespaceNoise(rate), mcq, seed)
    assert re.sub(r"[^A-Za-z0-9]", "", new.question) == re.sub(r"[^A-Za-z0-9]", "", mcq.question)
    assert new.question.split() == mcq.question.split()  # never inside a word
    assert new.choices == mcq.choices


@settings(max_examples=200, deadline=None)
@given(mcq=mcqs(), rate=st.floats(0.0, 1.0), seed=st.integers())
def test_punctuation_keeps_letters_and_digits(mcq: MCQ, rate: float, seed: int) -> None:
    new = apply(PunctuationNoise(rate), mcq, seed)
    assert alnum(new.question) == alnum(mcq.question)
    assert new.choices == mcq.choices


def sample() -> MCQ:
    return MCQ(key="q1", question="Which organelle is stained, e.g. in 3.5 µm sections of CD45 cells?",
               choices=["nucleus", "mitochondria", "Golgi apparatus", "lysosome"], correct_index=1)


def test_shuffle_moves_the_answer() -> None:
    positions = {apply(ShuffleOptions(), sample(), seed).correct_index for seed in range(50)}
    assert len(positions) > 1 and positions != {1}
    new = apply(ShuffleOptions(), sample(), 7)
    order = new.metadata["transform"][0]["order"]
    assert new.choices == [sample().choices[i] for i in order]


def test_streams_differ_by_seed_and_case() -> None:
    outputs = {apply(Typos(0.5), sample(), seed).question for seed in range(20)}
    assert len(outputs) > 1
    other = sample().model_copy(update={"key": "q2"})
    assert any(apply(Typos(0.5), sample(), s).question != apply(Typos(0.5), other, s).question for s in range(5))


def test_full_rates_do_something() -> None:
    mcq = sample()
    typo = apply(Typos(1.0), mcq, 0)
    assert typo.question != mcq.question
    assert "3.5" in typo.question and "CD45" in typo.question and " of " in typo.question  # short/mixed words kept
    assert apply(WhitespaceNoise(1.0), mcq, 0).question.startswith((" ", "\n"))
    punct = apply(PunctuationNoise(1.0), mcq, 0).question
    assert punct != mcq.question and "3.5" in punct  # a decimal point is not punctuation noise


def test_labels_and_metadata() -> None:
    new = apply(LabelStyleTransform("1"), sample(), 0)
    assert new.labels == "1" and new.choices == sample().choices
    assert new.options_text().startswith("(1) nucleus")
    chained = apply(Typos(0.2), new, 0)
    assert [r["name"] for r in chained.metadata["transform"]] == ["labels", "typos"]
    assert chained.metadata["transform"][1] == {"name": "typos", "rate": 0.2,
                                                "edits": chained.metadata["transform"][1]["edits"]}


def test_parse_transforms() -> None:
    assert parse_transforms("shuffle, typos:0.1,labels:A") == [ShuffleOptions(), Typos(0.1), LabelStyleTransform("A")]
    assert parse_transforms("") == []
    assert parse_transforms("paraphrase") == [Paraphrase()]
    assert [t.name for t in parse_transforms(",".join(TRANSFORMS))] == list(TRANSFORMS)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("shuffle,reverse", "known: labels, paraphrase, punctuation, shuffle, typos, whitespace"),
        ("typos:lots", "takes a rate"),
        ("typos:1.5", "within [0, 1]"),
        ("labels:x", "label style"),
        ("shuffle:3", "takes no parameter"),
        ("paraphrase:0.1", "takes no parameter"),
    ],
)
def test_parse_transforms_errors(spec: str, message: str) -> None:
    with pytest.raises(UserError, match=re.escape(message)):
        parse_transforms(spec)


def test_paraphrase_marker_needs_a_model() -> None:
    with pytest.raises(TypeError, match="paraphrase_mcq"):
        Paraphrase()(sample(), random.Random(0))
