#!/usr/bin/env python3
"""Calibrate the "supported" threshold of /v1/ask on the dev split; report it on test.

Evidence = the highest cosine similarity between the question and a retrieved passage
(``RagPipeline.evidence``). In-domain questions (the project's evaluation set) should be
answered; off-topic ones (``rag_server/evaluation/offtopic.jsonl``) should get
``supported: false``. A wrong refusal costs a compliance user more than a weakly supported
answer that still shows its citations, so the threshold chosen on dev is the highest one that
still answers at least ``--min-answered`` (95%) of in-domain questions; it is then checked on
the test split.

    .venv/bin/python scripts/calibrate_support.py [--index indexes] [--strategy hybrid-convex] [--k 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from rag_server.evaluation import load_project_questions
from rag_server.pipeline import RagPipeline

OFFTOPIC = Path(__file__).parents[1] / "rag_server" / "evaluation" / "offtopic.jsonl"


def scores(pipeline: RagPipeline, questions: list[str], strategy: str, k: int) -> list[float]:
    out = []
    for q in questions:
        hits = pipeline.retriever(strategy).search(q, k=k)
        out.append(pipeline.evidence(q, hits))
    return out


def rates(pos: list[float], neg: list[float], threshold: float) -> tuple[float, float]:
    tpr = sum(s >= threshold for s in pos) / len(pos)
    tnr = sum(s < threshold for s in neg) / len(neg)
    return tpr, tnr


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--index", default="indexes")
    parser.add_argument("--strategy", default="hybrid-convex")
    parser.add_argument("--k", type=int, default=3)
    parser.add_argument("--min-answered", type=float, default=0.95, help="share of in-domain dev questions answered")
    args = parser.parse_args()

    pipeline = RagPipeline(args.index)
    evalset = load_project_questions()
    offtopic = [json.loads(line) for line in OFFTOPIC.read_text(encoding="utf-8").splitlines() if line.strip()]
    data = {}
    for split in ("dev", "test"):
        pos = scores(pipeline, [q.text for q in evalset.queries if q.split == split], args.strategy, args.k)
        neg = scores(pipeline, [r["question"] for r in offtopic if r["split"] == split], args.strategy, args.k)
        data[split] = (pos, neg)

    pos, neg = data["dev"]
    candidates = sorted(set(pos + neg))
    best = max(t for t in candidates if rates(pos, neg, t)[0] >= args.min_answered)
    print(f"evidence = max cosine(question, top-{args.k} passages), strategy {args.strategy}")
    print("| split | in-domain n | median | off-topic n | median | answered in-domain | refused off-topic |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for split, (p, n) in data.items():
        tpr, tnr = rates(p, n, best)
        print(
            f"| {split} | {len(p)} | {statistics.median(p):.3f} | {len(n)} | {statistics.median(n):.3f} "
            f"| {tpr:.1%} | {tnr:.1%} |"
        )
    print(f"\nthreshold (chosen on dev): {best:.3f}  -> RAG_SUPPORT_THRESHOLD")


if __name__ == "__main__":
    main()
