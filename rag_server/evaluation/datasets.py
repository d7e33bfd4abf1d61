"""Evaluation data: the project's own question set and BEIR-format datasets.

Project judgments name a passage id *and* where the passage lives (document, article,
provision, section), so they survive re-chunking: a judgment whose passage id no longer exists
is re-attached to the passages of the same document and article/provision (or section).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from ..documents import Document, read_beir_corpus
from ..errors import CorpusError
from ..passage import Passage, normalize_article

PROJECT_QUESTIONS = Path(__file__).with_name("questions.jsonl")
NATURAL_QUESTIONS = Path(__file__).with_name("natural.jsonl")
"""Questions phrased by someone who does not know the article numbers (no article cited)."""
SPLITS = ("dev", "test")


@dataclass(frozen=True)
class Judgment:
    passage_id: str
    doc_id: str
    grade: int
    article: str | None = None
    provision: str | None = None
    section: str | None = None


@dataclass(frozen=True)
class EvalQuery:
    id: str
    text: str
    language: str | None = None
    kind: str | None = None
    split: str | None = None
    judgments: tuple[Judgment, ...] = field(default_factory=tuple)


@dataclass
class EvalSet:
    """Queries with judgments; ``level`` says whether they judge passages or documents."""

    name: str
    queries: list[EvalQuery]
    level: str  # "passage" | "document"
    documents: list[Document] | None = None  # BEIR: the corpus to index
    language: str | None = None  # BEIR: one language for every query

    def split(self, name: str | None) -> EvalSet:
        if name is None or name == "all":
            return self
        return EvalSet(
            self.name, [q for q in self.queries if q.split == name], self.level, self.documents, self.language
        )


def load_project_questions(path: Path = PROJECT_QUESTIONS) -> EvalSet:
    queries = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            judgments = tuple(
                Judgment(
                    j["passage_id"],
                    j["doc_id"],
                    int(j["grade"]),
                    j.get("article"),
                    j.get("provision"),
                    j.get("section"),
                )
                for j in row["relevant"]
            )
            queries.append(
                EvalQuery(row["id"], row["question"], row.get("language"), row.get("kind"), row.get("split"), judgments)
            )
        except (json.JSONDecodeError, KeyError, TypeError, ValueError):
            raise CorpusError(path, f"line {lineno}: not a question record") from None
    return EvalSet(f"rag_server {path.stem}", queries, level="passage")


def resolve_qrels(evalset: EvalSet, passages: Iterable[Passage]) -> dict[str, dict[str, int]]:
    """Judgments → {query id: {passage id: grade}} against the passages of a build."""
    passages = list(passages)
    by_id = {p.id for p in passages}
    by_article: dict[tuple[str, str, str | None], list[str]] = {}
    by_section: dict[tuple[str, str], list[str]] = {}
    for p in passages:
        if p.article:
            by_article.setdefault((p.doc_id, p.article, p.provision), []).append(p.id)
        by_section.setdefault((p.doc_id, p.section), []).append(p.id)
    qrels: dict[str, dict[str, int]] = {}
    for q in evalset.queries:
        graded: dict[str, int] = {}
        for j in q.judgments:
            if j.passage_id in by_id:
                targets = [j.passage_id]
            elif j.article:
                targets = by_article.get((j.doc_id, normalize_article(j.article), j.provision), [])
            else:
                targets = by_section.get((j.doc_id, j.section or ""), [])
            for pid in targets:
                graded[pid] = max(graded.get(pid, 0), j.grade)
        if graded:
            qrels[q.id] = graded
    return qrels


def load_beir(directory: Path, split: str = "test", language: str = "en") -> EvalSet:
    """A BEIR dataset directory: corpus.jsonl, queries.jsonl, qrels/<split>.tsv."""
    directory = Path(directory)
    for required in ("corpus.jsonl", "queries.jsonl", f"qrels/{split}.tsv"):
        if not (directory / required).is_file():
            raise CorpusError(directory / required, "missing file (expected a BEIR dataset directory)")
    qrels: dict[str, dict[str, int]] = {}
    with (directory / "qrels" / f"{split}.tsv").open(encoding="utf-8") as handle:
        for row in csv.reader(handle, delimiter="\t"):
            if not row or row[0] == "query-id":
                continue
            qrels.setdefault(row[0], {})[row[1]] = int(row[2])
    texts: dict[str, str] = {}
    for lineno, line in enumerate((directory / "queries.jsonl").read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            try:
                row = json.loads(line)
                texts[str(row["_id"])] = str(row["text"])
            except (json.JSONDecodeError, KeyError):
                raise CorpusError(directory / "queries.jsonl", f"line {lineno}: not a BEIR query") from None
    queries = [
        EvalQuery(
            qid, texts[qid], language, None, split, tuple(Judgment("", doc, grade) for doc, grade in judged.items())
        )
        for qid, judged in qrels.items()
        if qid in texts
    ]
    documents = list(read_beir_corpus(directory / "corpus.jsonl", language))
    return EvalSet(directory.name, queries, "document", documents, language)


def document_qrels(evalset: EvalSet) -> dict[str, dict[str, int]]:
    return {q.id: {j.doc_id: j.grade for j in q.judgments} for q in evalset.queries if q.judgments}
