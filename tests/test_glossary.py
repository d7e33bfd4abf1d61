"""The plain-words glossary: which expressions it expands, when a build turns it on, and how
keyword and dense search use it."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
import pytest

from rag_server.analysis import Analyzer, AnalyzerSettings
from rag_server.build import BuildConfig
from rag_server.errors import BuildError
from rag_server.glossary import expanded_terms, legal_terms, speaks_lgpd
from rag_server.loader import IndexBuild
from rag_server.retrieval import LOCAL
from rag_server.retrieval.dense import search_vector


@pytest.mark.parametrize(
    ("question", "language", "expected"),
    [
        ("Posso pedir pra empresa apagar meus dados?", "pt", "eliminação"),
        ("Fomos hackeados, e agora?", "pt", "incidente de segurança"),
        ("Ela pode usar meus dados sem me pedir permissão?", "pt", "consentimento"),
        ("Can I take my data to a different bank?", "en", "portability"),
        ("Do we have to tell customers when we get hacked?", "en", "security incident"),
        ("Do government agencies need a DPO?", "en", "data protection officer public authorities"),
        (
            "Como faço pra corrigir um dado errado no cadastro?",
            "pt",
            "correção de dados incompletos inexatos desatualizados",
        ),
        ("Can I get a copy of my data?", "en", "access confirmation of processing"),
        ("What if a customer changes their mind later?", "en", "withdraw consent"),
        ("Is this the correct way to store logs?", "en", ""),  # "correct" alone is not the right to correction
        ("Se a empresa corrigir o problema logo, a multa fica menor?", "pt", "sanções administrativas"),
        ("Qual o prazo para desistir de uma compra pela internet?", "pt", ""),  # consumer law, not consent
        ("Quero reclamar na ANPD da empresa", "pt", "petição titular autoridade nacional"),
        # The rights entries need the person's own data or the authority as their object.
        ("Can I withdraw from an online purchase?", "en", ""),
        ("We updated data processing agreements", "en", ""),
        ("What is the correct data retention period?", "en", "end of processing retention"),
        ("registrar uma reclamação no Procon", "pt", ""),
        ("I filed a complaint with the consumer court", "en", ""),
        ("Preciso ver os dados de saúde dos funcionários", "pt", "dado pessoal sensível"),
        ("How do I withdraw my consent?", "en", "withdraw consent"),
        ("Quero corrigir minhas informações", "pt", "correção de dados incompletos inexatos desatualizados"),
    ],
)
def test_plain_expressions_give_the_law_s_terms(question: str, language: str, expected: str) -> None:
    assert legal_terms(question, language) == expected


def test_a_question_in_legal_terms_or_another_language_gets_nothing() -> None:
    assert legal_terms("Qual o prazo de comunicação à ANPD?", "pt") == ""
    assert legal_terms("apagar", "en") == ""  # each language has its own entries
    assert legal_terms("apagar", "fr") == ""


def test_expansion_appends_new_terms_once_and_only_with_the_glossary() -> None:
    plain = Analyzer()
    terms = plain.tokens("Quero apagar meus dados", "pt")
    assert expanded_terms(plain, "Quero apagar meus dados", terms, "pt") is terms  # no glossary: unchanged
    lgpd = Analyzer(AnalyzerSettings(glossary="lgpd"))
    expanded = expanded_terms(lgpd, "Quero apagar meus dados", terms, "pt")
    assert expanded[: len(terms)] == terms  # the question's own terms first, all kept
    assert expanded[len(terms) :] == lgpd.tokens("eliminação", "pt")
    already = lgpd.tokens("apagar a eliminação", "pt")
    assert expanded_terms(lgpd, "apagar a eliminação", already, "pt") == already  # never twice


@pytest.mark.parametrize(
    ("text", "speaks"),
    [
        ("Lei nº 13.709, de 14 de agosto de 2018 (LGPD)", True),
        ("Lei 13709/2018", True),
        ("A ANPD fiscaliza.", True),
        ("Lei Geral de Proteção de Dados Pessoais", True),
        ("A cohort of 13709 patients was followed.", False),
        ("We counted 13,709 cells.", False),
        ("GPU partitioning between tenants.", False),
    ],
)
def test_the_domain_is_recognised_by_the_law_s_name_number_or_authority(text: str, speaks: bool) -> None:
    assert speaks_lgpd([text]) is speaks


def test_an_unknown_glossary_choice_is_refused_with_the_valid_ones() -> None:
    with pytest.raises(BuildError, match=r"unknown glossary 'legal'; choose from \['auto', 'lgpd', 'none'\]"):
        BuildConfig([Path("corpus")], glossary="legal").validate()


def test_a_build_records_its_glossary_and_its_queries_follow_it(corpus_dir: Path, make_build, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    # The fixture corpus never names the LGPD: "auto" leaves it off.
    auto = IndexBuild.load(make_build(corpus_dir, tmp_path / "auto").path)
    assert auto.manifest["analyzer"]["glossary"] is None and auto.analyzer.settings.glossary is None
    forced = IndexBuild.load(make_build(corpus_dir, tmp_path / "lgpd", glossary="lgpd").path)
    assert forced.manifest["analyzer"]["glossary"] == "lgpd" and forced.analyzer.settings.glossary == "lgpd"

    question = "Is my permission needed?"
    consent = forced.analyzer.tokens("consent", "en")[0]
    assert consent not in LOCAL.make("bm25", auto).query_terms(question)
    assert consent in LOCAL.make("bm25", forced).query_terms(question)
    top = LOCAL.make("bm25", forced).search(question, k=1, filters={"language": "en"})
    assert "consent" in top[0].passage.text  # found through the law's word the question lacks

    # A corpus that names the law turns it on by itself.
    (corpus_dir / "note.txt").write_text("Este guia trata da LGPD.\n", encoding="utf-8")
    named = IndexBuild.load(make_build(corpus_dir, tmp_path / "named").path)
    assert named.manifest["analyzer"]["glossary"] == "lgpd"


def test_dense_search_ranks_by_the_question_averaged_with_its_legal_wording(
    corpus_dir: Path, make_build, tmp_path: Path, fake_encoder
) -> None:  # type: ignore[no-untyped-def]
    forced = IndexBuild.load(make_build(corpus_dir, tmp_path / "lgpd", glossary="lgpd").path)
    plain = IndexBuild.load(make_build(corpus_dir, tmp_path / "auto").path)  # the glossary stays off
    asked: list[str] = []

    @lru_cache
    def vector(text: str) -> np.ndarray:
        asked.append(text)
        return fake_encoder.encode_queries([text])[0]

    question = "Is my permission needed?"
    mixed = search_vector(forced.analyzer, vector, question, "en")
    both = vector(question) + vector(f"{question} (consent)")
    assert asked == [question, f"{question} (consent)"]
    np.testing.assert_allclose(mixed, both / np.linalg.norm(both), rtol=1e-6)
    assert abs(float(np.linalg.norm(mixed)) - 1.0) < 1e-5
    # No glossary, or no plain words: the question's own vector, embedded once.
    assert search_vector(plain.analyzer, vector, question, "en") is vector(question)
    assert search_vector(forced.analyzer, vector, "consent of the data subject", "en") is vector(
        "consent of the data subject"
    )

    # The dense retriever searches with that vector, not the question's own.
    dense = LOCAL.make("dense", forced, encoder=fake_encoder)
    found = dense.search(question, k=5)
    expected = forced.dense.search(mixed, 5, None)  # type: ignore[union-attr]
    assert [h.passage.id for h in found] == [forced.passages[r].id for r in expected.indices.tolist()]
    np.testing.assert_allclose([h.score for h in found], expected.scores, rtol=1e-5)
    own = forced.dense.search(vector(question), 5, None)  # type: ignore[union-attr]
    assert not np.allclose(own.scores, expected.scores)  # the expansion moved the scores
