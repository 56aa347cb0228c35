"""SPIN-Bench's Diplomacy as a graph over the `diplomacy` engine: any subset of the seven powers
are LLM players, the rest bots that give the first legal order per unit. Each movement phase has
negotiation rounds (each LLM power sends private messages), then every power orders and the
phase is processed. The game stops at a solo win, a year limit or a token budget; an optional
judge then annotates every message with SPIN-Bench's negotiation fields.

Each power's negotiation record (what it sent and received) is a notes memory scoped to the
game and the power, read back in later rounds and phases."""

from __future__ import annotations

import uuid
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError, field_validator

from rolegraph.agents import Agent, OutputInvalid
from rolegraph.envs.spin.diplomacy import (
    POWERS,
    board_text,
    bot_orders,
    load_game,
    new_game,
    normalize_order,
    phase_of,
    possible_orders,
    save_game,
    year_of,
)
from rolegraph.errors import AgentOutputError
from rolegraph.graphs._api import END, START, RunResult, StateGraph, graph
from rolegraph.models import decode_json
from rolegraph.runtime import Runtime
from rolegraph.traces import run_totals

RECORD_MEMORY = "spin.diplomacy.negotiation"
PROMPTS = ("spin/diplomacy_negotiate", "spin/diplomacy_orders", "spin/diplomacy_judge", "spin/intro/diplomacy",
           "agents/retry")


class DiplomacySpec(BaseModel):
    """One game: the input of a run."""

    llm_powers: list[str]
    roles: dict[str, str] = Field(default_factory=dict)
    """Power -> runtime role of its player (default 'player')."""
    negotiation_rounds: int = 3
    end_year: int = 1902
    """The game stops after this year's last phase (a year limit)."""
    token_budget: int | None = None
    """The game stops once the run has used this many model tokens."""
    order_tries: int = 3
    """Tries per power per phase before only its legal orders are kept (the rest of its units hold)."""
    mode: Literal["free", "constrained"] = "free"
    """constrained: the answer formats become JSON schemas with the powers and the legal orders as
    enums, so even a tiny model answers in form (it does not make its play good)."""
    judge: bool = False
    """After the game, have the 'judge' role annotate every message."""
    seed: int = 0
    game_id: str = ""

    @field_validator("llm_powers")
    @classmethod
    def _powers(cls, v: list[str]) -> list[str]:
        v = [p.upper() for p in v]
        unknown = [p for p in v if p not in POWERS]
        if unknown:
            raise ValueError(f"unknown power(s) {', '.join(unknown)}; the powers are {', '.join(POWERS)}")
        return sorted(set(v))

    def role(self, power: str) -> str:
        return self.roles.get(power, "player")


class Outgoing(BaseModel):
    recipients: list[str] = Field(default_factory=list)
    messages: list[str] = Field(default_factory=list)


class Negotiation(BaseModel):
    """What an LLM power sends in one round (SPIN-Bench's format, with its stated strategy)."""

    negotiation_strategy: str = ""
    messages: dict[str, Outgoing] = Field(default_factory=dict)


class Orders(BaseModel):
    orders: list[str] = Field(default_factory=list)


class Message(BaseModel):
    phase: str
    round: int
    sender: str
    recipient: str
    text: str
    strategy: str = ""


class Proposal(BaseModel):
    proposal_text: str
    label: Literal["mutual_benefit", "one_sided"]


class Judgement(BaseModel):
    """SPIN-Bench's annotation of one negotiation message."""

    alignment: Literal[0, 1]
    proposals: list[Proposal] = Field(default_factory=list)
    peace_or_conflict: Literal["peace", "conflict"]
    perspective_taking: Literal[0, 1]
    conditional_thinking: Literal[0, 1]


