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
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from rolegraph.agents import Agent, OutputInvalid
from rolegraph.envs.spin import GAMES, GameEnv, Hanabi, IllegalMove, make_env, make_opponent
from rolegraph.errors import AgentOutputError, UserError
from rolegraph.graphs._api import END, START, RunResult, StateGraph, graph
from rolegraph.models import decode_json
from rolegraph.runtime import Runtime

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


class GameResult(RunResult):
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


def _prepare(spec: GameSpec) -> GameSpec:
    """Before a fresh game: a known game, a fresh game id, and solvers that exist."""
    if spec.game not in GAMES:
        raise UserError(f"unknown game {spec.game!r}; known: {', '.join(GAMES)}")
    if not spec.game_id:
        spec = spec.model_copy(update={"game_id": uuid.uuid4().hex[:12]})
    for seat in spec.seats:
        if seat.kind == "solver":
            make_opponent(seat.name, spec.game)  # a bad name fails before the game starts
    return spec


def _roles(spec: GameSpec) -> set[str]:
    """The LLM seats' roles (the player agent is made per turn, for the seat to move)."""
    return {s.name for s in spec.seats if s.kind == "llm"}


def _templates(spec: GameSpec) -> list[str]:
    return [PLAYER_PROMPT, ILLEGAL_PROMPT, f"spin/intro/{spec.game}"]


def _start(spec: GameSpec) -> GameState:
    return GameState(spec=spec, to_move=spec.env().current_player())


def _recursion_limit(spec: GameSpec) -> int:
    plies = {"tictactoe": 9, "connect4": 42, "chess": spec.max_plies or 300}.get(spec.game, 400)
    return plies + 10


def _finish(state: GameState, input: GameSpec) -> GameResult:
    spec = input
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
                      termination=termination, illegal=illegal, score=score)


@graph(input=GameSpec, state=GameState, result=GameResult, prepare=_prepare, start=_start, finish=_finish,
       roles=_roles, templates=_templates, recursion_limit=_recursion_limit)
def spin(g: StateGraph) -> None:
    """One game: the seat to move is an LLM player or a solver, until the game ends or a player forfeits."""

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

    g.add_node(player)
    g.add_node(opponent)
    for source in (START, "player", "opponent"):
        g.add_conditional_edges(source, route, ["player", "opponent", END])


async def run(spec: GameSpec, *, runtime: Runtime) -> GameResult:
    """Play one game, recorded (the run's seed is the game's)."""
    result: GameResult = await spin.run(spec, runtime=runtime, seed=spec.seed)
    return result


def run_sync(spec: GameSpec, *, runtime: Runtime) -> GameResult:
    return runtime.run_sync(run(spec, runtime=runtime))
