"""Writing a comparison: a markdown table, a JSON file and a PNG chart."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..extras import require
from .runner import LABELS, METRICS, StrategyResult

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def markdown_table(results: list[StrategyResult], published: dict[str, float] | None = None) -> str:
    head = ["strategy", *[LABELS[m] for m in METRICS], "p50 ms", "p95 ms"]
    lines = ["| " + " | ".join(head) + " |", "| --- |" + " ---: |" * (len(head) - 1)]
    best = {m: max(r.metrics[m] for r in results) for m in METRICS}
    for r in results:
        cells = [f"**{r.metrics[m]:.4f}**" if r.metrics[m] == best[m] else f"{r.metrics[m]:.4f}" for m in METRICS]
        lines.append(f"| {r.name} | " + " | ".join(cells) + f" | {r.p50_ms:.1f} | {r.p95_ms:.1f} |")
    for name, value in (published or {}).items():
        lines.append(f"| *published: {name}* | {value:.4f} |" + " |" * (len(head) - 2))
    return "\n".join(lines)


def pvalue_table(pvalues: dict[str, dict[str, dict[str, float]]], metric: str, names: list[str]) -> str:
    """Paired t-test p-values for one metric; * marks p < 0.05."""
    lines = [
        f"Paired t-test p-values, {LABELS[metric]} (* = p < 0.05)",
        "",
        "| | " + " | ".join(names) + " |",
        "| --- |" + " ---: |" * len(names),
    ]
    for a in names:
        cells = []
        for b in names:
            p = pvalues.get(metric, {}).get(a, {}).get(b)
            cells.append("—" if a == b or p is None or math.isnan(p) else f"{p:.3g}{'*' if p < 0.05 else ''}")
        lines.append(f"| {a} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_json(path: Path, payload: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2, ensure_ascii=False, default=float) + "\n")


def chart(results: list[StrategyResult], title: str) -> Figure:
    """Grouped bars, one group per metric and one bar per strategy; the legend sits beside the
    axes, so that it hides no bar whatever the scores."""
    import numpy as np

    plt = _pyplot()
    x = np.arange(len(METRICS))
    width = 0.8 / max(1, len(results))
    fig, ax = plt.subplots(figsize=(12, 5), layout="constrained")
    for i, r in enumerate(results):
        ax.bar(x + i * width - 0.4 + width / 2, [r.metrics[m] for m in METRICS], width, label=r.name)
    ax.set_xticks(x, [LABELS[m] for m in METRICS])
    ax.set_ylim(0, 1)
    ax.set_ylabel("score")
    ax.set_title(title)
    ax.grid(axis="y", alpha=0.3)
    fig.legend(fontsize=8, loc="outside right upper")
    return fig


def write_chart(path: Path, results: list[StrategyResult], title: str) -> None:
    fig = chart(results, title)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    _pyplot().close(fig)


def _pyplot() -> Any:
    """matplotlib.pyplot on the Agg backend (no display on servers and CI)."""
    matplotlib = require("matplotlib", "eval")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt
