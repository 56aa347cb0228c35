"""Being-0's tasks as a benchmark on the evals runner (success with a CI, sub-task success,
navigation efficiency, planner calls; tokens and wall time come with every record), the
`rolegraph run being0` / `rolegraph eval being0` commands, and the episode renderer."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from rolegraph._cli_options import ConcurrencyOpt, ConfigOpt, EvalOutOpt, ResumeOpt, RetryErrorsOpt
from rolegraph.envs.being0 import TASKS, get_task
from rolegraph.errors import UserError
from rolegraph.evals._core import Benchmark, Case, Score
from rolegraph.models.servers import default_concurrency
from rolegraph.runtime import Runtime

ABLATIONS = ("connector", "active_vision", "pose_adjustment")
out = Console()
err = Console(stderr=True)


def options_for(ablate: Sequence[str], **kw: Any) -> Any:
    from rolegraph.graphs.being0 import Being0Options

    unknown = [a for a in ablate if a not in ABLATIONS]
    if unknown:
        raise UserError(f"unknown ablation(s) {', '.join(unknown)}; use: {', '.join(ABLATIONS)}")
    return Being0Options(**{a: False for a in ablate}, **kw)


@dataclass(frozen=True)
class Field_:
    """A number from the episode result as a score."""

    name: str
    key: str

    async def __call__(self, case: Case, output: Any) -> Score:
        value = output[self.key]
        if self.key == "subtasks_done":
            return Score(value=value / output["subtasks_total"], explanation=f"{value} of {output['subtasks_total']}")
        return Score(value=float(value), explanation=f"{self.key} = {value}")


def episode_solver(options: Any) -> Any:
    """An episode per case (recorded), its seed the case's plus 1000 per repeat; the result less
    its frames and run status is scored, as the episode's fields."""
    from rolegraph.graphs.being0 import EpisodeSpec, being0

    return being0.solver(
        options=options,
        input=lambda case, repeat: EpisodeSpec(task=case.input["task"], seed=int(case.input["seed"]) + 1000 * repeat),
        seed=lambda case, repeat: int(case.input["seed"]) + 1000 * repeat,
        output=lambda result: result.model_dump(mode="json", exclude={"trace_dir", "frames", "status", "error"}))


def being0_benchmark(tasks: Sequence[str], *, episodes: int = 3, options: Any = None, seed: int = 0) -> Benchmark:
    from rolegraph.graphs.being0 import Being0Options

    for t in tasks:
        get_task(t)
    opts = options or Being0Options()

    def cases() -> Iterator[Case]:
        for t in tasks:
            for i in range(episodes):
                yield Case(id=f"{t}-{i:03d}", input={"task": t, "seed": seed + i}, metadata={"category": t})

    off = [a for a in ABLATIONS if not getattr(opts, a)]
    name = "being0" + ("-without-" + "-".join(off) if off else "")
    scorers = [Field_("success", "success"), Field_("subtask_success", "subtasks_done"),
               Field_("efficiency", "efficiency"), Field_("distance_m", "distance"),
               Field_("skill_steps", "skill_steps"), Field_("planner_calls", "planner_calls")]
    return Benchmark(name=name, cases=cases, solver=episode_solver(opts), scorers=scorers,
                     config={"tasks": list(tasks), "episodes": episodes, "options": opts.model_dump()})


def render_episode(result: Any, directory: Path) -> Path:
    """A top-down PNG per planner step and an animated GIF of the episode."""
    from rolegraph.envs.being0 import default_office, top_down

    directory.mkdir(parents=True, exist_ok=True)
    layout = default_office()
    task = get_task(result.task)
    frames = [top_down(layout, task.world()), *(top_down(layout, w) for w in result.frames)]
    for i, img in enumerate(frames):
        img.save(directory / f"step-{i:03d}.png")  # type: ignore[attr-defined]
    gif = directory / "episode.gif"
    frames[0].save(gif, save_all=True, append_images=frames[1:], duration=700, loop=0)  # type: ignore[attr-defined]
    return gif


def _ablate(text: str) -> list[str]:
    return [a.strip() for a in text.split(",") if a.strip()]


AblateOpt = Annotated[str, typer.Option(help="Comma-separated: connector (the planner calls primitive skills "
                                             "itself), active_vision (fixed head), pose_adjustment.")]
ConstrainedOpt = Annotated[bool, typer.Option(help="Offer the planner its possible calls as a schema enum.")]


