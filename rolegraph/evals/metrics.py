"""Evaluation statistics: confidence intervals, pass@k and pass^k over repeated runs, flakiness,
paired comparisons of two systems (bootstrap, McNemar's test), and cumulative top-k fractions."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

import numpy as np

NAN = float("nan")


@dataclass(frozen=True)
class Estimate:
    """A point estimate with its confidence interval."""

    value: float
    """The point estimate."""
    low: float
    """Lower bound of the confidence interval."""
    high: float
    """Upper bound of the confidence interval."""
    n: int
    """Number of observations."""
    confidence: float = 0.95
    """Confidence level of the interval, e.g. 0.95."""


@dataclass(frozen=True)
class McNemar:
    """McNemar's test on paired binary outcomes; only the discordant pairs b and c matter."""

    b: int
    """Pairs where A is right and B wrong."""
    c: int
    """Pairs where A is wrong and B right."""
    statistic: float
    """Chi-square with continuity correction, or min(b, c) for the exact test."""
    p_value: float
    """Two-sided p-value."""
    exact: bool
    """Whether the exact binomial test was used."""


@dataclass(frozen=True)
class PairedComparison:
    """Two systems scored on the same cases: their means and the paired difference b - a."""

    n: int
    """Number of cases scored by both."""
    mean_a: float
    mean_b: float
    diff: Estimate
    """Mean of (b - a) with a paired bootstrap confidence interval."""
    mcnemar: McNemar | None
    """McNemar's test when every score is 0 or 1, else None."""


def _check_confidence(confidence: float) -> None:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be strictly between 0 and 1, got {confidence}")


def mean_ci(values: Sequence[float], *, confidence: float = 0.95, n_boot: int = 2000, seed: int = 0) -> Estimate:
    """Mean with a percentile bootstrap confidence interval (Efron & Tibshirani 1993), reproducible by seed.
    No values give an all-NaN estimate; one value gives a zero-width interval."""
    _check_confidence(confidence)
    if n_boot < 1:
        raise ValueError(f"n_boot must be at least 1, got {n_boot}")
    x = np.asarray(values, dtype=float)
    if x.ndim != 1:
        raise ValueError(f"values must be one-dimensional, got shape {x.shape}")
    n = len(x)
    if n == 0:
        return Estimate(NAN, NAN, NAN, 0, confidence)
    if not np.all(np.isfinite(x)):
        raise ValueError("values must all be finite (no NaN or infinity)")
    value = float(np.mean(x))
    if n == 1:
        return Estimate(value, value, value, 1, confidence)
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, n, size=(n_boot, n))].mean(axis=1)
    alpha = 1.0 - confidence
    low, high = np.quantile(means, [alpha / 2, 1.0 - alpha / 2])
    return Estimate(value, float(low), float(high), n, confidence)


def accuracy_ci(correct: Sequence[bool], *, confidence: float = 0.95, n_boot: int = 2000, seed: int = 0) -> Estimate:
    """Accuracy (fraction correct) with a percentile bootstrap confidence interval; see `mean_ci`."""
    return mean_ci([1.0 if ok else 0.0 for ok in correct], confidence=confidence, n_boot=n_boot, seed=seed)


def wilson_ci(successes: int, n: int, *, confidence: float = 0.95) -> Estimate:
    """Proportion successes/n with the Wilson score interval (Wilson 1927), better than the normal
    approximation for small n or proportions near 0 or 1. n == 0 gives an all-NaN estimate."""
    _check_confidence(confidence)
    if n < 0 or not 0 <= successes <= n:
        raise ValueError(f"need 0 <= successes <= n, got successes={successes}, n={n}")
    if n == 0:
        return Estimate(NAN, NAN, NAN, 0, confidence)
    z = NormalDist().inv_cdf(1.0 - (1.0 - confidence) / 2)
    p = successes / n
    denom = 1.0 + z * z / n
    center = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1.0 - p) / n + z * z / (4 * n * n)) / denom
    # At 0 or n successes the bound is exactly 0 or 1; the subtraction would leave rounding residue.
    low = 0.0 if successes == 0 else center - half
    high = 1.0 if successes == n else center + half
    return Estimate(p, low, high, n, confidence)


