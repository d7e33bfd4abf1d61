"""Right article in the top k: passage runs scored one level up.

Passage judgments are strict: a neighbouring provision of the right article, ranked above the
judged one, counts as a miss for Recall@5. A compliance reader auditing an answer asks a looser
question: did the top 5 bring up the right article (for a guide, the right section)? This scores
the same runs at that level, still with ranx: each passage stands for its document and article,
a ranking keeps the first passage of each article, and an article is relevant when one of its
passages is judged at ``relevant_grade`` or above (the question's language: a translation twin,
graded lower, does not count).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from ..passage import Passage
from .runner import StrategyResult

ARTICLE_METRICS = ("hit_rate@1", "hit_rate@5", "mrr@10")
ARTICLE_HEADING = "Right article (for a guide, its section) in the ranking:"
"""The line above :func:`article_table` in ``compare`` and ``tune`` reports."""
ARTICLE_LABELS = {"hit_rate@1": "article in top 1", "hit_rate@5": "article in top 5", "mrr@10": "article MRR@10"}


def article_key(passage: Passage) -> str:
    """The unit a reader audits: ``doc#article`` for legal text, ``doc#section`` for guides."""
    return f"{passage.doc_id}#{passage.article if passage.article else passage.section}"


def article_scores(
    results: Iterable[StrategyResult],
    qrels: Mapping[str, Mapping[str, int]],
    passages: Iterable[Passage],
    relevant_grade: int = 2,
) -> dict[str, dict[str, float]]:
    """{strategy: {metric: value}} for :data:`ARTICLE_METRICS`, over the queries in ``qrels``."""
    from ranx import Qrels, Run, evaluate

    key_of = {p.id: article_key(p) for p in passages}
    article_qrels = {
        q: {key_of[pid]: 1 for pid, grade in judged.items() if grade >= relevant_grade and pid in key_of}
        for q, judged in qrels.items()
    }
    article_qrels = {q: judged for q, judged in article_qrels.items() if judged}
    scores: dict[str, dict[str, float]] = {}
    for result in results:
        run: dict[str, dict[str, float]] = {}
        for q in article_qrels:
            keys = list(dict.fromkeys(key_of.get(pid, pid) for pid in result.run.get(q, {})))
            # Scores that keep the run's order (best first) under ranx's sort.
            run[q] = {key: float(len(keys) - i) for i, key in enumerate(keys)} or {"__no_result__": 0.0}
        values = evaluate(Qrels(article_qrels), Run(run), list(ARTICLE_METRICS), make_comparable=True)
        scores[result.name] = {m: float(values[m]) for m in ARTICLE_METRICS}
    return scores


def article_table(scores: Mapping[str, Mapping[str, float]]) -> str:
    head = ["strategy", *[ARTICLE_LABELS[m] for m in ARTICLE_METRICS]]
    lines = ["| " + " | ".join(head) + " |", "| --- |" + " ---: |" * (len(head) - 1)]
    for name, values in scores.items():
        lines.append(f"| {name} | " + " | ".join(f"{values[m]:.4f}" for m in ARTICLE_METRICS) + " |")
    return "\n".join(lines)
