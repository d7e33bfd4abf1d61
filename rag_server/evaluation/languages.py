"""Scores per question language: does a strategy serve Portuguese and English questions alike?

``rag-server compare`` adds this view when a question set mixes languages (the project's two
sets do; a BEIR set has one). Each language's scores are over its own questions only, so a
strategy's overall score is the average of its languages' scores weighted by their question
counts. The served default must be at least as good as its best component in each language
(issue 13), which one overall number can hide.

That identity assumes every judged question has a language (the project's sets do; one without
is left out of this view) and, for the article view, a passage judged at the relevant grade.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from ..passage import Passage
from .articles import article_scores
from .datasets import EvalQuery
from .runner import METRICS, StrategyResult, metric_names

LANGUAGE_METRICS = ("ndcg@10", "recall@5")
"""Passage-level metrics shown per language (as named in ``StrategyResult.metrics``)."""


@dataclass(frozen=True)
class LanguageScores:
    """One language's questions: passage metrics and, for passage-judged sets, article metrics,
    each as {strategy: {metric: value}}."""

    language: str
    queries: int
    passages: dict[str, dict[str, float]]
    articles: dict[str, dict[str, float]]


def language_scores(
    results: Sequence[StrategyResult],
    qrels: Mapping[str, Mapping[str, int]],
    queries: Iterable[EvalQuery],
    relevant_grade: int = 1,
    passages: Sequence[Passage] | None = None,
) -> list[LanguageScores]:
    """Scores per language of the judged ``queries`` (sorted by language); empty when they are
    in fewer than two languages. ``passages`` (the build's) give the article view."""
    from ranx import Qrels, Run, evaluate

    ids: dict[str, list[str]] = {}
    for query in queries:
        if query.id in qrels and query.language:
            ids.setdefault(query.language, []).append(query.id)
    if len(ids) < 2:
        return []
    # ranx's name of each metric at this relevance grade → ours
    names = {r: m for r, m in zip(metric_names(relevant_grade), METRICS, strict=True) if m in LANGUAGE_METRICS}
    found = []
    for language in sorted(ids):
        own = ids[language]
        own_qrels = {q: dict(qrels[q]) for q in own}
        judged = Qrels(own_qrels)
        subsets = [StrategyResult(r.name, {q: r.run[q] for q in own if q in r.run}, []) for r in results]
        scores: dict[str, dict[str, float]] = {}
        for subset in subsets:
            values = evaluate(judged, Run(subset.run), list(names), make_comparable=True)
            scores[subset.name] = {ours: float(values[ranx_name]) for ranx_name, ours in names.items()}
        articles = article_scores(subsets, own_qrels, passages, relevant_grade) if passages is not None else {}
        found.append(LanguageScores(language, len(own), scores, articles))
    return found


def language_table(scores: Sequence[LanguageScores]) -> str:
    """One row per (language, strategy): passage metrics, then the article ones when present."""
    article = bool(scores) and bool(scores[0].articles)
    head = ["language", "questions", "strategy", "nDCG@10", "R@5"]
    if article:
        head += ["article in top 5", "article MRR@10"]
    lines = ["| " + " | ".join(head) + " |", "| --- | ---: | --- |" + " ---: |" * (len(head) - 3)]
    for group in scores:
        for name, values in group.passages.items():
            cells = [f"{values[m]:.4f}" for m in LANGUAGE_METRICS]
            if article:
                cells += [f"{group.articles[name][m]:.4f}" for m in ("hit_rate@5", "mrr@10")]
            lines.append(f"| {group.language} | {group.queries} | {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
