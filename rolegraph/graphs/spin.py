"""SPIN-Bench's turn loop as a graph: one run is one game. Each turn either an LLM player (a
role) answers {"reason", "action"} and is told "Illegal move, try again" until it plays a legal
move or forfeits, or a solver picks a move (a recorded tool call, so replays need no engine).

The player sees the game's intro, the state, its reasoning history (the last k moves with their
reasons, kept in a buffer memory) and the legal moves. In `constrained` mode the legal moves
become a JSON-schema enum, so even a tiny model always plays legally.
"""

from __future__ import annotations

import asyncio
import uuid
from functools import lru_cache
from typing import Any, Literal

from langgraph.graph import END, START, StateGraph
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from rolegraph.agents import Agent, OutputInvalid
from rolegraph.errors import AgentOutputError, UserError
from rolegraph.evals.spin._games import GAMES, GameEnv, Hanabi, IllegalMove, make_env
from rolegraph.evals.spin._solvers import make_opponent
from rolegraph.graphs._run import GraphSpec, Prepared, run_graph
from rolegraph.models import decode_json
from rolegraph.runtime import Runtime
from rolegraph.traces import Manifest, RoleInfo, traced_node

NAME = "spin"
PLAYER_PROMPT = "spin/player"
ILLEGAL_PROMPT = "spin/illegal"
HISTORY_MEMORY = "spin.history"
NOTES_MEMORY = "spin.notes"
TITLES = {"tictactoe": "tic-tac-toe", "connect4": "Connect Four", "chess": "chess", "hanabi": "Hanabi"}
MAX_ILLEGAL = {"hanabi": 5}
"""SPIN-Bench's illegal-move tolerance per game; 10 elsewhere."""


class Seat(BaseModel):
    """Who plays a seat: an LLM `role` of the runtime, or a solver named as for make_opponent."""

    model_config = ConfigDict(frozen=True)

    kind: Literal["llm", "solver"]
    name: str

    @property
    def label(self) -> str:
        return self.name if self.kind == "solver" else f"llm:{self.name}"

    @classmethod
    def parse(cls, text: str) -> Seat:
        """'llm:player' or 'llm' (role 'player'), else a solver name ('stockfish-3')."""
        if text == "llm":
            return cls(kind="llm", name="player")
        if text.startswith("llm:"):
            return cls(kind="llm", name=text[4:])
        return cls(kind="solver", name=text)


class GameSpec(BaseModel):
    """One game to play: the input of a run."""

    game: Literal["tictactoe", "connect4", "chess", "hanabi"]
    seats: list[Seat]
    seed: int = 0
    """Seeds chance (Hanabi's deal) and the solvers' tie-breaking."""
    mode: Literal["free", "constrained"] = "free"
    max_illegal: int | None = None
    """Failed tries before a player forfeits: SPIN-Bench's 10 (Hanabi: 5) when None."""
    history_k: int = 5
    """How many of the player's last moves (with reasons) it sees again; 0 for none."""
    history_tokens: int = 600
    max_plies: int | None = None
    """Chess only: a longer game is a draw (default 300 plies)."""
    game_id: str = ""
    """Scopes the game's memories; a fresh id is made per game when empty."""

    @model_validator(mode="after")
    def _check(self) -> GameSpec:
        if self.game == "hanabi":
            if not 2 <= len(self.seats) <= 5:
                raise ValueError("Hanabi takes 2 to 5 seats")
        elif len(self.seats) != 2:
            raise ValueError(f"{self.game} takes exactly 2 seats")
        return self

    @property
    def illegal_limit(self) -> int:
        return self.max_illegal if self.max_illegal is not None else MAX_ILLEGAL.get(self.game, 10)

    def env(self, moves: list[str] | None = None, *, trusted: bool = False) -> GameEnv:
        opts: dict[str, Any] = {"max_plies": self.max_plies} if self.game == "chess" and self.max_plies else {}
        env = make_env(self.game, seed=self.seed, players=len(self.seats), **opts)
        if trusted:
            env.replay(moves or [])
        else:
            for m in moves or []:
                env.apply(m)
        return env


class PlayerMove(BaseModel):
    """What an LLM player answers."""

    reason: str = ""
    action: str


class Turn(BaseModel):
    ply: int
    player: int
    seat: str
    move: str | None
    """None: the player forfeited."""
    reason: str = ""
    attempts: int = 1
    errors: list[str] = Field(default_factory=list)
    """Why each refused try was refused."""


class GameState(BaseModel):
    spec: GameSpec
    turns: list[Turn] = Field(default_factory=list)
    to_move: int = 0
    """The seat to move; -1 once the game is over."""
    forfeit: int | None = None

    @property
    def moves(self) -> list[str]:
        return [t.move for t in self.turns if t.move is not None]


