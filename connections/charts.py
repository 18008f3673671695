"""Small charts drawn on the server as SVG (no JavaScript chart library, nothing inline to run).

Colours come from CSS classes (.spark-ok, .chart-5xx, ...); the fill attributes are a
fallback so a chart still reads without the stylesheet. Every chart has a <title> and an
aria-label that say in words what the picture shows.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

# Error categories of the errors-over-time chart, in stacking order (bottom first).
CATEGORIES: tuple[tuple[str, str, str], ...] = (
    ("5xx", "Server errors (5xx)", "#c0392b"),
    ("4xx", "Client errors (4xx)", "#e67e22"),
    ("throttled", "Throttled (429)", "#8e44ad"),
    ("network", "Network errors and timeouts", "#7f8c8d"),
)


def _num(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


def sparkline(totals: Sequence[int], errors: Sequence[int], *, width: int = 96, height: int = 24,
              label: str = "") -> SafeString:
    """One bar per bucket: height is the volume, the red part at the bottom is the errors."""
    n = len(totals)
    total = sum(totals)
    failed = sum(errors)
    rate = f"{failed / total:.0%}" if total else "no requests"
    title = label or f"{total} requests, {failed} errors ({rate})"
    if not n:
        return format_html('<svg class="spark" width="{}" height="{}" role="img" aria-label="{}"><title>{}</title></svg>',
                           width, height, title, title)
    peak = max(totals) or 1
    step = width / n
    bar = _num(max(step - 1, 1))
    parts = []
    # Plain f-strings of numbers (nothing to escape): the overview draws one of these per connection.
    for i, (t, e) in enumerate(zip(totals, errors, strict=True)):
        if not t:
            continue
        h = max(height * t / peak, 1)
        eh = min(h, max(height * e / peak, 1)) if e else 0
        x = _num(i * step)
        if h - eh > 0:
            parts.append(f'<rect class="spark-ok" fill="#9fb8cf" x="{x}" y="{_num(height - h)}" width="{bar}" '
                         f'height="{_num(h - eh)}"/>')
        if eh:
            parts.append(f'<rect class="spark-err" fill="#c0392b" x="{x}" y="{_num(height - eh)}" width="{bar}" '
                         f'height="{_num(eh)}"/>')
    return format_html(
        '<svg class="spark" viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img" aria-label="{t}">'
        '<title>{t}</title><line class="spark-base" stroke="#ccd" x1="0" y1="{h}" x2="{w}" y2="{h}"/>{body}</svg>',
        w=width, h=height, t=title, body=mark_safe("".join(parts)),  # noqa: S308 (numbers only)
    )


def error_chart(buckets: Sequence[datetime], series: dict[str, Sequence[int]], *, bucket_label: str,
                width: int = 760, height: int = 200) -> SafeString:
    """Stacked bars of errors per bucket and category, with a y scale, a few x labels and a legend."""
    left, bottom, top, right = 36, 22, 8, 8
    plot_w, plot_h = width - left - right, height - top - bottom
    n = len(buckets)
    stacks = [sum(series.get(key, [0] * n)[i] for key, _, _ in CATEGORIES) for i in range(n)]
    peak = max(stacks, default=0)
    total = sum(stacks)
    fmt = "%H:%M" if bucket_label == "hour" else "%b %d"
    title = (f"{total} errors, {n} {bucket_label}s from {buckets[0].strftime(fmt)} to {buckets[-1].strftime(fmt)}"
             if n else "No errors in this range")
    scale = peak or 1
    step = plot_w / max(n, 1)
    bar = max(step * 0.8, 1)
    parts: list[str] = []
    # y axis: 0 and the peak, with a faint grid line at the peak.
    parts.append(format_html('<line class="chart-axis" stroke="#99a" x1="{}" y1="{}" x2="{}" y2="{}"/>',
                             left, top + plot_h, width - right, top + plot_h))
    parts.append(format_html('<text class="chart-label" x="{}" y="{}" text-anchor="end" font-size="10">0</text>',
                             left - 4, top + plot_h))
    if peak:
        parts.append(format_html('<line class="chart-grid" stroke="#e3e6ea" x1="{}" y1="{}" x2="{}" y2="{}"/>',
                                 left, top, width - right, top))
        parts.append(format_html('<text class="chart-label" x="{}" y="{}" text-anchor="end" font-size="10">{}</text>',
                                 left - 4, top + 8, peak))
    label_every = max(1, n // 8)
    for i, when in enumerate(buckets):
        x = left + i * step + (step - bar) / 2
        y = top + plot_h
        tip = [when.strftime("%Y-%m-%d %H:%M")]
        for key, name, colour in CATEGORIES:
            count = series.get(key, [0] * n)[i]
            if not count:
                continue
            h = plot_h * count / scale
            y -= h
            tip.append(f"{name}: {count}")
            parts.append(format_html(
                '<rect class="chart-{}" fill="{}" x="{}" y="{}" width="{}" height="{}"><title>{}: {}</title></rect>',
                key, colour, _num(x), _num(y), _num(bar), _num(max(h, 0.5)), when.strftime("%Y-%m-%d %H:%M"),
                f"{name}: {count}"))
        if i % label_every == 0:
            parts.append(format_html(
                '<text class="chart-label" x="{}" y="{}" text-anchor="middle" font-size="10">{}</text>',
                _num(left + i * step + step / 2), height - 6, when.strftime(fmt)))
    legend = format_html_join(
        "", '<span class="legend-item"><svg width="10" height="10" aria-hidden="true"><rect class="chart-{}" fill="{}" '
            'width="10" height="10"/></svg> {}</span>',
        ((key, colour, name) for key, name, colour in CATEGORIES))
    return format_html(
        '<figure class="chart"><svg viewBox="0 0 {w} {h}" width="100%" preserveAspectRatio="xMinYMin meet" '
        'role="img" aria-label="{t}"><title>{t}</title>{body}</svg><figcaption class="legend">{legend}</figcaption>'
        '</figure>',
        w=width, h=height, t=title, body=mark_safe("".join(parts)), legend=legend,  # noqa: S308
    )
