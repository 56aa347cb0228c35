"""`rolegraph eval spin.<env>`: SPIN-Bench's environments from the shell, with a progress bar,
traces, an HTML report, and a summary table (win/draw/loss with CIs, move quality, Elo)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, cast

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from rolegraph._cli_options import ConfigOpt, EvalOutOpt, ResumeOpt, RetryErrorsOpt
from rolegraph.errors import UserError
from rolegraph.evals._shell import estimate_text, print_summary, run_in_shell

out = Console()
err = Console(stderr=True)

Concurrency = Annotated[int, typer.Option(min=1, help="Games played at once.")]
Seed = Annotated[int, typer.Option(help="Seeds the deal and the solvers' tie-breaking (game i uses seed + i).")]
Mode = Annotated[str, typer.Option(help="free (as in the paper) or constrained (legal moves as a schema enum).")]
Games = Annotated[int, typer.Option(min=1, help="Games to play; two-player games swap colours halfway.")]
HistoryK = Annotated[int, typer.Option("--history-k", min=0, help="Past moves (with reasons) the player sees.")]
MaxIllegal = Annotated[int | None, typer.Option(min=1, help="Refused tries before a forfeit (default: 10; "
                                                            "Hanabi 5).")]
OpponentOpt = Annotated[str, typer.Option(help="The other seat(s): a solver (minimax, bitbully, mcts-N, "
                                                "stockfish-L with skill L 0-20, hanabi-bot, random) or llm:ROLE.")]
Player = Annotated[str, typer.Option(help="The evaluated seat: llm (role 'player') or llm:ROLE.")]


def _game_command(game: str, default_opponent: str) -> Callable[..., None]:
    def command(
        games: Games = 10,
        opponent: OpponentOpt = default_opponent,
        mode: Mode = "free",
        players: Annotated[int, typer.Option(min=2, max=5, help="Hanabi: seats at the table.")] = 2,
        player: Player = "llm",
        history_k: HistoryK = 5,
        max_illegal: MaxIllegal = None,
        quality: Annotated[bool, typer.Option(help="Grade each LLM move against the solver.")] = True,
        move_quality: Annotated[str | None, typer.Option(
            help="topk (SPIN-Bench's top-k move fractions: Stockfish's top 10 at depth 15, or the connect-four "
                 "solver's column ranks), loss (value lost per move) or both. Default: both for chess and "
                 "connect4, loss for tictactoe. Chess top-k costs about 5 s of Stockfish per LLM move on 2 busy "
                 "cores.")] = None,
        loss_method: Annotated[str, typer.Option(
            help="Chess centipawn loss: restricted (best root score minus a search restricted to the move), "
                 "fresh (the best move's and the played move's restricted searches, each on a cleared engine) "
                 "or after_move.")] = "restricted",
        concurrency: Concurrency = 4,
        seed: Seed = 0,
        resume: ResumeOpt = None,
        retry_errors: RetryErrorsOpt = True,
        out_dir: EvalOutOpt = Path("evals"),
        config: ConfigOpt = None,
    ) -> None:
        from rolegraph.envs.spin import LossMethod, make_opponent
        from rolegraph.evals.spin._bench import MoveQualityChoice, game_benchmark

        if mode not in ("free", "constrained"):
            raise UserError(f"--mode is free or constrained, not {mode!r}")
        if game != "hanabi" and players != 2:
            raise UserError(f"{game} is a two-player game; --players is for Hanabi")
        if not opponent.startswith("llm"):
            make_opponent(opponent, game)  # a bad name fails now, not in every game
        if move_quality not in (None, "topk", "loss", "both"):
            raise UserError(f"--move-quality is topk, loss or both, not {move_quality!r}")
        if loss_method not in ("restricted", "fresh", "after_move"):
            raise UserError(f"--loss-method is restricted, fresh or after_move, not {loss_method!r}")
        bench = game_benchmark(game, games=games, opponent=opponent, player=player, players=players, mode=mode,
                               seed=seed, quality=quality, move_quality=cast("MoveQualityChoice | None", move_quality),
                               loss_method=cast("LossMethod", loss_method), history_k=history_k,
                               max_illegal=max_illegal)
        store, directory = run_in_shell(bench, concurrency=concurrency, seed=seed, resume=resume,
                                        retry_errors=retry_errors, out_dir=out_dir, config=config)
        print_summary(store, directory)

    command.__doc__ = (f"Play {game} games (SPIN-Bench): the LLM seat against a solver or another LLM role; "
                       "reports win/draw/loss with CIs, illegal tries, move quality (SPIN-Bench's top-k move "
                       "fractions and the value lost per move) and Elo.")
    return command


def eval_pddl(
    data: Annotated[Path | None, typer.Option("--data", help="SPIN-Bench's PDDL dataset folder (default: the "
                                                             "shared copy beside this checkout).")] = None,
    domains: Annotated[str, typer.Option(help="Comma-separated domains; default all.")] = "",
    per_domain: Annotated[int | None, typer.Option(min=1, help="Only the first N instances of each domain.")] = None,
    optimal: Annotated[bool, typer.Option(help="Compare valid plans with Fast Downward's optimum (cached).")] = True,
    optimal_cache: Annotated[Path | None, typer.Option(help="Where optima (cost or length) are cached.")] = None,
    optimal_timeout: Annotated[float, typer.Option(help="Seconds Fast Downward gets per problem.")] = 60.0,
    concurrency: Concurrency = 4,
    seed: Seed = 0,
    resume: ResumeOpt = None,
    retry_errors: RetryErrorsOpt = True,
    out_dir: EvalOutOpt = Path("evals"),
    config: ConfigOpt = None,
) -> None:
    """Plan PDDL problems (SPIN-Bench): validity, look-ahead and optimality per domain, each plan
    checked with unified-planning."""
    from rolegraph.evals.spin._bench import pddl_benchmark

    chosen = [d.strip() for d in domains.split(",") if d.strip()] or None
    bench = pddl_benchmark(data, domains=chosen, per_domain=per_domain,
                           optimal_cache=(optimal_cache if optimal else False), optimal_timeout_s=optimal_timeout)
    store, directory = run_in_shell(bench, concurrency=concurrency, seed=seed, resume=resume,
                                    retry_errors=retry_errors, out_dir=out_dir, config=config)
    print_summary(store, directory)
    by_domain: dict[str, list[float]] = {}
    optimality: dict[str, list[float]] = {}
    measures: dict[str, set[str]] = {}  # "cost" (optimal / plan cost) or "length" (shortest / plan length)
    for r in store.records():
        if "valid" in r.scores:
            by_domain.setdefault(r.category, []).append(r.scores["valid"].value)
        if "optimality" in r.scores:
            optimality.setdefault(r.category, []).append(r.scores["optimality"].value)
            if r.scores["optimality"].metadata.get("measure"):
                measures.setdefault(r.category, set()).add(r.scores["optimality"].metadata["measure"])
    table = Table(title="plan validity and optimality per domain", title_justify="left")
    table.add_column("domain")
    table.add_column("valid [95% CI]", justify="right")
    table.add_column("optimality [95% CI]", justify="right")
    table.add_column("measure")
    table.add_column("n", justify="right")
    for d, v in sorted(by_domain.items()):
        table.add_row(d, estimate_text(v, True), estimate_text(optimality.get(d, []), False),
                      ",".join(sorted(measures.get(d, ()))) or "-", str(len(v)))
    out.print(table)


def eval_diplomacy(
    powers: Annotated[str, typer.Option(help="The LLM powers, comma-separated; the others are bots that give the "
                                             "first legal order per unit.")] = "FRANCE",
    games: Games = 1,
    rounds: Annotated[int, typer.Option(min=0, help="Negotiation rounds per movement phase.")] = 3,
    end_year: Annotated[int, typer.Option(min=1901, help="Stop after this year.")] = 1902,
    token_budget: Annotated[int | None, typer.Option(min=1, help="Stop once a game has used this many tokens.")] = None,
    judge: Annotated[bool, typer.Option(help="Have the 'judge' role annotate every message (SPIN-Bench's fields).")] = False,
    mode: Mode = "free",
    concurrency: Concurrency = 2,
    seed: Seed = 0,
    resume: ResumeOpt = None,
    retry_errors: RetryErrorsOpt = True,
    out_dir: EvalOutOpt = Path("evals"),
    config: ConfigOpt = None,
) -> None:
    """Play Diplomacy (SPIN-Bench): LLM powers negotiate and order against bots; reports supply
    centres and, with --judge, the negotiation annotations."""
    from rolegraph.evals.spin._bench import diplomacy_benchmark

    chosen = [p.strip() for p in powers.split(",") if p.strip()]
    try:
        bench = diplomacy_benchmark(games=games, llm_powers=chosen, negotiation_rounds=rounds, end_year=end_year,
                                    token_budget=token_budget, judge=judge, mode=mode, seed=seed)
        next(iter(bench.cases()))  # validates the powers before anything starts
    except ValidationError as exc:
        raise UserError("; ".join(str(e["msg"]).removeprefix("Value error, ") for e in exc.errors())) from None
    store, directory = run_in_shell(bench, concurrency=concurrency, seed=seed, resume=resume,
                                    retry_errors=retry_errors, out_dir=out_dir, config=config)
    print_summary(store, directory)


def register(app: typer.Typer) -> None:
    app.command("spin.tictactoe")(_game_command("tictactoe", "minimax"))
    app.command("spin.connect4")(_game_command("connect4", "bitbully"))
    app.command("spin.chess")(_game_command("chess", "stockfish-0"))
    app.command("spin.hanabi")(_game_command("hanabi", "hanabi-bot"))
    app.command("spin.diplomacy")(eval_diplomacy)
    app.command("spin.pddl")(eval_pddl)
