"""SPIN-Bench's games as benchmarks on the evals runner: each case is one game (seats, seed,
action mode), the solver plays it as a recorded graph run, and scorers grade the LLM's seat:
win / draw / loss, illegal tries, move quality against a solver, and Hanabi's fireworks total."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from rolegraph.envs.spin import (
    ANALYSIS_DEPTH,
    SPINBENCH_TOP_MOVES,
    BitBullySolver,
    ConnectFour,
    LossMethod,
    StockfishPlayer,
    TicTacToe,
    TopMovesSettings,
    make_env,
    tictactoe_move_values,
)
from rolegraph.evals._core import Benchmark, Case, EvalRecord, Score
from rolegraph.evals.spin._topk import TOPK_GAMES, TopMoves
from rolegraph.evals.spin.elo import PairRecord, canonical, tally
from rolegraph.graphs import GraphSolver, RunResult
from rolegraph.graphs import spin as spin_graph


def game_cases(game: str, *, games: int, opponent: str, player: str = "llm", players: int = 2,
               mode: str = "free", seed: int = 0, **spec: Any) -> Iterator[Case]:
    """`games` games of the LLM seat against `opponent`. Two-player games swap colours halfway:
    the LLM moves first in the first half and second in the rest. Hanabi seats the LLM first and
    fills the other seats with `opponent` (a bot, or 'llm' for all-LLM tables)."""
    for i in range(games):
        if game == "hanabi":
            seats = [spin_graph.Seat.parse(player)] + [spin_graph.Seat.parse(opponent) for _ in range(players - 1)]
            llm_seat, category = 0, f"{players} players"
        else:
            first = i < (games + 1) // 2
            pair = [spin_graph.Seat.parse(player), spin_graph.Seat.parse(opponent)]
            seats = pair if first else pair[::-1]
            llm_seat, category = (0, "moves first") if first else (1, "moves second")
        s = spin_graph.GameSpec(game=game, seats=seats, seed=seed + i, mode=mode, **spec)
        yield Case(id=f"{game}-{i:04d}", input=s.model_dump(mode="json"),
                   metadata={"category": category, "llm_seat": llm_seat, "opponent": opponent, "mode": mode})


def as_output(result: RunResult) -> dict[str, Any]:
    """What the scorers (and `elo_pairs`) read: the result less its trace directory and run status
    (no SPIN graph records a failure, so the status is always "ok")."""
    return result.model_dump(mode="json", exclude={"trace_dir", "status", "error"})


def _game_input(case: Case, repeat: int) -> spin_graph.GameSpec:
    """The case's game; a repeat plays it with another deal and other solver tie-breaks."""
    spec = spin_graph.GameSpec.model_validate(case.input)
    return spec.model_copy(update={"seed": spec.seed + 100_003 * repeat}) if repeat else spec


def game_solver() -> GraphSolver[spin_graph.GameResult]:
    """Plays the case's game (one recorded run)."""
    return spin_graph.spin.solver(input=_game_input, output=as_output,
                                  seed=lambda case, repeat: _game_input(case, repeat).seed)


@dataclass(frozen=True)
class Outcome:
    """1.0 when the LLM seat's result is `which` (win, draw or loss), else 0.0."""

    which: str

    @property
    def name(self) -> str:
        return self.which

    async def __call__(self, case: Case, output: Any) -> Score:
        seat = int(case.metadata["llm_seat"])
        r = output["returns"][seat]
        got = "win" if r > 0 else "loss" if r < 0 else "draw"
        why = f"{got}" + (" (forfeit)" if output.get("forfeit") is not None else "")
        return Score(value=1.0 if got == self.which else 0.0, explanation=why)


@dataclass(frozen=True)
class HanabiScore:
    """The fireworks total (0-25)."""

    name: str = "fireworks"

    async def __call__(self, case: Case, output: Any) -> Score:
        return Score(value=float(output["score"]), explanation=f"{output['termination']}")


