"""LVAS-Agent's metrics and synthetic benchmark: shot-boundary precision and recall against known
cuts, audio-video alignment (each designed event's rendered onset against its designed start, in
ms), label validity (every label in the library), coverage (every segment has a background), and
the commands `rolegraph run lvas` and `rolegraph eval lvas`."""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import numpy as np
import typer
from rich.console import Console
from rich.table import Table

from rolegraph._cli_options import ConfigOpt, EvalOutOpt, ResumeOpt, RetryErrorsOpt
from rolegraph.evals._core import Benchmark, Case, Score
from rolegraph.runtime import Runtime

if TYPE_CHECKING:
    from rolegraph.graphs import GraphSolver

out = Console()


def synthetic_videos(directory: str | Path, *, n: int = 3, seed: int = 0) -> list[tuple[Path, list[tuple[float, float]]]]:
    """Videos of 3-5 scenes with known cuts, some cutting only in hue (same brightness)."""
    from rolegraph.tools.video import Scene, write_synthetic_video

    rng = random.Random(seed)
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    out_: list[tuple[Path, list[tuple[float, float]]]] = []
    for i in range(n):
        colours = rng.sample(["red", "green", "blue", "yellow", "purple", "orange", "cyan"], rng.choice([3, 4, 5]))
        scenes = [Scene(seconds=rng.choice([2.0, 3.0, 4.0]), colour=c,
                        shape=rng.choice([None, "circle", "square"]), shape_colour="grey") for c in colours]
        path = d / f"lvas-{i:03d}.mp4"
        out_.append((path, write_synthetic_video(path, scenes)))
    return out_


def alignment_errors_ms(script: dict[str, Any], families: dict[str, str]) -> list[float]:
    """For each designed event, |rendered onset - designed start| in ms (each event rendered alone
    on the timeline the way the mixer places it)."""
    from rolegraph.tools.audio import RATE, first_onset, mix, synth_effect

    errors = []
    for i, seg in enumerate(script["segments"]):
        for j, s in enumerate((seg.get("design") or {}).get("audio", [])):
            sound = synth_effect(families.get(s["label"], "other"), max(0.1, s["end"] - s["start"]), seed=i * 100 + j)
            alone = mix([("effect", s["start"], sound, 0.0)], script["duration"])
            onset = first_onset(alone)
            if onset is not None:
                errors.append(abs(onset - round(s["start"] * RATE) / RATE) * 1000)
    return errors


def lvas_solver(options: Any, out_dir: Path) -> GraphSolver[Any]:
    """LVAS-Agent on each case's video, its files in OUT_DIR/<case>-<repeat>. What is scored keeps
    its old shape: the result's fields but trace_dir and the newer status and error."""
    from rolegraph.graphs import lvas

    return lvas.lvas.solver(
        options=options,
        input=lambda case, repeat: lvas.LvasInput(video=case.input["video"], out_dir=str(out_dir / f"{case.id}-{repeat}")),
        output=lambda result: result.model_dump(mode="json", exclude={"trace_dir", "status", "error"}))


@dataclass(frozen=True)
class ShotScore:
    which: str  # precision | recall

    @property
    def name(self) -> str:
        return f"shot_{self.which}"

    async def __call__(self, case: Case, output: Any) -> Score:
        from rolegraph.tools.shots import Shot, boundary_scores

        found = [Shot(start=s, end=e) for s, e in output["shots"]]
        p, r = boundary_scores(found, [tuple(x) for x in case.target["spans"]])
        return Score(value=p if self.which == "precision" else r, explanation=f"{len(found)} shots found")


@dataclass
class LabelValidity:
    labels: Any
    name: str = "label_validity"

    async def __call__(self, case: Case, output: Any) -> Score:
        used = [s["label"] for seg in output["segments"] if seg.get("design")
                for s in seg["design"]["background"] + seg["design"]["audio"]]
        ok = sum(u in self.labels for u in used)
        return Score(value=ok / len(used) if used else 1.0, explanation=f"{ok} of {len(used)} labels in the library")


@dataclass(frozen=True)
class Coverage:
    name: str = "coverage"

    async def __call__(self, case: Case, output: Any) -> Score:
        segs = output["segments"]
        covered = sum(bool(seg.get("design") and seg["design"]["background"]) for seg in segs)
        return Score(value=covered / len(segs) if segs else 0.0, explanation=f"{covered} of {len(segs)} segments")


@dataclass
class Alignment:
    families: Any
    name: str = "alignment_ms"

    async def __call__(self, case: Case, output: Any) -> Score:
        import json

        script = json.loads(Path(output["outputs"]["script"]).read_text())
        errors = alignment_errors_ms(script, {k: v.family for k, v in self.families.items()})
        value = float(np.mean(errors)) if errors else 0.0
        return Score(value=value, explanation=f"{len(errors)} events, worst {max(errors, default=0):.2f} ms")


