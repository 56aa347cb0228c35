"""Eval reports: `report.json` and a self-contained `report.html` (summary, per-scorer metrics with
confidence intervals, pass@k / pass^k and flip rates when repeated, plots, and every case linked
to its trace page)."""

from __future__ import annotations

import json
import math
import statistics
import urllib.parse
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2

from rolegraph.evals import metrics
from rolegraph.evals._core import EvalRecord
from rolegraph.evals._plots import bar_chart, grouped_bar_chart, histogram
from rolegraph.evals._store import EvalStore

MAX_CASE_ROWS = 500
"""Cases listed (and trace pages written) in the HTML; report.json has every one."""


def _est(e: metrics.Estimate) -> dict[str, Any]:
    return {"value": _num(e.value), "low": _num(e.low), "high": _num(e.high), "n": e.n}


def _num(x: float) -> float | None:
    return None if math.isnan(x) else round(x, 6)


def _ci(values: list[float], binary: bool) -> metrics.Estimate:
    """Wilson's interval for 0/1 scores (sound at small n and at 0% or 100%), else a bootstrap."""
    return metrics.wilson_ci(int(sum(values)), len(values)) if binary else metrics.mean_ci(values)


def summarize(store: EvalStore) -> dict[str, Any]:
    """Everything the report shows, as JSON-ready data. Scores are over the ok results only; errors
    and timeouts are counted beside them (`errors`, `status`), never scored as 0. pass@k and flip
    rates use the cases whose every repeat is ok. `topk` pools, per scorer, the ranks a scorer
    recorded in `metadata["topk"]` (`metrics.pooled_topk`: cumulative top-k fractions per group)."""
    meta = store.meta()
    by_case: dict[str, list[EvalRecord]] = defaultdict(list)
    statuses: Counter[str] = Counter()
    scores: dict[str, list[float]] = defaultdict(list)
    by_category: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    topk: dict[str, list[dict[str, Any]]] = defaultdict(list)
    latency, tokens = [], []
    adopted = 0
    for r in store.records():
        by_case[r.case_id].append(r)
        statuses[r.status] += 1
        adopted += r.adopted
        latency.append(r.latency_s)
        tokens.append(float(r.prompt_tokens + r.completion_tokens))
        if r.status != "ok":  # an error or timeout is no answer, not a wrong one: counted apart
            continue
        for name, s in r.scores.items():
            scores[name].append(s.value)
            by_category[name][r.category or "(none)"].append(s.value)
            if "topk" in s.metadata:  # ranks a scorer recorded per item, pooled over the results
                topk[name].append(s.metadata["topk"])
    repeats = max((len(v) for v in by_case.values()), default=0)
    errors = sum(n for status, n in statuses.items() if status != "ok")
    scorer_stats: dict[str, Any] = {}
    for name, values in scores.items():
        binary = all(v in (0.0, 1.0) for v in values)
        entry: dict[str, Any] = {"mean": _est(_ci(values, binary)), "binary": binary, "errors": errors,
                                 "categories": {c: _est(_ci(v, binary)) for c, v in sorted(by_category[name].items())}}
        if binary and repeats > 1:
            outcomes = {cid: [rec.scores[name].value == 1.0 for rec in recs
                                if rec.status == "ok" and name in rec.scores]
                        for cid, recs in by_case.items()}
            full = {cid: o for cid, o in outcomes.items() if len(o) == repeats}
            if full:
                entry["pass_at_k"] = {k: _num(metrics.mean_over_cases(full, metrics.pass_at_k, k))
                                      for k in range(1, repeats + 1)}
                entry["pass_hat_k"] = {k: _num(metrics.mean_over_cases(full, metrics.pass_hat_k, k))
                                       for k in range(1, repeats + 1)}
                entry["flip_rate"] = _num(metrics.mean_flip_rate(full))
        scorer_stats[name] = entry
    return {
        "eval_id": store.eval_id, "benchmark": meta.get("benchmark"), "config": meta.get("config"),
        "cases": len(by_case), "repeats": repeats, "results": sum(statuses.values()), "status": dict(statuses),
        "errors": errors, "adopted": adopted,
        "scorers": scorer_stats,
        "topk": {name: metrics.pooled_topk(recorded) for name, recorded in topk.items()},
        "latency_s": {"median": _num(statistics.median(latency)) if latency else None,
                      "p90": _num(sorted(latency)[int(0.9 * (len(latency) - 1))]) if latency else None},
        "tokens": {"total": int(sum(tokens)), "median": _num(statistics.median(tokens)) if tokens else None},
    }


