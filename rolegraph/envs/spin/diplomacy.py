"""The Diplomacy engine (diplomacy 1.1.2) as SPIN-Bench's games use it: games saved as plain
data between steps, possible orders sorted per location (the engine's order varies between runs),
the bots' first-legal-order policy, and the board as text for prompts."""

from __future__ import annotations

import re
from typing import Any

POWERS = ("AUSTRIA", "ENGLAND", "FRANCE", "GERMANY", "ITALY", "RUSSIA", "TURKEY")


def load_game(saved: dict[str, Any]) -> Any:
    from diplomacy.utils.export import from_saved_game_format

    return from_saved_game_format(saved)


def save_game(game: Any) -> dict[str, Any]:
    from diplomacy.utils.export import to_saved_game_format

    return dict(to_saved_game_format(game))


def new_game() -> dict[str, Any]:
    from diplomacy import Game

    return save_game(Game())


def possible_orders(game: Any, power: str) -> dict[str, list[str]]:
    """Location -> its legal orders, sorted (the engine's own order varies between runs)."""
    every = game.get_all_possible_orders()
    return {loc: sorted(every[loc]) for loc in sorted(game.get_orderable_locations(power)) if every.get(loc)}


def bot_orders(game: Any, power: str) -> list[str]:
    """The first legal order per unit."""
    return [orders[0] for orders in possible_orders(game, power).values()]


def normalize_order(order: str) -> str:
    return re.sub(r"\s+", " ", order.strip().upper())


def board_text(game: Any) -> tuple[str, str]:
    state = game.get_state()
    centers = "\n".join(f"{p}: {len(c)} ({', '.join(c)})" for p, c in sorted(state["centers"].items()))
    units = "\n".join(f"{p}: {', '.join(u) or '-'}" for p, u in sorted(state["units"].items()))
    return centers, units


def year_of(phase: str) -> int:
    return int(phase[1:5]) if len(phase) >= 5 and phase[1:5].isdigit() else 0


def phase_of(saved: dict[str, Any]) -> str:
    return str(saved["phases"][-1]["name"])


