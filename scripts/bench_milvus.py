#!/usr/bin/env python3
"""Local files vs Milvus (Milvus Lite), side by side in one run, and Milvus Lite at scale.

``quality``: one dataset built twice from the same passages with the same encoder object and
embedding cache — once as a local build, once into a Milvus collection — then every strategy
on both backends over the same queries, scored together by ranx (nDCG@10, R@100), with build
times and query p50/p95.

    .venv/bin/python scripts/bench_milvus.py quality --dataset project --split test
    .venv/bin/python scripts/bench_milvus.py quality --dataset ../shared/datasets/scifact --model minilm \
        --max-docs 1500

``--max-docs`` keeps every document judged for the split plus others, in corpus order, up to
that many (the same subset for both backends).

``scale``: synthetic passages (random words, random unit vectors) inserted into a Milvus Lite
collection with the project's schema; insert time, flush + index time, BM25 and dense query
p50/p95, and the process's peak memory (Milvus Lite runs in it).

    .venv/bin/python scripts/bench_milvus.py scale --passages 100000
"""

from __future__ import annotations

import argparse
import itertools
import json
import platform
import random
import resource
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from rag_server.build import BuildConfig, build_index
from rag_server.embedding import make_encoder
from rag_server.evaluation.compare import load_dataset
from rag_server.evaluation.datasets import document_qrels, resolve_qrels
from rag_server.evaluation.runner import StrategyResult, run_strategy, score
from rag_server.loader import IndexBuild
from rag_server.milvus import MILVUS, MilvusConnection, MilvusSettings, MilvusSource
from rag_server.milvus.build import build_into_milvus
from rag_server.milvus.schema import OUTPUT_FIELDS, SPARSE, VECTOR, create_schema, index_params, row_of
from rag_server.passage import Passage
from rag_server.retrieval import LOCAL

STRATEGIES = ("bm25", "dense", "hybrid", "hybrid-convex")
# Milvus's own RRF (hybrid_search + RRFRanker, one round trip), beside the served local fusion.
NATIVE = ("hybrid", {"native": True}, "hybrid (Milvus RRFRanker)")


def _subset(dataset: Path, evalset: Any, max_docs: int, out: Path) -> Path:
    """A corpus.jsonl of the judged documents plus the first others, ``max_docs`` in all."""
    judged = {j.doc_id for q in evalset.queries for j in q.judgments}
    kept = []
    with (dataset / "corpus.jsonl").open() as handle:
        for line in handle:
            doc_id = json.loads(line)["_id"]
            if doc_id in judged or len(kept) < max_docs - len(judged):
                kept.append(line)
    out.mkdir(parents=True, exist_ok=True)
    (out / "corpus.jsonl").write_text("".join(kept))
    return out / "corpus.jsonl"


def quality(args: argparse.Namespace) -> dict[str, Any]:
    evalset, corpus_dirs = load_dataset(args.dataset, args.split)
    tmp = Path(tempfile.mkdtemp(prefix="bench-milvus-"))
    if args.max_docs:
        corpus_dirs = [_subset(Path(args.dataset), evalset, args.max_docs, tmp / "subset")]
    encoder = make_encoder(args.model, threads=1)
    cache = Path(args.cache_dir) if args.cache_dir else tmp / "cache"
    config = BuildConfig(corpus_dirs, tmp / "local", model=args.model, cache_dir=cache, progress=False)
    config.indexes = ("bm25", "dense")

    start = time.perf_counter()
    local_result = build_index(config, encoder=encoder)  # embeds every passage (fills the cache)
    local_s = time.perf_counter() - start
    settings = MilvusSettings(uri=args.milvus_uri or str(tmp / "milvus.db"), timeout_s=120)
    start = time.perf_counter()
    milvus_result = build_into_milvus(config, settings, encoder=encoder)  # same passages, vectors from the cache
    milvus_s = time.perf_counter() - start
    local = IndexBuild.load(local_result.path)
    served = MilvusSource(settings).open()
    if evalset.level == "document":
        qrels, grade = document_qrels(evalset), 1
    else:
        qrels, grade = resolve_qrels(evalset, local.passages), 2
    evalset.queries = [q for q in evalset.queries if q.id in qrels]

    results: list[StrategyResult] = []
    for strategy in STRATEGIES:
        for name, build, registry in (("local", local, LOCAL), ("milvus", served, MILVUS)):
            retriever = registry.make(strategy, build, encoder, query_language=evalset.language)
            retriever.search(evalset.queries[0].text, k=10)  # first-use costs out of the timings
            results.append(run_strategy(f"{strategy} · {name}", retriever, evalset, 100, progress=False))
    native = MILVUS.make(NATIVE[0], served, encoder, query_language=evalset.language, **NATIVE[1])
    results.append(run_strategy(f"{NATIVE[2]} · milvus", native, evalset, 100, progress=False))
    score(results, qrels, grade)
    rows = [
        {
            "strategy": r.name,
            "ndcg@10": round(r.metrics["ndcg@10"], 4),
            "recall@100": round(r.metrics["recall@100"], 4),
            "p50_ms": round(r.p50_ms, 1),
            "p95_ms": round(r.p95_ms, 1),
        }
        for r in results
    ]
    stages = milvus_result.manifest["stage_seconds"]
    return {
        "dataset": f"{evalset.name} ({args.split}, {len(evalset.queries)} queries)",
        "passages": local_result.manifest["passage_count"],
        "model": args.model,
        "build_seconds": {
            "local (embeds every passage)": round(local_s, 1),
            "local stages": local_result.manifest["stage_seconds"],
            "milvus (vectors from the cache)": round(milvus_s, 1),
            "milvus stages": stages,
        },
        "rows": rows,
    }


