#!/usr/bin/env python3
"""BM25 index scaling: rag_server's BM25Index vs rank_bm25's BM25Okapi on pre-tokenised queries.

Index only: queries arrive as token lists, so no text analysis is timed and the answer is row
numbers, not hits. This is how the index's cost grows with the corpus, against the reference
whose scores it reproduces; it is not the latency a user sees. For that (query text in, hits
out, side by side with bm25s) see ``scripts/bench_bm25.py``.

Synthetic corpora of 1k / 10k / 100k passages (Zipf-distributed vocabulary, 40–80 tokens per
passage), the same tokenised queries for both, top-10 per query. Each system answers the query
set ``--repeats`` times, interleaved; the table shows the median over repeats of the median
(and p95) per-query latency. Our scores are checked against rank_bm25's on every timed query.

    .venv/bin/python scripts/bench_bm25_scaling.py [--sizes 1000 10000 100000] [--queries 100]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from collections.abc import Callable

import numpy as np
from rank_bm25 import BM25Okapi

from rag_server.indexes import BM25Index

from _support import percentile


def synthetic_corpus(n_docs: int, vocab: int, seed: int) -> list[list[str]]:
    rng = np.random.default_rng(seed)
    ranks = np.arange(1, vocab + 1)
    p = 1.0 / ranks**1.07
    p /= p.sum()
    lengths = rng.integers(40, 81, size=n_docs)
    ids = rng.choice(vocab, size=int(lengths.sum()), p=p)
    out, start = [], 0
    for n in lengths:
        out.append([f"t{i}" for i in ids[start : start + n]])
        start += n
    return out


def queries(n: int, vocab: int, seed: int) -> list[list[str]]:
    rng = np.random.default_rng(seed + 1)
    # Mid-frequency terms, as real queries hold after stop-word removal.
    return [[f"t{i}" for i in rng.integers(20, min(vocab, 5000), size=rng.integers(2, 7))] for _ in range(n)]


def time_queries(fn: Callable[[list[str]], object], qs: list[list[str]]) -> list[float]:
    out = []
    for q in qs:
        start = time.perf_counter()
        fn(q)
        out.append((time.perf_counter() - start) * 1000)
    return out


def bench_size(n_docs: int, n_queries: int, repeats: int, slow_queries: int) -> dict[str, dict[str, float]]:
    corpus = synthetic_corpus(n_docs, vocab=50_000, seed=n_docs)
    qs = queries(n_queries, 50_000, n_docs)

    t = time.perf_counter()
    ours = BM25Index.build(corpus)
    build_ours = time.perf_counter() - t
    t = time.perf_counter()
    reference = BM25Okapi(corpus)
    build_ref = time.perf_counter() - t

    # Correctness first: identical scores and identical top-10 on every timed query.
    ref_qs = qs[:slow_queries]
    for q in ref_qs:
        expected = reference.get_scores(q)
        np.testing.assert_allclose(ours.get_scores(q), expected, rtol=1e-5, atol=1e-6)

    def run_ours(q: list[str]) -> object:
        return ours.search(q, 10)

    def run_ref(q: list[str]) -> object:
        scores = reference.get_scores(q)
        top = np.argpartition(-scores, 10)[:10]
        return top[np.argsort(-scores[top])]

    systems = {
        "rag_server BM25Index": (run_ours, qs, build_ours),
        # rank_bm25 scans every passage per query term: fewer queries keep the run bounded.
        "rank_bm25 BM25Okapi": (run_ref, ref_qs, build_ref),
    }
    runs: dict[str, list[list[float]]] = {name: [] for name in systems}
    for fn, these, _ in systems.values():
        fn(these[0])  # warm-up
    for _ in range(repeats):  # interleaved passes
        for name, (fn, these, _) in systems.items():
            runs[name].append(time_queries(fn, these))
    return {
        name: {
            "p50_ms": statistics.median(statistics.median(r) for r in runs[name]),
            "p95_ms": statistics.median(percentile(r, 95) for r in runs[name]),
            "queries": len(these),
            "build_s": build_s,
        }
        for name, (_, these, build_s) in systems.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 10_000, 100_000])
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--slow-queries", type=int, default=30, help="queries for rank_bm25 (slow at 100k)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", default=None, help="also write the results to this JSON file")
    args = parser.parse_args()

    print(f"machine: {platform.machine()}, {platform.python_implementation()} {platform.python_version()}")
    print("| passages | system | p50 ms | p95 ms | queries | speed-up vs rank_bm25 (p50) | build s |")
    print("| ---: | --- | ---: | ---: | ---: | ---: | ---: |")
    everything = {}
    for size in args.sizes:
        res = bench_size(size, args.queries, args.repeats, min(args.slow_queries, args.queries))
        everything[size] = res
        base = res["rank_bm25 BM25Okapi"]["p50_ms"]
        for name, r in res.items():
            print(
                f"| {size:,} | {name} | {r['p50_ms']:.3f} | {r['p95_ms']:.3f} | {r['queries']} "
                f"| {base / r['p50_ms']:.1f}× | {r['build_s']:.1f} |"
            )
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(everything, handle, indent=2)


if __name__ == "__main__":
    main()
