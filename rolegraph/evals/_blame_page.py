"""The blame page: a recorded run's model calls as bars of their success rate when re-sampled,
with intervals, the decisive call marked, each bar linking to a sampled run's page, and what the
blame cost (live calls, tokens, the budget)."""

from __future__ import annotations

import html
from pathlib import Path
from typing import TYPE_CHECKING

from rolegraph.traces import TraceStore, write_assets, write_view

if TYPE_CHECKING:
    from rolegraph.evals.blame import BlameReport


# -- the page --------------------------------------------------------------------------------


def write_blame_page(report: BlameReport, out: str | Path, *, runs: TraceStore | None = None) -> Path:
    """`blame.html`: the run's calls in order as bars of p with their intervals, the decisive call
    marked, each bar linking to a sampled trace's page (written under traces/, sharing one copy of
    the viewer's assets)."""
    out = Path(out)
    pages = out / "traces"
    links: dict[int, list[tuple[str, str]]] = {}
    if runs is not None:
        assets = write_assets(out / "assets")
        pages.mkdir(parents=True, exist_ok=True)
        for s in report.steps:
            for tid in s.traces[:8]:
                page = pages / f"{tid}.html"
                if not page.exists():
                    write_view(runs.load(tid), page, assets=assets)
                links.setdefault(s.index, []).append((tid, f"traces/{tid}.html"))
    width, bar_h, gap, left = 640, 22, 8, 230
    height = len(report.steps) * (bar_h + gap) + 40
    rows = []
    for k, s in enumerate(report.steps):
        y = 20 + k * (bar_h + gap)
        decisive = s.index == report.decisive
        label = html.escape(f"call {s.index} · step {s.step} · {s.node} ({s.role})")
        rows.append(f'<text x="{left - 8}" y="{y + 15}" text-anchor="end" class="lbl">{label}</text>')
        if s.samples:
            x0, w = left, max(1.0, s.p * (width - left - 20))
            href = links.get(s.index, [("", "")])[0][1]
            bar = (f'<rect class="bar{" decisive" if decisive else ""}" data-call="{s.index}" x="{x0}" y="{y}" '
                   f'width="{w:.1f}" height="{bar_h}"><title>p = {s.p:.2f} [{s.low:.2f}, {s.high:.2f}], '
                   f'{s.samples} samples</title></rect>')
            rows.append(f'<a href="{html.escape(href)}">{bar}</a>' if href else bar)
            lo, hi = left + s.low * (width - left - 20), left + s.high * (width - left - 20)
            rows.append(f'<line class="ci" x1="{lo:.1f}" x2="{hi:.1f}" y1="{y + bar_h / 2}" y2="{y + bar_h / 2}"/>')
            rows.append(f'<text x="{width + 45}" y="{y + 15}" text-anchor="end" class="val">{s.p:.2f}</text>')
        else:
            rows.append(f'<text x="{left + 4}" y="{y + 15}" class="val unsampled">not sampled</text>')
    y = 20 + len(report.steps) * (bar_h + gap)  # the recorded outcome closes the series, then the scale
    x = left + report.outcome * (width - left - 20)
    rows.append(f'<text x="{left - 8}" y="{y + 15}" text-anchor="end" class="lbl">recorded outcome</text>'
                f'<circle class="outcome" cx="{x:.1f}" cy="{y + 11}" r="5"/>'
                f'<text x="{width + 45}" y="{y + 15}" text-anchor="end" class="val">{report.outcome:.2f}</text>')
    for tick in (0.0, 0.5, 1.0):
        tx = left + tick * (width - left - 20)
        rows.append(f'<line class="tick" x1="{tx:.1f}" x2="{tx:.1f}" y1="14" y2="{y + bar_h + 6}"/>'
                    f'<text x="{tx:.1f}" y="{y + bar_h + 20}" text-anchor="middle" class="val">{tick:g}</text>')
    height += bar_h + 30
    svg = (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width + 60}" height="{height}" role="img" '
           f'aria-label="success rate when re-sampled from each call">{"".join(rows)}</svg>')
    samples_html = "".join(
        f"<li>call {i}: " + " ".join(f'<a href="{html.escape(h)}" title="{html.escape(t)}">sample {j + 1}</a>'
                                     for j, (t, h) in enumerate(items)) + "</li>"
        for i, items in links.items())
    title = html.escape(f"blame · {report.run_id}")
    how = {"bisect": f"searched for the drop (bisection), up to {report.samples} samples per call it sampled",
           "adaptive sweep": f"every call, up to {report.samples} samples each (adaptive)"}.get(
        report.method, f"every call, {report.samples} samples each")
    notes = "".join(f"<li>{html.escape(n)}</li>" for n in report.notes)
    budget = (' <b class="reached">The budget ran out: what it left undecided is listed below.</b>'
              if report.budget_reached else "")
    document = f"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font: 14px system-ui, sans-serif; margin: 24px; color: #222; max-width: 960px; }}
.bar {{ fill: #8fa8d8; }} .bar.decisive {{ fill: #d0533a; }} .ci {{ stroke: #222; stroke-width: 2; }}
.lbl, .val {{ font-size: 12px; fill: #333; }} .tick {{ stroke: #ddd; }} .outcome {{ fill: #222; }}
.evidence {{ background: #f6f3ee; padding: 10px 14px; border-radius: 6px; }}
.unsampled {{ fill: #999; font-style: italic; }} .reached {{ color: #b03a2e; }}
</style></head><body data-errors="0">
<h1>Which call made run {html.escape(report.run_id)} fail?</h1>
<p>Graph <b>{html.escape(report.graph)}</b>, recorded outcome <b>{report.outcome:g}</b>. Each bar is the success rate
when the run is re-sampled from that model call (the calls before it answered from the trace), with its 95% Wilson
interval; {html.escape(how)}. The decisive call, the largest drop to the next bar, is red.</p>
<p class="cost" data-live-calls="{report.live_calls}" data-tokens="{report.tokens}">Cost:
{html.escape(report.cost)}.{budget}</p>
<p class="evidence">{html.escape(report.evidence)}</p>
{f'<ul class="notes">{notes}</ul>' if notes else ""}
{svg}
<h2>Sampled runs</h2><ul>{samples_html or "<li>none linked</li>"}</ul>
<script>
window.addEventListener("error", () => {{ document.body.dataset.errors = String(+document.body.dataset.errors + 1); }});
document.body.dataset.bars = String(document.querySelectorAll("rect.bar").length);
document.body.dataset.rendered = "ok";
</script>
</body></html>"""
    out.mkdir(parents=True, exist_ok=True)
    path = out / "blame.html"
    path.write_text(document, encoding="utf-8")
    return path
