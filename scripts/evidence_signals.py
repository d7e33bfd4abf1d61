#!/usr/bin/env python3
"""Which signals could put the fact's sentence first? A feature study for the evidence ranking (issue 12).

The answer copies the first (sometimes the second) sentence of the evidence ranking
(``rag_server.evidence``), so the share of questions whose first sentence holds the fact bounds
"fact in the answer". This script takes every in-domain question of the answer set whose top-k
passages hold its fact, ranks their sentences as ``/v1/ask`` does, and gives each sentence the
ranker's own signals plus candidate ones the ranker does not use:

* ``sentence_dense``: cosine between the question and the sentence, embedded alone by the
  build's model (passage side); the ranker's ``dense`` signal, which it leaves out at weight 0;
* ``lexical_glossary``: ``lexical`` over the question's terms plus the legal terms its plain
  words stand for (``rag_server.glossary``, as BM25 expands a query);
* ``opens_passage``: the sentence is its passage's first;
* ``length``: the sentence's length in characters over 400 (capped at 1).

For each set of signals, the conditional logit of ``rag-server eval-answers --tune``
(``fit_weights``) is fitted on dev and scored on dev and test: the share of questions whose first
sentence, and first three, hold the fact. The ranker's shipped weights are scored too.

    .venv/bin/python scripts/evidence_signals.py --index /tmp/idx_e5
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from rag_server.analysis import detect_language
from rag_server.evaluation.answers import ANSWER_QUESTIONS, fit_weights, load_answer_questions, top_rates
from rag_server.evidence import EvidenceSentence, _overlap
from rag_server.glossary import glossary_text
from rag_server.pipeline import DEFAULT_ASK_K, RagPipeline

CANDIDATES = ("sentence_dense", "lexical_glossary", "opens_passage", "length")
SIGNAL_SETS: tuple[tuple[str, ...], ...] = ((), *((c,) for c in CANDIDATES), CANDIDATES)


def candidate_signals(pipeline: RagPipeline, question: str, ranked: Sequence[EvidenceSentence]) -> np.ndarray:
    """Rows of the candidate signals (``CANDIDATES`` order) of ``ranked``'s sentences."""
    state = pipeline._current()
    analyzer, ranker = state.build.analyzer, pipeline.ranker(state)
    dense = pipeline.retriever("dense", state)
    vectors = pipeline.encoder(state).encode_passages([s.text for s in ranked])
    similarity = vectors @ dense.query_vector(question)  # type: ignore[attr-defined]
    # The glossary reads the question in its own language (as BM25 expands a query); its legal
    # terms, like the question's words, are analysed in each sentence's language.
    legal = glossary_text(analyzer, question, detect_language(question))
    rows = []
    for s, cosine in zip(ranked, similarity, strict=True):
        language = s.passage.language
        terms = analyzer.tokens(f"{question} {legal}", language)
        asked = {t: ranker.idf(t) for t in set(terms)}
        lexical = _overlap(asked, analyzer.tokens(s.text, language))
        rows.append([float(cosine), lexical, float(s.span.start == 0), min(len(s.text), 400) / 400])
    return np.array(rows, dtype=np.float64)


def collect(pipeline: RagPipeline, split: str, k: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Per question with its fact in a candidate: signals (own, then candidates) and fact flags."""
    names = list(pipeline.evidence_weights.to_dict())
    signals, holds = [], []
    for q in load_answer_questions(ANSWER_QUESTIONS, split):
        if q.fact is None:
            continue
        ranked = pipeline.ranker().rank(q.question, pipeline.retriever(None).search(q.question, k=k))
        found = np.array([q.holds_fact(s.text) for s in ranked], dtype=bool)
        if not found.any():
            continue
        own = np.array([[s.features[n] for n in names] for s in ranked], dtype=np.float64)
        signals.append(np.hstack([own, candidate_signals(pipeline, q.question, ranked)]))
        holds.append(found)
    return signals, holds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--index", required=True, help="index root or build directory (with a dense index)")
    parser.add_argument("-k", type=int, default=DEFAULT_ASK_K, help="passages whose sentences compete")
    args = parser.parse_args()
    pipeline = RagPipeline(args.index)
    own = [n for n in pipeline.evidence_weights.to_dict() if n != "dense"]  # dense: sentence_dense below
    names = [*pipeline.evidence_weights.to_dict(), *CANDIDATES]
    data = {split: collect(pipeline, split, args.k) for split in ("dev", "test")}
    shipped = np.array([*pipeline.evidence_weights.to_dict().values(), *([0.0] * len(CANDIDATES))])
    print(
        f"index {Path(args.index)} · k = {args.k} · questions with the fact in a candidate sentence: "
        f"dev {len(data['dev'][0])}, test {len(data['test'][0])}\n"
    )
    print("| signals | fitted on | dev: first | dev: first 3 | test: first | test: first 3 |")
    print("| --- | --- | ---: | ---: | ---: | ---: |")
    dev1, dev3 = top_rates(shipped, *data["dev"])
    test1, test3 = top_rates(shipped, *data["test"])
    print(f"| the ranker's own (shipped weights) | — | {dev1:.3f} | {dev3:.3f} | {test1:.3f} | {test3:.3f} |")
    for extra in SIGNAL_SETS:
        columns = [names.index(n) for n in (*own, *extra)]
        dev_x = [x[:, columns] for x in data["dev"][0]]
        weights = fit_weights(dev_x, data["dev"][1])
        dev1, dev3 = top_rates(weights, dev_x, data["dev"][1])
        test1, test3 = top_rates(weights, [x[:, columns] for x in data["test"][0]], data["test"][1])
        label = "own + " + ", ".join(extra) if extra else "the ranker's own (refitted)"
        print(f"| {label} | dev | {dev1:.3f} | {dev3:.3f} | {test1:.3f} | {test3:.3f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
