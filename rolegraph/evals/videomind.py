"""VideoMind on the evals runner: grounding recall and IoU per case, MCQ accuracy, and the
`rolegraph run videomind` / `rolegraph eval videomind` commands."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from rolegraph._cli_options import ConfigOpt, EvalOutOpt, ResumeOpt, RetryErrorsOpt
from rolegraph.envs.videomind import THRESHOLDS, VideoQuery, grounding_scores, iou, load_charades, load_jsonl
from rolegraph.errors import UserError
from rolegraph.evals._core import Benchmark, Case, Score
from rolegraph.runtime import Runtime

if TYPE_CHECKING:
    from rolegraph.graphs import GraphSolver

out = Console()
err = Console(stderr=True)


def videomind_solver(options: Any) -> GraphSolver[Any]:
    """VideoMind on each case (a VideoQuery: a question with options, or a grounding query). What
    is scored keeps its old shape: the result's fields but trace_dir and the newer status and error."""
    from rolegraph.graphs import videomind

    def question(case: Case) -> Any:
        item = VideoQuery.model_validate(case.input)
        return videomind.VideoQuestion(video=item.video, question=item.question or item.query, options=item.options,
                                       query=None if item.question else item.query)

    return videomind.videomind.solver(options=options, input=question, output=lambda result: result.model_dump(
        mode="json", exclude={"trace_dir", "status", "error"}))


def _ranked(output: Any) -> list[tuple[float, float]]:
    return [(c["start"], c["end"]) for c in output.get("candidates", [])]


@dataclass(frozen=True)
class Recall:
    """1 when any of the top k moments (k = 1, 3, 5) reaches the IoU threshold."""

    k: int
    threshold: float

    @property
    def name(self) -> str:
        return f"R{self.k}@{self.threshold}"

    async def __call__(self, case: Case, output: Any) -> Score:
        span = case.target["span"]
        ranked = _ranked(output)[: self.k]
        best = max((iou(p, span) for p in ranked), default=0.0)
        return Score(value=1.0 if best >= self.threshold else 0.0, explanation=f"best IoU {best:.2f}")


@dataclass(frozen=True)
class TopIoU:
    name: str = "IoU"

    async def __call__(self, case: Case, output: Any) -> Score:
        ranked = _ranked(output)
        value = iou(ranked[0], case.target["span"]) if ranked else 0.0
        return Score(value=value, explanation=f"top moment {ranked[0] if ranked else None}")


@dataclass(frozen=True)
class Accuracy:
    name: str = "accuracy"

    async def __call__(self, case: Case, output: Any) -> Score:
        got = output.get("answer_index")
        return Score(value=1.0 if got == case.target["answer"] else 0.0, explanation=f"answered {got}")


def videomind_benchmark(items: list[VideoQuery], *, options: Any = None) -> Benchmark:
    from rolegraph.graphs.videomind import VideoMindOptions

    opts = options or VideoMindOptions()
    grounded = any(i.span is not None for i in items)
    mcq = any(i.options and i.answer is not None for i in items)

    def cases() -> Iterator[Case]:
        for i in items:
            yield Case(id=i.id, input=i.model_dump(mode="json"), target={"span": i.span, "answer": i.answer})

    scorers: list[Any] = []
    if grounded:
        scorers += [Recall(k, t) for k in (1, 3, 5) for t in THRESHOLDS] + [TopIoU()]  # VideoMind's table order
    if mcq:
        scorers.append(Accuracy())
    return Benchmark(name="videomind" + ("-vision" if opts.vision else ""), cases=cases,
                     solver=videomind_solver(opts), scorers=scorers, config={"options": opts.model_dump(), "n": len(items)})


