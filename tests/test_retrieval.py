"""One contract for every retriever, plus fusion checked by hand."""

from __future__ import annotations

import itertools
import statistics

import numpy as np
import pytest

from rag_server.api.responses import Hit as HitBody
from rag_server.errors import EmptyQueryError, InvalidParameterError, UnknownFilterError, UnknownStrategyError
from rag_server.indexes import ScoredPassages
from rag_server.loader import IndexBuild
from rag_server.milvus import MILVUS
from rag_server.passage import Passage
from rag_server.retrieval import LOCAL, HybridRetriever, IndexRetriever, Retriever, make_retriever


@pytest.fixture
def index(built) -> IndexBuild:  # type: ignore[no-untyped-def]
    return IndexBuild.load(built.path)


# The contract holds on both backends: every strategy of each backend's registry (Milvus serves
# all but keyword, see test_milvus.py).
REGISTRIES = {"local": LOCAL, "milvus": MILVUS}
BACKEND_STRATEGIES = [(backend, name) for backend, registry in REGISTRIES.items() for name in registry.names()]


@pytest.fixture(params=BACKEND_STRATEGIES, ids=[f"{b}-{s}" for b, s in BACKEND_STRATEGIES])
def retriever(request, fake_encoder) -> Retriever:  # type: ignore[no-untyped-def]
    backend, strategy = request.param
    # The Milvus build is made once per session; the local one per test (tests may edit it).
    build = request.getfixturevalue("milvus_build" if backend == "milvus" else "index")
    return REGISTRIES[backend].make(strategy, build, encoder=fake_encoder)


def test_hits_are_ranked_and_carry_metadata(retriever: Retriever) -> None:
    hits = retriever.search("consentimento do titular revogação", k=4)
    assert 1 <= len(hits) <= 4
    assert [h.rank for h in hits] == list(range(1, len(hits) + 1))
    assert all(a.score >= b.score for a, b in itertools.pairwise(hits))
    assert len({h.passage_id for h in hits}) == len(hits)
    top = hits[0].passage
    assert (top.doc_id, top.article, top.language) == ("lei-exemplo-pt", "2", "pt")
    row = HitBody.of(hits[0]).dump()  # as the API sends it
    assert {"passage_id", "doc_id", "title", "article", "language", "citation", "text", "score"} <= set(row)


def test_english_question_finds_the_english_passage(retriever: Retriever) -> None:
    hits = retriever.search("who must report a security incident to the authority?", k=3)
    assert any(h.passage.doc_id == "lei-exemplo-en" and h.passage.article == "3" for h in hits)


def test_k_limits_the_results(retriever: Retriever) -> None:
    assert len(retriever.search("dados pessoais controlador GPU", k=1)) == 1
    assert len(retriever.search("dados pessoais controlador GPU", k=100)) <= 100


@pytest.mark.parametrize("k", [0, -1, 101, "5", 2.5, True, None])
def test_k_out_of_range_is_refused(retriever: Retriever, k: object) -> None:
    with pytest.raises(InvalidParameterError, match="k must be"):
        retriever.search("consentimento", k=k)  # type: ignore[arg-type]


@pytest.mark.parametrize("query", ["", "   ", "the of and", "de da do o a", "?!", 42])
def test_empty_or_stopword_queries_are_refused(retriever: Retriever, query: object) -> None:
    with pytest.raises((EmptyQueryError, InvalidParameterError)):
        retriever.search(query, k=3)  # type: ignore[arg-type]


def test_filters_restrict_every_hit(retriever: Retriever) -> None:
    for filters, check in [
        ({"language": "en"}, lambda p: p.language == "en"),
        ({"article": "Art. 2"}, lambda p: p.article == "2"),
        ({"doc_type": ["guide"]}, lambda p: p.doc_type == "guide"),
        ({"doc_id": "lei-exemplo-pt", "article": "3"}, lambda p: p.doc_id == "lei-exemplo-pt" and p.article == "3"),
    ]:
        hits = retriever.search("consentimento incidente GPU servidor dados", k=10, filters=filters)
        assert hits, filters
        assert all(check(h.passage) for h in hits), filters


