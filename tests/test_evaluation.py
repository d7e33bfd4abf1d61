from pathlib import Path

import pytest

from rag_server.chunking import chunk_corpus
from rag_server.documents import load_corpus
from rag_server.evaluation import StrategySpec, compare, load_beir, load_project_questions, resolve_qrels, save

from support import passage

FIXTURES = Path(__file__).parent / "fixtures"
REPO = Path(__file__).parents[1]


def test_beir_loader_on_a_tiny_dataset() -> None:
    evalset = load_beir(FIXTURES / "beir")
    assert evalset.level == "document" and evalset.language == "en"
    assert [q.id for q in evalset.queries] == ["q1", "q2", "q3"]
    assert evalset.queries[0].judgments[0].doc_id == "d1"
    assert evalset.documents is not None and len(evalset.documents) == 4


def test_compare_takes_a_question_file_in_the_project_format(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    from rag_server.cli import main
    from rag_server.errors import CorpusError
    from rag_server.evaluation.compare import load_dataset
    from rag_server.evaluation.datasets import NATURAL_QUESTIONS

    first, second = NATURAL_QUESTIONS.read_text(encoding="utf-8").splitlines()[:2]  # a dev and a test question
    own = tmp_path / "ours.jsonl"
    own.write_text(f"{first}\n{second}\n", encoding="utf-8")
    evalset, corpus = load_dataset(str(own), "dev")
    assert [q.id for q in evalset.queries] == ["nq001"] and evalset.level == "passage"
    assert corpus == [Path("corpus")]  # judged by passage ids of the shipped corpus
    with pytest.raises(CorpusError, match="no such question file"):
        load_dataset(str(tmp_path / "missing.jsonl"), "dev")
    assert main(["compare", "--dataset", str(tmp_path / "missing.jsonl"), "--strategies", "bm25", "--quiet"]) == 2
    assert capsys.readouterr().err.strip() == f"error: {tmp_path / 'missing.jsonl'}: no such question file"


def test_project_questions_are_balanced_and_resolve_against_the_corpus() -> None:
    evalset = load_project_questions()
    assert len(evalset.queries) >= 150
    assert {q.split for q in evalset.queries} == {"dev", "test"}
    assert {q.language for q in evalset.queries} == {"pt", "en"}
    passages = chunk_corpus(load_corpus([REPO / "corpus"]))
    qrels = resolve_qrels(evalset, passages)
    assert set(qrels) == {q.id for q in evalset.queries}
    assert all(max(graded.values()) == 2 for graded in qrels.values())


def test_judgments_survive_rechunking() -> None:
    evalset = load_project_questions()
    passages = chunk_corpus(load_corpus([REPO / "corpus"]))
    renamed = [type(p)(**{**p.to_dict(), "id": p.id + "-v2"}) for p in passages]
    before, after = resolve_qrels(evalset, passages), resolve_qrels(evalset, renamed)
    assert {q: {pid + "-v2": g for pid, g in r.items()} for q, r in before.items()} == after


def test_comparison_end_to_end_on_a_tiny_beir_fixture(tmp_path: Path, fake_encoder) -> None:  # type: ignore[no-untyped-def]
    specs = [StrategySpec("bm25", "bm25"), StrategySpec("dense", "dense"), StrategySpec("hybrid-rrf", "hybrid")]
    result = compare(str(FIXTURES / "beir"), "test", specs, encoder=fake_encoder, cache_dir=None, progress=False)
    assert [r.name for r in result.results] == ["bm25", "dense", "hybrid-rrf"]
    bm25 = result.results[0]
    assert bm25.metrics["recall@5"] == 1.0 and 0 < bm25.metrics["ndcg@10"] <= 1
    assert len(bm25.latencies_ms) == 3
    assert "| bm25 |" in result.markdown and "Paired t-test" in result.markdown
    json_path, png_path = save(result, tmp_path, "tiny")
    assert json_path.read_text().startswith("{") and '"ttest_pvalues"' in json_path.read_text()
    assert png_path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_article_level_scores_count_the_first_passage_of_the_right_article() -> None:
    from rag_server.evaluation.articles import article_key, article_scores
    from rag_server.evaluation.runner import StrategyResult

    law = [passage(f"lei#p{i}", f"texto {i}", article=str(a), provision=f"§ {i}") for i, a in enumerate([7, 7, 9, 11])]
    guide = passage("guia#g1", "um guia")
    passages = [*law, guide]
    assert article_key(law[0]) == article_key(law[1]) == "lei#7"
    assert article_key(guide).startswith("guia#")
    # q1's judged passage is lei#p1 (Art. 7); the run ranks its sibling lei#p0 first: the passage
    # is missed at rank 1, the article is not. q2's article (11) comes after two others. A
    # translation twin graded 1 (guia#g1) never counts.
    qrels = {"q1": {"lei#p1": 2}, "q2": {"lei#p3": 2, "guia#g1": 1}}
    run = {
        "q1": {"lei#p0": 3.0, "lei#p2": 2.0, "lei#p1": 1.0},
        "q2": {"guia#g1": 4.0, "lei#p0": 3.0, "lei#p1": 2.5, "lei#p2": 2.0, "lei#p3": 1.0},
    }
    scores = article_scores([StrategyResult("s", run, [1.0, 1.0])], qrels, passages)["s"]
    assert scores["hit_rate@1"] == pytest.approx(0.5)
    assert scores["hit_rate@5"] == pytest.approx(1.0)
    # q2: guia#g1, lei#7 (p0 and p1 merge), lei#9, lei#11 → rank 4.
    assert scores["mrr@10"] == pytest.approx((1.0 + 1 / 4) / 2)


def test_chart_legend_hides_no_bar() -> None:
    from rag_server.evaluation.report import chart
    from rag_server.evaluation.runner import DEFAULT_SPECS, METRICS, StrategyResult

    # Seven strategies (the default comparison) with high scores: the bars fill the axes, MAP@100 too.
    results = [
        StrategyResult(s.name, {}, [], {m: 0.95 - 0.01 * i for m in METRICS}) for i, s in enumerate(DEFAULT_SPECS)
    ]
    fig = chart(results, "scifact · test")
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
    (ax,) = fig.axes
    legends = [*fig.legends, *([ax.get_legend()] if ax.get_legend() else [])]
    assert len(legends) == 1
    box = legends[0].get_window_extent(renderer)
    bars = [patch.get_window_extent(renderer) for patch in ax.patches]
    assert len(bars) == len(METRICS) * len(results)
    assert not any(box.overlaps(bar) for bar in bars)
    assert not box.overlaps(ax.get_window_extent(renderer))  # off the data area altogether
    assert len(legends[0].get_texts()) == len(results)


def test_chart_title_names_the_dataset_not_its_path(tmp_path: Path, fake_encoder, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from rag_server.evaluation import report

    titles: list[str] = []
    real = report.chart

    def spy(results, title):  # type: ignore[no-untyped-def]
        titles.append(title)
        return real(results, title)

    monkeypatch.setattr(report, "chart", spy)
    specs = [StrategySpec("bm25", "bm25")]
    result = compare(str(FIXTURES / "beir"), "test", specs, encoder=fake_encoder, cache_dir=None, progress=False)
    save(result, tmp_path, "tiny")
    assert titles == ["beir · test"] and result.dataset == str(FIXTURES / "beir")


def test_scores_per_question_language_add_up_to_the_overall_ones(fake_encoder) -> None:  # type: ignore[no-untyped-def]
    specs = [StrategySpec("bm25", "bm25"), StrategySpec("keyword", "keyword")]
    result = compare("natural", "dev", specs, encoder=fake_encoder, cache_dir=None, progress=False)
    groups = {g.language: g for g in result.languages}
    assert set(groups) == {"pt", "en"} and sum(g.queries for g in groups.values()) == result.queries
    for strategy in result.results:
        # Each metric is a mean over questions: the languages' means, weighted by their counts,
        # give the overall one, at passage and at article level.
        for metric in ("ndcg@10", "recall@5"):
            mixed = sum(g.queries * g.passages[strategy.name][metric] for g in groups.values()) / result.queries
            assert mixed == pytest.approx(strategy.metrics[metric])
        mixed = sum(g.queries * g.articles[strategy.name]["hit_rate@5"] for g in groups.values()) / result.queries
        assert mixed == pytest.approx(result.articles[strategy.name]["hit_rate@5"])
    assert "By question language:" in result.markdown and "| pt | " in result.markdown


def test_a_one_language_set_has_no_language_view(fake_encoder) -> None:  # type: ignore[no-untyped-def]
    result = compare(
        str(FIXTURES / "beir"),
        "test",
        [StrategySpec("bm25", "bm25")],
        encoder=fake_encoder,
        cache_dir=None,
        progress=False,
    )
    assert result.languages == [] and "By question language" not in result.markdown
