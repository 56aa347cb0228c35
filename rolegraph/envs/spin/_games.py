"""SPIN-Bench's turn-based games as one small interface over real engines: OpenSpiel for
tic-tac-toe, connect four and Hanabi, python-chess for chess. An environment is rebuilt from its
move list (chance events come from a seeded generator), so a game's state is its moves."""

from __future__ import annotations

import random
import re
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

GAMES = ("tictactoe", "connect4", "chess", "hanabi")


class IllegalMove(ValueError):
    """A move the engine refuses; the message says why and is shown to the player."""


class GameEnv(ABC):
    """One game in progress. Moves are strings in the game's notation (see `legal_moves`)."""

    game: ClassVar[str]
    num_players: int
    moves: list[str]

    @abstractmethod
    def current_player(self) -> int:
        """The seat to move, or -1 when the game is over."""

    @abstractmethod
    def legal_moves(self) -> list[str]:
        """The legal moves of the seat to move, in a stable order."""

    @abstractmethod
    def _apply(self, move: str) -> None: ...

    @abstractmethod
    def describe(self, player: int) -> str:
        """The state as `player` sees it (text for a prompt)."""

    @abstractmethod
    def returns(self) -> list[float]:
        """Per seat: +1 win, -1 loss, 0 draw (Hanabi: the shared fireworks total)."""

    def is_terminal(self) -> bool:
        return self.current_player() < 0

    def normalize(self, move: str) -> str:
        """The legal move that `move` names (case and spacing forgiven), or IllegalMove."""
        text = move.strip()
        legal = self.legal_moves()
        if text in legal:
            return text
        key = _key(text)
        for m in legal:
            if _key(m) == key:
                return m
        raise IllegalMove(f"'{text}' is not a legal move here. Legal moves: {', '.join(legal)}")

    def apply(self, move: str) -> str:
        """Play `move` for the seat to move; returns the move as recorded."""
        if self.is_terminal():
            raise IllegalMove("the game is over")
        legal = self.normalize(move)
        self._apply(legal)
        self.moves.append(legal)
        return legal

    def replay(self, moves: Sequence[str]) -> None:
        """Play moves already checked when they were first played (as recorded), skipping the
        legality check: rebuilding a long game stays linear."""
        for m in moves:
            self._apply(m)
            self.moves.append(m)

    def player_name(self, player: int) -> str:
        return f"Player {player + 1}"


def _key(move: str) -> str:
    return re.sub(r"[\s()\"']", "", move).lower()


class OpenSpielEnv(GameEnv):
    """An OpenSpiel game; chance outcomes are drawn from a generator seeded by `seed`."""

    spiel_name: ClassVar[str]

    def __init__(self, *, seed: int = 0, params: dict[str, Any] | None = None) -> None:
        import pyspiel

        self.spiel_game = pyspiel.load_game(self.spiel_name, params or {})
        self.num_players = self.spiel_game.num_players()
        self.state = self.spiel_game.new_initial_state()
        self.rng = random.Random(seed)
        self.moves = []
        self._resolve_chance()

    def _resolve_chance(self) -> None:
        while self.state.is_chance_node():
            outcomes, probs = zip(*self.state.chance_outcomes(), strict=True)
            self.state.apply_action(self.rng.choices(outcomes, weights=probs)[0])

    def current_player(self) -> int:
        return -1 if self.state.is_terminal() else int(self.state.current_player())

    def action_name(self, action: int) -> str:
        return str(self.state.action_to_string(self.state.current_player(), action))

    def legal_moves(self) -> list[str]:
        return [self.action_name(a) for a in self.state.legal_actions()]

    def action_of(self, move: str) -> int:
        for a in self.state.legal_actions():
            if self.action_name(a) == move:
                return int(a)
        raise IllegalMove(f"'{move}' is not a legal move here")

    def _apply(self, move: str) -> None:
        self.state.apply_action(self.action_of(move))
        self._resolve_chance()

    def returns(self) -> list[float]:
        return [float(r) for r in self.state.returns()]


