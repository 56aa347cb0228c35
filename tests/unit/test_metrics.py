"""Evaluation statistics against values computed by hand (the computation is in the comments)."""

from __future__ import annotations

import math

import pytest

from rolegraph.evals.metrics import (
    Estimate,
    accuracy_ci,
    flip_rate,
    mcnemar,
    mean_ci,
    mean_flip_rate,
    mean_over_cases,
    paired_comparison,
    pass_at_k,
    pass_hat_k,
    wilson_ci,
)

T, F = True, False


# --- pass@k and pass^k -------------------------------------------------------------------------


def test_pass_at_k_by_hand() -> None:
    # 1 - C(3,1)/C(5,1) = 1 - 3/5 = 0.4
    assert pass_at_k(5, 2, 1) == pytest.approx(0.4)
    # 1 - C(3,2)/C(5,2) = 1 - 3/10 = 0.7
    assert pass_at_k(5, 2, 2) == pytest.approx(0.7)
    # n - c = 3 < k = 4: every draw of 4 contains a correct sample
    assert pass_at_k(5, 2, 4) == 1.0
    # no correct sample: C(5,3)/C(5,3) = 1, so 0
    assert pass_at_k(5, 0, 3) == 0.0


def test_pass_hat_k_by_hand() -> None:
    # C(2,2)/C(5,2) = 1/10
    assert pass_hat_k(5, 2, 2) == pytest.approx(0.1)
    # C(5,3)/C(5,3) = 1
    assert pass_hat_k(5, 5, 3) == 1.0
    # C(2,3) = 0: three draws cannot all be among two correct ones
    assert pass_hat_k(5, 2, 3) == 0.0
    # C(3,2)/C(5,2) = 3/10
    assert pass_hat_k(5, 3, 2) == pytest.approx(0.3)


@pytest.mark.parametrize(("n", "c"), [(1, 0), (1, 1), (7, 3), (10, 10)])
def test_k_equal_one_is_the_plain_success_rate(n: int, c: int) -> None:
    # pass@1 = 1 - (n-c)/n = c/n and pass^1 = c/n
    assert pass_at_k(n, c, 1) == pytest.approx(c / n)
    assert pass_hat_k(n, c, 1) == pytest.approx(c / n)


def test_pass_at_k_is_exact_for_large_n() -> None:
    # 1 - C(1000,100)/C(2000,100): the binomials overflow floats but not the integer arithmetic
    expected = 1.0 - math.prod((1000 - i) / (2000 - i) for i in range(100))
    assert pass_at_k(2000, 1000, 100) == pytest.approx(expected)


@pytest.mark.parametrize("fn", [pass_at_k, pass_hat_k])
@pytest.mark.parametrize(("n", "c", "k"), [(5, 2, 6), (5, 6, 1), (-1, 0, 1), (5, -1, 1), (5, 2, 0), (5, 2, -1)])
def test_pass_k_rejects_bad_counts(fn: object, n: int, c: int, k: int) -> None:
    assert callable(fn)
    with pytest.raises(ValueError):
        fn(n, c, k)


def test_mean_over_cases_by_hand() -> None:
    outcomes = {"x": [T, F, T, T, F], "y": [F, F, F, F, F]}
    # pass@1: (3/5 + 0/5) / 2 = 0.3
    assert mean_over_cases(outcomes, pass_at_k, 1) == pytest.approx(0.3)
    # pass@2: x = 1 - C(2,2)/C(5,2) = 0.9, y = 0, mean 0.45
    assert mean_over_cases(outcomes, pass_at_k, 2) == pytest.approx(0.45)
    # pass^2: x = C(3,2)/C(5,2) = 0.3, y = 0, mean 0.15
    assert mean_over_cases(outcomes, pass_hat_k, 2) == pytest.approx(0.15)


def test_mean_over_cases_names_the_short_case() -> None:
    with pytest.raises(ValueError, match="'short'"):
        mean_over_cases({"long": [T, T, T], "short": [T]}, pass_at_k, 2)
    with pytest.raises(ValueError):
        mean_over_cases({}, pass_at_k, 1)


# --- flakiness ----------------------------------------------------------------------------------


def test_flip_rate_by_hand() -> None:
    # 3 passes * 1 fail / C(4,2) = 3/6
    assert flip_rate([T, F, T, T]) == pytest.approx(0.5)
    # 1 * 1 / C(2,2) = 1
    assert flip_rate([T, F]) == 1.0
    # 2 * 3 / C(5,2) = 6/10
    assert flip_rate([F, T, F, T, F]) == pytest.approx(0.6)
    assert flip_rate([T, T, T]) == 0.0
    assert flip_rate([F]) == 0.0
    assert flip_rate([]) == 0.0