def _check_nck(n: int, c: int, k: int) -> None:
    if n < 0 or c < 0 or k < 1:
        raise ValueError(f"need n >= 0, c >= 0 and k >= 1, got n={n}, c={c}, k={k}")
    if c > n:
        raise ValueError(f"c (correct samples) cannot exceed n (samples), got c={c}, n={n}")
    if k > n:
        raise ValueError(f"k cannot exceed n (samples), got k={k}, n={n}")


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k of Chen et al. 2021 (Codex paper): the chance that at least one of k samples,
    drawn without replacement from n of which c are correct, is correct: 1 - C(n-c, k) / C(n, k)."""
    _check_nck(n, c, k)
    if n - c < k:
        return 1.0
    # Python's int / int is correctly rounded, so huge binomials lose no precision here.
    return 1.0 - math.comb(n - c, k) / math.comb(n, k)


def pass_hat_k(n: int, c: int, k: int) -> float:
    """pass^k of tau-bench (Yao et al. 2024): the chance that all of k samples, drawn without
    replacement from n of which c are correct, are correct: C(c, k) / C(n, k)."""
    _check_nck(n, c, k)
    return math.comb(c, k) / math.comb(n, k)


def mean_over_cases(outcomes: Mapping[str, Sequence[bool]], fn: Callable[[int, int, int], float], k: int) -> float:
    """Average fn(n_i, c_i, k), e.g. `pass_at_k` or `pass_hat_k`, over cases, each given as its repeated
    outcomes. Raises ValueError on no cases or on a case with fewer than k repeats."""
    if not outcomes:
        raise ValueError("no cases to average over")
    total = 0.0
    for case, runs in outcomes.items():
        if len(runs) < k:
            raise ValueError(f"case {case!r} has {len(runs)} repeats, fewer than k={k}")
        total += fn(len(runs), sum(1 for ok in runs if ok), k)
    return total / len(outcomes)


def flip_rate(outcomes: Sequence[bool]) -> float:
    """Flakiness of one case: the fraction of unordered pairs of its repeats that disagree,
    (#pass * #fail) / C(n, 2); 0.0 with fewer than two repeats."""
    n = len(outcomes)
    if n < 2:
        return 0.0
    passes = sum(1 for ok in outcomes if ok)
    return passes * (n - passes) / math.comb(n, 2)


def mean_flip_rate(outcomes: Mapping[str, Sequence[bool]]) -> float:
    """Mean `flip_rate` over the cases with at least two repeats; NaN if there are none."""
    rates = [flip_rate(runs) for runs in outcomes.values() if len(runs) >= 2]
    return sum(rates) / len(rates) if rates else NAN


def topk_fractions(ranks: Sequence[int], max_k: int) -> dict[str, float]:
    """Cumulative top-k fractions of 0-based ranks pooled over items: key "k" (1 to `max_k`) is the
    share of ranks at most k - 1, and "outside" the share of ranks of -1 (not among the top
    `max_k`). Every share is over all the ranks, so the "max_k" and "outside" shares add up to 1;
    NaN everywhere for no ranks. A rank of `max_k` or more is refused (ValueError)."""
    if any(r < -1 or r >= max_k for r in ranks):
        raise ValueError(f"ranks must be -1 or 0 to {max_k - 1}, got {sorted(set(ranks))}")
    n = len(ranks)
    out = {str(k): (sum(1 for r in ranks if 0 <= r <= k - 1) / n if n else NAN) for k in range(1, max_k + 1)}
    out["outside"] = sum(1 for r in ranks if r == -1) / n if n else NAN
    return out


def pooled_topk(recorded: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Pools ranks recorded per item as {"max_k": K, "outside": bool, "measures": {measure:
    {group: [rank, ...]}}} (a scorer's `metadata["topk"]`) and gives, per measure and group, the
    number of ranks and their `topk_fractions`; {} when nothing was recorded."""
    pooled: dict[str, dict[str, list[int]]] = {}
    max_k, outside = 0, False
    for topk in recorded:
        max_k, outside = max(max_k, int(topk["max_k"])), outside or bool(topk.get("outside"))
        for measure, groups in topk["measures"].items():
            for group, ranks in groups.items():
                pooled.setdefault(measure, {}).setdefault(group, []).extend(int(r) for r in ranks)
    if not pooled:
        return {}
    measures = {measure: {group: {"n": len(ranks), "fractions": topk_fractions(ranks, max_k)}
                          for group, ranks in sorted(groups.items()) if ranks}
                for measure, groups in pooled.items()}
    return {"max_k": max_k, "outside": outside, "measures": measures}


def mcnemar(a: Sequence[bool], b: Sequence[bool], *, exact: bool | None = None) -> McNemar:
    """McNemar's test (McNemar 1947) on paired outcomes of systems A and B. exact=None picks the exact
    two-sided binomial test when b + c < 25, else chi-square (1 df) with continuity correction."""
    if len(a) != len(b):
        raise ValueError(f"paired outcomes must have equal lengths, got {len(a)} and {len(b)}")
    n_b = sum(1 for x, y in zip(a, b, strict=True) if x and not y)
    n_c = sum(1 for x, y in zip(a, b, strict=True) if y and not x)
    discordant = n_b + n_c
    use_exact = discordant < 25 if exact is None else exact
    if use_exact:
        low = min(n_b, n_c)
        tail = sum(math.comb(discordant, i) for i in range(low + 1))
        p_value = min(1.0, 2 * tail / 2**discordant)
        return McNemar(n_b, n_c, float(low), p_value, True)
    if discordant == 0:
        return McNemar(n_b, n_c, 0.0, 1.0, False)
    # Clamped at 0 so the correction never overshoots when b == c (the statistic is then 0, p = 1).
    statistic = max(abs(n_b - n_c) - 1, 0) ** 2 / discordant
    return McNemar(n_b, n_c, statistic, math.erfc(math.sqrt(statistic / 2)), False)


def paired_comparison(
    a: Mapping[str, float],
    b: Mapping[str, float],
    *,
    confidence: float = 0.95,
    n_boot: int = 2000,
    seed: int = 0,
) -> PairedComparison:
    """Compare per-case scores of A and B on the cases both have: paired bootstrap CI of mean(b - a),
    plus McNemar's test when every score is 0 or 1. Raises ValueError if no case is shared."""
    keys = sorted(a.keys() & b.keys())
    if not keys:
        raise ValueError("the two score maps share no case")
    xs = np.array([a[key] for key in keys], dtype=float)
    ys = np.array([b[key] for key in keys], dtype=float)
    # Bootstrapping the per-case differences resamples whole pairs, which keeps the pairing.
    diff = mean_ci((ys - xs).tolist(), confidence=confidence, n_boot=n_boot, seed=seed)
    binary = bool(np.all(np.isin(xs, (0.0, 1.0))) and np.all(np.isin(ys, (0.0, 1.0))))
    test = mcnemar([bool(x) for x in xs], [bool(y) for y in ys]) if binary else None
    return PairedComparison(len(keys), float(np.mean(xs)), float(np.mean(ys)), diff, test)
