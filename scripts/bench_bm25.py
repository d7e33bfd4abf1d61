#!/usr/bin/env python3
"""BM25 end to end as a user calls it: rag_server's ``bm25`` retriever vs bm25s, in one run.

Both sides index the same passages (a BEIR corpus chunked by the project, as ``rag-server
compare`` does: title + abstract, ≤ 1,000 characters a passage) and answer the same query
*text*; the clock runs around everything a caller waits for:

* rag_server: ``BM25Retriever.search(text, k)`` → a list of ``Hit`` (analysis, scoring, top k,
  hits), once with the query language fixed to English (as ``compare`` runs a BEIR set) and once
  detected per query (as the HTTP API calls it).
* bm25s, as its README shows: ``bm25s.tokenize(text, stopwords=…, stemmer=…)`` and
  ``retriever.retrieve(tokens, k=k)`` returning document rows and scores, with progress bars off
  (``show_progress=False``, its fastest setting). Same PyStemmer English stemmer, the project's
  stop-word list (English + Portuguese), the same k1 / b; bm25s's default scoring method
  (``lucene``) and its ``robertson`` method (rank_bm25's idf) are both timed.

What differs: bm25s's tokenizer is scikit-learn's ``\\b\\w\\w+\\b`` without Unicode folding;
rag_server folds (NFKC, accents) and keeps one-character numbers. bm25s returns row numbers and
scores; rag_server returns ``Hit`` objects holding the passage.

Passes are interleaved: in each repeat every system answers every query once per k, the order
of the systems rotating between repeats. The table shows the median over repeats of each pass's
per-query median (p50) and 95th percentile; ratios are of p50s from the same run.

    .venv/bin/python scripts/bench_bm25.py --dataset ../shared/datasets/scifact --repeats 5
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import bm25s
import numpy as np
import Stemmer
from rank_bm25 import BM25Okapi

from rag_server import stopwords
from rag_server.analysis import Analyzer
from rag_server.build import BuildConfig, build_index
from rag_server.chunking import chunk_document
from rag_server.errors import EmptyQueryError
from rag_server.evaluation.datasets import load_beir
from rag_server.indexes import BM25Index, BM25Params
from rag_server.loader import IndexBuild
from rag_server.retrieval import BM25Retriever

from _support import percentile

Search = Callable[[str, int], Any]


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def check_parity(build: IndexBuild, retriever: BM25Retriever, queries: list[str], k: int) -> int:
    """Our hits equal rank_bm25's top k (scores and rows) over the same analysed passages."""
    analyzer = Analyzer(build.analyzer.settings)
    tokens = [analyzer.tokens(p.index_text, p.language) for p in build.passages]
    p = build.bm25.params if build.bm25 else BM25Params()
    reference = BM25Okapi(tokens, k1=p.k1, b=p.b, epsilon=p.epsilon)
    checked = 0
    for text in queries:
        try:
            hits = retriever.search(text, k)
        except EmptyQueryError:
            continue
        expected = reference.get_scores(retriever.query_terms(text))
        got = np.array([h.score for h in hits])
        rows = [build.position(h.passage_id) for h in hits]
        np.testing.assert_allclose(got, expected[rows], rtol=1e-5, atol=1e-5)
        kth = np.sort(expected)[::-1][len(hits) - 1]
        rest = np.ones(len(expected), dtype=bool)
        rest[rows] = False
        assert np.all(expected[rest] <= kth + 1e-5), "a passage outside our hits scores above them"
        checked += 1
    return checked


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--dataset", default="../shared/datasets/scifact", help="a BEIR directory")
    parser.add_argument("--split", default="test")
    parser.add_argument("--k", type=int, nargs="+", default=[10, 100])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--k1", type=float, default=BM25Params.k1)
    parser.add_argument("--b", type=float, default=BM25Params.b)
    parser.add_argument("--build-repeats", type=int, default=3, help="interleaved builds timed (0: none)")
    parser.add_argument("--parity-queries", type=int, default=30, help="queries checked against rank_bm25")
    parser.add_argument("--json", default=None, help="also write the results to this JSON file")
    args = parser.parse_args()

    dataset = Path(args.dataset)
    evalset = load_beir(dataset, args.split)
    queries = [q.text for q in evalset.queries]
    params = BM25Params(k1=args.k1, b=args.b)
    print(
        f"machine: {platform.machine()}, {platform.python_implementation()} {platform.python_version()}, "
        f"numpy {np.__version__}, bm25s {bm25s.__version__}"
    )

    # --- build: the same passages for both sides, from text in memory to an index in memory
    documents = evalset.documents or []
    passages = [p for d in documents for p in chunk_document(d, 1000)]
    texts = [p.index_text for p in passages]
    stemmer = Stemmer.Stemmer("english")
    stop = sorted(stopwords.ALL)

    def build_ours() -> BM25Index:
        analyzer = Analyzer()
        return BM25Index.build([analyzer.tokens(t, p.language) for t, p in zip(texts, passages, strict=True)], params)

    def build_bm25s(method: str) -> bm25s.BM25:
        corpus_tokens = bm25s.tokenize(texts, stopwords=stop, stemmer=stemmer, show_progress=False)
        model = bm25s.BM25(k1=params.k1, b=params.b, method=method)
        model.index(corpus_tokens, show_progress=False)
        return model

    builds: dict[str, list[float]] = {"rag_server": [], "bm25s lucene": [], "bm25s robertson": []}
    models: dict[str, bm25s.BM25] = {}
    for _ in range(args.build_repeats):  # interleaved
        builds["rag_server"].append(timed(build_ours)[1])
        for method in ("lucene", "robertson"):
            models[method], seconds = timed(lambda m=method: build_bm25s(m))  # type: ignore[misc]
            builds[f"bm25s {method}"].append(seconds)
    for method in ("lucene", "robertson"):
        if method not in models:
            models[method] = build_bm25s(method)

    with tempfile.TemporaryDirectory(prefix="bench-bm25-") as tmp:
        config = BuildConfig([dataset / "corpus.jsonl"], Path(tmp), indexes=("bm25",), bm25=params, progress=False)
        built, full_build_s = timed(lambda: build_index(config))
        build = IndexBuild.load(built.path)
    fixed = BM25Retriever(build, query_language="en")
    detected = BM25Retriever(build)
    assert len(build.passages) == len(passages)
    checked = check_parity(build, fixed, queries[: args.parity_queries], max(args.k))

    def ours(retriever: BM25Retriever) -> Search:
        def search(text: str, k: int) -> Any:
            try:
                return retriever.search(text, k)
            except EmptyQueryError:
                return []

        return search

    def theirs(model: bm25s.BM25) -> Search:
        def search(text: str, k: int) -> Any:
            tokens = bm25s.tokenize(text, stopwords=stop, stemmer=stemmer, show_progress=False)
            return model.retrieve(tokens, k=k, show_progress=False)

        return search

    systems: dict[str, Search] = {
        "rag_server bm25 (language en)": ours(fixed),
        "rag_server bm25 (language detected, as the API)": ours(detected),
        "bm25s lucene (default method)": theirs(models["lucene"]),
        "bm25s robertson": theirs(models["robertson"]),
    }
    for search in systems.values():  # warm-up: one pass each (stem caches, first-call costs)
        for text in queries:
            search(text, max(args.k))

    names = list(systems)
    per_pass: dict[tuple[str, int], list[tuple[float, float]]] = {(n, k): [] for n in names for k in args.k}
    for rep in range(args.repeats):
        order = names[rep % len(names) :] + names[: rep % len(names)]
        for k in args.k:
            for name in order:
                search = systems[name]
                times = []
                for text in queries:
                    start = time.perf_counter()
                    search(text, k)
                    times.append((time.perf_counter() - start) * 1000)
                per_pass[(name, k)].append((statistics.median(times), percentile(times, 95)))

    print(
        f"\n{dataset.name} ({args.split}): {len(queries)} queries, {len(passages):,} passages, "
        f"k1 {params.k1} b {params.b}; our hits equal rank_bm25's top {max(args.k)} on {checked} queries"
    )
    print(f"median of {args.repeats} interleaved passes\n")
    print("| k | system | p50 ms | p95 ms | p50 / bm25s lucene p50 |")
    print("| ---: | --- | ---: | ---: | ---: |")
    results: dict[str, Any] = {"queries": len(queries), "passages": len(passages), "repeats": args.repeats}
    for k in args.k:
        base = statistics.median(p for p, _ in per_pass[(names[2], k)])
        for name in names:
            p50 = statistics.median(p for p, _ in per_pass[(name, k)])
            p95 = statistics.median(p for _, p in per_pass[(name, k)])
            print(f"| {k} | {name} | {p50:.3f} | {p95:.3f} | {p50 / base:.2f} |")
            results[f"{name} k={k}"] = {"p50_ms": p50, "p95_ms": p95, "ratio_vs_bm25s_lucene": p50 / base}
    print(f"\n| build (passage text → index in memory) | median s of {args.build_repeats} |")
    print("| --- | ---: |")
    for name, seconds in builds.items():
        if seconds:
            print(f"| {name} | {statistics.median(seconds):.2f} |")
            results[f"build {name}"] = statistics.median(seconds)
    print(f"| rag_server build_index (corpus file → build on disk, bm25 only) | {full_build_s:.2f} |")
    results["build_index bm25 only"] = full_build_s
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