class TicTacToe(OpenSpielEnv):
    """Cells are named like a chess board: columns A-C, rows 1-3 from the top (B2 is the centre)."""

    game = "tictactoe"
    spiel_name = "tic_tac_toe"
    MARKS = ("X", "O")

    def action_name(self, action: int) -> str:
        row, col = divmod(int(action), 3)
        return f"{'ABC'[col]}{row + 1}"

    def player_name(self, player: int) -> str:
        return f"{self.MARKS[player]} (player {player + 1})"

    def board(self) -> list[str]:
        """Nine cells, row by row: 'X', 'O' or '.'."""
        text = str(self.state).replace("\n", "")
        return [c.upper() if c in "xo" else "." for c in text]

    def describe(self, player: int) -> str:
        cells = self.board()
        rows = [f"{r + 1}  " + " ".join(cells[r * 3:r * 3 + 3]) for r in range(3)]
        to_move = self.current_player()
        tail = f"You play {self.MARKS[player]}." + (f" {self.MARKS[to_move]} to move." if to_move >= 0 else "")
        return "   A B C\n" + "\n".join(rows) + "\n" + tail


class ConnectFour(OpenSpielEnv):
    """Moves are column numbers 1-7 (left to right); a disc falls to the lowest empty row."""

    game = "connect4"
    spiel_name = "connect_four"
    MARKS = ("X", "O")

    def action_name(self, action: int) -> str:
        return str(int(action) + 1)

    def player_name(self, player: int) -> str:
        return f"{self.MARKS[player]} (player {player + 1})"

    def columns(self) -> list[int]:
        """The moves as 0-based columns (bitbully's and OpenSpiel's numbering)."""
        return [int(m) - 1 for m in self.moves]

    def describe(self, player: int) -> str:
        rows = [" ".join(c.upper() if c in "xo" else "." for c in line) for line in str(self.state).split("\n") if line]
        to_move = self.current_player()
        tail = f"You play {self.MARKS[player]}." + (f" {self.MARKS[to_move]} to move." if to_move >= 0 else "")
        return "\n".join(rows) + "\n" + " ".join(str(c) for c in range(1, 8)) + "\n" + tail


HANABI_COLORS = "RYGWB"


@dataclass(frozen=True)
class HanabiCard:
    card: str
    """The card as others see it ('R3'), or 'XX' for one's own unseen card."""
    hint: str
    """What hints revealed: colour and rank, 'X' where unknown ('RX', 'X3', 'XX')."""
    colors: str
    """Colours still possible for it."""
    ranks: str


@dataclass(frozen=True)
class HanabiView:
    """A parsed OpenSpiel Hanabi observation."""

    lives: int
    info: int
    fireworks: dict[str, int]
    hands: list[list[HanabiCard]]
    """hands[0] is the observer's own hand, then the other players in seat order after them."""
    deck: int
    discards: list[str] = field(default_factory=list)

    @property
    def score(self) -> int:
        return sum(self.fireworks.values())


_CARD = re.compile(r"(\w\w) \|\| (\w\w)\|([RYGWB]*)([1-5]*)")


def parse_hanabi(observation: str) -> HanabiView:
    lives = int(re.search(r"Life tokens: (\d+)", observation).group(1))  # type: ignore[union-attr]
    info = int(re.search(r"Info tokens: (\d+)", observation).group(1))  # type: ignore[union-attr]
    fireworks = {m.group(1): int(m.group(2)) for m in re.finditer(r"([RYGWB])(\d)", observation.split(
        "Fireworks:")[1].split("\n")[0])}
    deck = int(re.search(r"Deck size: (\d+)", observation).group(1))  # type: ignore[union-attr]
    hands_text = observation.split("Hands:")[1].split("Deck size:")[0]
    hands = [[HanabiCard(*m.groups()) for m in _CARD.finditer(block)] for block in hands_text.split("-----")]
    discards = observation.split("Discards:")[1].split() if "Discards:" in observation else []
    return HanabiView(lives, info, fireworks, hands, deck, discards)


