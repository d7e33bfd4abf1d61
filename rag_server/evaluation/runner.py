"""Running retrieval strategies over an evaluation set and scoring them with ranx.

Metrics come from ranx (tested against trec_eval), never from hand-written formulas: nDCG@10
(graded), MRR@10, Recall@5/@20/@100 and MAP@100, plus paired Student's t-tests between every
two strategies. Binary metrics count a passage as relevant from ``relevant_grade`` up (2 for
the project set, where 1 marks a translation twin or partial answer; 1 for BEIR).
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from tqdm import tqdm

from ..errors import EmptyQueryError
from ..extras import require
from ..retrieval import LOCAL, Retriever
from .datasets import EvalSet

METRICS = ("ndcg@10", "mrr@10", "recall@5", "recall@20", "recall@100", "map@100")
LABELS = {
    "ndcg@10": "nDCG@10",
    "mrr@10": "MRR@10",
    "recall@5": "R@5",
    "recall@20": "R@20",
    "recall@100": "R@100",
    "map@100": "MAP@100",
}
DEPTH = 100


@dataclass(frozen=True)
class StrategySpec:
    """A named configuration: a strategy of the registry plus its options."""

    name: str
    strategy: str
    options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        LOCAL.get(self.strategy)  # an unknown strategy fails here, listing the valid ones


DEFAULT_SPECS = (
    StrategySpec("keyword", "keyword"),
    StrategySpec("bm25", "bm25"),
    StrategySpec("dense", "dense"),
    StrategySpec("hybrid-rrf", "hybrid", {"rrf_k": 60}),
    StrategySpec("hybrid-rrf-bm25x2", "hybrid", {"rrf_k": 60, "weights": {"bm25": 2.0, "dense": 1.0}}),
    StrategySpec(
        "hybrid-convex-equal", "hybrid-convex", {"weights": {"bm25": 0.5, "dense": 0.5}, "citation_boost": 0.0}
    ),
    StrategySpec("hybrid-convex", "hybrid-convex"),  # the served default (tuned on dev)
)


@dataclass
class StrategyResult:
    name: str
    run: dict[str, dict[str, float]]
    latencies_ms: list[float]
    metrics: dict[str, float] = field(default_factory=dict)

    @property
    def p50_ms(self) -> float:
        return float(np.percentile(self.latencies_ms, 50)) if self.latencies_ms else float("nan")

    @property
    def p95_ms(self) -> float:
        return float(np.percentile(self.latencies_ms, 95)) if self.latencies_ms else float("nan")


def run_strategy(
    name: str, retriever: Retriever, evalset: EvalSet, depth: int = DEPTH, progress: bool = True
) -> StrategyResult:
    """Search every query ``depth`` deep; BEIR documents are ranked by their best passage."""
    run: dict[str, dict[str, float]] = {}
    latencies: list[float] = []
    for query in tqdm(evalset.queries, desc=f"querying {name}", unit="q", disable=not progress, leave=False):
        start = time.perf_counter()
        try:
            hits = retriever.search(query.text, k=depth)
        except EmptyQueryError:
            hits = []  # a stop-word-only query retrieves nothing: it scores zero, honestly
        latencies.append((time.perf_counter() - start) * 1000)
        ranked: dict[str, float] = {}
        for hit in hits:
            key = hit.passage.doc_id if evalset.level == "document" else hit.passage.id
            if key not in ranked:  # hits are best first, so the first is the best passage
                ranked[key] = float(hit.score)
        # ranx needs a non-empty ranking per query; a sentinel id never matches a judgment.
        run[query.id] = _strictly_decreasing(ranked) or {"__no_result__": 0.0}
    return StrategyResult(name, run, latencies)


def _strictly_decreasing(ranked: Mapping[str, float]) -> dict[str, float]:
    """Scores that keep our order under ranx's sort, even where two hits tie."""
    n = len(ranked)
    return {key: float(n - i) for i, key in enumerate(ranked)}


def metric_names(relevant_grade: int) -> list[str]:
    # nDCG keeps the grades; the binary metrics use a relevance threshold.
    suffix = f"-l{relevant_grade}" if relevant_grade > 1 else ""
    return [m if m.startswith("ndcg") else f"{m}{suffix}" for m in METRICS]


def score(
    results: list[StrategyResult], qrels: dict[str, dict[str, int]], relevant_grade: int = 1
) -> dict[str, dict[str, dict[str, float]]]:
    """Fill each result's metrics; returns t-test p-values {metric: {a: {b: p}}}."""
    os.environ.setdefault("NUMBA_CACHE_DIR", os.path.join(os.path.expanduser("~"), ".cache", "numba"))
    ranx = require("ranx", "eval")

    names = metric_names(relevant_grade)
    qrels_obj = ranx.Qrels(qrels)
    runs = []
    for result in results:
        run = ranx.Run({q: r for q, r in result.run.items() if q in qrels}, name=result.name)
        runs.append(run)
    report = ranx.compare(qrels_obj, runs, metrics=names, stat_test="student", max_p=0.05, make_comparable=True)
    raw = report.to_dict()
    pvalues: dict[str, dict[str, dict[str, float]]] = {m: {} for m in METRICS}
    for result in results:
        entry = raw[result.name]
        result.metrics = {m: float(entry["scores"][n]) for m, n in zip(METRICS, names, strict=True)}
        for other, comparison in entry["comparisons"].items():
            for m, n in zip(METRICS, names, strict=True):
                pvalues[m].setdefault(result.name, {})[other] = float(comparison[n])
    return pvalues