class DiplomacyState(BaseModel):
    spec: DiplomacySpec
    game: dict[str, Any]
    """The engine's saved-game format."""
    round: int = 0
    messages: list[Message] = Field(default_factory=list)
    orders: dict[str, dict[str, list[str]]] = Field(default_factory=dict)
    """Phase -> power -> orders given."""
    refused: dict[str, int] = Field(default_factory=dict)
    """Power -> refused tries (unreadable answers or illegal orders)."""
    ended: str = ""
    judgements: list[Judgement | None] = Field(default_factory=list)


class DiplomacyResult(RunResult):
    centers: dict[str, int]
    winner: str | None
    phase: str
    ended: str
    llm_powers: list[str]
    messages: list[Message]
    orders: dict[str, dict[str, list[str]]]
    refused: dict[str, int]
    judgements: list[Judgement | None] = Field(default_factory=list)


def _tokens_used() -> int:
    totals = run_totals()
    return totals.prompt_tokens + totals.completion_tokens if totals is not None else 0


def _negotiator(power: str, role: str, mode: str = "free") -> Agent[Negotiation]:
    others = [p for p in POWERS if p != power]
    schema = None
    if mode == "constrained":
        outgoing = {"type": "object", "properties": {
            "recipients": {"type": "array", "items": {"type": "string", "enum": others}, "maxItems": 3},
            "messages": {"type": "array", "items": {"type": "string"}, "maxItems": 3}},
            "required": ["recipients", "messages"]}
        schema = {"type": "object", "properties": {
            "negotiation_strategy": {"type": "string"},
            "messages": {"type": "object", "properties": {power: outgoing}, "required": [power]}},
            "required": ["negotiation_strategy", "messages"]}

    def parse(text: str) -> Negotiation:
        try:
            out = Negotiation.model_validate(decode_json(text))
        except (ValueError, ValidationError) as exc:
            raise OutputInvalid(f"could not read your answer: {exc}") from None
        mine = out.messages.get(power) or (next(iter(out.messages.values())) if len(out.messages) == 1 else None)
        if mine is None:
            return Negotiation(negotiation_strategy=out.negotiation_strategy)
        recipients = [r.strip().upper() for r in mine.recipients]
        bad = [r for r in recipients if r not in others]
        if bad:
            raise OutputInvalid(f"unknown recipient(s) {', '.join(bad)}; write to: {', '.join(others)}")
        if len(recipients) != len(mine.messages):
            raise OutputInvalid(f"{len(recipients)} recipients but {len(mine.messages)} messages: give one "
                                "message per recipient, in the same order")
        return Negotiation(negotiation_strategy=out.negotiation_strategy,
                           messages={power: Outgoing(recipients=recipients, messages=mine.messages)})

    return Agent(name="negotiator", role=role, prompt="spin/diplomacy_negotiate", output=parse, max_tokens=400,
                 response_schema=schema)


def _orderer(possible: dict[str, list[str]], role: str, tries: int, mode: str = "free") -> Agent[Orders]:
    legal = {normalize_order(o): o for orders in possible.values() for o in orders}
    schema = None
    if mode == "constrained":
        schema = {"type": "object", "properties": {"orders": {
            "type": "array", "items": {"type": "string", "enum": sorted(set(legal.values()))},
            "maxItems": len(possible)}}, "required": ["orders"]}

    def parse(text: str) -> Orders:
        try:
            out = Orders.model_validate(decode_json(text))
        except (ValueError, ValidationError) as exc:
            raise OutputInvalid(f'could not read your answer as {{"orders": [...]}}: {exc}') from None
        bad = [o for o in out.orders if normalize_order(o) not in legal]
        if bad:
            raise OutputInvalid(f"not possible here: {'; '.join(bad)}. Copy orders exactly from the lists given.")
        chosen: dict[str, str] = {}
        for o in out.orders:
            order = legal[normalize_order(o)]
            chosen.setdefault(order.split()[1], order)  # one order per location: the first one given
        return Orders(orders=list(chosen.values()))

    return Agent(name="orderer", role=role, prompt="spin/diplomacy_orders", output=parse, max_attempts=tries,
                 max_tokens=400, response_schema=schema)


