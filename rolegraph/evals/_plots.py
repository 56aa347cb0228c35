"""Small SVG charts for reports: bars (with interval whiskers), grouped bars and histograms. Inline SVG keeps a
report one self-contained file with no plotting library."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from html import escape

W, H, PAD_L, PAD_B, PAD_T = 520, 220, 46, 46, 14
COLOR = "#5b4bd6"


def _axis(y_max: float, fmt: str = "{:.2g}") -> str:
    out = []
    for i in range(5):
        v = y_max * i / 4
        y = H - PAD_B - (H - PAD_B - PAD_T) * i / 4
        out.append(f'<line x1="{PAD_L}" x2="{W - 8}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e3e1ef"/>'
                   f'<text x="{PAD_L - 6}" y="{y + 4:.1f}" text-anchor="end">{escape(fmt.format(v))}</text>')
    return "".join(out)


def bar_chart(labels: Sequence[str], values: Sequence[float], *, low: Sequence[float] | None = None,
              high: Sequence[float] | None = None, y_max: float | None = None, title: str = "") -> str:
    """Vertical bars; `low`/`high` draw an interval on each bar."""
    if not values:
        return ""
    finite = [v for v in [*values, *(high or [])] if not math.isnan(v)]
    top = y_max if y_max is not None else (max(finite, default=0.0) * 1.1 or 1.0)  # all zero: a 0-1 axis
    n = len(values)
    slot = (W - PAD_L - 8) / n
    plot_h = H - PAD_B - PAD_T
    parts = [_axis(top)]
    for i, (label, raw) in enumerate(zip(labels, values, strict=True)):
        v = 0.0 if math.isnan(raw) else raw
        x = PAD_L + i * slot + slot * 0.15
        h = plot_h * min(v, top) / top
        parts.append(f'<rect x="{x:.1f}" y="{H - PAD_B - h:.1f}" width="{slot * 0.7:.1f}" height="{h:.1f}" '
                     f'fill="{COLOR}" opacity="0.8"><title>{escape(label)}: {v:.3g}</title></rect>')
        if low is not None and high is not None and not math.isnan(low[i]):
            cx = x + slot * 0.35
            y1, y2 = H - PAD_B - plot_h * low[i] / top, H - PAD_B - plot_h * high[i] / top
            parts.append(f'<path d="M{cx:.1f},{y1:.1f}V{y2:.1f}M{cx - 5:.1f},{y1:.1f}h10M{cx - 5:.1f},{y2:.1f}h10" '
                         f'stroke="#1d1d28" fill="none"/>')
        short = label if len(label) <= 14 else label[:13] + "…"
        parts.append(f'<text x="{x + slot * 0.35:.1f}" y="{H - PAD_B + 16}" text-anchor="middle">{escape(short)}</text>')
    return _svg(parts, title)


SERIES_COLORS = ("#5b4bd6", "#e07b39", "#2a9d8f", "#c2466b", "#8a8a9e", "#3a86c8", "#b5a12c", "#6b3fa0")


def grouped_bar_chart(labels: Sequence[str], series: Mapping[str, Sequence[float]], *, y_max: float | None = None,
                      title: str = "") -> str:
    """One group of bars per label, one bar per series in each (a legend names the series)."""
    if not labels or not series:
        return ""
    finite = [v for values in series.values() for v in values if not math.isnan(v)]
    top = y_max if y_max is not None else (max(finite, default=0.0) * 1.1 or 1.0)
    slot = (W - PAD_L - 8) / len(labels)
    bar = slot * 0.8 / len(series)
    plot_h = H - PAD_B - PAD_T
    parts = [_axis(top)]
    for s, (name, values) in enumerate(series.items()):
        color = SERIES_COLORS[s % len(SERIES_COLORS)]
        for i, (label, raw) in enumerate(zip(labels, values, strict=True)):
            v = 0.0 if math.isnan(raw) else raw
            x = PAD_L + i * slot + slot * 0.1 + s * bar
            h = plot_h * min(v, top) / top
            parts.append(f'<rect x="{x:.1f}" y="{H - PAD_B - h:.1f}" width="{bar:.1f}" height="{h:.1f}" '
                         f'fill="{color}"><title>{escape(name)}, {escape(label)}: {v:.3g}</title></rect>')
        lx = PAD_L + 8 + s * 120
        short = name if len(name) <= 16 else name[:15] + "…"
        parts.append(f'<rect x="{lx}" y="{H - 30}" width="9" height="9" fill="{color}"/>'
                     f'<text x="{lx + 13}" y="{H - 22}">{escape(short)}</text>')
    for i, label in enumerate(labels):
        parts.append(f'<text x="{PAD_L + (i + 0.5) * slot:.1f}" y="{H - PAD_B + 14}" text-anchor="middle">'
                     f'{escape(label)}</text>')
    return _svg(parts, title)


def histogram(values: Sequence[float], *, bins: int = 20, title: str = "", unit: str = "") -> str:
    clean = [v for v in values if not math.isnan(v)]
    if not clean:
        return ""
    lo, hi = min(clean), max(clean)
    if hi == lo:  # one value: a 0-1 axis for a 0/1 score, else one unit centred on it
        lo, hi = (0.0, 1.0) if lo in (0.0, 1.0) else (lo - 0.5, lo + 0.5)
    width = (hi - lo) / bins
    counts = [0] * bins
    for v in clean:
        counts[min(int((v - lo) / width), bins - 1)] += 1
    top = max(4, math.ceil(max(counts) * 1.1 / 4) * 4)  # whole-number ticks
    slot = (W - PAD_L - 8) / bins
    plot_h = H - PAD_B - PAD_T
    parts = [_axis(top, "{:.0f}")]
    for i, c in enumerate(counts):
        h = plot_h * c / top
        x = PAD_L + i * slot
        parts.append(f'<rect x="{x + 1:.1f}" y="{H - PAD_B - h:.1f}" width="{slot - 2:.1f}" height="{h:.1f}" '
                     f'fill="{COLOR}" opacity="0.8"><title>{lo + i * width:.3g} to {lo + (i + 1) * width:.3g}{unit}: '
                     f'{c}</title></rect>')
    for frac in (0, 0.5, 1):
        x = PAD_L + (W - PAD_L - 8) * frac
        parts.append(f'<text x="{x:.1f}" y="{H - PAD_B + 16}" text-anchor="middle">{lo + (hi - lo) * frac:.3g}{unit}</text>')
    return _svg(parts, title)


def _svg(parts: list[str], title: str) -> str:
    head = f'<text x="{PAD_L}" y="{H - 8}" class="t">{escape(title)}</text>' if title else ""
    return (f'<svg viewBox="0 0 {W} {H}" width="{W}" height="{H}" role="img" aria-label="{escape(title)}" '
            f'font-size="11" font-family="system-ui,sans-serif" fill="#1d1d28">{"".join(parts)}{head}</svg>')
