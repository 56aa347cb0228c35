"""Where blame samples: the sweep (every call, K times, or until its interval decides it) and the
search for the one drop (bisection over the calls, each probe sampled until its interval or a
likelihood ratio decides which side of the drop it is on, the cheap late calls preferred), which
searches a range again (or sweeps it, when short) where the samples show a second drop, and
sweeps a range where p rises."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from rolegraph.evals._blame_sampling import Sampler
from rolegraph.evals.metrics import Estimate

MIN_SAMPLES = 4
"""Samples a call gets before its interval may decide it, or separate it from another."""
GROW = 2
"""Samples added to an undecided call per round."""
DP_LIMIT = 150
"""Ranges up to this many calls choose their probe by expected cost; longer ones are halved."""
SWEEP_MAX = 8
"""A range that holds a second drop is swept when it has at most this many calls (else searched)."""
CONFIRM = 6
"""Samples each side of the located drop gets before the search ends there."""
CONTEST = 2 / 3
"""A second drop this close to the largest (as a share of it) makes both pairs take K samples."""
MAX_DEPTH = 3
"""Second drops searched within second drops, at most; deeper ranges are swept."""


@dataclass
class SearchLog:
    """What a search did besides sampling: its fallbacks, and what it left open."""

    notes: list[str] = field(default_factory=list)
    open: tuple[int, int] | None = None
    """Positions (lo, hi) between which the drop lies when the budget stopped the search."""
    undecided: list[int] = field(default_factory=list)
    """Positions whose interval never decided their side (their samples ran out first)."""


LIKELIER = 19.0
"""Likelihood ratio at which one level explains a call's samples well enough (odds of 95 to 5)."""


def _likelier(e: Estimate, high: float, low: float) -> bool | None:
    """Wald's sequential test between the two levels (each kept inside [0.05, 0.95], at least 0.2
    apart): True when the high level explains the samples LIKELIER times better than the low one,
    False for the reverse, None while neither does."""
    a, b = min(max(high, 0.05), 0.95), min(max(low, 0.05), 0.95)
    if a - b < 0.2:
        return None
    k = round(e.value * e.n)
    ratio = k * math.log(a / b) + (e.n - k) * math.log((1 - a) / (1 - b))
    if ratio > math.log(LIKELIER):
        return True
    if ratio < -math.log(LIKELIER):
        return False
    return None


def _decided(e: Estimate, tau: float) -> bool:
    return e.n >= MIN_SAMPLES and (e.low > tau or e.high < tau)


async def sweep(sampler: Sampler, samples: int, *, adaptive: bool) -> SearchLog:
    """Every call: K samples, or (`adaptive`, or under a budget) 4 first and more while undecided."""
    n = len(sampler.candidates)
    budgeted = sampler.budget.limit is not None
    target = {pos: (min(MIN_SAMPLES, samples) if adaptive or budgeted else samples) for pos in range(n)}
    log = SearchLog()
    while await sampler.ensure(target):
        grow = [pos for pos in range(n) if target[pos] < samples
                and not (adaptive and _decided(sampler.tally(pos).estimate, 0.5))]
        if not grow:
            break
        for pos in grow:
            target[pos] = min(samples, target[pos] + (GROW if adaptive else samples))
    return log