@dataclass(frozen=True)
class IllegalTries:
    """Refused tries per move of the LLM seat(s)."""

    name: str = "illegal_per_move"

    async def __call__(self, case: Case, output: Any) -> Score:
        llm = [t for t in output["turns"] if t["seat"].startswith("llm:")]
        tries = sum(len(t["errors"]) for t in llm)
        return Score(value=tries / max(1, len(llm)), explanation=f"{tries} refused tries over {len(llm)} turns")


@dataclass
class MoveQuality:
    """The mean value the LLM seat lost per move against the best move: minimax value
    (tic-tac-toe), bitbully score (connect four) or centipawns from Stockfish (chess).

    Chess is scored by `StockfishPlayer.centipawn_losses` with `method` ("restricted": best root
    score minus a root search restricted to the move) at search depth `depth`, on one engine
    process with one thread and a fixed 16 MB hash, every position searched from a cleared state,
    so a game's losses do not depend on which games or moves were analysed before it. The default
    depth, 12, trades accuracy for time: papers report depths of 15-20, but on a 2-core CPU (AMD
    EPYC, measured on four 40-ply games) all 40 plies of a game take 3.7-4.7 s at depth 12 and
    about 2.2 s for the one seat scored here, against 10-16 s (40 plies) at depth 14 and 13.5 s
    (one seat) at depth 16. On three of those games the seat's mean loss (moves capped at 1,000)
    at depth 12 differed from depth 16's by 4-15%, much as depth 14's did (1-16%)."""

    game: str
    depth: int = ANALYSIS_DEPTH
    method: LossMethod = "restricted"
    _bitbully: BitBullySolver = field(default_factory=BitBullySolver)
    _stockfish: StockfishPlayer | None = None

    @property
    def name(self) -> str:
        return {"tictactoe": "minimax_loss", "connect4": "bitbully_loss", "chess": "centipawn_loss"}[self.game]

    def losses(self, output: Any, seat: int) -> list[float]:
        moves = output["moves"]
        played = [t for t in output["turns"] if t["move"] is not None]
        plies = [i for i, t in enumerate(played) if t["player"] == seat]
        if self.game == "chess":
            if self._stockfish is None:
                self._stockfish = StockfishPlayer()
            return self._stockfish.centipawn_losses(moves, plies, depth=self.depth, method=self.method)
        out: list[float] = []
        for ply in plies:
            env = make_env(self.game, moves=moves[:ply])
            if isinstance(env, TicTacToe):
                values: dict[str, int] = tictactoe_move_values(env)
            else:
                assert isinstance(env, ConnectFour)
                values = self._bitbully.scores(env)
            out.append(float(max(values.values()) - values[moves[ply]]))
        return out

    async def __call__(self, case: Case, output: Any) -> Score:
        seat = int(case.metadata["llm_seat"])
        losses = await asyncio.to_thread(self.losses, output, seat)
        if not losses:
            return Score(value=0.0, explanation="no moves played", metadata={"moves": 0})
        return Score(value=sum(losses) / len(losses), explanation=f"{len(losses)} moves, worst {max(losses):g}",
                     metadata={"moves": len(losses), "losses": losses})

    def close(self) -> None:
        if self._stockfish is not None:
            self._stockfish.close()


MoveQualityChoice = Literal["topk", "loss", "both"]
"""Which move-quality measures a game benchmark scores: SPIN-Bench's top-k move fractions
(`TopMoves`), the value lost per move (`MoveQuality`), or both."""


