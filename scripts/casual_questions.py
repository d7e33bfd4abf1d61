#!/usr/bin/env python3
"""The same questions typed the way people type them: no accents, lower case, no question mark.

Non-lawyers ask "qual o prazo pra avisar a anpd" as often as "Qual o prazo para avisar a ANPD?".
BM25 and the evidence ranking fold accents and case away; the embedding model and the support
classifier read the text as typed. This writes a casual copy of the natural-question split and of
the answer set (``casual()`` below, nothing else changed, judgments and fact patterns kept) and
runs, side by side in one process, the retrieval comparison and the answer evaluation on both:

    .venv/bin/python scripts/casual_questions.py --index /tmp/idx_e5 [--split test] [--cache-dir DIR]

``--index`` is a build of the shipped corpus (for the answers); ``--cache-dir`` its embedding
cache, so the comparison's own temporary build embeds nothing again.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from rag_server.analysis import fold
from rag_server.cli import main as cli
from rag_server.evaluation.answers import ANSWER_QUESTIONS
from rag_server.evaluation.datasets import NATURAL_QUESTIONS


def casual(question: str) -> str:
    """``"Quem fiscaliza a LGPD?"`` → ``"quem fiscaliza a lgpd"``."""
    return fold(question).rstrip("?").strip()


def casual_copy(source: Path, target: Path) -> Path:
    rows = [json.loads(line) for line in source.read_text(encoding="utf-8").splitlines() if line.strip()]
    lines = [json.dumps({**row, "question": casual(row["question"])}, ensure_ascii=False) for row in rows]
    target.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return target


def run() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--index", required=True, help="a build of the shipped corpus (index root or build directory)")
    parser.add_argument("--split", default="test")
    parser.add_argument("--cache-dir", default=None, help="embedding cache for the comparison's build")
    args = parser.parse_args()
    cache = ["--cache-dir", args.cache_dir] if args.cache_dir else []
    with tempfile.TemporaryDirectory(prefix="casual-") as tmp:
        natural = casual_copy(NATURAL_QUESTIONS, Path(tmp) / "natural-casual.jsonl")
        answers = casual_copy(ANSWER_QUESTIONS, Path(tmp) / "answers-casual.jsonl")
        common = ["--split", args.split, "--strategies", "bm25,dense,hybrid-convex", "--quiet", "--out", tmp, *cache]
        for label, dataset in (("as written", str(NATURAL_QUESTIONS)), ("typed casually", str(natural))):
            print(f"\n## Natural split, {args.split}, {label}\n", flush=True)
            code = cli(["compare", "--dataset", dataset, *common])
            if code:
                return code
        for label, questions in (("as written", ANSWER_QUESTIONS), ("typed casually", answers)):
            print(f"\n## Answer set, {args.split}, {label}\n", flush=True)
            given = ["--index", args.index, "--questions", str(questions), "--out", tmp]
            code = cli(["eval-answers", "--split", args.split, *given])
            if code:
                return code
    return 0


if __name__ == "__main__":
    raise SystemExit(run())