def test_mean_flip_rate_skips_single_runs() -> None:
    # x = 3/6, y = 0; z has one repeat and is left out: (0.5 + 0) / 2
    assert mean_flip_rate({"x": [T, F, T, T], "y": [T, T], "z": [F]}) == pytest.approx(0.25)
    assert math.isnan(mean_flip_rate({"z": [F]}))
    assert math.isnan(mean_flip_rate({}))


# --- McNemar ------------------------------------------------------------------------------------


def pairs(b: int, c: int, same: int = 5) -> tuple[list[bool], list[bool]]:
    """b pairs A right/B wrong, c pairs A wrong/B right, and `same` concordant pairs of each kind."""
    a_runs = [T] * b + [F] * c + [T] * same + [F] * same
    b_runs = [F] * b + [T] * c + [T] * same + [F] * same
    return a_runs, b_runs


def test_mcnemar_exact_by_hand() -> None:
    result = mcnemar(*pairs(10, 2))
    # b + c = 12 < 25 -> exact: 2 * (C(12,0) + C(12,1) + C(12,2)) / 2^12 = 2 * 79 / 4096
    assert (result.b, result.c, result.exact) == (10, 2, True)
    assert result.statistic == 2.0
    assert result.p_value == pytest.approx(2 * 79 / 4096)
    assert result.p_value == pytest.approx(0.03857, abs=1e-5)


def test_mcnemar_chi_square_by_hand() -> None:
    result = mcnemar(*pairs(30, 12))
    # b + c = 42 >= 25 -> chi-square: (|30-12| - 1)^2 / 42 = 289/42 = 6.881, p = erfc(sqrt(6.881/2)) = 0.0087
    assert (result.b, result.c, result.exact) == (30, 12, False)
    assert result.statistic == pytest.approx(289 / 42)
    assert result.p_value == pytest.approx(math.erfc(math.sqrt(289 / 42 / 2)))
    assert result.p_value == pytest.approx(0.00871, abs=5e-5)


def test_mcnemar_forced_branches() -> None:
    # forced exact on 42 discordant pairs: tail sum over i <= 12 of C(42, i) / 2^42, doubled
    exact = mcnemar(*pairs(30, 12), exact=True)
    assert exact.exact
    assert exact.p_value == pytest.approx(2 * sum(math.comb(42, i) for i in range(13)) / 2**42)
    # forced chi-square on b=10, c=2: (8-1)^2 / 12 = 49/12
    chi = mcnemar(*pairs(10, 2), exact=False)
    assert not chi.exact
    assert chi.statistic == pytest.approx(49 / 12)


def test_mcnemar_no_discordant_pairs() -> None:
    a_runs, b_runs = pairs(0, 0)
    # 2 * C(0,0) / 2^0 = 2, capped at 1
    assert mcnemar(a_runs, b_runs).p_value == 1.0
    assert mcnemar(a_runs, b_runs, exact=False).p_value == 1.0


def test_mcnemar_symmetric_counts_give_p_one() -> None:
    # b = c = 3: 2 * (1 + 6 + 15 + 20) / 64 = 84/64, capped at 1
    assert mcnemar(*pairs(3, 3)).p_value == 1.0


def test_mcnemar_rejects_unequal_lengths() -> None:
    with pytest.raises(ValueError, match="equal lengths"):
        mcnemar([T, F], [T])


# --- confidence intervals -----------------------------------------------------------------------


def test_wilson_known_values() -> None:
    # p = 0.8, z = 1.95996, z^2/n = 0.38415: centre (0.8 + 0.19207)/1.38415 = 0.71675,
    # half-width 1.96 * sqrt(0.016 + 0.0096037) / 1.38415 = 0.22658 -> [0.4902, 0.9433]
    est = wilson_ci(8, 10)
    assert est.value == pytest.approx(0.8)
    assert est.low == pytest.approx(0.4902, abs=5e-4)
    assert est.high == pytest.approx(0.9433, abs=5e-4)
    assert (est.n, est.confidence) == (10, 0.95)


