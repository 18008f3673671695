"""Words for figures that pages and the CLI both print (one spelling everywhere)."""

from __future__ import annotations


def duration_text(ms: int | float | None) -> str:
    """87 ms, 16.9 s, 2 min 5 s: milliseconds where they matter, seconds once there are many."""
    if ms is None:
        return "—"
    ms = int(ms)
    if ms < 1000:
        return f"{ms} ms"
    seconds = ms / 1000
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {rest} s" if rest and minutes < 10 else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"


def took_text(ms: int | float | None, attempts: int | None, *, sep: str = " over ") -> str:
    """How long an operation took in all, and over how many attempts when it needed more than one."""
    text = duration_text(ms)
    return f"{text}{sep}{attempts} attempts" if attempts and attempts > 1 else text
