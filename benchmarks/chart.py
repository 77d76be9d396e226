"""The end-to-end medians as a horizontal bar chart (matplotlib, no display needed)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Bar:
    label: str
    median_us: float
    low_us: float
    high_us: float
    ours: bool = False


def draw_end_to_end(bars: Sequence[Bar], path: Path, subtitle: str) -> None:
    """Save the chart to ``path`` (PNG); the first bar is taken as the no-auth baseline."""
    import matplotlib

    matplotlib.use("Agg")  # files only: no display on servers and CI
    from matplotlib import pyplot

    figure, axes = pyplot.subplots(figsize=(9, 0.55 * len(bars) + 1.6), dpi=110)
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
    axes.set_yticks(positions, [bar.label for bar in bars])
    axes.set_xlabel("median µs per request, lower is better (whiskers: interquartile range)")
    axes.set_xlim(0, max(bar.high_us for bar in bars) * 1.15)
    axes.set_title(
        "One FastAPI route called in-process through httpx.ASGITransport\n" + subtitle,
        fontsize=10,
    )
    axes.spines[["top", "right"]].set_visible(False)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    pyplot.close(figure)