def test_wilson_at_zero_successes() -> None:
    # p = 0: low = 0, high = (z^2/n) / (1 + z^2/n) = 0.38415 / 1.38415 = 0.2775
    est = wilson_ci(0, 10)
    assert est.low == 0.0
    assert est.high == pytest.approx(0.2775, abs=5e-4)
    # mirror image at n successes: high = 1, low = 1 - 0.2775
    full = wilson_ci(10, 10)
    assert full.high == 1.0
    assert full.low == pytest.approx(1 - est.high)


def test_wilson_rejects_bad_counts() -> None:
    for successes, n in [(11, 10), (-1, 10), (0, -1)]:
        with pytest.raises(ValueError):
            wilson_ci(successes, n)
    with pytest.raises(ValueError, match="confidence"):
        wilson_ci(1, 2, confidence=1.0)
    assert math.isnan(wilson_ci(0, 0).value)


def test_mean_ci_edge_sizes() -> None:
    empty = mean_ci([])
    assert empty.n == 0
    assert all(math.isnan(x) for x in (empty.value, empty.low, empty.high))
    assert mean_ci([3.0]) == Estimate(3.0, 3.0, 3.0, 1)


def test_mean_ci_of_constant_values_has_zero_width() -> None:
    est = mean_ci([0.7] * 20)
    assert est.low == est.value == est.high
    assert est.value == pytest.approx(0.7)


def test_mean_ci_of_larger_sample() -> None:
    values = [float(i) for i in range(100)]
    est = mean_ci(values, seed=1)
    # mean 49.5; population sd sqrt((100^2 - 1)/12) = 28.87, standard error 2.887,
    # so the 95% half-width should be near 1.96 * 2.887 = 5.66
    assert est.value == pytest.approx(49.5)
    assert est.low < 49.5 < est.high
    assert 4.5 < 49.5 - est.low < 7.0
    assert 4.5 < est.high - 49.5 < 7.0
    assert mean_ci(values, seed=1) == est
    assert mean_ci(values, seed=2) != est
    # a lower confidence gives a narrower interval from the same resamples
    narrow = mean_ci(values, seed=1, confidence=0.5)
    assert est.low < narrow.low < narrow.high < est.high


def test_mean_ci_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="finite"):
        mean_ci([1.0, float("nan")])
    with pytest.raises(ValueError, match="confidence"):
        mean_ci([1.0, 2.0], confidence=0.0)
    with pytest.raises(ValueError, match="n_boot"):
        mean_ci([1.0, 2.0], n_boot=0)


def test_accuracy_ci_is_mean_ci_of_zero_one() -> None:
    est = accuracy_ci([T, T, T, F] * 5)
    # 15 of 20 right
    assert est.value == pytest.approx(0.75)
    assert est == mean_ci([1.0, 1.0, 1.0, 0.0] * 5)
    assert est.low < 0.75 < est.high


# --- paired comparison --------------------------------------------------------------------------


def test_paired_comparison_binary_on_overlapping_keys() -> None:
    a = {"p": 1.0, "q": 0.0, "r": 0.0, "only_a": 1.0}
    b = {"p": 1.0, "q": 1.0, "r": 1.0, "only_b": 0.0}
    result = paired_comparison(a, b)
    # shared p, q, r: mean_a = 1/3, mean_b = 1, diffs (0, 1, 1) -> mean 2/3
    assert result.n == 3
    assert result.mean_a == pytest.approx(1 / 3)
    assert result.mean_b == pytest.approx(1.0)
    assert result.diff.value == pytest.approx(2 / 3)
    assert 0.0 <= result.diff.low <= 2 / 3 <= result.diff.high <= 1.0
    # McNemar: b = 0 (A right, B wrong), c = 2; exact p = 2 * C(2,0) / 2^2 = 0.5
    assert result.mcnemar is not None
    assert (result.mcnemar.b, result.mcnemar.c) == (0, 2)
    assert result.mcnemar.p_value == pytest.approx(0.5)


def test_paired_comparison_graded_scores_skip_mcnemar() -> None:
    a = {"p": 0.5, "q": 0.25}
    b = {"p": 0.75, "q": 0.75, "r": 0.0}
    result = paired_comparison(a, b, seed=3)
    # diffs (0.25, 0.5) -> mean 0.375; every resampled mean lies between the two
    assert result.mcnemar is None
    assert result.n == 2
    assert result.diff.value == pytest.approx(0.375)
    assert 0.25 <= result.diff.low <= result.diff.high <= 0.5


def test_paired_comparison_needs_shared_keys() -> None:
    with pytest.raises(ValueError, match="share no case"):
        paired_comparison({"p": 1.0}, {"q": 1.0})
