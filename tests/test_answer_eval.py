"""The answer-level evaluation: its question set is well formed, and its judge counts right."""

from __future__ import annotations

import json
import re
from pathlib import Path
from types import SimpleNamespace

import pytest

from rag_server.analysis import fold
from rag_server.chunking import chunk_corpus
from rag_server.documents import load_corpus
from rag_server.errors import CorpusError
from rag_server.evaluation.answers import (
    ANSWER_QUESTIONS,
    OFF_TOPIC,
    judge,
    load_answer_questions,
    markdown,
    summarize,
)
from rag_server.prompt import build_prompt
from rag_server.retrieval.base import Hit
from rag_server.sentences import Span

from support import passage

CORPUS = Path(__file__).parents[1] / "corpus"


@pytest.fixture(scope="module")
def questions():  # type: ignore[no-untyped-def]
    return load_answer_questions(ANSWER_QUESTIONS)


def test_the_set_is_large_balanced_and_mostly_without_article_numbers(questions) -> None:  # type: ignore[no-untyped-def]
    in_domain = [q for q in questions if q.fact is not None]
    off_topic = [q for q in questions if q.fact is None]
    assert len(in_domain) >= 120 and len(off_topic) >= 20
    assert len({q.id for q in questions}) == len(questions)
    for language in ("pt", "en"):
        share = sum(q.language == language for q in in_domain) / len(in_domain)
        assert 0.4 <= share <= 0.6
    assert {q.split for q in questions} == {"dev", "test"}
    assert sum(q.names_article for q in in_domain) <= len(in_domain) / 4
    assert {q.category for q in in_domain} >= {"deadline", "amount", "count", "date", "who", "yes-no", "list"}
    assert all(q.category == OFF_TOPIC for q in off_topic)


def test_every_fact_is_stated_by_one_of_its_evidence_documents(questions) -> None:  # type: ignore[no-untyped-def]
    by_doc: dict[str, list[str]] = {}
    for p in chunk_corpus(load_corpus([CORPUS])):
        by_doc.setdefault(p.doc_id, []).append(fold(p.text))
    for q in questions:
        if q.fact is None:
            continue
        docs = {e["doc_id"] for e in q.evidence}
        assert docs and docs <= set(by_doc), q.id
        assert any(q.fact.search(text) for d in docs for text in by_doc[d]), q.id


def test_bad_lines_name_the_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    path.write_text('{"id": "x"}\n', encoding="utf-8")
    with pytest.raises(CorpusError, match="line 1"):
        load_answer_questions(path)
    row = {"id": "y", "split": "dev", "language": "en", "category": "deadline", "question": "q", "fact": None}
    path.write_text(json.dumps(row) + "\n", encoding="utf-8")
    with pytest.raises(CorpusError, match="only off-topic"):
        load_answer_questions(path)


def test_judge_and_summary() -> None:
    text = "A Resolução regula a matéria. O prazo é de três dias úteis."
    cited = passage("res#1", text, article="6")
    other = passage("res#2", "Outra regra sem o fato.")
    hits = [Hit(rank=1, score=1.0, passage=cited), Hit(rank=2, score=0.5, passage=other)]
    evidence = [(cited, Span(30, len(text))), (other, Span(0, 23))]
    prompt = build_prompt("Qual o prazo?", hits, evidence=evidence)
    from rag_server.answer import locate

    def result(answer: str, supported: bool = True):  # type: ignore[no-untyped-def]
        return SimpleNamespace(
            answer=answer,
            supported=supported,
            prompt=prompt.text,
            citations=prompt.citations,
            hits=hits,
            source=locate(answer, prompt) if answer else None,
        )

    row = {"id": "a", "split": "dev", "language": "pt", "category": "deadline", "question": "Qual o prazo?"}
    fact = SimpleNamespace(**row, names_article=False, fact=re.compile("tres dias uteis"), evidence=())
    fact.holds_fact = lambda t: bool(fact.fact.search(fold(t)))  # type: ignore[attr-defined]
    good = judge(fact, result("O prazo é de três dias úteis."), 10.0)  # type: ignore[arg-type]
    assert good.fact_in_answer and good.fact_in_prompt and good.fact_in_top_k and good.first_citation_holds_fact
    assert good.copied_top_sentence and good.clean_start and good.clean_end and not good.refused and not good.quoted
    cut = judge(fact, result("três dias úteis, e"), 20.0)  # type: ignore[arg-type]
    assert cut.fact_in_answer and not cut.clean_start and not cut.clean_end and not cut.copied_top_sentence
    assert not good.dependent_start
    assert judge(fact, result("[1] Por isso, o prazo é de três dias úteis."), 5.0).dependent_start  # type: ignore[arg-type]
    refused = judge(fact, result("", supported=False), 30.0)  # type: ignore[arg-type]
    assert refused.refused and not refused.fact_in_answer and not refused.clean_end

    assert good.sentences == 1  # an AskResult without parts: one sentence when it answers
    parts = [SimpleNamespace(text="O prazo é de três dias úteis."), SimpleNamespace(text="Outra regra.")]
    two = judge(fact, SimpleNamespace(**vars(result("O prazo é de três dias úteis. Outra regra.")), parts=parts), 5.0)  # type: ignore[arg-type]
    assert two.sentences == 2 and two.fact_in_answer
    assert summarize([good, two])["all"]["sentences_per_answer"] == 1.5

    summary = summarize([good, cut, refused])
    assert summary["all"]["n"] == 3 and summary["pt"]["fact_in_answer"] == pytest.approx(2 / 3)
    assert summary["all"]["clean_end"] == pytest.approx(1 / 3) and summary["all"]["clean_end_answered"] == 0.5
    assert summary["all"]["p50_ms"] == 20.0 and "en" not in summary
    assert markdown(summary).splitlines()[0].startswith("| group | n | fact_in_answer")
