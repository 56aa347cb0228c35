"""Meaning-preserving rewrites of MCQ cases for robustness evals (after reWordBench): shuffled
options, other labels, whitespace and punctuation noise, typos. The correct answer text never changes."""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, get_args

from rolegraph.envs.mcq import MCQ, LabelStyle
from rolegraph.errors import UserError


class Transform(Protocol):
    """A deterministic rewrite of one MCQ: returns a new MCQ, never changes its argument."""

    @property
    def name(self) -> str: ...

    def __call__(self, mcq: MCQ, rng: random.Random) -> MCQ: ...


def _rewritten(mcq: MCQ, record: dict[str, Any], **update: Any) -> MCQ:
    """A copy of `mcq` with `update`, whose metadata["transform"] list gains `record`."""
    prior = mcq.metadata.get("transform", [])
    done = [*(prior if isinstance(prior, list) else [prior]), record]
    return mcq.model_copy(update={**update, "metadata": {**mcq.metadata, "transform": done}})


def _check_rate(rate: float) -> None:
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"rate must be within [0, 1], got {rate}")


@dataclass(frozen=True)
class ShuffleOptions:
    """Permute the options; correct_index follows the correct text to its new position."""

    name: str = field(default="shuffle", init=False, repr=False)

    def __call__(self, mcq: MCQ, rng: random.Random) -> MCQ:
        order = list(range(len(mcq.choices)))
        rng.shuffle(order)  # new position i shows the old choice order[i]
        return _rewritten(mcq, {"name": self.name, "order": order},
                          choices=[mcq.choices[i] for i in order], correct_index=order.index(mcq.correct_index))


@dataclass(frozen=True)
class LabelStyleTransform:
    """Label the options (a)/(A)/(1); the options themselves are unchanged."""

    style: LabelStyle = "A"
    name: str = field(default="labels", init=False, repr=False)

    def __post_init__(self) -> None:
        if self.style not in get_args(LabelStyle):
            raise ValueError(f"label style must be one of {get_args(LabelStyle)}, got {self.style!r}")

    def __call__(self, mcq: MCQ, rng: random.Random) -> MCQ:
        return _rewritten(mcq, {"name": self.name, "style": self.style}, labels=self.style)


@dataclass(frozen=True)
class WhitespaceNoise:
    """Double some spaces of the stem and pad it with spaces or newlines; words stay whole."""

    rate: float = 0.1
    name: str = field(default="whitespace", init=False, repr=False)

    def __post_init__(self) -> None:
        _check_rate(self.rate)

    def __call__(self, mcq: MCQ, rng: random.Random) -> MCQ:
        out: list[str] = []
        edits = 0
        for ch in mcq.question:
            out.append(ch)
            if ch == " " and rng.random() < self.rate:
                out.append(" ")
                edits += 1
        stem = "".join(out)
        if rng.random() < self.rate:
            stem = self._pad(rng) + stem
            edits += 1
        if rng.random() < self.rate:
            stem += self._pad(rng)
            edits += 1
        return _rewritten(mcq, {"name": self.name, "rate": self.rate, "edits": edits}, question=stem)

    @staticmethod
    def _pad(rng: random.Random) -> str:
        return "".join(rng.choice(" \n") for _ in range(rng.randint(1, 2)))


_MARKS = ".,;:!?"
"""Sentence punctuation the noise may touch; hyphens, apostrophes and brackets carry meaning."""


@dataclass(frozen=True)
class PunctuationNoise:
    """Drop or duplicate some sentence punctuation in the stem, or add a trailing mark.

    A mark between two letters or digits ("3.5", "1,000", "e.g") is left alone: dropping it would
    change what is written, not only how.
    """

    rate: float = 0.1
    name: str = field(default="punctuation", init=False, repr=False)

    def __post_init__(self) -> None:
        _check_rate(self.rate)

    def __call__(self, mcq: MCQ, rng: random.Random) -> MCQ:
        text = mcq.question
        out: list[str] = []
        edits = 0
        for i, ch in enumerate(text):
            inside = 0 < i < len(text) - 1 and text[i - 1].isalnum() and text[i + 1].isalnum()
            if ch in _MARKS and not inside and rng.random() < self.rate:
                out.append(rng.choice(["", ch + ch]))  # drop it, or duplicate it
                edits += 1
            else:
                out.append(ch)
        stem = "".join(out)
        if rng.random() < self.rate:
            body = stem.rstrip()
            stem = body + rng.choice(".?") + stem[len(body):]  # before any trailing whitespace
            edits += 1
        return _rewritten(mcq, {"name": self.name, "rate": self.rate, "edits": edits}, question=stem)


