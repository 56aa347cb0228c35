"""The SPIN-Bench player graph (turn loop, illegal-move loop, action modes, reasoning history,
replay), the Diplomacy graph, PDDL checking, and the benchmarks on the evals runner."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from rolegraph.envs.spin.pddl import OptimalCache, check_plan, load_tasks, parse_problem, plan_steps
from rolegraph.evals import EvalStore, run_eval
from rolegraph.evals.spin._bench import elo_pairs, game_benchmark, outcome_counts, pddl_benchmark
from rolegraph.graphs import replay_run, spin, spin_diplomacy, spin_pddl
from rolegraph.models import ChatRequest
from rolegraph.models._testing import FunctionModel, ScriptedModel
from rolegraph.runtime import Runtime
from rolegraph.traces import ModelCall, ToolInvocation, TraceStore

PDDL_DATA = Path(__file__).resolve().parents[1] / "data" / "spinbench-pddl"


def move(action: str, reason: str = "r") -> str:
    return json.dumps({"reason": reason, "action": action})


def legal_in(request: ChatRequest) -> list[str]:
    user = next(m.content for m in request.messages if m.role == "user")
    return user.split("Legal moves: ")[1].split("\n")[0].split(", ")


def first_legal(request: ChatRequest) -> str:
    return move(legal_in(request)[0], "first listed")


def ttt(seats: tuple[str, str] = ("llm", "minimax"), **kw: Any) -> spin.GameSpec:
    return spin.GameSpec(game="tictactoe", seats=[spin.Seat.parse(s) for s in seats], **kw)


async def test_nine_illegal_tries_then_a_legal_move_continues(tmp_path: Path) -> None:
    steps = [move("D9")] * 8 + ["not json at all", move("B2")]
    model = FunctionModel(lambda r: steps.pop(0) if steps else first_legal(r))
    rt = Runtime.from_models({"player": model}, traces=tmp_path)
    result = await spin.run(ttt(), runtime=rt)
    first = result.turns[0]
    assert first.move == "B2" and first.attempts == 10 and len(first.errors) == 9
    assert "is not a legal move here" in first.errors[0] and "could not read" in first.errors[8]
    assert result.forfeit is None and len(result.moves) > 2
    # the refusal the model saw is SPIN-Bench's
    retry = model.requests[1].messages[-1].content
    assert retry.startswith("Illegal move, try again.") and "Legal moves: A1, B1" in retry


async def test_ten_failed_tries_forfeit_the_game(tmp_path: Path) -> None:
    model = FunctionModel(lambda r: move("Z0"))
    rt = Runtime.from_models({"player": model}, traces=tmp_path)
    result = await spin.run(ttt(("minimax", "llm")), runtime=rt)
    assert len(model.requests) == 10  # an 11th illegal move is never asked for
    assert result.forfeit == 1 and result.returns == [1.0, -1.0] and result.winner == 0
    assert result.termination == "forfeit" and result.illegal == [0, 10]
    assert result.turns[-1].move is None and len(result.moves) == 1  # the solver's opening move only


async def test_hanabi_tolerates_five_illegal_tries(tmp_path: Path) -> None:
    model = FunctionModel(lambda r: move("Juggle 3"))
    rt = Runtime.from_models({"player": model}, traces=tmp_path)
    spec = spin.GameSpec(game="hanabi", seats=[spin.Seat.parse("llm"), spin.Seat.parse("hanabi-bot")])
    result = await spin.run(spec, runtime=rt)
    assert len(model.requests) == 5 and result.forfeit == 0 and result.score == 0.0


async def test_constrained_mode_sends_the_legal_moves_as_an_enum(tmp_path: Path) -> None:
    model = FunctionModel(first_legal)
    rt = Runtime.from_models({"player": model}, traces=tmp_path)
    result = await spin.run(ttt(mode="constrained"), runtime=rt)
    assert result.mode == "constrained"
    for request in model.requests:
        schema = request.response_schema
        assert schema is not None and schema["properties"]["action"]["enum"] == legal_in(request)
    free = FunctionModel(first_legal)
    await spin.run(ttt(), runtime=Runtime.from_models({"player": free}, traces=tmp_path))
    assert all(r.response_schema is None for r in free.requests)


async def test_reasoning_history_feeds_back_the_last_k_moves(tmp_path: Path) -> None:
    counter = iter(range(100))

    def answer(request: ChatRequest) -> str:
        return move(legal_in(request)[0], f"reason number {next(counter)}")

    model = FunctionModel(answer)
    rt = Runtime.from_models({"player": model}, traces=tmp_path)
    result = await spin.run(ttt(("llm", "llm"), history_k=1), runtime=rt)
    assert len(result.moves) >= 5
    users = [next(m.content for m in r.messages if m.role == "user") for r in model.requests]
    assert "reason number" not in users[0] and "reason number" not in users[1]
    # seat 0's third turn (request 4) sees only its own last move: k = 1, and not seat 1's reasons
    assert "Move 3: " in users[4] and "reason number 2" in users[4]
    assert "reason number 0" not in users[4] and "reason number 3" not in users[4]
    none = FunctionModel(first_legal)
    await spin.run(ttt(history_k=0), runtime=Runtime.from_models({"player": none}, traces=tmp_path))
    assert all("recent moves" not in next(m.content for m in r.messages if m.role == "user") for r in none.requests)


async def test_a_game_replays_offline_with_its_solver_moves(tmp_path: Path) -> None:
    rt = Runtime.from_models({"player": FunctionModel(first_legal)}, traces=tmp_path)
    result = await spin.run(ttt(seed=5), runtime=rt)
    store = TraceStore(tmp_path)
    trace = store.load(result.run_id)
    tools = trace.of_kind(ToolInvocation)
    assert tools and all(t.name == "spin.minimax" for t in tools)
    replayed = await replay_run(trace, store=store)
    assert replayed.moves == result.moves and replayed.returns == result.returns
    again = store.load(replayed.run_id)
    assert all(t.replayed for t in again.of_kind(ToolInvocation)) and all(c.replayed for c in again.of_kind(ModelCall))


async def test_solver_only_games_need_no_model(tmp_path: Path) -> None:
    rt = Runtime.from_models({}, traces=tmp_path)
    result = await spin.run(spin.GameSpec(game="connect4", seats=[spin.Seat.parse("bitbully")] * 2), runtime=rt)
    assert result.winner == 0 and result.termination == "end"


async def test_hanabi_hints_become_notes_for_the_hinted_player(tmp_path: Path) -> None:
    def answer(request: ChatRequest) -> str:
        reveal = [m for m in legal_in(request) if m.startswith("Reveal")]
        return move(reveal[0] if reveal else legal_in(request)[0])

    model = FunctionModel(answer)
    rt = Runtime.from_models({"player": model}, traces=tmp_path)
    spec = spin.GameSpec(game="hanabi", seats=[spin.Seat.parse("llm"), spin.Seat.parse("llm")], seed=2)
    await spin.run(spec, runtime=rt)
    second = next(m.content for m in model.requests[1].messages if m.role == "user")
    assert "What you have noted during this game:" in second and "revealed" in second


async def test_game_benchmark_swaps_colours_and_resumes(tmp_path: Path) -> None:
    rt = Runtime.from_models({"player": FunctionModel(first_legal)}, traces=tmp_path / "runs")
    bench = game_benchmark("tictactoe", games=4, opponent="minimax")
    cases = list(bench.cases())
    assert [c.metadata["llm_seat"] for c in cases] == [0, 0, 1, 1]
    store = EvalStore(tmp_path / "ev" / "results.sqlite")
    await run_eval(bench, rt, store=store, limit=3, progress=False)
    await run_eval(bench, rt, store=store, resume=True, progress=False)
    records = list(store.records())
    assert sorted(r.case_id for r in records) == [c.id for c in cases]
    counts = outcome_counts(records)
    assert counts["win"] == 0 and counts["draw"] + counts["loss"] == 4  # nobody beats minimax
    assert all(r.scores["minimax_loss"].value >= 0 for r in records)
    assert {(p.a, p.b) for p in elo_pairs(records)} == {("llm:player", "minimax")}


async def test_diplomacy_negotiates_orders_and_remembers(tmp_path: Path) -> None:
    def answer(request: ChatRequest) -> str:
        text = "\n".join(m.content or "" for m in request.messages)
        power = text.split("You are playing ")[1].split(" ")[0] if "You are playing" in text else ""
        if "negotiation round" in text:
            to = "ENGLAND" if power == "FRANCE" else "FRANCE"
            return json.dumps({"negotiation_strategy": "peace in the west",
                               "messages": {power: {"recipients": [to], "messages": [f"{power} proposes peace"]}}})
        if "Give your orders" in text:
            if "attempt" not in text:  # the first try holds an impossible order, then a legal one
                return json.dumps({"orders": ["A PAR - MOS"]})
            lines = [ln for ln in text.split("The possible orders")[1].splitlines() if ": " in ln]
            return json.dumps({"orders": [lines[0].split(": ")[1].split("; ")[0]]})
        return json.dumps({"alignment": 1, "proposals": [{"proposal_text": "peace", "label": "mutual_benefit"}],
                           "peace_or_conflict": "peace", "perspective_taking": 0, "conditional_thinking": 0})

    model = FunctionModel(answer)
    rt = Runtime.from_models({"default": model}, traces=tmp_path)
    spec = spin_diplomacy.DiplomacySpec(llm_powers=["france", "England"], negotiation_rounds=2, end_year=1901,
                                        judge=True)
    result = await spin_diplomacy.run(spec, runtime=rt)
    assert result.ended == "year_limit" and result.phase.startswith("S1902")
    assert result.llm_powers == ["ENGLAND", "FRANCE"]
    # 2 movement phases x 2 rounds x 2 powers, one message each
    assert len(result.messages) == 8 and {m.sender for m in result.messages} == {"ENGLAND", "FRANCE"}
    assert result.refused["FRANCE"] >= 2  # the impossible order was refused in each movement phase
    assert len(result.orders["S1901M"]["FRANCE"]) == 1 and len(result.orders["S1901M"]["ITALY"]) == 3
    bot = spin_diplomacy.bot_orders(spin_diplomacy.load_game(spin_diplomacy.new_game()), "ITALY")
    assert result.orders["S1901M"]["ITALY"] == bot
    assert len(result.judgements) == 8 and all(j is not None and j.alignment == 1 for j in result.judgements)
    # the second round's prompt carries the first round's messages, from the negotiation memory
    second_round = next(r for r in model.requests if "negotiation round 2" in r.messages[-1].content)
    assert "told you: " in second_round.messages[-1].content


async def test_diplomacy_constrained_schema_lists_legal_orders(tmp_path: Path) -> None:
    seen: list[dict[str, Any]] = []

    def answer(request: ChatRequest) -> str:
        assert request.response_schema is not None
        seen.append(request.response_schema)
        if "orders" in request.response_schema["properties"]:
            return json.dumps({"orders": request.response_schema["properties"]["orders"]["items"]["enum"][:1]})
        return json.dumps({"negotiation_strategy": "", "messages": {"FRANCE": {"recipients": [], "messages": []}}})

    rt = Runtime.from_models({"player": FunctionModel(answer)}, traces=tmp_path)
    spec = spin_diplomacy.DiplomacySpec(llm_powers=["FRANCE"], negotiation_rounds=1, end_year=1901, mode="constrained")
    result = await spin_diplomacy.run(spec, runtime=rt)
    assert result.refused == {"FRANCE": 0} and "A MAR - BUR" in seen[1]["properties"]["orders"]["items"]["enum"]


def test_pddl_plans_are_validated_with_the_failing_action() -> None:
    task = next(load_tasks(PDDL_DATA, domains=["blocksworld"]))
    assert task.instance == "p49"
    problem = parse_problem(task)
    blocked = check_plan(task, "(unstack b2 b4)\n(putdown b2)\n(unstack b4 b1)\n(stack b4 b5)", problem=problem)
    assert not blocked.valid and blocked.executable == 3 and blocked.failing_step == 4  # b1 still sits on b5
    assert "clear(b5)" in blocked.reason
    wrong = check_plan(task, "(unstack b2 b4)\n(pickup b2)", problem=problem)
    assert not wrong.valid and wrong.failing_step == 2 and wrong.failing_action == "(pickup b2)"
    assert "unsatisfied precondition" in wrong.reason and "arm-empty" in wrong.reason
    assert wrong.executable == 1 and wrong.prefix_fraction == 0.5
    unknown = check_plan(task, "(teleport b1)", problem=problem)
    assert unknown.failing_step == 1 and "unknown action 'teleport'" in unknown.reason
    assert check_plan(task, "I cannot solve this.").reason == "no (action ...) steps found"


def test_pddl_optimal_plan_validates_and_is_cached(tmp_path: Path) -> None:
    task = next(load_tasks(PDDL_DATA, domains=["blocksworld"]))
    cache = OptimalCache(tmp_path / "opt.json")
    assert cache.get(task) == 12
    assert json.loads((tmp_path / "opt.json").read_text())[task.key]["length"] == 12
    assert OptimalCache(tmp_path / "opt.json").get(task, timeout_s=0.001) == 12  # from the file, no search


def test_pddl_dataset_quirks_parse() -> None:
    for domain in ("floortile", "grid", "logistics"):
        task = next(load_tasks(PDDL_DATA, domains=[domain]))
        assert parse_problem(task).actions
    assert plan_steps("```\n(move a b)\n(Load-Truck p1 t1 l0-0)\n```") == [("move", ["a", "b"]),
                                                                           ("load-truck", ["p1", "t1", "l0-0"])]


async def test_pddl_graph_and_benchmark(tmp_path: Path) -> None:
    plan = "(unstack b2 b4)\n(pickup b2)"
    rt = Runtime.from_models({"planner": ScriptedModel([plan, plan])}, traces=tmp_path / "runs")
    task = next(load_tasks(PDDL_DATA, domains=["blocksworld"]))
    result = await spin_pddl.run(task, runtime=rt)
    assert not result.check.valid and result.check.failing_action == "(pickup b2)"
    bench = pddl_benchmark(PDDL_DATA, domains=["blocksworld"], optimal_cache=tmp_path / "opt.json")
    store = EvalStore(tmp_path / "ev" / "results.sqlite")
    await run_eval(bench, rt, store=store, progress=False)
    (record,) = store.records()
    assert record.category == "blocksworld"
    assert record.scores["valid"].value == 0.0 and record.scores["lookahead"].value == 0.5
    assert record.scores["optimality"].value == 0.0


def test_unknown_domain_and_missing_data_are_clear() -> None:
    from rolegraph.errors import UserError

    with pytest.raises(UserError, match="unknown PDDL domain"):
        list(load_tasks(PDDL_DATA, domains=["nope"]))
    with pytest.raises(UserError, match="no PDDL dataset at"):
        list(load_tasks("/nonexistent"))