def run_videomind(
    video: Annotated[Path, typer.Option(help="A video file.")],
    question: Annotated[str, typer.Option(help="The question (or a grounding query when there are no options).")],
    options: Annotated[str, typer.Option(help="MCQ options, separated by '|'.")] = "",
    vision: Annotated[bool, typer.Option(help="Send frames as images (needs a vision-language model).")] = False,
    config: ConfigOpt = None,
) -> None:
    """Answer (or ground) one question about a video with VideoMind's four roles."""
    from rolegraph.graphs import videomind

    q = videomind.VideoQuestion(video=str(video), question=question,
                                options=[o.strip() for o in options.split("|") if o.strip()])
    runtime = Runtime.load(config)
    with runtime:
        r = videomind.run_sync(q, runtime=runtime, options=videomind.VideoMindOptions(vision=vision))
    out.print(f"mode: {r.mode}   route: {' -> '.join(r.route)}" + ("" if r.plan_parsed else " (plan unreadable: "
                                                                      "VideoMind's default route)"))
    table = Table(title=f"moments for: {r.query}", title_justify="left")
    for col in ("rank", "start s", "end s", "grounder confidence", "verifier score"):
        table.add_column(col, justify="right")
    for i, c in enumerate(r.candidates, 1):
        table.add_row(str(i), f"{c.start:.1f}", f"{c.end:.1f}", f"{c.confidence:.2f}",
                      "-" if c.score is None else f"{c.score:.3f}")
    out.print(table)
    if q.options:
        letter = "-" if r.answer_index is None else "ABCDEFGHIJ"[r.answer_index]
        out.print(f"answer: {letter} ({r.answer_text.strip()[:120]!r}) from the clip {r.clip}")
    out.print(f"trace: {r.run_id}")


def eval_videomind(
    data: Annotated[Path | None, typer.Option(help="JSONL of video queries (video, query, span, question, "
                                                   "options, answer).")] = None,
    charades: Annotated[Path | None, typer.Option(help="Charades-STA annotations (VID START END##QUERY).")] = None,
    video_dir: Annotated[Path | None, typer.Option(help="Videos for --charades.")] = None,
    synthetic: Annotated[int | None, typer.Option(min=1, help="Generate N synthetic videos with known spans "
                                                              "and evaluate on them.")] = None,
    vision: Annotated[bool, typer.Option(help="Send frames as images.")] = False,
    limit: Annotated[int | None, typer.Option(min=1)] = None,
    concurrency: Annotated[int, typer.Option(min=1)] = 2,
    resume: ResumeOpt = None,
    retry_errors: RetryErrorsOpt = True,
    out_dir: EvalOutOpt = Path("evals"),
    config: ConfigOpt = None,
) -> None:
    """Evaluate VideoMind: R@1, R@3 and R@5 at IoU 0.3/0.5/0.7, mIoU and MCQ accuracy, with a report."""
    from rolegraph.envs.videomind import synthetic_benchmark
    from rolegraph.evals._runner import new_eval_id
    from rolegraph.evals._shell import print_summary, run_in_shell
    from rolegraph.graphs.videomind import VideoMindOptions

    chosen = sum(x is not None for x in (data, charades, synthetic))
    if chosen != 1:
        raise UserError("give exactly one of --data, --charades (with --video-dir) or --synthetic N")
    if charades is not None:
        if video_dir is None:
            raise UserError("--charades needs --video-dir")
        items = list(load_charades(charades, video_dir))
    elif synthetic is not None:
        target = (resume or out_dir / new_eval_id("videomind-synthetic")) / "videos"
        items = list(load_jsonl(synthetic_benchmark(target, n=synthetic)))
    else:
        assert data is not None
        items = list(load_jsonl(data))
    items = items[:limit] if limit else items
    bench = videomind_benchmark(items, options=VideoMindOptions(vision=vision))
    store, directory = run_in_shell(bench, concurrency=concurrency, seed=0, resume=resume, out_dir=out_dir, config=config,
                                     retry_errors=retry_errors)
    print_summary(store, directory)
    records = [r for r in store.records() if r.status == "ok" and r.target and r.target.get("span")]
    if records:
        g = grounding_scores([_ranked(r.output) for r in records], [r.target["span"] for r in records])
        recalls = (("R1", g.recall_at_1), ("R3", g.recall_at_3), ("R5", g.recall_at_5))
        out.print("grounding: " + "  ".join(f"{k}@{t} {v:.3f}" for k, r in recalls for t, v in r.items())
                  + f"  mIoU {g.miou:.3f}  (n={g.n})")


def register(run_app: typer.Typer, eval_app: typer.Typer) -> None:
    run_app.command("videomind")(run_videomind)
    eval_app.command("videomind")(eval_videomind)