def test_filter_masks_equal_checking_every_passage(index: IndexBuild) -> None:
    from rag_server.retrieval.base import _values, filter_mask

    some = index.passages[len(index.passages) // 2]
    cases: list[dict[str, str | list[str]]] = [
        {"language": "pt"},
        {"language": ["pt", "en"], "doc_type": "guide"},
        {"article": ["Art. 2", "3"], "language": "en"},
        {"doc_id": [some.doc_id, "missing"], "source": some.source},
        {"source": "no such source"},
    ]
    for filters in cases:
        wanted = {name: _values(name, value) for name, value in filters.items()}
        expected = index.mask(lambda p, w=wanted: all(getattr(p, n) in v for n, v in w.items()))  # type: ignore[misc]
        assert expected.any() or filters == {"source": "no such source"}
        for _ in range(2):  # the second time from the value → rows tables
            got = filter_mask(index, filters)
            assert got is not None and got.tolist() == expected.tolist(), filters
    assert filter_mask(index, None) is None and filter_mask(index, {}) is None


def test_bad_filters_are_refused(retriever: Retriever) -> None:
    with pytest.raises(UnknownFilterError, match="valid filters"):
        retriever.search("consentimento", k=3, filters={"colour": "blue"})
    with pytest.raises(InvalidParameterError):
        retriever.search("consentimento", k=3, filters={"language": []})


def test_ranked_hits_equal_hits_made_by_the_dataclass(index: IndexBuild) -> None:
    from rag_server.retrieval.base import Hit, ranked_hits

    found = ScoredPassages(np.array([3, 0, 5]), np.array([2.5, 1.25, 1.0], dtype=np.float32))
    hits = ranked_hits(found, index.passages)
    expected = [Hit(rank=r, score=s, passage=index.passages[i]) for r, (i, s) in enumerate(found.pairs(), start=1)]
    assert hits == expected and [HitBody.of(h).dump() for h in hits] == [HitBody.of(h).dump() for h in expected]
    assert all(type(h.score) is float and h.components == {} for h in hits)
    assert hits[0].components is not hits[1].components
    with pytest.raises(AttributeError):
        hits[0].rank = 9  # type: ignore[misc]


def test_search_is_deterministic(retriever: Retriever) -> None:
    first = [h.passage_id for h in retriever.search("dados pessoais", k=10)]
    assert first == [h.passage_id for h in retriever.search("dados pessoais", k=10)]


def test_unknown_strategy_lists_the_valid_ones(index: IndexBuild) -> None:
    with pytest.raises(UnknownStrategyError, match="bm25"):
        make_retriever("colbert", index)


def test_hybrid_keeps_each_components_rank_and_score(index: IndexBuild, fake_encoder) -> None:  # type: ignore[no-untyped-def]
    hybrid = make_retriever("hybrid", index, encoder=fake_encoder)
    bm25 = make_retriever("bm25", index)
    hits = hybrid.search("consentimento revogação", k=3)
    bm25_ranks = {h.passage_id: h.rank for h in bm25.search("consentimento revogação", k=100)}
    for hit in hits:
        assert set(hit.components) == {"bm25", "dense"}
        assert hit.components["bm25"].rank == bm25_ranks.get(hit.passage_id)
    assert "components" in HitBody.of(hits[0]).dump()
    assert "components" not in HitBody.of(bm25.search("consentimento revogação", k=1)[0]).dump()


# ------------------------------------------------------------------ fusion by hand


class _Fixed(IndexRetriever):
    """A component that returns a fixed ranking, to check fusion arithmetic."""

    def __init__(self, build: IndexBuild, ranking: list[tuple[str, float]]) -> None:
        super().__init__(build)
        self.ranking = ranking

    def scored(self, query, terms, k, mask):  # type: ignore[no-untyped-def]
        row = {p.id: i for i, p in enumerate(self.build.passages)}
        chosen = self.ranking[:k]
        return ScoredPassages(
            np.array([row[pid] for pid, _ in chosen], dtype=np.int64), np.array([s for _, s in chosen], np.float32)
        )


def _ids(index: IndexBuild) -> list[str]:
    return [p.id for p in index.passages[:4]]


def test_rrf_matches_hand_computation(index: IndexBuild) -> None:
    a, b, c, d = _ids(index)
    bm25 = _Fixed(index, [(a, 9.0), (b, 5.0), (c, 1.0)])
    dense = _Fixed(index, [(b, 0.9), (c, 0.8), (d, 0.7)])
    hybrid = HybridRetriever(index, {"bm25": bm25, "dense": dense}, fusion="rrf", rrf_k=60)
    hits = hybrid.search("consentimento", k=4)
    expected = {a: 1 / 61, b: 1 / 62 + 1 / 61, c: 1 / 63 + 1 / 62, d: 1 / 63}
    assert [h.passage_id for h in hits] == [b, c, a, d]
    for h in hits:
        assert h.score == pytest.approx(expected[h.passage_id])
    assert hits[0].components["bm25"].rank == 2 and hits[0].components["dense"].rank == 1
    assert hits[2].components["dense"].rank is None and hits[2].components["dense"].score is None


def test_weighted_rrf_and_constant(index: IndexBuild) -> None:
    a, b, _, _ = _ids(index)
    bm25 = _Fixed(index, [(a, 2.0), (b, 1.0)])
    dense = _Fixed(index, [(b, 0.9), (a, 0.1)])
    hybrid = HybridRetriever(index, {"bm25": bm25, "dense": dense}, rrf_k=10, weights={"dense": 3.0})
    scores = {h.passage_id: h.score for h in hybrid.search("consentimento", k=2)}
    assert scores[a] == pytest.approx(1 / 11 + 3 / 12)
    assert scores[b] == pytest.approx(1 / 12 + 3 / 11)


def test_convex_combination_of_scores_counted_in_standard_deviations_above_the_minimum(index: IndexBuild) -> None:
    a, b, c, d = _ids(index)
    bm25 = _Fixed(index, [(a, 10.0), (b, 6.0), (c, 2.0)])
    dense = _Fixed(index, [(c, 0.9), (b, 0.5), (a, 0.4)])
    hybrid = HybridRetriever(
        index, {"bm25": bm25, "dense": dense}, fusion="convex", weights={"bm25": 0.3, "dense": 0.7}
    )
    scores = {h.passage_id: h.score for h in hybrid.search("consentimento", k=3)}
    sd_bm25, sd_dense = statistics.pstdev([10.0, 6.0, 2.0]), statistics.pstdev([0.9, 0.5, 0.4])
    assert scores[a] == pytest.approx(0.3 * 8.0 / sd_bm25 + 0.7 * 0.0)
    assert scores[b] == pytest.approx(0.3 * 4.0 / sd_bm25 + 0.7 * 0.1 / sd_dense)
    assert scores[c] == pytest.approx(0.3 * 0.0 + 0.7 * 0.5 / sd_dense)

    # A list of one (or of equal scores) counts 1 for what it holds, as absent passages count 0.
    single = HybridRetriever(
        index, {"bm25": _Fixed(index, [(d, 3.0)]), "dense": dense}, fusion="convex", weights={"bm25": 0.5, "dense": 0.5}
    )
    scores = {h.passage_id: h.score for h in single.search("consentimento", k=4)}
    assert scores[d] == pytest.approx(0.5 * 1.0)
    assert scores[c] == pytest.approx(0.5 * 0.5 / sd_dense)


@pytest.mark.parametrize(
    "options",
    [{"fusion": "borda"}, {"rrf_k": 0}, {"weights": {"colbert": 1.0}}, {"weights": {"bm25": -1.0}}, {"depth": 0}],
)
def test_bad_hybrid_options(index: IndexBuild, options: dict[str, object]) -> None:
    with pytest.raises(InvalidParameterError):
        HybridRetriever(index, {"bm25": _Fixed(index, [])}, **options)  # type: ignore[arg-type]


def test_hybrid_components_must_rank_with_one_index(index: IndexBuild) -> None:
    inner = HybridRetriever(index, {"bm25": _Fixed(index, [])})
    with pytest.raises(InvalidParameterError, match="one index"):
        HybridRetriever(index, {"bm25": _Fixed(index, []), "hybrid": inner})


def test_passage_round_trip() -> None:
    p = Passage("d#1", "d", "T", "pt", "law", "S", "Art. 1", "1", None, "texto")
    assert Passage.from_dict(p.to_dict()) == p


def test_language_boost_multiplies_same_language_passages(index: IndexBuild) -> None:
    pt = [p.id for p in index.passages if p.language == "pt"][:1]
    en = [p.id for p in index.passages if p.language == "en"][:1]
    bm25 = _Fixed(index, [(en[0], 2.0), (pt[0], 1.0)])
    plain = HybridRetriever(index, {"bm25": bm25}, rrf_k=60)
    boosted = HybridRetriever(index, {"bm25": bm25}, rrf_k=60, language_boost=0.5, query_language="pt")
    assert [h.passage_id for h in plain.search("consentimento", k=2)] == [en[0], pt[0]]
    hits = boosted.search("consentimento", k=2)
    assert [h.passage_id for h in hits] == [pt[0], en[0]]
    assert hits[0].score == pytest.approx(1.5 / 62) and hits[1].score == pytest.approx(1 / 61)


def test_cited_articles_and_resolutions_are_read_from_the_query() -> None:
    from rag_server.retrieval.citations import cited_refs

    assert cited_refs("What does Art. 18 say?").articles == {"18"}
    assert cited_refs("art. 55-J competências").articles == {"55-J"}
    refs = cited_refs("Res. CD/ANPD 15/2024, Art. 10: incident register")
    assert refs.resolutions == {"15/2024"} and refs.articles == {"10"}
    assert not cited_refs("artificial intelligence in 2024")


def test_citation_boost_lifts_the_cited_article(index: IndexBuild) -> None:
    art3 = next(p.id for p in index.passages if p.doc_id == "lei-exemplo-pt" and p.article == "3")
    other = next(p.id for p in index.passages if p.doc_id == "gpu-guide-en")
    bm25 = _Fixed(index, [(other, 2.0), (art3, 1.0)])
    plain = HybridRetriever(index, {"bm25": bm25})
    boosted = HybridRetriever(index, {"bm25": bm25}, citation_boost=1.0)
    assert plain.search("o que diz o art. 3?", k=2)[0].passage_id == other
    # The fixture's law is "Lei 99.999/2030", not the LGPD, so only a resolution-free LGPD
    # citation or a matching instrument is boosted: the boost must not apply here...
    assert boosted.search("o que diz o art. 3?", k=2)[0].passage_id == other


def test_cited_refs_match_the_right_instrument() -> None:
    from rag_server.retrieval.citations import cited_refs

    def passage(source: str, article: str | None) -> Passage:
        return Passage("x#1", "x", "T", "pt", "law", source, "", article, None, "texto")

    lgpd, res15 = "Lei 13.709/2018 (LGPD)", "Resolução CD/ANPD nº 15/2024"
    assert cited_refs("o que diz o art. 48?").matches(passage(lgpd, "48"))
    assert not cited_refs("o que diz o art. 48?").matches(passage(lgpd, "46"))
    assert not cited_refs("o que diz o art. 48?").matches(passage(res15, "48"))
    assert cited_refs("Res. 15/2024 art. 6").matches(passage(res15, "6"))
    assert not cited_refs("Res. 5/2024 art. 6").matches(passage(res15, "6"))
    assert cited_refs("Resolução CD/ANPD nº 15/2024").matches(passage(res15, None))


@pytest.mark.parametrize(
    ("model", "bm25_weight"),
    [("e5-small", 0.4), ("multilingual-e5-small", 0.4), ("minilm", 0.6), ("default", 0.6), (None, 0.6)],
)
def test_convex_weights_follow_the_builds_embedding_model(model: str | None, bm25_weight: float) -> None:
    from types import SimpleNamespace

    from rag_server.retrieval import convex_defaults

    build = SimpleNamespace(manifest={"embedding": {"model": model}} if model else {})
    options = convex_defaults(build)  # type: ignore[arg-type]
    assert options["weights"] == {"bm25": bm25_weight, "dense": round(1 - bm25_weight, 1)}
    assert options["citation_boost"] == 1.0
