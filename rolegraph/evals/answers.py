"""Read the option a model chose from its free-text answer, with MicroVQA's published patterns
("the answer is (b)", "answer is **(2)**"); the last match in the text wins."""

from __future__ import annotations

import re

from rolegraph.evals.mcq import LabelStyle

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
