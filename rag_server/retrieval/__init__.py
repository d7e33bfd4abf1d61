"""Retrieval strategies behind one contract, made by name from one registry.

>>> retriever = make_retriever("hybrid", build)
>>> hits = retriever.search("prazo para comunicar incidente", k=5, filters={"language": "pt"})
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..embedding import Encoder
from ..loader import IndexBuild
from .base import FILTER_FIELDS, MAX_K, ComponentScore, Filters, Hit, IndexRetriever, Retriever
from .dense import DenseRetriever, encoder_for_build
from .hybrid import HybridRetriever
from .registry import Strategy, StrategyRegistry
from .sparse import BM25Retriever, KeywordRetriever
from .strategies import CONVEX_DEFAULTS, CONVEX_WEIGHTS_BY_MODEL, DEFAULT_STRATEGY, LOCAL, convex_defaults

STRATEGIES = LOCAL.names()
"""The local backend's strategy names, in the order the API and the CLI list them."""


def make_retriever(
    name: str,
    build: IndexBuild,
    encoder: Encoder | None = None,
    query_language: str | None = None,
    components: Mapping[str, Retriever] | None = None,
    **options: Any,
) -> Retriever:
    """The local retriever called ``name``; ``options`` go to the hybrids (rrf_k, weights, depth,
    language_boost, citation_boost). ``hybrid`` is reciprocal-rank fusion with equal weights;
    ``hybrid-convex`` starts from :func:`convex_defaults` (by the build's embedding model).

    ``encoder`` embeds queries (None: the model the build names, loaded on first use).
    ``query_language`` fixes the query stemmer ("pt"/"en"); None detects it per query.
    ``components`` lets a hybrid reuse existing ``bm25`` and ``dense`` retrievers (and so the
    dense one's query-embedding cache) instead of making its own."""
    return LOCAL.make(name, build, encoder, query_language, components, **options)


__all__ = [
    "CONVEX_DEFAULTS",
    "CONVEX_WEIGHTS_BY_MODEL",
    "DEFAULT_STRATEGY",
    "FILTER_FIELDS",
    "LOCAL",
    "MAX_K",
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
    "Strategy",
    "StrategyRegistry",
    "convex_defaults",
    "encoder_for_build",
    "make_retriever",
]