_WORD = re.compile(r"(?<!\w)[^\W\d_]{4,}(?!\w)")
"""A purely alphabetic word of 4+ letters (identifiers such as "CD45" or "IL_2" are skipped)."""


@dataclass(frozen=True)
class Typos:
    """Per word of 4+ letters in the stem, with probability `rate`: swap two adjacent inner letters,
    drop an inner letter, or duplicate one. The first and last letters, and the options, are kept."""

    rate: float = 0.05
    name: str = field(default="typos", init=False, repr=False)

    def __post_init__(self) -> None:
        _check_rate(self.rate)

    def __call__(self, mcq: MCQ, rng: random.Random) -> MCQ:
        edits = 0

        def typo(match: re.Match[str]) -> str:
            nonlocal edits
            word = match.group()
            if rng.random() >= self.rate:
                return word
            edits += 1
            return _typo(word, rng)

        stem = _WORD.sub(typo, mcq.question)
        return _rewritten(mcq, {"name": self.name, "rate": self.rate, "edits": edits}, question=stem)


def _typo(word: str, rng: random.Random) -> str:
    """One typo inside `word` (len >= 4); a swap is only chosen where it changes something."""
    swaps = [i for i in range(1, len(word) - 2) if word[i] != word[i + 1]]
    kind = rng.choice(["swap", "drop", "double"] if swaps else ["drop", "double"])
    if kind == "swap":
        i = rng.choice(swaps)
        return word[:i] + word[i + 1] + word[i] + word[i + 2:]
    i = rng.randrange(1, len(word) - 1)
    return word[:i] + (word[i] * 2 if kind == "double" else "") + word[i + 1:]


@dataclass(frozen=True)
class Paraphrase:
    """Marker for the model-based paraphrase transform; it is run by `paraphrase_mcq`, not here."""

    name: str = field(default="paraphrase", init=False, repr=False)

    def __call__(self, mcq: MCQ, rng: random.Random) -> MCQ:
        raise TypeError("paraphrase needs a model: use paraphrase_mcq")


TRANSFORMS: dict[str, Callable[..., Transform]] = {
    "shuffle": ShuffleOptions,
    "labels": LabelStyleTransform,
    "whitespace": WhitespaceNoise,
    "punctuation": PunctuationNoise,
    "typos": Typos,
}
"""The rule-based transforms by name; each constructor has defaults for all its parameters."""

_KNOWN = sorted([*TRANSFORMS, "paraphrase"])


def _argument(name: str, raw: str) -> Any:
    if name in ("whitespace", "punctuation", "typos"):
        try:
            return float(raw)
        except ValueError:
            raise UserError(f"transform '{name}' takes a rate such as {name}:0.1, got {raw!r}") from None
    if name == "labels":
        return raw
    raise UserError(f"transform '{name}' takes no parameter; write just '{name}'")


def parse_transforms(spec: str) -> list[Transform]:
    """Transforms from a spec such as "shuffle,typos:0.1,labels:A", in order."""
    result: list[Transform] = []
    for item in (part.strip() for part in spec.split(",")):
        if not item:
            continue
        name, sep, raw = (s.strip() for s in item.partition(":"))
        if name not in _KNOWN:
            raise UserError(f"unknown transform '{name}'; known: {', '.join(_KNOWN)}")
        if name == "paraphrase":
            if sep:
                _argument(name, raw)  # raises: the paraphrase takes no parameter here
            result.append(Paraphrase())
            continue
        try:
            result.append(TRANSFORMS[name](_argument(name, raw)) if sep else TRANSFORMS[name]())
        except ValueError as exc:  # a rate outside [0, 1], an unknown label style
            raise UserError(f"transform '{item}': {exc}") from None
    return result


def apply(transform: Transform, mcq: MCQ, seed: int) -> MCQ:
    """Run `transform` on `mcq` with a random stream of its own for this seed, transform and case."""
    return transform(mcq, random.Random(f"{seed}:{transform.name}:{mcq.key}"))
