"""The end-to-end medians as a horizontal bar chart (matplotlib, no display needed)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Bar:
    label: str
    median_us: float
    low_us: float
    high_us: float
    ours: bool = False


@dataclass(frozen=True)
class Panel:
    """One way of calling the routes, and its bars (the first is the no-auth baseline)."""

    title: str
    bars: Sequence[Bar]


IN_PROCESS_TITLE = "In-process: one FastAPI route called through httpx.ASGITransport"
REAL_SERVER_TITLE = "Real server: uvicorn (uvloop, httptools, 1 worker) under wrk, 16 connections"


def draw_end_to_end(bars: Sequence[Bar], path: Path, subtitle: str) -> None:
    """The in-process chart alone (when the real server was not measured)."""
    draw_panels([Panel(IN_PROCESS_TITLE, bars)], path, subtitle)


def draw_panels(panels: Sequence[Panel], path: Path, subtitle: str) -> None:
    """Save one chart with a panel per mode, stacked, to ``path`` (PNG)."""
    import matplotlib

    matplotlib.use("Agg")  # files only: no display on servers and CI
    from matplotlib import pyplot

    heights = [0.55 * len(panel.bars) + 1.0 for panel in panels]
    figure, axes_list = pyplot.subplots(
        len(panels),
        1,
        figsize=(9, sum(heights) + 0.8),
        dpi=110,
        gridspec_kw={"height_ratios": heights},
        squeeze=False,
    )
    for axes, panel in zip((row[0] for row in axes_list), panels, strict=True):
        _draw_panel(axes, panel)
    axes_list[-1][0].set_xlabel(
        "median µs per request, lower is better (whiskers: interquartile range)"
    )
    figure.suptitle(subtitle, fontsize=9)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    pyplot.close(figure)


def _draw_panel(axes: Any, panel: Panel) -> None:
    bars = panel.bars
    positions = list(range(len(bars)))[::-1]  # first bar on top
    medians = [bar.median_us for bar in bars]
    errors = [
        [bar.median_us - bar.low_us for bar in bars],
        [bar.high_us - bar.median_us for bar in bars],
    ]
    colours = ["#2f6fb0" if bar.ours else "#9aa5b1" for bar in bars]
    axes.barh(positions, medians, xerr=errors, color=colours, capsize=3, height=0.6)
    axes.axvline(bars[0].median_us, color="#444444", linestyle=":", linewidth=1)
    for position, bar in zip(positions, bars, strict=True):
        axes.text(
            bar.high_us + max(medians) * 0.01,
            position,
            f"{bar.median_us:.0f} µs",
            va="center",
            fontsize=9,
        )
    axes.set_yticks(positions, [bar.label.replace("`", "") for bar in bars])  # Markdown quotes
    axes.set_xlim(0, max(bar.high_us for bar in bars) * 1.15)
    axes.set_title(panel.title, fontsize=10)
    axes.spines[["top", "right"]].set_visible(False)
