"""Elo over recorded matches, the way SPIN-Bench's compute_elo does it: every player starts at
1000; the match list (wins, losses and draws per pair) is swept repeatedly with K = 32, each
pair updated by its whole score against its expected score, until the ratings settle."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass
class PairRecord:
    a: str
    b: str
    wins_a: int = 0
    wins_b: int = 0
    draws: int = 0

    @property
    def games(self) -> int:
        return self.wins_a + self.wins_b + self.draws


def tally(games: Iterable[tuple[str, str, float]]) -> list[PairRecord]:
    """Per pair of players (in first-seen order), wins and draws from (a, b, score of a) games,
    where the score is 1 for a win, 0.5 for a draw and 0 for a loss."""
    pairs: dict[tuple[str, str], PairRecord] = {}
    for first, second, result in games:
        a, b, score = (second, first, 1.0 - result) if (second, first) in pairs else (first, second, result)
        rec = pairs.setdefault((a, b), PairRecord(a, b))
        if score == 1.0:
            rec.wins_a += 1
        elif score == 0.0:
            rec.wins_b += 1
        elif score == 0.5:
            rec.draws += 1
        else:
            raise ValueError(f"a game's score is 1, 0.5 or 0, not {score}")
    return list(pairs.values())


def canonical(pairs: Iterable[PairRecord]) -> list[PairRecord]:
    """The head-to-head table in an order that does not depend on which game finished first:
    each pair oriented by name (a < b, wins swapped to match) and the pairs sorted by names.
    SPIN-Bench's sweeps are order-sensitive, so concurrent games fed in completion order move
    ratings by tens of points from run to run; this is the order `elo_pairs` feeds them in."""
    merged: dict[tuple[str, str], PairRecord] = {}
    for p in pairs:
        a, b, wa, wb = (p.a, p.b, p.wins_a, p.wins_b) if p.a <= p.b else (p.b, p.a, p.wins_b, p.wins_a)
        rec = merged.setdefault((a, b), PairRecord(a, b))
        rec.wins_a += wa
        rec.wins_b += wb
        rec.draws += p.draws
    return [merged[k] for k in sorted(merged)]


def expected(r1: float, r2: float) -> float:
    return 1.0 / (1.0 + 10 ** ((r2 - r1) / 400))


def compute_elo(pairs: Iterable[PairRecord], *, start: float = 1000.0, k: float = 32.0, iterations: int = 1000,
                tol: float | None = None) -> dict[str, float]:
    """Ratings after up to `iterations` sweeps over `pairs` (SPIN-Bench runs 1000); with `tol`,
    stop early once no rating moves more than `tol` in a sweep."""
    pairs = list(pairs)
    ratings: dict[str, float] = {}
    for p in pairs:
        ratings.setdefault(p.a, start)
        ratings.setdefault(p.b, start)
    for _ in range(iterations):
        moved = 0.0
        for p in pairs:
            r1, r2 = ratings[p.a], ratings[p.b]
            e1, e2 = expected(r1, r2) * p.games, expected(r2, r1) * p.games
            new1 = r1 + k * (p.wins_a + 0.5 * p.draws - e1)
            new2 = r2 + k * (p.wins_b + 0.5 * p.draws - e2)
            moved = max(moved, abs(new1 - r1), abs(new2 - r2))
            ratings[p.a], ratings[p.b] = new1, new2
        if tol is not None and moved <= tol:
            break
    return ratings