class GameResult(BaseModel):
    game: str
    mode: str
    seats: list[str]
    moves: list[str]
    turns: list[Turn]
    returns: list[float]
    """Per seat: +1 win, -1 loss, 0 draw; Hanabi: the fireworks total for every seat."""
    winner: int | None
    forfeit: int | None = None
    termination: str = ""
    illegal: list[int] = Field(default_factory=list)
    """Refused tries per seat."""
    score: float | None = None
    """Hanabi: the fireworks total."""
    trace_id: str | None = None
    trace_dir: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0


def player_agent(env: GameEnv, mode: str, max_attempts: int, role: str, max_tokens: int = 300) -> Agent[PlayerMove]:
    """The player for this turn: its parser knows the legal moves, and in constrained mode so
    does its schema."""

    def parse(text: str) -> PlayerMove:
        try:
            move = PlayerMove.model_validate(decode_json(text))
        except (ValueError, ValidationError):
            raise OutputInvalid('could not read your answer as {"reason": ..., "action": ...}') from None
        try:
            return move.model_copy(update={"action": env.normalize(move.action)})
        except IllegalMove as exc:
            raise OutputInvalid(str(exc)) from None

    schema = None
    if mode == "constrained":
        schema = {"type": "object", "properties": {"reason": {"type": "string"},
                                                   "action": {"type": "string", "enum": env.legal_moves()}},
                  "required": ["reason", "action"]}
    return Agent(name="player", role=role, prompt=PLAYER_PROMPT, output=parse, max_attempts=max_attempts,
                 max_tokens=max_tokens, retry_prompt=ILLEGAL_PROMPT, response_schema=schema)


def _scope(spec: GameSpec, player: int) -> str:
    return f"{spec.game_id}/{player}"


async def _play(runtime: Runtime, spec: GameSpec, env: GameEnv, player: int, move: str, ply: int) -> str:
    """Play `move` for `player`; in Hanabi, a hint is also noted for the hinted player, with the
    cards it touched (their knowledge before and after the move)."""
    move = env.normalize(move)
    target = None
    if isinstance(env, Hanabi) and move.startswith("Reveal player +"):
        target = (player + int(move.split("+")[1].split()[0])) % env.num_players
        before = env.view(target).hands[0]
    env.apply(move)
    if target is not None and isinstance(env, Hanabi):
        after = env.view(target).hands[0]
        touched = [i for i, (a, b) in enumerate(zip(before, after, strict=False)) if a.hint != b.hint]
        what = move.split(" ", 3)[3]  # "color R" / "rank 3"
        cards = ", ".join(str(i) for i in touched) or "none"
        mem = runtime.memory(NOTES_MEMORY, kind="notes", scope=_scope(spec, target))
        await mem.note(f"hints to {env.player_name(target)}",
                       f"Turn {ply + 1}: {env.player_name(player)} revealed {what}: your cards at positions {cards}.",
                       episode=spec.game_id, turn=ply)
    return move


def build(runtime: Runtime) -> Any:
    return _compiled()


@lru_cache(maxsize=1)
def _compiled() -> Any:
    async def player(state: GameState, runtime: Runtime) -> dict[str, Any]:
        spec = state.spec
        env = spec.env(state.moves, trusted=True)
        seat_index = env.current_player()
        seat = spec.seats[seat_index]
        ply = len(state.turns)
        history_mem = runtime.memory(HISTORY_MEMORY, kind="buffer", scope=_scope(spec, seat_index),
                                     k=max(spec.history_k, 1))
        history = ""
        if spec.history_k > 0:
            history = "\n".join(i.content for i in await history_mem.window(spec.history_tokens))
        notes = ""
        if isinstance(env, Hanabi):
            notes_mem = runtime.memory(NOTES_MEMORY, kind="notes", scope=_scope(spec, seat_index))
            notes = "\n".join(i.content for i in await notes_mem.window(spec.history_tokens))
        agent = player_agent(env, spec.mode, spec.illegal_limit, seat.name)
        inputs: dict[str, Any] = {
            "game": spec.game, "game_title": TITLES[spec.game], "player_name": env.player_name(seat_index),
            "state": env.describe(seat_index), "legal_moves": env.legal_moves(), "reasoning": history, "notes": notes}
        try:
            result = await agent.invoke(runtime, seed=spec.seed + ply, **inputs)
        except AgentOutputError as exc:
            errors = [a.error or "" for a in exc.attempts]
            turn = Turn(ply=ply, player=seat_index, seat=seat.label, move=None, attempts=len(errors), errors=errors)
            return {"turns": [*state.turns, turn], "forfeit": seat_index, "to_move": -1}
        move = await _play(runtime, spec, env, seat_index, result.output.action, ply)
        await history_mem.add(f"Move {ply + 1}: {move}. Reason: {result.output.reason.strip()}", role=seat.name)
        errors = [a.error for a in result.attempts if a.error]
        turn = Turn(ply=ply, player=seat_index, seat=seat.label, move=move, reason=result.output.reason,
                    attempts=len(result.attempts), errors=errors)
        return {"turns": [*state.turns, turn], "to_move": env.current_player()}

    async def opponent(state: GameState, runtime: Runtime) -> dict[str, Any]:
        spec = state.spec
        env = spec.env(state.moves, trusted=True)
        seat_index = env.current_player()
        seat = spec.seats[seat_index]
        solver = runtime.resource(f"spin.{spec.game}.{seat.name}", lambda: make_opponent(seat.name, spec.game))
        seed = spec.seed * 7919 + seat_index

        async def choose(value: dict[str, Any]) -> str:
            return await asyncio.to_thread(solver.choose, env, seed)

        chosen = await runtime.call_tool(f"spin.{solver.name}", choose,
                                         {"game": spec.game, "moves": state.moves, "seat": seat_index})
        ply = len(state.turns)
        move = await _play(runtime, spec, env, seat_index, str(chosen), ply)
        turn = Turn(ply=ply, player=seat_index, seat=seat.label, move=move)
        return {"turns": [*state.turns, turn], "to_move": env.current_player()}

    def route(state: GameState) -> str:
        if state.to_move < 0 or state.forfeit is not None:
            return END
        return "player" if state.spec.seats[state.to_move].kind == "llm" else "opponent"

    graph = StateGraph(GameState)
    graph.add_node("player", traced_node("player", player))
    graph.add_node("opponent", traced_node("opponent", opponent))
    graph.add_conditional_edges(START, route, ["player", "opponent", END])
    graph.add_conditional_edges("player", route, ["player", "opponent", END])
    graph.add_conditional_edges("opponent", route, ["player", "opponent", END])
    return graph.compile(name=NAME)


