"""parse_answer: MicroVQA's answer patterns, the last answer wins, out-of-range answers are None."""

from __future__ import annotations

import pytest

from rolegraph.envs.mcq import ANSWER_PATTERNS, LabelStyle, parse_answer


@pytest.mark.parametrize(
    ("text", "labels", "expected"),
    [
        ("The answer is (b)", "a", 1),
        ("the answer is B", "a", 1),
        ("the answer is b", "A", 1),
        ("The answer is (B).", "A", 1),
        ("answer is **(c)**", "a", 2),
        ("So the answer is **D**", "A", 3),
        ("Answer is (a)", "a", 0),
        ("The answer is (3)", "1", 2),
        ("answer is **(2)**", "1", 1),
        ("the answer is 1", "1", 0),
    ],
)
def test_forms(text: str, labels: LabelStyle, expected: int) -> None:
    assert parse_answer(text, 4, labels) == expected


@pytest.mark.parametrize(
    ("text", "labels", "expected"),
    [
        ("I first thought the answer is (a), but on reflection the answer is (c)", "a", 2),
        ("answer is B ... answer is D ... the answer is (A)", "A", 0),
        ("Maybe the answer is (1). No: the answer is (4)", "1", 3),
    ],
)
def test_last_answer_wins(text: str, labels: LabelStyle, expected: int) -> None:
    assert parse_answer(text, 4, labels) == expected


@pytest.mark.parametrize(
    ("text", "n_choices", "labels"),
    [
        ("The answer is (e)", 4, "a"),
        ("The answer is (Z)", 4, "A"),
        ("The answer is (5)", 4, "1"),
        ("The answer is (0)", 4, "1"),
        ("The answer is (c)", 2, "a"),
        ("the answer is (b), no wait, the answer is (f)", 4, "a"),  # the last one counts, even if invalid
    ],
)
def test_out_of_range_is_none(text: str, n_choices: int, labels: LabelStyle) -> None:
    assert parse_answer(text, n_choices, labels) is None


@pytest.mark.parametrize(
    ("text", "labels"),
    [
        ("", "a"),
        ("I think it is (b).", "a"),
        ("Option B looks right", "A"),
        ("The answer is (b)", "1"),  # a letter where numbers are expected
        ("answer: 2", "1"),
    ],
)
def test_no_answer_is_none(text: str, labels: LabelStyle) -> None:
    assert parse_answer(text, 4, labels) is None


@pytest.mark.parametrize("letter", ["c", "C"])
@pytest.mark.parametrize("labels", ["a", "A"])
def test_letter_case_does_not_matter(letter: str, labels: LabelStyle) -> None:
    assert parse_answer(f"The answer is ({letter})", 4, labels) == 2


def test_patterns_exposed() -> None:
    assert set(ANSWER_PATTERNS) == {"letter", "number"}
    match = ANSWER_PATTERNS["number"].search("answer is **(2)**")
    assert match is not None and match.group(1) == "2"
