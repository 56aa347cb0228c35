"""Multiple-choice questions (MicroVQA-style), their loaders (JSONL, or MicroVQA's CSV columns),
and reading the chosen option from a model's free-text answer with MicroVQA's patterns."""

from __future__ import annotations

import ast
import csv
import io
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, StrictInt, ValidationError, model_validator

from rolegraph._inputs import MAX_LINE_BYTES, jsonl_objects, limit_text, no_cases, object_field, text_lines
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
    correct_index: StrictInt
    """0-based; strict, so `true` or `"1"` in a JSONL file is refused rather than read as 1."""
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
    """Stream MCQs from a .jsonl or .csv file (UTF-8, a byte-order mark allowed).

    A malformed file raises InputError naming the file, the line and the field: bytes that are not
    UTF-8, a line (or CSV field) over 1 MiB (`MAX_LINE_BYTES`), a row that does not validate, and a
    file with no question in it at all.
    """
    p = Path(path)
    rows = _from_csv(p) if p.suffix.lower() == ".csv" else _from_jsonl(p)
    count = 0
    for line_no, row in rows:
        yield _validate(row, p, line_no)
        count += 1
    if count == 0:
        raise no_cases(p)


def _from_jsonl(p: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    yield from jsonl_objects(p)


def _from_csv(p: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    # csv's own limit (128 KiB a field, process-wide) is raised to ours; never lowered
    csv.field_size_limit(max(csv.field_size_limit(), MAX_LINE_BYTES))
    consumed: list[tuple[int, str]] = []  # the lines read since the last row: the next row's own text

    def lines() -> Iterator[str]:
        for line_no, text in text_lines(p):
            consumed.append((line_no, text))
            yield text

    reader = csv.DictReader(lines())
    try:
        fieldnames = reader.fieldnames
        missing = {"question", "choices"} - set(fieldnames or [])
        if missing:
            head = consumed[0][1].lstrip() if consumed else ""
            hint = "; the first line reads as JSON: a JSONL file is read by its name ending in .jsonl" if \
                head.startswith("{") else ""
            raise InputError(f"missing column(s): {', '.join(sorted(missing))}{hint}", path=str(p), line=1)
        consumed.clear()
        for row in reader:
            raw = [(n, t) for n, t in consumed if t.strip()]
            consumed.clear()
            if all(not (v or "").strip() for v in row.values() if isinstance(v, str)) and None not in row:
                continue  # a blank line, as in JSONL
            try:
                data = _csv_row(row, p, reader.line_num)
            except InputError as exc:  # a row that fails because of its quotes is reported as that
                raise _quoting_problem(raw, p) or exc from None
            yield reader.line_num, data
    except csv.Error as exc:
        text = (f"a field is longer than {limit_text()}, the limit per input field"
                if "field limit" in str(exc) else f"not valid CSV ({exc})")
        raise InputError(text, path=str(p), line=reader.line_num + 1) from None


def _quoting_problem(raw: list[tuple[int, str]], p: Path) -> InputError | None:
    """The quoting mistake in a CSV row's lines (`raw`: (line number, text)), if it has one: a quote
    opened and not closed on its line (the field runs on over the next lines), or text after a field's
    closing quote. Read leniently, such a row shifts its values between fields (a question's text
    read as the choices), so the error it would give names the wrong thing."""
    if not raw:
        return None
    first, text = raw[0]
    try:
        list(csv.reader(io.StringIO(text), strict=True))
    except csv.Error as exc:
        excerpt = text.strip() if len(text.strip()) <= 80 else text.strip()[:79] + "…"
        if "unexpected end of data" in str(exc) or len(raw) > 1:
            runs = f", so the row runs on to line {raw[-1][0]}" if len(raw) > 1 else ""
            what = f"a quote (\") opened in this row is not closed on its line{runs}"
        else:
            what = "text follows the closing quote (\") of a field"
        return InputError(f"a CSV quoting problem: {what}: {excerpt!r}. Put a field that holds a comma or a quote "
                          'in quotes, and write each quote inside it twice ("")', path=str(p), line=first)
    return None


def _csv_row(row: dict[str | Any, Any], p: Path, line_no: int) -> dict[str, Any]:
    if None in row:
        raise InputError(f"{len(row[None])} more value(s) than there are columns", path=str(p), line=line_no)
    raw = row.get("choices") or ""
    try:
        choices = ast.literal_eval(raw)  # a Python literal; never evaluated as code
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        raise InputError(f"not a list literal: {raw[:60]!r}", path=str(p), line=line_no, field="choices") from None
    data: dict[str, Any] = {k: v for k, v in row.items() if k != "choices" and v is not None}
    if isinstance(choices, dict):  # MicroVQA's {'choices': [...], 'correct_index': i}
        if data.get("correct_index") in (None, ""):
            data["correct_index"] = choices.get("correct_index")
        choices = choices.get("choices")
    if not isinstance(choices, list | tuple):
        raise InputError(f"must be a list of options, not {type(choices).__name__}: {raw[:60]!r}", path=str(p),
                         line=line_no, field="choices")
    data["choices"] = list(choices)
    index = data.get("correct_index")
    if isinstance(index, str):  # a CSV cell; strict int from here on
        if not index.strip().isdigit():
            raise InputError(f"must be a whole number, not {index[:60]!r}", path=str(p), line=line_no,
                             field="correct_index")
        data["correct_index"] = int(index)
    meta = data.get("metadata")
    if isinstance(meta, str):  # a CSV cell holding a JSON object, or empty
        try:
            data["metadata"] = json.loads(meta) if meta.strip() else {}
        except json.JSONDecodeError:
            raise InputError(f"must be a JSON object, not {meta[:60]!r}", path=str(p), line=line_no,
                             field="metadata") from None
    return data


def _validate(row: dict[str, Any], p: Path, line_no: int) -> MCQ:
    data = dict(row)
    if "key" not in data:
        data["key"] = str(data.pop("key_question", data.pop("id", line_no)))
    else:
        data["key"] = str(data["key"])
    known = set(MCQ.model_fields)
    metadata = object_field(data, "metadata", p, line_no)
    data["metadata"] = {**metadata, **{k: v for k, v in data.items() if k not in known}}
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