def _judge() -> Agent[Judgement]:
    """Made when the judge node runs, not when the graph is built: the 'judge' role is the run's
    only when its spec asks for a judge (see `_roles`)."""
    return Agent(name="judge", prompt="spin/diplomacy_judge", output=Judgement, max_tokens=400)


def _keep_legal(text: str, possible: dict[str, list[str]]) -> list[str]:
    """After the last refused try: the legal orders in it, if any (the other units hold)."""
    legal = {normalize_order(o): o for orders in possible.values() for o in orders}
    try:
        given = Orders.model_validate(decode_json(text)).orders
    except (ValueError, ValidationError):
        return []
    chosen: dict[str, str] = {}
    for o in given:
        if normalize_order(o) in legal:
            chosen.setdefault(legal[normalize_order(o)].split()[1], legal[normalize_order(o)])
    return list(chosen.values())


def _record_scope(spec: DiplomacySpec, power: str) -> str:
    return f"{spec.game_id}/{power}"


async def _record(runtime: Runtime, spec: DiplomacySpec, power: str) -> str:
    mem = runtime.memory(RECORD_MEMORY, kind="notes", scope=_record_scope(spec, power))
    return "\n".join(i.content for i in await mem.window(800))


def _prepare(spec: DiplomacySpec) -> DiplomacySpec:
    if not spec.game_id:
        spec = spec.model_copy(update={"game_id": uuid.uuid4().hex[:12]})
    return spec


def _roles(spec: DiplomacySpec) -> set[str]:
    """The LLM powers' roles, and the judge's when the spec asks for one."""
    return {spec.role(p) for p in spec.llm_powers} | ({"judge"} if spec.judge else set())


def _recursion_limit(spec: DiplomacySpec) -> int:
    years = max(1, spec.end_year - 1900)
    return years * (3 + 2 * (spec.negotiation_rounds + 1)) + 10


def _finish(state: DiplomacyState) -> DiplomacyResult:
    game = load_game(state.game)
    centers = {p: len(game.powers[p].centers) for p in POWERS}
    winner = next((p for p, n in centers.items() if n >= 18), None)
    return DiplomacyResult(centers=centers, winner=winner, phase=game.get_current_phase(), ended=state.ended,
                           llm_powers=state.spec.llm_powers, messages=state.messages, orders=state.orders,
                           refused=state.refused, judgements=state.judgements)


@graph(input=DiplomacySpec, state=DiplomacyState, result=DiplomacyResult, prepare=_prepare,
       start=lambda spec: DiplomacyState(spec=spec, game=new_game()), finish=_finish, roles=_roles,
       templates=PROMPTS, recursion_limit=_recursion_limit)