def _synthetic(n: int, dim: int, seed: int) -> tuple[list[Passage], list[list[str]], np.ndarray]:
    rng = random.Random(seed)
    vocab = [f"w{i}" for i in range(50_000)]
    # Zipf-like, as words are; cumulated once (choices() would redo the 50,000 sums per passage)
    cum_weights = list(itertools.accumulate(1 / (i + 1) for i in range(len(vocab))))
    passages, terms = [], []
    for i in range(n):
        words = rng.choices(vocab, cum_weights=cum_weights, k=rng.randint(30, 120))
        lang = "pt" if i % 2 else "en"
        passages.append(
            Passage(f"s{i}", f"d{i // 10}", "T", lang, "guide", "synthetic", "", None, None, " ".join(words))
        )
        terms.append(words)
    vectors = np.random.default_rng(seed).standard_normal((n, dim), dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return passages, terms, vectors


def scale(args: argparse.Namespace) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="bench-milvus-scale-"))
    settings = MilvusSettings(uri=args.milvus_uri or str(tmp / "milvus.db"), timeout_s=600)
    conn = MilvusConnection(settings)
    client, name = conn.client, f"scale_{args.passages}"
    passages, terms, vectors = _synthetic(args.passages, 384, 7)
    client.create_collection(
        name, schema=create_schema(conn.pymilvus, 384), index_params=index_params(client, BuildConfig([]).bm25)
    )
    start = time.perf_counter()
    for lo in range(0, len(passages), 2000):
        rows = [row_of(i, passages[i], terms[i], vectors[i].tolist()) for i in range(lo, min(lo + 2000, len(passages)))]
        client.insert(name, rows, timeout=600)
    insert_s = time.perf_counter() - start
    start = time.perf_counter()
    client.flush(name, timeout=600)
    client.load_collection(name, timeout=600)
    flush_s = time.perf_counter() - start
    rng = random.Random(11)
    timings: dict[str, list[float]] = {"bm25": [], "dense": [], "bm25 + filter": []}
    for _ in range(args.queries):
        words = " ".join(rng.choice(terms[rng.randrange(len(terms))]) for _word in range(4))
        vector = vectors[rng.randrange(len(vectors))].tolist()
        for label, data, field, expr in (
            ("bm25", [words], SPARSE, ""),
            ("dense", [vector], VECTOR, ""),
            ("bm25 + filter", [words], SPARSE, 'language in ["pt"]'),
        ):
            start = time.perf_counter()
            client.search(name, data=data, anns_field=field, limit=100, filter=expr, output_fields=OUTPUT_FIELDS)
            timings[label].append((time.perf_counter() - start) * 1000)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    disk = sum(p.stat().st_size for p in tmp.rglob("*") if p.is_file()) / 2**20
    return {
        "passages": args.passages,
        "insert_s": round(insert_s, 1),
        "flush_and_load_s": round(flush_s, 1),
        "query_ms_k100": {
            k: {"p50": round(float(np.percentile(v, 50)), 1), "p95": round(float(np.percentile(v, 95)), 1)}
            for k, v in timings.items()
        },
        "peak_rss_mib": round(peak),
        "disk_mib": round(disk),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    q = sub.add_parser("quality")
    q.add_argument("--dataset", default="project")
    q.add_argument("--split", default="test")
    q.add_argument("--model", default="e5-small")
    q.add_argument("--max-docs", type=int, default=0)
    q.add_argument("--cache-dir", default="")
    q.add_argument("--milvus-uri", default="")
    s = sub.add_parser("scale")
    s.add_argument("--passages", type=int, default=20_000)
    s.add_argument("--queries", type=int, default=50)
    s.add_argument("--milvus-uri", default="")
    args = parser.parse_args()
    result = quality(args) if args.command == "quality" else scale(args)
    result["machine"] = f"{platform.machine()}, {platform.python_version()}, shared 2-core container"
    print(json.dumps(result, indent=2, ensure_ascii=False))
    if args.command == "quality":
        print("\n| strategy · backend | nDCG@10 | R@100 | p50 ms | p95 ms |\n| --- | ---: | ---: | ---: | ---: |")
        for row in result["rows"]:
            cells = (row["strategy"], row["ndcg@10"], row["recall@100"], row["p50_ms"], row["p95_ms"])
            print("| " + " | ".join(str(c) for c in cells) + " |")


if __name__ == "__main__":
    main()
