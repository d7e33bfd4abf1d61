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

# Chosen on the project's dev split (rag-server tune; docs/BENCHMARKS.md): BM25 carries
# more weight than the English-only embedding model on this bilingual corpus, and passages of an
# article the question names are boosted.
CONVEX_DEFAULTS: dict[str, Any] = {"weights": {"bm25": 0.6, "dense": 0.4}, "citation_boost": 1.0}


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
    ``hybrid-convex`` starts from :data:`CONVEX_DEFAULTS`.

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
        options = {**CONVEX_DEFAULTS, **options}
        return HybridRetriever(build, parts, fusion="convex", query_language=query_language, **options)
    raise UnknownStrategyError(f"unknown strategy {name!r}; valid strategies: {list(STRATEGIES)}")


__all__ = [
    "CONVEX_DEFAULTS",
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
    "make_retriever",
]