def _prepare(manifest: Manifest, runtime: Runtime, graph: Any) -> Prepared:
    spec = GameSpec.model_validate(manifest.input)
    env = spec.env()
    plies = {"tictactoe": 9, "connect4": 42, "chess": spec.max_plies or 300}.get(spec.game, 400)
    return Prepared(graph if graph is not None else build(runtime),
                    GameState(spec=spec, to_move=env.current_player()), recursion_limit=plies + 10)


def _finish(manifest: Manifest, raw: Any, error: BaseException | None, run_id: str) -> GameResult:
    spec = GameSpec.model_validate(manifest.input)
    state = GameState.model_validate(raw)
    env = spec.env(state.moves, trusted=True)
    n = len(spec.seats)
    illegal = [0] * n
    for t in state.turns:
        illegal[t.player] += len(t.errors)
    score = float(env.score()) if isinstance(env, Hanabi) else None
    if state.forfeit is not None:
        termination = "forfeit"
        if isinstance(env, Hanabi):  # cooperative: the game just ends where it stands
            returns = [float(env.score())] * n
        else:
            returns = [-1.0 if i == state.forfeit else 1.0 for i in range(n)]
    else:
        returns = env.returns()
        termination = env.termination() if hasattr(env, "termination") else "end"
    winner = None
    if not isinstance(env, Hanabi) and max(returns) > 0:
        winner = returns.index(max(returns))
    return GameResult(game=spec.game, mode=spec.mode, seats=[s.label for s in spec.seats], moves=state.moves,
                      turns=state.turns, returns=returns, winner=winner, forfeit=state.forfeit,
                      termination=termination, illegal=illegal, score=score, trace_id=run_id)


SPEC = GraphSpec(NAME, _prepare, _finish)


async def arun(spec: GameSpec, *, runtime: Runtime, graph: Any = None) -> GameResult:
    """Play one game, recorded."""
    if spec.game not in GAMES:
        raise UserError(f"unknown game {spec.game!r}; known: {', '.join(GAMES)}")
    if not spec.game_id:
        spec = spec.model_copy(update={"game_id": uuid.uuid4().hex[:12]})
    runtime.require_roles(sorted({s.name for s in spec.seats if s.kind == "llm"}))
    for seat in spec.seats:
        if seat.kind == "solver":
            make_opponent(seat.name, spec.game)  # a bad name fails before the game starts
    graph = graph if graph is not None else build(runtime)
    roles = sorted({s.name for s in spec.seats if s.kind == "llm"})
    prompts = [PLAYER_PROMPT, ILLEGAL_PROMPT, f"spin/intro/{spec.game}"]
    manifest = Manifest(graph=NAME, input=spec.model_dump(mode="json"), seed=spec.seed,
                        prompts={p: runtime.prompts.get(p).sha256 for p in prompts},
                        roles=dict.fromkeys(roles, RoleInfo()), mermaid=graph.get_graph().draw_mermaid())
    result: GameResult = await run_graph(SPEC, manifest, runtime, graph=graph)
    return result


def run(spec: GameSpec, *, runtime: Runtime) -> GameResult:
    return runtime.run_sync(arun(spec, runtime=runtime))
