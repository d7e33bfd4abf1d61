#!/usr/bin/env python3
"""English questions over Portuguese law: does retrieval find the right article of the official
LGPD text?

The official compiled text (``../shared/datasets/lgpd-official/lgpd_pt.txt``, Portuguese only) is
indexed as a user would add it: one plain-text statute in a corpus folder of its own. The
questions are the project's own (the existing and the natural-question sets) whose best judged
passage is an LGPD article: their expected answer is that article number, now looked for among
the official text's passages. English questions measure cross-lingual retrieval; the Portuguese
questions, asked of the same index, are the same-language reference measured in the same run.

    .venv/bin/python scripts/bench_crosslingual.py [--model e5-small] [--split test]

Prints, per strategy and question language: the right article in the top 1 and the top 5, and
MRR@10 over articles (the first passage of each article counts).
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from rag_server.build import BuildConfig, build_index
from rag_server.embedding import DEFAULT_MODEL
from rag_server.evaluation.datasets import NATURAL_QUESTIONS, PROJECT_QUESTIONS, load_project_questions
from rag_server.loader import IndexBuild
from rag_server.passage import normalize_article
from rag_server.retrieval import Retriever, make_retriever
from rag_server.retrieval.citations import cited_refs

STATUTE = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "lgpd-official" / "lgpd_pt.txt"
STRATEGIES = ("bm25", "dense", "hybrid", "hybrid-convex")


@dataclass(frozen=True)
class ArticleQuestion:
    id: str
    text: str
    language: str
    articles: frozenset[str]  # any of these LGPD articles answers it
    names_article: bool  # the question cites an article number: a cue BM25 can match by itself


def lgpd_questions(split: str) -> list[ArticleQuestion]:
    """Questions whose grade-2 judgments are LGPD articles (the project's ``lgpd-cap*`` documents)."""
    found = []
    for path in (PROJECT_QUESTIONS, NATURAL_QUESTIONS):
        for q in load_project_questions(path).split(split).queries:
            best = [j for j in q.judgments if j.grade >= 2]
            if not best or not all(j.doc_id.startswith("lgpd-cap") and j.article for j in best):
                continue
            articles = frozenset(normalize_article(str(j.article)) for j in best)
            cue = bool(cited_refs(q.text).articles)
            found.append(ArticleQuestion(q.id, q.text, q.language or "pt", articles, cue))
    return found


def article_ranks(retriever: Retriever, question: ArticleQuestion, depth: int = 10) -> int | None:
    """1-based rank of the first expected article among the distinct articles retrieved."""
    seen: list[str] = []
    for hit in retriever.search(question.text, k=50):
        article = hit.passage.article
        if article and article not in seen:
            seen.append(article)
            if article in question.articles:
                return len(seen) if len(seen) <= depth else None
    return None


def table(rows: Sequence[tuple[str, str, str, int, float, float, float]]) -> str:
    lines = [
        "| strategy | language | article named? | n | article in top 1 | in top 5 | MRR@10 |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: |",
    ]
    for strategy, language, cue, n, top1, top5, mrr in rows:
        lines.append(f"| {strategy} | {language} | {cue} | {n} | {top1:.3f} | {top5:.3f} | {mrr:.3f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--statute", type=Path, default=STATUTE, help="the official text (.txt)")
    parser.add_argument("--model", default=DEFAULT_MODEL, help="embedding model of the build")
    parser.add_argument("--split", default="test", help="dev, test or all")
    parser.add_argument("--cache-dir", type=Path, default=Path("/tmp/rag-crosslingual-cache"))
    args = parser.parse_args()
    if not args.statute.is_file():
        parser.exit(2, f"{args.statute}: not found (the official LGPD text is read from ../shared/datasets)\n")

    questions = lgpd_questions(args.split)
    with tempfile.TemporaryDirectory(prefix="rag-crosslingual-") as tmp:
        corpus = Path(tmp) / "corpus"
        corpus.mkdir()
        shutil.copy(args.statute, corpus / args.statute.name)  # a user's own folder, outside the repo
        config = BuildConfig(
            corpus_dirs=[corpus],
            index_root=Path(tmp) / "indexes",
            model=args.model,
            cache_dir=args.cache_dir,
            progress=False,
        )
        built = build_index(config)
        build = IndexBuild.load(built.path)
        articles = {p.article for p in build.passages if p.article}
        print(
            f"{args.statute.name}: {len(build.passages)} passages, {len(articles)} articles; "
            f"model {args.model}; {len(questions)} questions ({args.split})\n"
        )
        rows = []
        bm25, dense = make_retriever("bm25", build), make_retriever("dense", build)
        for strategy in STRATEGIES:
            retriever = {"bm25": bm25, "dense": dense}.get(strategy) or make_retriever(
                strategy, build, components={"bm25": bm25, "dense": dense}
            )
            for language in ("en", "pt"):
                for cue, label in ((False, "no"), (True, "yes"), (None, "all")):
                    asked = [
                        q for q in questions if q.language == language and (cue is None or q.names_article == cue)
                    ]
                    ranks = [article_ranks(retriever, q) for q in asked]
                    n = max(len(asked), 1)
                    top1 = sum(r == 1 for r in ranks) / n
                    top5 = sum(r is not None and r <= 5 for r in ranks) / n
                    mrr = sum(1 / r for r in ranks if r is not None) / n
                    rows.append((strategy, language, label, len(asked), top1, top5, mrr))
        print(table(rows))


if __name__ == "__main__":
    main()
