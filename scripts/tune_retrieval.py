#!/usr/bin/env python3
"""Tune retrieval settings on the project's *dev* split (never on test).

Evaluates a grid of BM25 parameters and hybrid variants with the same machinery as
``rag-server compare`` and prints one markdown table per BM25 setting, so the chosen defaults
can be traced to a run:

    .venv/bin/python scripts/tune_retrieval.py [--split dev]
"""

from __future__ import annotations

import argparse

from rag_server.evaluation import StrategySpec, compare
from rag_server.indexes import BM25Params

BM25_GRID = [BM25Params(1.5, 0.75), BM25Params(1.2, 0.5)]
BM25_60 = {"bm25": 0.6, "dense": 0.4}
HYBRIDS = [
    StrategySpec("bm25", "bm25"),
    StrategySpec("dense", "dense"),
    StrategySpec("rrf", "hybrid"),
    StrategySpec("rrf-bm25x2", "hybrid", {"weights": {"bm25": 2.0, "dense": 1.0}}),
    StrategySpec("rrf-bm25x2-cite0.3", "hybrid", {"weights": {"bm25": 2.0, "dense": 1.0}, "citation_boost": 0.3}),
    StrategySpec("rrf-lang0.5", "hybrid", {"language_boost": 0.5}),
    StrategySpec("convex", "hybrid-convex"),
    StrategySpec("convex-bm25.6", "hybrid-convex", {"weights": BM25_60}),
    StrategySpec("convex-lang0.2", "hybrid-convex", {"language_boost": 0.2}),
    StrategySpec("convex-cite0.3", "hybrid-convex", {"citation_boost": 0.3}),
    StrategySpec("convex-bm25.6-cite0.3", "hybrid-convex", {"weights": BM25_60, "citation_boost": 0.3}),
    StrategySpec("convex-bm25.6-cite1", "hybrid-convex", {"weights": BM25_60, "citation_boost": 1.0}),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--split", default="dev", choices=["dev"], help="tuning uses dev only")
    args = parser.parse_args()
    for params in BM25_GRID:
        result = compare("project", args.split, HYBRIDS, bm25=params, progress=False)
        print(f"\n### BM25 k1={params.k1} b={params.b}\n")
        print(result.markdown.split("\n\n")[1])


if __name__ == "__main__":
    main()
