"""Bar charts of a job's summary, drawn on the server as SVG (no script, no inline style)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from gas.variants import REGIONS

ROW_HEIGHT = 22
LABEL_WIDTH = 120  # room for the labels, right-aligned against the bars
BAR_WIDTH = 300  # the longest bar
MAX_LABEL = 16  # characters of a label that fit LABEL_WIDTH
FLAG_NAMES = ("CPG", "REPEAT", "BLACKLIST", "TFBS")


@dataclass(frozen=True)
class Bar:
    label: str
    value: int
    y: int
    width: float

    @property
    def short(self) -> str:
        """The label as the chart draws it: long names are cut (the table has them whole)."""
        return self.label if len(self.label) <= MAX_LABEL else self.label[: MAX_LABEL - 1] + "…"


@dataclass(frozen=True)
class Chart:
    """One horizontal bar chart, with what a screen reader says of it."""

    chart_id: str
    title: str
    heading: str  # the table's first column
    bars: list[Bar]

    @property
    def height(self) -> int:
        return max(1, len(self.bars)) * ROW_HEIGHT

    @property
    def description(self) -> str:
        if not self.bars:
            return "No data."
        return "; ".join(f"{bar.label}: {bar.value}" for bar in self.bars) + "."


def bar_chart(chart_id: str, title: str, heading: str, items: Sequence[Any]) -> Chart:
    """A chart of (label, count) pairs, bars scaled to the largest count."""
    pairs = [(str(label), int(count)) for label, count in items]
    top = max((count for _, count in pairs), default=0) or 1
    bars = [
        Bar(label, count, i * ROW_HEIGHT, round(BAR_WIDTH * count / top, 1))
        for i, (label, count) in enumerate(pairs)
    ]
    return Chart(chart_id, title, heading, bars)


def summary_charts(stats: dict[str, Any]) -> list[Chart]:
    """The charts of a job page: by region, by chromosome, top genes, flags."""
    regions = stats.get("regions", {})
    flags = stats.get("flags", {})
    return [
        bar_chart(
            "chart-regions",
            "Variants per region",
            "Region",
            [(name, regions.get(name, 0)) for name in REGIONS],
        ),
        bar_chart(
            "chart-chromosomes",
            "Variants per chromosome",
            "Chromosome",
            stats.get("chromosomes", []),
        ),
        bar_chart("chart-genes", "Top genes", "Gene", stats.get("top_genes", [])[:20]),
        bar_chart(
            "chart-flags",
            "Variants in CpG islands, repeats, blacklisted regions and TF binding sites",
            "Flag",
            [(name, flags.get(name, 0)) for name in FLAG_NAMES],
        ),
    ]


def dbsnp_share(stats: dict[str, Any]) -> str:
    """ "n of N (p%)" of the variants found in dbSNP."""
    total, found = int(stats.get("variants", 0)), int(stats.get("in_dbsnp", 0))
    percent = 100 * found / total if total else 0
    return f"{found} of {total} ({percent:.1f}%)"