def game_benchmark(game: str, *, games: int = 10, opponent: str | None = None, player: str = "llm",
                   players: int = 2, mode: str = "free", seed: int = 0, quality: bool = True,
                   move_quality: MoveQualityChoice | None = None, loss_method: LossMethod = "restricted",
                   topk_settings: TopMovesSettings = SPINBENCH_TOP_MOVES, **spec: Any) -> Benchmark:
    """The SPIN-Bench benchmark for one game against one opponent. With `quality`, LLM moves are
    graded by `move_quality`: by default both measures for chess and connect four, and the loss
    alone for tic-tac-toe (SPIN-Bench's top-k fractions are defined for chess and connect four).
    `loss_method` is chess's centipawn-loss method and `topk_settings` the Stockfish settings of
    the top-k ranking (SPIN-Bench's); both, the engine's version and the measures chosen are
    recorded in the evaluation's config."""
    opponent = opponent or {"tictactoe": "minimax", "connect4": "bitbully", "chess": "stockfish-0",
                            "hanabi": "hanabi-bot"}[game]
    scorers: list[Any]
    quality_config: dict[str, Any] = {}
    if game == "hanabi":
        scorers = [HanabiScore(), IllegalTries()]
    else:
        scorers = [Outcome("win"), Outcome("draw"), Outcome("loss"), IllegalTries()]
        if quality:
            chosen = move_quality or ("both" if game in TOPK_GAMES else "loss")
            quality_config["move_quality"] = chosen
            if chosen in ("loss", "both"):
                scorers.append(MoveQuality(game, method=loss_method))
                if game == "chess":
                    quality_config["loss"] = {"method": loss_method, "depth": ANALYSIS_DEPTH}
            if chosen in ("topk", "both"):
                topk = TopMoves(game, settings=topk_settings)
                scorers.append(topk)
                quality_config["topk"] = topk.config()

    def cases() -> Iterator[Case]:
        return game_cases(game, games=games, opponent=opponent, player=player, players=players, mode=mode,
                          seed=seed, **spec)

    name = f"spin-{game}-{opponent}-{mode}" + (f"-{players}p" if game == "hanabi" else "")
    return Benchmark(name=name, cases=cases, solver=game_solver(), scorers=scorers,
                     config={"game": game, "opponent": opponent, "player": player, "players": players, "mode": mode,
                             "games": games, **spec, **quality_config})


def elo_pairs(records: Iterable[EvalRecord]) -> list[PairRecord]:
    """The pairwise results of finished two-player games, for compute_elo, in canonical order
    (sorted by the players' names), so the ratings do not depend on which game finished first."""
    games: list[tuple[str, str, float]] = []
    for r in records:
        if (r.status != "ok" or not isinstance(r.output, dict) or len(r.output.get("seats", ())) != 2
                or r.output.get("game") == "hanabi"):
            continue
        a, b = r.output["seats"]
        ra = r.output["returns"][0]
        games.append((a, b, 1.0 if ra > 0 else 0.0 if ra < 0 else 0.5))
    return canonical(tally(games))


def outcome_counts(records: Sequence[EvalRecord]) -> dict[str, int]:
    counts = {"win": 0, "draw": 0, "loss": 0, "error": 0}
    for r in records:
        if r.status != "ok":
            counts["error"] += 1
            continue
        for k in ("win", "draw", "loss"):
            if k in r.scores and r.scores[k].value == 1.0:
                counts[k] += 1
    return counts


# --- PDDL ---------------------------------------------------------------------------------------

def plan_solver() -> GraphSolver[Any]:
    """Runs the planner graph on the case's PDDL task; repeat r samples with seed + 2r (the
    runner's seed + repeat, plus the repeat again, as before)."""
    from rolegraph.graphs import spin_pddl

    return spin_pddl.spin_pddl.solver(output=as_output, seed=lambda case, repeat, seed: seed + repeat)


@dataclass(frozen=True)
class PlanValid:
    name: str = "valid"

    async def __call__(self, case: Case, output: Any) -> Score:
        c = output["check"]
        why = "valid" if c["valid"] else f"step {c['failing_step']} {c['failing_action'] or ''}: {c['reason']}"
        return Score(value=1.0 if c["valid"] else 0.0, explanation=why)