def _topk_plots(name: str, pooled: dict[str, Any]) -> list[str]:
    """One grouped bar chart per measure: the cumulative top-k fraction per group, k = 1 to max_k."""
    if not pooled:
        return []
    ks = [str(k) for k in range(1, int(pooled["max_k"]) + 1)]
    return [grouped_bar_chart(ks, {group: [entry["fractions"][k] for k in ks] for group, entry in groups.items()},
                              y_max=1.0, title=f"{name}: {measure} top-k fraction by k")
            for measure, groups in pooled["measures"].items()]


@lru_cache(maxsize=1)
def _template() -> jinja2.Template:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(Path(__file__).parent / "assets")), autoescape=True,
                             undefined=jinja2.StrictUndefined)
    return env.get_template("report.html.j2")


def render_report(store: EvalStore, *, link: Callable[[EvalRecord], str | None] | None = None,
                  app: Mapping[str, Any] | None = None, summary: dict[str, Any] | None = None) -> str:
    """The report page's HTML (not redacted again; `write_report` does that). `link(record)` gives
    a case's trace URL; `app` adds what `rolegraph ui` shows around it: `nav` (label -> URL) and
    `progress_url` (JSON progress polled while the evaluation runs)."""
    summary = summary or summarize(store)
    records = list(store.records()) if summary["results"] <= 20_000 else []
    plots: list[str] = []
    for name, entry in summary["scorers"].items():
        values = [r.scores[name].value for r in records if name in r.scores]
        plots.append(histogram(values, bins=10, title=f"{name}: score distribution"))
        cats = entry["categories"]
        if len(cats) > 1:
            labels = list(cats)
            plots.append(bar_chart(labels, [cats[c]["value"] or 0.0 for c in labels],
                                   low=[cats[c]["low"] if cats[c]["low"] is not None else math.nan for c in labels],
                                   high=[cats[c]["high"] if cats[c]["high"] is not None else math.nan for c in labels],
                                   y_max=1.0 if entry["binary"] else None, title=f"{name} by category (95% CI)"))
    for name, pooled in summary.get("topk", {}).items():
        plots.extend(_topk_plots(name, pooled))
    plots.append(histogram([float(r.prompt_tokens + r.completion_tokens) for r in records], title="tokens per case"))
    plots.append(histogram([r.latency_s for r in records], title="latency per case", unit=" s"))
    rows = []
    for r in records[:MAX_CASE_ROWS]:
        rows.append({"case": r.case_id, "repeat": r.repeat, "status": r.status, "category": r.category,
                     "scores": {k: s.value for k, s in r.scores.items()}, "output": json.dumps(r.output),
                     "target": json.dumps(r.target), "error": r.error or "", "latency": r.latency_s,
                     "run_id": r.run_id or "", "link": link(r) if link else None})
    return _template().render(s=summary, plots=[p for p in plots if p], rows=rows,
                              truncated=max(0, summary["results"] - len(rows)), app=dict(app) if app else None)


def write_report(store: EvalStore, out_dir: str | Path | None = None, *, trace_pages: bool = True) -> Path:
    """Write report.json and report.html (and, with `trace_pages`, one page per listed case under
    `traces/`, sharing one copy of the viewer's script in `assets/`); returns the HTML path."""
    from rolegraph.traces import Trace, write_view

    out = Path(out_dir) if out_dir else store.dir / "report"
    out.mkdir(parents=True, exist_ok=True)
    summary = summarize(store)
    redact = store.redactor  # results were redacted when stored; this catches keys learnt since
    (out / "report.json").write_text(redact(json.dumps(summary, indent=2)))

    def link(r: EvalRecord) -> str | None:
        if not (trace_pages and r.trace_dir and Path(r.trace_dir, "events.jsonl").exists()):
            return None
        # one shared copy of the viewer's script in report/assets, not 3.4 MB inlined per case
        page = out / "traces" / f"{Path(r.trace_dir).name}.html"
        if not page.exists():
            page.parent.mkdir(exist_ok=True)
            write_view(Trace.load(r.trace_dir), page, assets=out / "assets", redactor=redact)
        return f"traces/{urllib.parse.quote(page.name)}"

    path = out / "report.html"
    path.write_text(redact(render_report(store, link=link, summary=summary)))
    return path
