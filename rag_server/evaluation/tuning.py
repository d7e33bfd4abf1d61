"""Tuning retrieval settings on the project's *dev* split, never on test (``rag-server tune``).

A grid of BM25 parameters, and for each a set of hybrid variants, evaluated with the same
machinery as ``rag-server compare``; one markdown table per BM25 setting, so that the chosen
defaults (``retrieval.CONVEX_DEFAULTS``) can be traced to a run.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import InvalidParameterError
from ..indexes import BM25Params
from .articles import ARTICLE_HEADING, article_table
from .compare import Comparison, compare
from .runner import StrategySpec

BM25_GRID = (BM25Params(1.5, 0.75), BM25Params(1.2, 0.5))
_BM25_60 = {"bm25": 0.6, "dense": 0.4}
VARIANTS = (
    StrategySpec("bm25", "bm25"),
    StrategySpec("dense", "dense"),
    StrategySpec("rrf", "hybrid"),
    StrategySpec("rrf-bm25x2", "hybrid", {"weights": {"bm25": 2.0, "dense": 1.0}}),
    StrategySpec("rrf-bm25x2-cite0.3", "hybrid", {"weights": {"bm25": 2.0, "dense": 1.0}, "citation_boost": 0.3}),
    StrategySpec("rrf-lang0.5", "hybrid", {"language_boost": 0.5}),
    StrategySpec("convex", "hybrid-convex"),
    # The share of BM25 in the convex fusion, swept (the model's default is one of these).
    *(
        StrategySpec(f"convex-bm25{str(w)[1:]}", "hybrid-convex", {"weights": {"bm25": w, "dense": round(1 - w, 2)}})
        for w in (0.3, 0.4, 0.5, 0.6, 0.7)
    ),
    StrategySpec("convex-lang0.2", "hybrid-convex", {"language_boost": 0.2}),
    StrategySpec("convex-cite0.3", "hybrid-convex", {"citation_boost": 0.3}),
    StrategySpec("convex-bm25.6-cite0.3", "hybrid-convex", {"weights": _BM25_60, "citation_boost": 0.3}),
    StrategySpec("convex-bm25.6-cite1", "hybrid-convex", {"weights": _BM25_60, "citation_boost": 1.0}),
)


@dataclass(frozen=True)
class TuningRun:
    bm25: BM25Params
    comparison: Comparison

    def markdown(self) -> str:
        table = self.comparison.markdown.split("\n\n")[1]  # the metrics table, without the t-tests
        parts = [f"### BM25 k1={self.bm25.k1} b={self.bm25.b}", table]
        if self.comparison.articles:  # a set judged by article (project, natural)
            parts += [ARTICLE_HEADING, article_table(self.comparison.articles)]
        return "\n\n".join(parts)


def tune(
    dataset: str = "project",
    split: str = "dev",
    grid: Sequence[BM25Params] = BM25_GRID,
    variants: Sequence[StrategySpec] = VARIANTS,
    **options: Any,
) -> list[TuningRun]:
    """One comparison of ``variants`` per BM25 setting of ``grid``; ``options`` go to ``compare``."""
    if split == "test":
        raise InvalidParameterError("tuning on the test split would leak it into the defaults; use dev")
    return [TuningRun(params, compare(dataset, split, variants, bm25=params, **options)) for params in grid]