@dataclass(frozen=True)
class PlanLookahead:
    """The share of the plan that executes from the start (N-step look-ahead)."""

    name: str = "lookahead"

    async def __call__(self, case: Case, output: Any) -> Score:
        c = output["check"]
        value = c["executable"] / c["length"] if c["length"] else 0.0
        return Score(value=value, explanation=f"{c['executable']} of {c['length']} steps execute")


@dataclass
class PlanOptimality:
    """How close a valid plan is to Fast Downward's optimum (1.0 is optimal; 0 for an invalid plan
    or an unknown optimum, which the explanation names). Where the problem minimises action costs
    (`:metric minimize (total-cost)`, e.g. floortile) the value is optimal cost / plan cost, and the
    length comparison (shortest length / plan length) is reported beside it in the metadata;
    elsewhere the value is that length ratio, as before. `metadata["measure"]` says which
    ("cost" or "length") and `metadata["optimal"]` is the optimum in that unit. A plan recorded
    before plans carried their cost has it recomputed from its text. The optimum comes once per
    problem through `cache` (an OptimalCache)."""

    cache: Any
    timeout_s: float = 60.0
    name: str = "optimality"

    async def __call__(self, case: Case, output: Any) -> Score:
        from rolegraph.envs.spin.pddl import PDDLTask, check_plan
        from rolegraph.errors import UserError

        task = PDDLTask.model_validate(case.input)
        c = output["check"]
        if not c["valid"]:
            try:
                measure = await asyncio.to_thread(self.cache.measure, task)
            except UserError:
                measure = None
            return Score(value=0.0, explanation="invalid plan", metadata={"optimal": None, "measure": measure})
        opt = await asyncio.to_thread(self.cache.optimum, task, timeout_s=self.timeout_s)
        n = c["length"]
        meta: dict[str, Any] = {"measure": opt.measure, "length": n, "optimal_length": opt.length,
                                "length_ratio": None if opt.length is None else opt.length / max(1, n)}
        lengths = f"{n} steps, shortest {'unknown' if opt.length is None else opt.length}"
        if opt.measure == "length":
            meta["optimal"] = opt.length
            if opt.length is None:
                return Score(value=0.0, explanation="optimum unknown", metadata=meta)
            return Score(value=opt.length / max(1, n), explanation=f"{n} steps, optimum {opt.length}", metadata=meta)
        cost = c.get("cost")
        if cost is None:  # recorded before plans carried their cost
            cost = (await asyncio.to_thread(check_plan, task, output["plan"])).cost
        meta.update(optimal=opt.cost, cost=cost, optimal_cost=opt.cost, cost_plan_length=opt.cost_plan_length)
        if opt.cost is None or cost is None:
            shown = "unknown" if cost is None else f"{cost:g}"
            return Score(value=0.0, explanation=f"cost {shown}, optimum unknown; {lengths}", metadata=meta)
        value = opt.cost / cost if cost else 1.0
        return Score(value=value, explanation=f"cost {cost:g}, optimum {opt.cost:g} (in {opt.cost_plan_length} "
                                              f"steps); {lengths}", metadata=meta)


def pddl_benchmark(data: Any = None, *, domains: Sequence[str] | None = None, per_domain: int | None = None,
                   optimal_cache: Any = None, optimal_timeout_s: float = 60.0) -> Benchmark:
    """PDDL planning: validity, look-ahead and optimality per domain (the case category)."""
    from pathlib import Path

    from rolegraph.envs.spin.pddl import OptimalCache, find_data, load_tasks

    root = find_data(data)
    cache = OptimalCache(optimal_cache or Path.home() / ".cache" / "rolegraph" / "pddl-optimal.json")

    def cases() -> Iterator[Case]:
        for t in load_tasks(root, domains=domains, per_domain=per_domain):
            yield Case(id=f"{t.domain}/{t.instance}", input=t.model_dump(mode="json"), metadata={"category": t.domain})

    scorers: list[Any] = [PlanValid(), PlanLookahead()]
    if optimal_cache is not False:
        scorers.append(PlanOptimality(cache, optimal_timeout_s))
    return Benchmark(name="spin-pddl", cases=cases, solver=plan_solver(), scorers=scorers,
                     config={"data": str(root), "domains": list(domains or []), "per_domain": per_domain})


