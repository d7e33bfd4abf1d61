"""The README's examples, asked of the shipped corpus built with the default embedding model and
answered by the packaged generator, as `make run` would answer them."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from rag_server.analysis import fold
from rag_server.build import BuildConfig, build_index
from rag_server.embedding import DEFAULT_MODEL, make_encoder
from rag_server.generator import load_generator
from rag_server.pipeline import RagPipeline

pytestmark = pytest.mark.slow  # the shipped corpus, embedded with the real model

CORPUS = Path(__file__).parents[1] / "corpus"
README = Path(__file__).parents[1] / "README.md"


@pytest.fixture(scope="module")
def shipped(tmp_path_factory: pytest.TempPathFactory) -> RagPipeline:
    root = tmp_path_factory.mktemp("shipped-index")
    # Every core: an earlier test's pipeline may have left torch at one thread (the served
    # setting), which would double this build, the slowest step of the suite.
    encoder = make_encoder(DEFAULT_MODEL, threads=os.cpu_count())
    build_index(BuildConfig([CORPUS], root, progress=False), encoder=encoder)
    return RagPipeline(root, generator=load_generator(None), support_threshold=None)  # as the server


def test_the_readme_example_answers_with_the_deadline_and_cites_the_resolution(shipped: RagPipeline) -> None:
    question = "Qual o prazo para comunicar um incidente de segurança à ANPD?"
    assert question in README.read_text(encoding="utf-8")
    result = shipped.ask(question)
    assert result.supported and re.search(r"\b(3|tres) dias uteis", fold(result.answer)), result.answer
    sources = [part.source for part in result.parts if part.source is not None]
    assert sources and sources[0] == result.source
    for source in sources:  # each answer sentence points at its sentence in the cited passage
        cited = result.citations[source.number - 1]
        assert cited.text[source.start : source.end] == source.text
    # The resolution that sets the deadline is cited for an answer sentence that states it (first,
    # or after the LGPD's Art. 48 § 1º explaining that the resolution set it).
    assert any(
        result.citations[s.number - 1].source == "Resolução CD/ANPD nº 15/2024"
        and result.citations[s.number - 1].language == "pt"
        and re.search(r"\b(3|tres) dias uteis", fold(s.text))
        for s in sources
    ), [(result.citations[s.number - 1].source, s.text) for s in sources]
    assert result.answer.endswith(".") and result.answer[0].isupper()


@pytest.mark.parametrize(
    ("question", "filters"),
    [
        ("Who is the controller when we host a client's model?", {"language": "en"}),  # rag-server ask --lang en
        ("Who is the controller when we host a client model on our GPUs?", None),  # the chat example
    ],
)
def test_the_readme_s_other_questions_get_right_answers(shipped: RagPipeline, question: str, filters) -> None:  # type: ignore[no-untyped-def]
    assert question in README.read_text(encoding="utf-8")
    result = shipped.ask(question, filters=filters)
    assert result.supported and "client is the controller" in result.answer, result.answer
    assert result.source is not None and result.citations[result.source.number - 1].language == "en"


def test_the_readme_search_example_finds_the_isolation_guide(shipped: RagPipeline) -> None:
    assert '"GPU partitioning between tenants", "strategy": "bm25", "k": 3' in README.read_text(encoding="utf-8")
    hits = shipped.search("GPU partitioning between tenants", "bm25", 3).hits
    assert [h.passage.doc_id for h in hits].count("gpu-tenant-isolation-en") >= 2


@pytest.mark.parametrize(
    "question",
    [
        # Near-misses whose best passage is as close as an in-domain question's (cosine above the
        # e5-small threshold alone): other areas of Brazilian law, everyday consumer questions.
        "Qual a diferença entre MEI e microempresa para pagar impostos?",
        "O que não pode faltar num contrato de aluguel residencial?",
        "Can a Brazilian court order a website to take down a defamatory post?",
    ],
)
def test_the_served_support_check_refuses_near_misses(shipped: RagPipeline, question: str) -> None:
    assert shipped.support_classifier() is not None  # the packaged classifier of the default model
    result = shipped.ask(question)
    assert not result.supported and not result.answer, result.answer
