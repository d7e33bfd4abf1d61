"""The pipeline without HTTP: search and ask results, retrievers made once and shared, the
warm-up, and reloads."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from rag_server.errors import UnknownStrategyError
from rag_server.pipeline import RagPipeline
from rag_server.retrieval import DEFAULT_STRATEGY, STRATEGIES


@pytest.fixture
def pipeline(built, tmp_path: Path, fake_encoder) -> RagPipeline:  # type: ignore[no-untyped-def]
    """Over a build of the fixture corpus (fake encoder), every passage counted as evidence."""
    return RagPipeline(tmp_path / "indexes", encoder=fake_encoder, support_threshold=0.0)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_search_ranks_hits_of_the_served_build(pipeline: RagPipeline, strategy: str) -> None:
    result = pipeline.search("consentimento do titular", strategy, 3)
    assert result.build_id == pipeline.build.build_id and result.strategy == strategy
    assert [h.rank for h in result.hits] == [1, 2, 3] and result.hits[0].passage.article == "2"
    assert "retrieve" in result.timings_ms


def test_ask_numbers_its_citations_and_points_at_the_source(pipeline: RagPipeline) -> None:
    result = pipeline.ask("Em quanto tempo comunicar um incidente?", None, 5, {"language": "pt"})
    assert result.supported and result.quoted and result.generator_id is None  # no generator: quoted
    assert [c.number for c in result.citations] == list(range(1, len(result.citations) + 1))
    assert result.source is not None
    cited = result.citations[result.source.number - 1]
    assert cited.passage_id == result.source.passage_id
    assert cited.text[result.source.start : result.source.end] == result.source.text == result.answer
    assert result.prompt.startswith("Question: Em quanto tempo") and result.strategy == DEFAULT_STRATEGY


def test_an_unknown_strategy_is_a_query_error(pipeline: RagPipeline) -> None:
    with pytest.raises(UnknownStrategyError):
        pipeline.search("dados", "colbert", 3)


def test_hybrids_reuse_the_pipelines_bm25_and_dense_retrievers(pipeline: RagPipeline) -> None:
    dense, bm25 = pipeline.retriever("dense"), pipeline.retriever("bm25")
    for name in ("hybrid", "hybrid-convex"):
        components = pipeline.retriever(name).components
        assert components["dense"] is dense and components["bm25"] is bm25


def test_warm_up_makes_the_default_retriever_and_embeds_once(pipeline: RagPipeline, fake_encoder) -> None:  # type: ignore[no-untyped-def]
    before = fake_encoder.calls
    pipeline.warm_up()
    assert DEFAULT_STRATEGY in pipeline._state.retrievers
    assert fake_encoder.calls == before + 1


def test_reload_warms_the_new_build_before_switching(pipeline: RagPipeline, make_build, corpus_dir: Path) -> None:  # type: ignore[no-untyped-def]
    make_build(corpus_dir)  # a newer build of the same corpus
    pipeline.reload()
    assert DEFAULT_STRATEGY in pipeline._state.retrievers  # made (and its query embedded) before the switch


def test_reload_keeps_the_loaded_embedding_model_when_the_new_build_uses_it(  # type: ignore[no-untyped-def]
    built, make_build, corpus_dir: Path, tmp_path: Path, fake_encoder, monkeypatch: pytest.MonkeyPatch
) -> None:
    pipeline = RagPipeline(tmp_path / "indexes")  # no encoder given: each build's own model
    pipeline._state.encoder = fake_encoder  # as if loaded for the first build
    first = pipeline.build.build_id
    make_build(corpus_dir)  # a newer build, embedded by the same (fake) model
    assert pipeline.reload() != first
    assert pipeline.encoder() is fake_encoder
    assert pipeline._state.retrievers["dense"].encoder is fake_encoder  # type: ignore[attr-defined]
    monkeypatch.setattr(fake_encoder, "checksum", "0" * 64)  # a build embedded by another model
    assert pipeline._reusable(pipeline.build) is None


def test_a_failed_warm_up_is_logged_not_raised(
    pipeline: RagPipeline, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise TypeError("an error from inside a library, not one of ours")

    monkeypatch.setattr(pipeline, "retriever", broken)
    with caplog.at_level(logging.WARNING, logger="rag_server.pipeline"):
        pipeline.warm_up()
    assert any(r.getMessage() == "warm-up search failed" for r in caplog.records)


def test_an_answer_from_a_long_enumeration_quotes_the_item_and_points_at_it(
    tmp_path: Path, make_build, fake_encoder
) -> None:  # type: ignore[no-untyped-def]
    """A sentence too long for the generator's window answers with the item asked about, after
    its lead-in; the source's offsets mark that item in the passage."""
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    items = (
        "(I) cessação da infração — 75% se antes da instauração de procedimento preparatório pela ANPD, 50% se "
        "depois dele e até a instauração do processo sancionador, 30% se depois disso e até a decisão de primeira "
        "instância; (II) 20% pela implementação de política de boas práticas e governança, até a decisão de "
        "primeira instância; (III) medidas comprovadas para reverter ou mitigar os efeitos da infração sobre os "
        "titulares — 20% se adotadas antes do procedimento preparatório, 10% se depois dele; e (IV) 5% por "
        "cooperação ou boa-fé."
    )
    (corpus / "dosimetria.md").write_text(
        "---\nid: dosimetria-pt\ntitle: Dosimetria\nlanguage: pt\ntype: guide\nsource: Guia\n---\n\n"
        f"# Atenuantes\n\nO valor da multa é reduzido quando incidirem atenuantes: {items}\n",
        encoding="utf-8",
    )
    make_build(corpus, tmp_path / "indexes")
    pipeline = RagPipeline(tmp_path / "indexes", encoder=fake_encoder, support_threshold=0.0, runner_up_margin=None)
    result = pipeline.ask("Quanto a multa diminui por cooperação e boa-fé?")
    lead = "O valor da multa é reduzido quando incidirem atenuantes:"
    assert result.answer == f"{lead} [...] (IV) 5% por cooperação ou boa-fé."
    assert result.source is not None
    text = result.citations[result.source.number - 1].text
    assert text[result.source.start : result.source.end] == "(IV) 5% por cooperação ou boa-fé."
    # Two items of the list in one answer: the second drops the lead-in it repeats, its source keeps it.
    both = RagPipeline(tmp_path / "indexes", encoder=fake_encoder, support_threshold=0.0, runner_up_margin=99.0)
    result = both.ask("Quanto a multa diminui por cooperação e boa-fé?")
    assert len(result.parts) == 2 and result.parts[1].source is not None
    assert result.parts[1].text.startswith("[...] (") and result.parts[1].source.text.startswith(lead)
    assert result.answer == f"{result.parts[0].text} {result.parts[1].text}"


def test_a_long_question_gives_way_to_the_sentences_the_answer_is_pointed_to() -> None:
    """The prompt keeps what the reserve leaves of the question (at least an eighth of the room),
    so a runner-up sentence is not pushed out by a question kept whole."""
    from rag_server.pipeline import fit_question

    question = "A customer wants a copy of the exact contract clauses we rely on to send their data to the US. " * 2
    asked, cut = fit_question(question, budget=767, reserve=616)
    assert cut and len(asked) <= 767 - 41 - 616 and question.startswith(asked) and not asked.endswith(" ")
    assert question[len(asked)] == " "  # cut between words
    floor, cut = fit_question(question, budget=767, reserve=760)
    assert cut and 726 // 8 - 10 <= len(floor) <= 726 // 8  # the floor, less the word it would split
    assert fit_question("Qual o prazo?", budget=767, reserve=616) == ("Qual o prazo?", False)