class Bisection:
    """The search for the one drop. Positions 0..n-1 are the calls in run order; position n is the
    recorded outcome (exact). Invariant: p at `lo` is high, p at `hi` is low, the drop is in
    between; each probe is sampled until its interval is on one side of the midpoint of the two
    levels, or K samples are spent (then its estimate decides)."""

    def __init__(self, sampler: Sampler, outcome: float, samples: int) -> None:
        self.sampler, self.outcome, self.samples = sampler, outcome, samples
        self.n = len(sampler.candidates)
        self.costs = [c.cost for c in sampler.candidates]
        self.log = SearchLog()
        self._memo: dict[tuple[int, int], tuple[float, int]] = {}

    # -- levels ----------------------------------------------------------------------------

    def est(self, pos: int) -> Estimate:
        if pos >= self.n:  # the recorded outcome: known exactly
            return Estimate(self.outcome, self.outcome, self.outcome, 1 << 30, 0.95)
        return self.sampler.tally(pos).estimate

    def above(self, a: int, b: int) -> bool:
        """p at `a` is significantly above p at `b` (each with enough samples)."""
        x, y = self.est(a), self.est(b)
        return x.n >= MIN_SAMPLES and y.n >= MIN_SAMPLES and x.low > y.high

    def name(self, pos: int) -> str:
        return "the recorded outcome" if pos >= self.n else f"call {self.sampler.candidates[pos].index}"

    def side(self, pos: int, lo: int, hi: int, least: int = MIN_SAMPLES) -> bool | None:
        """Which side of the drop between `lo` and `hi` the samples of `pos` put it on (True: the
        high side), or None while its interval does not decide it: the interval lies above or
        below the midpoint of the two levels, or its estimate is past the midpoint and the interval
        is clear of the other side's interval."""
        e = self.est(pos)
        if e.n < least:
            return None
        high, low = self.est(lo), self.est(hi)
        tau = (high.value + low.value) / 2
        if e.low > tau or (e.value > tau and e.low > low.high):
            return True
        if e.high < tau or (e.value < tau and e.high < high.low):
            return False
        return _likelier(e, high.value, low.value)

    async def sequential(self, pos: int, lo: int, hi: int, least: int = MIN_SAMPLES) -> bool | None:
        """Sample `pos` until its interval decides its side of the drop between `lo` and `hi`
        (True: the high side), with at least `least` samples; at K samples, its estimate decides.
        None when the budget stopped it."""
        want = max(least, self.est(pos).n)
        while True:
            if not await self.sampler.ensure({pos: min(want, self.samples)}) and self.est(pos).n < min(want, self.samples):
                return None
            e = self.est(pos)
            if e.n == 0:
                return None  # every sample errored
            side = self.side(pos, lo, hi, min(least, self.samples))
            if side is not None:
                return side
            if want >= self.samples:
                if pos not in self.log.undecided:
                    self.log.undecided.append(pos)
                return e.value > (self.est(lo).value + self.est(hi).value) / 2
            want += GROW

    # -- the probe to take -------------------------------------------------------------------

    def split(self, lo: int, hi: int) -> int:
        """The probe in (lo, hi) that minimises the expected live calls of the rest of the search,
        with the drop equally likely after any of lo..hi-1 and a probe's price its calls to the end."""
        if hi - lo > DP_LIMIT:
            return (lo + hi) // 2
        return self._best(lo, hi)[1]

    def _best(self, lo: int, hi: int) -> tuple[float, int]:
        if hi - lo <= 1:
            return 0.0, lo
        key = (lo, hi)
        if key not in self._memo:
            best = (math.inf, lo + 1)
            for j in range(lo + 1, hi):
                cost = self.costs[j] + ((j - lo) * self._best(lo, j)[0] + (hi - j) * self._best(j, hi)[0]) / (hi - lo)
                if cost < best[0]:
                    best = (cost, j)
            self._memo[key] = best
        return self._memo[key]

    # -- the search --------------------------------------------------------------------------

    async def run(self) -> SearchLog:
        if self.n == 0:
            return self.log
        first = await self._above_outcome(0)
        if first is None:
            return self._stopped(0, self.n)
        if not first:
            self.log.notes.append(
                f"re-sampled from {self.name(0)} the run succeeds no more often than recorded "
                f"({self._p(0)}): there is no drop for bisection to find, so every call was swept")
            if not await self._sweep(-1, self.n):
                return self._stopped(0, self.n)
            return self.log
        if await self._search(0, self.n, 0):
            await self._contest()
        return self.log

    async def _search(self, lo: int, hi: int, depth: int) -> bool:
        """Find the drop between `lo` (high) and `hi` (low) by bisection, then look for another
        one the samples show. A range searched again (a second drop) is swept instead when it is
        short, or nested too deep; a range where p rises is swept. False when the budget stopped it."""
        if depth > 0 and (hi - lo - 1 <= SWEEP_MAX or depth > MAX_DEPTH):
            return await self._sweep(lo, hi) or bool(self._stopped(lo, hi))
        start, end = lo, hi
        while hi - lo > 1:
            j = self.split(lo, hi)
            high = await self.sequential(j, lo, hi)
            if high is None:
                return bool(self._stopped(lo, hi))
            if self.above(j, lo):
                self.log.notes.append(f"p rises again between {self.name(lo)} and {self.name(j)} "
                                      f"({self._p(lo)} < {self._p(j)}): that range was swept")
                if not await self._sweep(lo, j):
                    return bool(self._stopped(lo, j))
                lo = j
                continue
            if hi < self.n and self.above(hi, j):
                self.log.notes.append(f"p rises again between {self.name(j)} and {self.name(hi)} "
                                      f"({self._p(j)} < {self._p(hi)}): that range was swept")
                if not await self._sweep(j, hi):
                    return bool(self._stopped(j, hi))
                hi = j
                continue
            lo, hi = (j, hi) if high else (lo, j)
        return await self._check(lo, hi, start, end, depth)

    async def _check(self, lo: int, hi: int, start: int, end: int, depth: int) -> bool:
        """The drop of the range `start`..`end` is between `lo` and `hi = lo + 1`: confirm each side
        with at least CONFIRM samples (one that changes side sends the search on past it), sample
        both until their intervals separate (or K says they do not), sample the call before, and
        look for a second drop the samples show (a point before `lo` significantly above it, or one
        after `hi` significantly below it): that range is searched too."""
        if hi < self.n:
            high = await self.sequential(hi, start, end, CONFIRM)
            if high is None:
                return bool(self._stopped(lo, hi))
            if high:
                self.log.notes.append(f"{self.name(hi)} looked low at first, high once confirmed "
                                      f"({self._p(hi)}): the search went on past it")
                return await self._search(hi, end, depth)
        high = await self.sequential(lo, start, end, CONFIRM)
        if high is None:
            return bool(self._stopped(lo, hi))
        if not high and lo > start:
            self.log.notes.append(f"{self.name(lo)} looked high at first, low once confirmed "
                                  f"({self._p(lo)}): the search went on before it")
            return await self._search(start, lo, depth)
        want = {lo: self.est(lo).n, hi: self.est(hi).n} if hi < self.n else {lo: self.est(lo).n}
        while not self.above(lo, hi) and min(want.values()) < self.samples:
            want = {pos: min(self.samples, n + GROW) for pos, n in want.items()}
            if not await self.sampler.ensure(want):
                return bool(self._stopped(lo, hi))
        if lo > 0 and self.est(lo - 1).n == 0:
            if await self.sequential(lo - 1, lo, hi) is None:
                return bool(self._stopped(lo - 1, hi))
            if self.above(lo - 1, lo):
                self.log.notes.append(f"p also drops at {self.name(lo - 1)} ({self._p(lo - 1)} > {self._p(lo)})")
        sampled = [pos for pos in range(max(start, 0), end) if self.est(pos).n]  # this range's own points
        left = [a for a in sampled if a < lo - 1 and self.above(a, lo)]
        right = [b for b in [*sampled, end] if b > hi and self.above(hi, b)] if hi < self.n else []
        for a, b in ([(max(left), lo)] if left else []) + ([(hi, min(right))] if right else []):
            how = "swept" if b - a - 1 <= SWEEP_MAX or depth >= MAX_DEPTH else "searched"
            self.log.notes.append(f"several drops: {self.name(a)} is above {self.name(b)} "
                                  f"({self._p(a)} > {self._p(b)}) beside the drop at {self.name(lo)}: "
                                  f"the calls between them were {how}")
            if not await self._search(a, b, depth + 1):
                return False
        return True

    async def _contest(self) -> None:
        """When a second drop between adjacent calls comes close to the largest, both pairs get K
        samples before the largest is named."""
        drops = sorted(((self.est(pos).value - self.est(pos + 1).value, pos) for pos in range(self.n)
                        if self.est(pos).n and self.est(pos + 1).n), reverse=True)
        if len(drops) < 2 or drops[1][0] <= max(0.0, drops[0][0] * CONTEST):
            return
        want = {pos: self.samples for _, top in drops[:2] for pos in (top, top + 1) if pos < self.n}
        await self.sampler.ensure(want)

    async def _above_outcome(self, pos: int) -> bool | None:
        """Sample `pos` until it is significantly above the recorded outcome (True), or K samples
        say it is not (False). None when the budget stopped it."""
        want = MIN_SAMPLES
        while True:
            cap = min(want, self.samples)
            if not await self.sampler.ensure({pos: cap}) and self.est(pos).n < cap:
                return None
            if self.above(pos, self.n):
                return True
            if want >= self.samples or self.est(pos).n == 0:
                return False
            want += GROW

    async def _sweep(self, a: int, b: int) -> bool:
        """Every call strictly between `a` and `b`: 4 samples, then more while its interval does not
        decide its side of the drop between the two ends. False when the budget stopped it."""
        inside = range(a + 1, b)
        want = {pos: max(self.est(pos).n, min(MIN_SAMPLES, self.samples)) for pos in inside}
        while True:
            if not await self.sampler.ensure(want):
                return False
            grow = [pos for pos in inside if want[pos] < self.samples and not self._sides(pos, a, b)]
            if not grow:
                return True
            for pos in grow:
                want[pos] = min(self.samples, want[pos] + GROW)

    def _sides(self, pos: int, a: int, b: int) -> bool:
        if a < 0:  # no high side known: decided once its interval is clear of 1/2
            return _decided(self.est(pos), 0.5)
        return self.side(pos, a, b) is not None

    def _stopped(self, lo: int, hi: int) -> SearchLog:
        self.log.open = (lo, hi)
        return self.log

    def _p(self, pos: int) -> str:
        e = self.est(pos)
        return f"{e.value:.2f}" if pos >= self.n else f"{e.value:.2f} [{e.low:.2f}, {e.high:.2f}]"
