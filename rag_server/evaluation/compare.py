"""Offline comparison of retrieval strategies on the project's questions or a BEIR dataset.

The corpus is indexed into a temporary build (the served index is never touched); every
strategy and hybrid variant answers every query 100 deep; ranx scores the runs; the result is
a markdown table, a JSON file and a PNG chart.
"""

from __future__ import annotations

import platform
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..build import BuildConfig, build_index
from ..embedding import DEFAULT_MODEL, Encoder
from ..errors import CorpusError
from ..indexes import BM25Params
from ..loader import IndexBuild
from ..retrieval import LOCAL, Retriever, encoder_for_build, make_retriever
from .articles import ARTICLE_HEADING, article_scores, article_table
from .datasets import (
    NATURAL_QUESTIONS,
    PROJECT_QUESTIONS,
    EvalSet,
    document_qrels,
    load_beir,
    load_project_questions,
    resolve_qrels,
)
from .languages import LanguageScores, language_scores, language_table
from .report import markdown_table, pvalue_table, write_chart, write_json
from .runner import DEFAULT_SPECS, DEPTH, StrategyResult, StrategySpec, run_strategy, score

# Published nDCG@10 on SciFact's test split, from ../shared/datasets/scifact/README.md.
PUBLISHED = {
    "scifact": {
        "BM25, Anserini/Lucene flat (k1=0.9, b=0.4)": 0.6789,
        "BM25, Elasticsearch multi-field (BEIR paper)": 0.665,
        "all-MiniLM-L6-v2 dense (MTEB)": 0.6451,
    }
}


@dataclass
class Comparison:
    dataset: str  # as given: "project", "natural" or a BEIR directory
    name: str  # the dataset's name, for titles (never a server path)
    split: str
    results: list[StrategyResult]
    pvalues: dict[str, dict[str, dict[str, float]]]
    manifest: dict[str, Any]
    queries: int
    markdown: str
    articles: dict[str, dict[str, float]] = field(default_factory=dict)  # strategy → article-level metrics
    languages: list[LanguageScores] = field(default_factory=list)  # per question language (mixed sets)


QUESTION_SETS = {"project": PROJECT_QUESTIONS, "natural": NATURAL_QUESTIONS}


def load_dataset(dataset: str, split: str) -> tuple[EvalSet, list[Path]]:
    path = QUESTION_SETS.get(dataset, Path(dataset))
    if path.suffix == ".jsonl":  # the project's question format (a named set or a user's file), on the shipped corpus
        if not path.is_file():
            raise CorpusError(path, "no such question file")
        return load_project_questions(path).split(split), [Path("corpus")]
    beir_split = "test" if split in ("all", "dev") and not (path / "qrels" / f"{split}.tsv").exists() else split
    evalset = load_beir(path, beir_split)
    return evalset, [path / "corpus.jsonl"]


def compare(
    dataset: str = "project",
    split: str = "test",
    specs: Sequence[StrategySpec] = DEFAULT_SPECS,
    model: str = DEFAULT_MODEL,
    bm25: BM25Params | None = None,
    max_chars: int = 1000,
    corpus_dirs: Sequence[Path] | None = None,
    cache_dir: Path | None = Path("indexes/cache"),
    encoder: Encoder | None = None,
    progress: bool = True,
    threads: int | None = None,
    glossary: str = "auto",
) -> Comparison:
    """Every spec over one temporary build. ``encoder`` embeds passages and queries (None: the
    ``model``, loaded once for the build and once, with ``threads`` threads, for the queries)."""
    evalset, default_dirs = load_dataset(dataset, split)
    with tempfile.TemporaryDirectory(prefix="rag-compare-") as tmp:
        needs_dense = any(LOCAL.get(s.strategy).needs_encoder for s in specs)
        config = BuildConfig(
            corpus_dirs=list(corpus_dirs or default_dirs),
            index_root=Path(tmp),
            indexes=("keyword", "bm25", "dense") if needs_dense else ("keyword", "bm25"),
            model=model,
            max_chars=max_chars,
            bm25=bm25 or BM25Params(),
            cache_dir=cache_dir,
            progress=progress,
            glossary=glossary,
        )
        built = build_index(config, encoder=encoder)
        build = IndexBuild.load(built.path)
        if evalset.level == "document":
            qrels, relevant_grade = document_qrels(evalset), 1
        else:
            qrels, relevant_grade = resolve_qrels(evalset, build.passages), 2
        evalset.queries = [q for q in evalset.queries if q.id in qrels]
        query_encoder = encoder or (encoder_for_build(build, threads) if needs_dense else None)
        results = []
        for spec in specs:
            retriever: Retriever = make_retriever(
                spec.strategy, build, query_encoder, query_language=evalset.language, **spec.options
            )
            results.append(run_strategy(spec.name, retriever, evalset, DEPTH, progress))
        pvalues = score(results, qrels, relevant_grade)
        published = PUBLISHED.get(Path(dataset).name if dataset != "project" else "", {})
        names = [r.name for r in results]
        sections = [
            f"Dataset: {evalset.name} ({split}, {len(evalset.queries)} queries, {len(build.passages)} passages, "
            f"judged by {evalset.level}; binary metrics count grade ≥ {relevant_grade})",
            markdown_table(results, published),
        ]
        articles: dict[str, dict[str, float]] = {}
        passages = build.passages if evalset.level == "passage" else None  # judged by passage: an article view
        if passages is not None:
            articles = article_scores(results, qrels, passages, relevant_grade)
            sections.append(f"{ARTICLE_HEADING}\n\n{article_table(articles)}")
        languages = language_scores(results, qrels, evalset.queries, relevant_grade, passages)
        if languages:
            sections.append("By question language:\n\n" + language_table(languages))
        sections += [pvalue_table(pvalues, "ndcg@10", names), pvalue_table(pvalues, "recall@5", names)]
        markdown = "\n\n".join(sections)
        queries = len(evalset.queries)
        return Comparison(
            dataset, evalset.name, split, results, pvalues, build.manifest, queries, markdown, articles, languages
        )


def save(comparison: Comparison, out_dir: Path, stem: str) -> tuple[Path, Path]:
    json_path, png_path = out_dir / f"{stem}.json", out_dir / f"{stem}.png"
    write_json(
        json_path,
        {
            "dataset": comparison.dataset,
            "split": comparison.split,
            "queries": comparison.queries,
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": f"{platform.machine()}, Python {platform.python_version()}",
            "build": {k: comparison.manifest.get(k) for k in ("passage_count", "bm25", "embedding", "chunking")},
            "strategies": {
                r.name: {"metrics": r.metrics, "latency_ms": {"p50": r.p50_ms, "p95": r.p95_ms}}
                for r in comparison.results
            },
            "article_metrics": comparison.articles,
            "by_language": {
                group.language: {"queries": group.queries, "metrics": group.passages, "article_metrics": group.articles}
                for group in comparison.languages
            },
            "ttest_pvalues": comparison.pvalues,
        },
    )
    write_chart(png_path, comparison.results, f"{comparison.name} · {comparison.split}")
    return json_path, png_path
