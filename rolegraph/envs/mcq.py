"""Multiple-choice questions (MicroVQA-style), their loaders (JSONL, or MicroVQA's CSV columns),
and reading the chosen option from a model's free-text answer with MicroVQA's patterns."""

from __future__ import annotations

import ast
import csv
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError, model_validator

from rolegraph.errors import InputError

LETTERS = "abcdefghijk"
LabelStyle = Literal["a", "A", "1"]
"""How options are labelled: (a) (b) ..., (A) (B) ..., or (1) (2) ..."""


def option_label(index: int, style: LabelStyle = "a") -> str:
    if style == "1":
        return str(index + 1)
    return LETTERS[index].upper() if style == "A" else LETTERS[index]


class MCQ(BaseModel):
    """One question with its options and the index of the correct one."""

    key: str = ""
    """A unique id (MicroVQA's key_question)."""
    question: str = Field(min_length=1)
    choices: list[str] = Field(min_length=2, max_length=len(LETTERS))
    correct_index: int
    labels: LabelStyle = "a"
    """How the options are labelled when shown to a model."""
    metadata: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _index_in_range(self) -> MCQ:
        if not 0 <= self.correct_index < len(self.choices):
            raise ValueError(f"correct_index {self.correct_index} is not an index of {len(self.choices)} choices")
        return self

    @property
    def answer(self) -> str:
        return self.choices[self.correct_index]

    def options_text(self) -> str:
        """Options as `(a) ...` lines (or `(A)`, `(1)` by `labels`), the format a model sees."""
        return "\n".join(f"({option_label(i, self.labels)}) {c}" for i, c in enumerate(self.choices))


def load_mcqs(path: str | Path) -> Iterator[MCQ]:
    """Stream MCQs from a .jsonl or .csv file; a bad row raises InputError naming line and field."""
    p = Path(path)
    if not p.is_file():
        raise InputError("file not found", path=str(p))
    if p.suffix.lower() == ".csv":
        yield from _from_csv(p)
    else:
        yield from _from_jsonl(p)


def _from_jsonl(p: Path) -> Iterator[MCQ]:
    with p.open() as fh:
        for line_no, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InputError(f"not valid JSON ({exc.msg})", path=str(p), line=line_no) from None
            if not isinstance(row, dict):
                raise InputError("each line must be a JSON object", path=str(p), line=line_no)
            yield _validate(row, p, line_no)


def _from_csv(p: Path) -> Iterator[MCQ]:
    with p.open(newline="") as fh:
        reader = csv.DictReader(fh)
        missing = {"question", "choices"} - set(reader.fieldnames or [])
        if missing:
            raise InputError(f"missing column(s): {', '.join(sorted(missing))}", path=str(p), line=1)
        for row in reader:
            line_no = reader.line_num
            raw = row.get("choices", "")
            try:
                choices = ast.literal_eval(raw)  # a Python list literal; never evaluated as code
            except (ValueError, SyntaxError):
                raise InputError(f"not a list literal: {raw[:60]!r}", path=str(p), line=line_no,
                                 field="choices") from None
            data: dict[str, Any] = {k: v for k, v in row.items() if k != "choices"}
            if isinstance(choices, dict):  # MicroVQA's {'choices': [...], 'correct_index': i}
                if data.get("correct_index") in (None, ""):
                    data["correct_index"] = choices.get("correct_index")
                choices = choices.get("choices")
            data["choices"] = choices
            yield _validate(data, p, line_no)


def _validate(row: dict[str, Any], p: Path, line_no: int) -> MCQ:
    data = dict(row)
    if "key" not in data:
        data["key"] = str(data.pop("key_question", data.pop("id", line_no)))
    else:
        data["key"] = str(data["key"])
    known = set(MCQ.model_fields)
    data["metadata"] = {**data.get("metadata", {}), **{k: v for k, v in data.items() if k not in known}}
    data = {k: v for k, v in data.items() if k in known}
    try:
        return MCQ.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(x) for x in err["loc"]) or None
        raise InputError(err["msg"], path=str(p), line=line_no, field=field) from None


# Reading the answer: MicroVQA's published patterns ("the answer is (b)", "answer is **(2)**").
ANSWER_PATTERNS: dict[str, re.Pattern[str]] = {
    # MicroVQA's regexes; IGNORECASE also admits "Answer is (b)" at the start of a sentence.
    "letter": re.compile(r"answer is \*?\*?\(?([a-zA-Z])\)?", re.IGNORECASE),
    "number": re.compile(r"answer is \*?\*?\(?([0-9])\)?", re.IGNORECASE),
}
"""Patterns by option label kind: `letter` for (a)/(A) labels, `number` for (1) labels."""


def parse_answer(text: str, n_choices: int, labels: LabelStyle = "a") -> int | None:
    """The 0-based option index named by the last "answer is ..." in `text`.

    Letters are read case-insensitively whatever the label style; numbers are 1-based. None when
    nothing matches or the last match names no option of `n_choices` (an earlier match is not used,
    since the model's final word is its answer).
    """
    if labels == "1":
        found = ANSWER_PATTERNS["number"].findall(text)
        index = int(found[-1]) - 1 if found else None
    else:
        found = ANSWER_PATTERNS["letter"].findall(text)
        index = ord(found[-1].lower()) - ord("a") if found else None
    if index is None or not 0 <= index < n_choices:
        return None
    return index