class Hanabi(OpenSpielEnv):
    """Hanabi for 2-5 players. Hand size 5, or 4 with 5 players (SPIN-Bench's setting).
    Moves are OpenSpiel's, without brackets: 'Play 0', 'Discard 2', 'Reveal player +1 color R'."""

    game = "hanabi"
    spiel_name = "hanabi"

    def __init__(self, *, seed: int = 0, players: int = 2, hand_size: int | None = None) -> None:
        if not 2 <= players <= 5:
            raise ValueError("Hanabi takes 2 to 5 players")
        size = hand_size if hand_size is not None else (4 if players == 5 else 5)
        super().__init__(seed=seed, params={"players": players, "hand_size": size})
        self.hand_size = size

    def action_name(self, action: int) -> str:
        return super().action_name(action).strip("()")

    def view(self, player: int) -> HanabiView:
        return parse_hanabi(str(self.state.observation_string(player)))

    def describe(self, player: int) -> str:
        return str(self.state.observation_string(player))

    def score(self) -> int:
        return self.view(0).score

    def returns(self) -> list[float]:
        return [float(self.score())] * self.num_players


class Chess(GameEnv):
    """Chess with moves in UCI ('e2e4', 'e7e8q'); a game longer than `max_plies` is a draw."""

    game = "chess"

    def __init__(self, *, seed: int = 0, max_plies: int = 300) -> None:
        import chess

        self.board = chess.Board()
        self.num_players = 2
        self.max_plies = max_plies
        self.moves = []

    def current_player(self) -> int:
        import chess

        if self.board.is_game_over(claim_draw=True) or len(self.moves) >= self.max_plies:
            return -1
        return 0 if self.board.turn == chess.WHITE else 1

    def legal_moves(self) -> list[str]:
        return sorted(m.uci() for m in self.board.legal_moves)

    def normalize(self, move: str) -> str:
        import chess

        text = move.strip()
        try:  # SAN is forgiven too ("Nf3"), but recorded in UCI
            return self.board.parse_san(text).uci() if text not in self.legal_moves() else text
        except ValueError:
            pass
        try:
            uci = chess.Move.from_uci(text.lower()).uci()
        except ValueError:
            raise IllegalMove(f"'{text}' is not a move in UCI notation (like e2e4, or e7e8q to promote)") from None
        if uci not in self.legal_moves():
            raise IllegalMove(f"'{text}' is not legal in this position. Legal moves: {', '.join(self.legal_moves())}")
        return uci

    def _apply(self, move: str) -> None:
        import chess

        self.board.push(chess.Move.from_uci(move))

    def player_name(self, player: int) -> str:
        return ("White", "Black")[player]

    def describe(self, player: int) -> str:
        side = ("White", "Black")[player]
        last = f"Last move: {self.moves[-1]}.\n" if self.moves else ""
        return (f"{self.board.unicode(empty_square='.', invert_color=True)}\n"
                f"FEN: {self.board.fen()}\n{last}You play {side}. Move {self.board.fullmove_number}.")

    def returns(self) -> list[float]:
        outcome = self.board.outcome(claim_draw=True)
        if outcome is None or outcome.winner is None:
            return [0.0, 0.0]
        return [1.0, -1.0] if outcome.winner else [-1.0, 1.0]

    def termination(self) -> str:
        outcome = self.board.outcome(claim_draw=True)
        return outcome.termination.name.lower() if outcome else "max_plies"


def make_env(game: str, *, seed: int = 0, players: int = 2, moves: Sequence[str] = (), **options: Any) -> GameEnv:
    """A fresh environment for `game`, with `moves` already played."""
    env: GameEnv
    if game == "tictactoe":
        env = TicTacToe(seed=seed)
    elif game == "connect4":
        env = ConnectFour(seed=seed)
    elif game == "chess":
        env = Chess(seed=seed, **options)
    elif game == "hanabi":
        env = Hanabi(seed=seed, players=players, **options)
    else:
        raise ValueError(f"unknown game {game!r}; known: {', '.join(GAMES)}")
    for m in moves:
        env.apply(m)
    return env
