"""Keyword-overlap and BM25 retrievers over the build's sparse indexes."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from ..errors import IndexLoadError
from ..indexes.sparse import PostingsIndex, ScoredPassages
from ..loader import IndexBuild
from .base import IndexRetriever


class _PostingsRetriever(IndexRetriever):
    """Ranks with the build's index named :attr:`name` (an attribute of ``IndexBuild``)."""

    def __init__(self, build: IndexBuild, query_language: str | None = None) -> None:
        super().__init__(build, query_language)
        index: PostingsIndex | None = getattr(build, self.name)
        if index is None:
            raise IndexLoadError(build.path / self.name, f"this build has no {self.name} index")
        self.index = index

    def scored(self, query: str, terms: list[str], k: int, mask: npt.NDArray[np.bool_] | None) -> ScoredPassages:
        return self.index.search(terms, k, mask)


class KeywordRetriever(_PostingsRetriever):
    """Ranks passages by how many distinct query terms they share (ties: corpus order)."""

    name = "keyword"


class BM25Retriever(_PostingsRetriever):
    """Okapi BM25 with the build's parameters."""

    name = "bm25"
