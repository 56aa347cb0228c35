"""Scorers for `rolegraph eval writer_critic.py:writer_critic --scorer scorers.py:approved`."""

from typing import Any


def approved(output: dict[str, Any]) -> float:
    """1.0 when the critic approved the final draft."""
    return 1.0 if output["approved"] else 0.0


def concise(output: dict[str, Any]) -> float:
    """1.0 when the final draft is at most 60 words."""
    return 1.0 if len(output["draft"].split()) <= 60 else 0.0