def lvas_benchmark(videos: list[tuple[Path, list[tuple[float, float]]]], *, out_dir: Path, options: Any = None,
                   labels: str | None = None) -> Benchmark:
    from rolegraph.envs.lvas import load_labels
    from rolegraph.graphs.lvas import LvasOptions

    opts = options or LvasOptions(labels=labels)
    known = {s.label: s for s in load_labels(opts.labels)}

    def cases() -> Iterator[Case]:
        for path, spans in videos:
            yield Case(id=path.stem, input={"video": str(path)}, target={"spans": spans})

    return Benchmark(name="lvas", cases=cases, solver=lvas_solver(opts, out_dir),
                     scorers=[ShotScore("precision"), ShotScore("recall"), LabelValidity(known), Coverage(),
                              Alignment(known)],
                     config={"options": opts.model_dump(), "videos": len(videos)})


DetectorOpt = Annotated[str, typer.Option(help="content, adaptive or histogram")]
ThresholdOpt = Annotated[float | None, typer.Option(help="Detector threshold (content: 15 finds hue-only cuts).")]


def run_lvas(
    video: Annotated[Path, typer.Option(help="The video to give a soundtrack.")],
    out_dir: Annotated[Path, typer.Option("--out", help="Where the video, WAV and script go.")] = Path("lvas-out"),
    detector: DetectorOpt = "content",
    threshold: ThresholdOpt = 15.0,
    rounds: Annotated[int, typer.Option(min=1, help="Design-retrieval-revision rounds at most.")] = 2,
    labels: Annotated[Path | None, typer.Option(help="VGG-Sound stat.csv (default: the shared copy).")] = None,
    config: ConfigOpt = None,
) -> None:
    """Dub a video (LVAS-Agent): shots, captions, merge discussion, sound design against the sound
    library, then the mixed soundtrack muxed into the video."""
    from rolegraph.graphs import lvas

    options = lvas.LvasOptions(detector=detector, threshold=threshold, rounds=rounds,
                               labels=str(labels) if labels else None)
    runtime = Runtime.load(config)
    with runtime:
        r = lvas.run_sync(video, out_dir, runtime=runtime, options=options)
    table = Table(title=f"{video.name}: {len(r.shots)} shots, {len(r.segments)} segments after {r.merges} merges, "
                        f"{r.rounds} design rounds ({r.mode})", title_justify="left")
    for col in ("segment", "caption", "background", "events"):
        table.add_column(col)
    for s in r.segments:
        d = s.design
        table.add_row(f"{s.start:.1f}-{s.end:.1f}s", s.caption.Summary if s.caption else "",
                      ", ".join(x.label for x in d.background) if d else "",
                      ", ".join(f"{x.label}@{x.start:.1f}s" for x in d.audio) if d else "")
    out.print(table)
    for k, v in r.outputs.items():
        out.print(f"{k}: {v}")
    out.print(f"trace: {r.run_id}")


def eval_lvas(
    synthetic: Annotated[int, typer.Option(min=1, help="Generated videos with known cuts.")] = 3,
    detector: DetectorOpt = "content",
    threshold: ThresholdOpt = 15.0,
    labels: Annotated[Path | None, typer.Option(help="VGG-Sound stat.csv (default: the shared copy).")] = None,
    concurrency: Annotated[int, typer.Option(min=1)] = 1,
    resume: ResumeOpt = None,
    retry_errors: RetryErrorsOpt = True,
    out_dir: EvalOutOpt = Path("evals"),
    config: ConfigOpt = None,
) -> None:
    """Evaluate LVAS-Agent on synthetic videos: shot precision/recall, label validity, coverage
    and audio-video alignment."""
    from rolegraph.evals._runner import new_eval_id
    from rolegraph.evals._shell import print_summary, run_in_shell
    from rolegraph.graphs.lvas import LvasOptions

    directory = resume or out_dir / new_eval_id("lvas")
    videos = synthetic_videos(directory / "videos", n=synthetic)
    options = LvasOptions(detector=detector, threshold=threshold,
                          labels=str(labels) if labels else None)
    bench = lvas_benchmark(videos, out_dir=directory / "outputs", options=options)
    # the videos live in the evaluation's directory, so it is named first and the run "resumes" into it
    store, d = run_in_shell(bench, concurrency=concurrency, seed=0, resume=directory, out_dir=out_dir, config=config,
                               retry_errors=retry_errors)
    print_summary(store, d)


def register(run_app: typer.Typer, eval_app: typer.Typer) -> None:
    run_app.command("lvas")(run_lvas)
    eval_app.command("lvas")(eval_lvas)