# --- Diplomacy ----------------------------------------------------------------------------------

def diplomacy_solver() -> GraphSolver[Any]:
    """Plays the case's game; repeat r adds r to its seed."""
    from rolegraph.graphs import spin_diplomacy

    def one(case: Case, repeat: int) -> Any:
        spec = spin_diplomacy.DiplomacySpec.model_validate(case.input)
        return spec.model_copy(update={"seed": spec.seed + repeat})

    return spin_diplomacy.spin_diplomacy.solver(input=one, output=as_output,
                                                seed=lambda case, repeat: one(case, repeat).seed)


@dataclass(frozen=True)
class SupplyCenters:
    """Mean supply centres held by the LLM powers at the end."""

    name: str = "supply_centers"

    async def __call__(self, case: Case, output: Any) -> Score:
        llm = output["llm_powers"]
        held = {p: output["centers"][p] for p in llm}
        return Score(value=sum(held.values()) / max(1, len(held)), explanation=", ".join(f"{p} {n}" for p, n in held.items()),
                     metadata={"centers": output["centers"], "ended": output["ended"]})


@dataclass(frozen=True)
class JudgeField:
    """One of the judge's negotiation fields, as a rate over the LLM powers' messages:
    alignment, mutual_benefit (share of proposals), peace, perspective_taking, conditional_thinking."""

    field: str

    @property
    def name(self) -> str:
        return f"judge_{self.field}"

    async def __call__(self, case: Case, output: Any) -> Score:
        verdicts = [j for j in output.get("judgements", []) if j is not None]
        if self.field == "mutual_benefit":
            proposals = [p for j in verdicts for p in j["proposals"]]
            hits, n = sum(p["label"] == "mutual_benefit" for p in proposals), len(proposals)
        elif self.field == "peace":
            hits, n = sum(j["peace_or_conflict"] == "peace" for j in verdicts), len(verdicts)
        else:
            hits, n = sum(int(j[self.field]) for j in verdicts), len(verdicts)
        return Score(value=hits / n if n else 0.0, explanation=f"{hits} of {n}", metadata={"n": n})


JUDGE_FIELDS = ("alignment", "mutual_benefit", "peace", "perspective_taking", "conditional_thinking")


def diplomacy_benchmark(*, games: int = 1, llm_powers: Sequence[str] = ("FRANCE",), negotiation_rounds: int = 3,
                        end_year: int = 1902, token_budget: int | None = None, judge: bool = False,
                        mode: str = "free", seed: int = 0) -> Benchmark:
    from rolegraph.graphs.spin_diplomacy import DiplomacySpec

    def cases() -> Iterator[Case]:
        for i in range(games):
            spec = DiplomacySpec(llm_powers=list(llm_powers), negotiation_rounds=negotiation_rounds,
                                 end_year=end_year, token_budget=token_budget, judge=judge, seed=seed + i,
                                 mode=mode)
            yield Case(id=f"diplomacy-{i:04d}", input=spec.model_dump(mode="json"),
                       metadata={"category": ",".join(spec.llm_powers)})

    scorers: list[Any] = [SupplyCenters()]
    if judge:
        scorers += [JudgeField(f) for f in JUDGE_FIELDS]
    return Benchmark(name=f"spin-diplomacy-{mode}", cases=cases, solver=diplomacy_solver(), scorers=scorers,
                     config={"llm_powers": list(llm_powers), "negotiation_rounds": negotiation_rounds,
                             "end_year": end_year, "token_budget": token_budget, "judge": judge, "games": games,
                             "mode": mode})
