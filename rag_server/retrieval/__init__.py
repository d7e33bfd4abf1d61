"""Retrieval strategies behind one contract, and a factory from strategy names.

>>> retriever = make_retriever("hybrid", build)
>>> hits = retriever.search("prazo para comunicar incidente", k=5, filters={"language": "pt"})
"""

from __future__ import annotations

from typing import Any

from ..embedding import Encoder
from ..errors import UnknownStrategyError
from ..loader import IndexBuild
from .base import FILTER_FIELDS, MAX_K, ComponentScore, Filters, Hit, Retriever
from .dense import DenseRetriever
from .hybrid import HybridRetriever
from .sparse import BM25Retriever, KeywordRetriever

STRATEGIES = ("keyword", "bm25", "dense", "hybrid", "hybrid-convex")


def make_retriever(
    name: str,
    build: IndexBuild,
    encoder: Encoder | None = None,
    query_language: str | None = None,
    **options: Any,
) -> Retriever:
    """The retriever called ``name``; ``options`` go to the hybrid (rrf_k, weights, depth).

    ``query_language`` fixes the query stemmer ("pt"/"en"); None detects it per query."""
    if name == "keyword":
        return KeywordRetriever(build, query_language)
    if name == "bm25":
        return BM25Retriever(build, query_language)
    if name == "dense":
        return DenseRetriever(build, encoder, query_language)
    if name in ("hybrid", "hybrid-convex"):
        components: dict[str, Retriever] = {"bm25": BM25Retriever(build), "dense": DenseRetriever(build, encoder)}
        fusion = "rrf" if name == "hybrid" else "convex"
        return HybridRetriever(build, components, fusion=fusion, query_language=query_language, **options)
    raise UnknownStrategyError(f"unknown strategy {name!r}; valid strategies: {list(STRATEGIES)}")


__all__ = [
    "FILTER_FIELDS",
    "MAX_K",
    "STRATEGIES",
    "BM25Retriever",
    "ComponentScore",
    "DenseRetriever",
    "Filters",
    "Hit",
    "HybridRetriever",
    "KeywordRetriever",
    "Retriever",
    "make_retriever",
]