def spin_diplomacy(g: StateGraph) -> None:
    """Negotiation rounds, then orders, each movement phase, until the game stops; then the judge."""

    async def negotiate(state: DiplomacyState, runtime: Runtime) -> dict[str, Any]:
        spec = state.spec
        game = load_game(state.game)
        phase = game.get_current_phase()
        centers, units = board_text(game)
        sent: list[Message] = []
        refused = dict(state.refused)
        for power in spec.llm_powers:
            if game.powers[power].is_eliminated():
                continue
            agent = _negotiator(power, spec.role(power), spec.mode)
            try:
                out = await agent.run(runtime, seed=spec.seed, power=power, phase=phase, round=state.round + 1,
                                      rounds=spec.negotiation_rounds, centers=centers, units=units,
                                      record=await _record(runtime, spec, power),
                                      others=[p for p in POWERS if p != power])
            except AgentOutputError as exc:
                refused[power] = refused.get(power, 0) + len(exc.attempts)
                continue
            mine = out.messages.get(power, Outgoing())
            for recipient, text in zip(mine.recipients, mine.messages, strict=True):
                sent.append(Message(phase=phase, round=state.round + 1, sender=power, recipient=recipient, text=text,
                                    strategy=out.negotiation_strategy))
        for m in sent:  # delivered after everyone has spoken: a round is simultaneous
            for owner, line in ((m.sender, f"you told {m.recipient}: {m.text}"),
                                (m.recipient, f"{m.sender} told you: {m.text}")):
                if owner in spec.llm_powers:
                    mem = runtime.memory(RECORD_MEMORY, kind="notes", scope=_record_scope(spec, owner))
                    await mem.note(f"{m.phase} round {m.round}", line, episode=spec.game_id)
        return {"messages": [*state.messages, *sent], "round": state.round + 1, "refused": refused}

    async def orders(state: DiplomacyState, runtime: Runtime) -> dict[str, Any]:
        spec = state.spec
        game = load_game(state.game)
        phase = game.get_current_phase()
        centers, units = board_text(game)
        given: dict[str, list[str]] = {}
        refused = dict(state.refused)
        for power in POWERS:
            possible = possible_orders(game, power)
            if not possible:
                continue
            if power not in spec.llm_powers:
                given[power] = bot_orders(game, power)
                continue
            agent = _orderer(possible, spec.role(power), spec.order_tries, spec.mode)
            try:
                result = await agent.invoke(runtime, seed=spec.seed, power=power, phase=phase, centers=centers,
                                            units=units, record=await _record(runtime, spec, power), possible=possible)
                given[power] = result.output.orders
                refused[power] = refused.get(power, 0) + sum(1 for a in result.attempts if a.error)
            except AgentOutputError as exc:
                refused[power] = refused.get(power, 0) + len(exc.attempts)
                given[power] = _keep_legal(exc.attempts[-1].text, possible)
        for power, os_ in given.items():
            game.set_orders(power, os_)
        game.process()
        next_phase = game.get_current_phase()
        ended = ""
        if game.is_game_done:
            ended = "solo" if any(len(game.powers[p].centers) >= 18 for p in POWERS) else "done"
        elif year_of(next_phase) > spec.end_year:
            ended = "year_limit"
        elif spec.token_budget is not None and _tokens_used() >= spec.token_budget:
            ended = "token_budget"
        return {"game": save_game(game), "orders": {**state.orders, phase: given}, "round": 0, "refused": refused,
                "ended": ended}

    async def judge_messages(state: DiplomacyState, runtime: Runtime) -> dict[str, Any]:
        judge = _judge()
        verdicts: list[Judgement | None] = []
        for m in state.messages:
            try:
                verdicts.append(await judge.run(runtime, sender=m.sender, recipient=m.recipient, message=m.text,
                                                strategy=m.strategy))
            except AgentOutputError:
                verdicts.append(None)  # recorded as a failure; the others still count
        return {"judgements": verdicts}

    def route(state: DiplomacyState) -> str:
        if state.ended:
            return "judge" if state.spec.judge and state.messages else END
        phase = phase_of(state.game)
        if phase.endswith("M") and state.spec.llm_powers and state.round < state.spec.negotiation_rounds:
            return "negotiate"
        return "orders"

    g.add_node(negotiate)
    g.add_node(orders)
    g.add_node("judge", judge_messages)
    for source in (START, "negotiate", "orders"):
        g.add_conditional_edges(source, route, ["negotiate", "orders", "judge", END])
    g.add_edge("judge", END)


async def run(spec: DiplomacySpec, *, runtime: Runtime) -> DiplomacyResult:
    """Play one game of Diplomacy, recorded (the run's seed is the game's)."""
    result: DiplomacyResult = await spin_diplomacy.run(spec, runtime=runtime, seed=spec.seed)
    return result


def run_sync(spec: DiplomacySpec, *, runtime: Runtime) -> DiplomacyResult:
    return runtime.run_sync(run(spec, runtime=runtime))