def run_being0(
    task: Annotated[str, typer.Option(help=f"One of: {', '.join(TASKS)}")],
    seed: Annotated[int, typer.Option()] = 0,
    ablate: AblateOpt = "",
    constrained: ConstrainedOpt = False,
    max_steps: Annotated[int, typer.Option(min=1, help="Planner steps before giving up.")] = 20,
    render: Annotated[Path | None, typer.Option(help="Write a top-down PNG per step and an animated GIF here.")] = None,
    config: ConfigOpt = None,
) -> None:
    """Run one Being-0 episode in the simulated office and print it (recorded as a trace)."""
    from rolegraph.graphs import being0

    get_task(task)
    options = options_for(_ablate(ablate), constrained=constrained, max_steps=max_steps)
    runtime = Runtime.load(config)
    with runtime:
        result = being0.run_sync(task, runtime=runtime, seed=seed, options=options)
    table = Table(title=f"{task} (seed {seed}): {get_task(task).instruction}", title_justify="left")
    for col in ("step", "action", "result", "skills"):
        table.add_column(col, justify="right" if col in ("step", "skills") else "left")
    for r in result.records:
        table.add_row(str(r.step + 1), r.action, ("ok: " if r.ok else "failed: ") + r.message, str(len(r.skills)))
    out.print(table)
    out.print(f"success: {result.success}   sub-tasks: {result.subtasks_done}/{result.subtasks_total}   "
              f"walked {result.distance:.1f} m (shortest {result.reference_distance:.1f} m)   "
              f"planner calls: {result.planner_calls}   tokens: {result.prompt_tokens + result.completion_tokens}")
    out.print(f"trace: {result.run_id}  (rolegraph trace view {result.run_id})")
    if render is not None:
        out.print(f"frames and GIF: {render_episode(result, render)}")


def eval_being0(
    tasks: Annotated[str, typer.Option(help="Comma-separated task names, or all.")] = "all",
    episodes: Annotated[int, typer.Option(min=1, help="Episodes per task (seeds seed .. seed+N-1).")] = 3,
    ablate: AblateOpt = "",
    constrained: ConstrainedOpt = False,
    max_steps: Annotated[int, typer.Option(min=1)] = 20,
    concurrency: ConcurrencyOpt = default_concurrency(),
    seed: Annotated[int, typer.Option()] = 0,
    resume: ResumeOpt = None,
    retry_errors: RetryErrorsOpt = True,
    out_dir: EvalOutOpt = Path("evals"),
    config: ConfigOpt = None,
) -> None:
    """Evaluate Being-0 on the office tasks: success rate with a CI, sub-task success, navigation
    efficiency, planner calls, tokens and wall time, per task; ablations as flags."""
    from rolegraph.evals._shell import print_summary, run_in_shell

    names = list(TASKS) if tasks == "all" else [t.strip() for t in tasks.split(",") if t.strip()]
    bench = being0_benchmark(names, episodes=episodes, seed=seed,
                             options=options_for(_ablate(ablate), constrained=constrained, max_steps=max_steps))
    store, directory = run_in_shell(bench, concurrency=concurrency, seed=seed, resume=resume, out_dir=out_dir, config=config,
                                     retry_errors=retry_errors)
    summary = print_summary(store, directory)
    by_task: dict[str, list[Any]] = {}
    for r in store.records():
        by_task.setdefault(r.category, []).append(r)
    table = Table(title="per task", title_justify="left")
    for col in ("task", "success", "sub-tasks", "efficiency", "planner calls", "tokens", "wall s"):
        table.add_column(col, justify="left" if col == "task" else "right")
    per_task = {}
    for name, recs in sorted(by_task.items()):
        ok = [r for r in recs if r.status == "ok"]

        def mean(key: str, rs: list[Any] = ok) -> float:
            return sum(r.scores[key].value for r in rs) / len(rs) if rs else 0.0

        row = {"success": mean("success"), "subtasks": mean("subtask_success"), "efficiency": mean("efficiency"),
               "planner_calls": mean("planner_calls"),
               "tokens": sum(r.prompt_tokens + r.completion_tokens for r in recs) / len(recs),
               "wall_s": sum(r.latency_s for r in recs) / len(recs)}
        per_task[name] = row
        table.add_row(name, f"{row['success']:.2f}", f"{row['subtasks']:.2f}", f"{row['efficiency']:.2f}",
                      f"{row['planner_calls']:.0f}", f"{row['tokens']:.0f}", f"{row['wall_s']:.1f}")
    out.print(table)
    summary["per_task"] = per_task
    (directory / "summary.json").write_text(store.redactor(json.dumps(summary, indent=2, default=str)))


def register(run_app: typer.Typer, eval_app: typer.Typer) -> None:
    run_app.command("being0")(run_being0)
    eval_app.command("being0")(eval_being0)
