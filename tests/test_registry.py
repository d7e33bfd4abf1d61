"""The strategy registry: one list of strategies, their metadata, and another backend's registry."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from rag_server.errors import IndexLoadError, UnknownStrategyError
from rag_server.loader import IndexBuild
from rag_server.pipeline import RagPipeline
from rag_server.retrieval import LOCAL, STRATEGIES, BM25Retriever, Retriever, Strategy, StrategyRegistry


def test_local_strategies_and_their_metadata() -> None:
    assert STRATEGIES == ("keyword", "bm25", "dense", "hybrid", "hybrid-convex")
    assert LOCAL.default == "hybrid-convex" and LOCAL.get(None).name == "hybrid-convex"
    assert [s.name for s in LOCAL if s.needs_encoder] == ["dense", "hybrid", "hybrid-convex"]
    assert LOCAL.get("hybrid").components == ("bm25", "dense") and LOCAL.get("keyword").indexes == ("keyword",)
    assert all(LOCAL.descriptions().values())


def test_an_unknown_strategy_lists_the_valid_ones() -> None:
    with pytest.raises(UnknownStrategyError, match=r"unknown strategy 'colbert'; valid strategies: \['keyword'"):
        LOCAL.get("colbert")


def test_a_registry_refuses_duplicates_and_unknown_components() -> None:
    registry = StrategyRegistry(default="a")
    registry.register(Strategy("a", "first", _bm25, ("bm25",)))
    with pytest.raises(ValueError, match="already registered"):
        registry.register(Strategy("a", "again", _bm25, ("bm25",)))
    with pytest.raises(ValueError, match="unregistered"):
        registry.register(Strategy("fused", "fuses b", _bm25, ("bm25",), components=("b",)))


def _bm25(build: IndexBuild, encoder: Any, query_language: str | None, components: Any, **options: Any) -> Retriever:
    return BM25Retriever(build, query_language)


def test_a_missing_index_is_named_before_anything_loads(make_build, corpus_dir: Path) -> None:  # type: ignore[no-untyped-def]
    build = IndexBuild.load(make_build(corpus_dir, indexes=("keyword", "bm25")).path)
    with pytest.raises(IndexLoadError, match="this build has no dense index"):
        LOCAL.get("hybrid").check(build)
    pipeline = RagPipeline(build.path)  # no encoder: a dense strategy would load the build's model
    with pytest.raises(IndexLoadError, match="no dense index"):
        pipeline.search("consentimento", strategy="dense")
    assert pipeline._state.encoder is None  # refused before loading a model for it


def test_the_pipeline_serves_another_registry(built, tmp_path: Path, fake_encoder) -> None:  # type: ignore[no-untyped-def]
    """A backend with its own strategies and default (a Milvus backend registers bm25, dense and
    the hybrids the same way, under the local names the API accepts)."""
    from rag_server.api import create_app

    other = StrategyRegistry(default="bm25")
    other.register(Strategy("bm25", "BM25 alone", _bm25, ("bm25",)))
    pipeline = RagPipeline(tmp_path / "indexes", encoder=fake_encoder, registry=other, support_threshold=0.0)
    assert pipeline.search("consentimento do titular").strategy == "bm25"
    with pytest.raises(UnknownStrategyError, match=r"valid strategies: \['bm25'\]"):
        pipeline.search("consentimento", strategy="dense")
    client = create_app({"PIPELINE": pipeline, "TESTING": True}).test_client()
    body = client.get("/v1/strategies").get_json()
    assert body["default"] == "bm25" and body["backend"] == "local"
    assert body["strategies"][0] == {"name": "bm25", "description": "BM25 alone", "available": True}
    unserved = body["strategies"][1:]  # the API's other strategies, listed as not served
    assert [s["name"] for s in unserved] == ["keyword", "dense", "hybrid", "hybrid-convex"]
    assert not any(s["available"] for s in unserved)
    assert client.post("/v1/search", json={"query": "consentimento", "strategy": "dense"}).status_code == 400


def test_a_registry_serves_only_its_backends_builds(built, tmp_path: Path, fake_encoder) -> None:  # type: ignore[no-untyped-def]
    """The Milvus registry's retrievers query collections: a local build given to it is refused
    before any build is opened, and the local registry is what a local pipeline gets by default."""
    from rag_server.milvus import MILVUS

    with pytest.raises(ValueError, match="a milvus strategy registry cannot serve local builds"):
        RagPipeline(tmp_path / "indexes", encoder=fake_encoder, registry=MILVUS)
    assert RagPipeline(tmp_path / "indexes", encoder=fake_encoder).registry is LOCAL
    with pytest.raises(IndexLoadError, match="Milvus strategies rank builds held in Milvus"):
        MILVUS.make("bm25", IndexBuild.load(built.path))
