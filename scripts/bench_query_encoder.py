#!/usr/bin/env python3
"""Query encoding: sentence-transformers' ``model.encode`` vs the one-query path, same run.

Each project question is encoded by both (taking turns at going first), on one torch thread (the server's
setting); ``--repeats`` rounds, each reporting the two medians and their ratio, and the
largest difference between the vectors.

    .venv/bin/python scripts/bench_query_encoder.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from rag_server.embedding import SentenceTransformerEncoder
from rag_server.evaluation import load_project_questions


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    torch.set_num_threads(1)
    encoder = SentenceTransformerEncoder(eager=True)
    model = encoder._model
    questions = [q.text for q in load_project_questions().queries]
    for text in questions[:10]:  # warm-up
        encoder.encode([text])

    print(f"machine: 2 vCPU, 1 torch thread; {len(questions)} questions per round")
    print("| round | model.encode p50 ms | one-query path p50 ms | ratio | max abs difference |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for round_ in range(1, args.repeats + 1):
        library: list[float] = []
        fast: list[float] = []
        worst = 0.0
        for i, text in enumerate(questions):
            for side in (0, 1) if i % 2 == 0 else (1, 0):  # take turns at going first
                start = time.perf_counter()
                if side == 0:
                    reference = model.encode([text], normalize_embeddings=True, convert_to_numpy=True)
                    library.append((time.perf_counter() - start) * 1000)
                else:
                    vector = encoder.encode([text])
                    fast.append((time.perf_counter() - start) * 1000)
            worst = max(worst, float(np.abs(vector - reference).max()))
        a, b = statistics.median(library), statistics.median(fast)
        print(f"| {round_} | {a:.2f} | {b:.2f} | {b / a:.3f} | {worst:.1e} |")


if __name__ == "__main__":
    main()
