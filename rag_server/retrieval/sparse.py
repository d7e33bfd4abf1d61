"""Keyword-overlap and BM25 retrievers over the build's sparse indexes."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from ..errors import IndexLoadError
from ..indexes import BM25Index, KeywordIndex
from ..loader import IndexBuild
from .base import Hit, Retriever


class KeywordRetriever(Retriever):
    """Ranks passages by how many distinct query terms they share (ties: corpus order)."""

    name = "keyword"

    def __init__(self, build: IndexBuild, query_language: str | None = None) -> None:
        super().__init__(build, query_language)
        if build.keyword is None:
            raise IndexLoadError(build.path / "keyword", "this build has no keyword index")
        self.index: KeywordIndex = build.keyword

    def _search(self, query: str, terms: list[str], k: int, mask: npt.NDArray[np.bool_] | None) -> list[Hit]:
        found = self.index.search(terms, k, mask)
        return self._hits(found)


class BM25Retriever(Retriever):
    """Okapi BM25 with the build's parameters."""

    name = "bm25"

    def __init__(self, build: IndexBuild, query_language: str | None = None) -> None:
        super().__init__(build, query_language)
        if build.bm25 is None:
            raise IndexLoadError(build.path / "bm25", "this build has no BM25 index")
        self.index: BM25Index = build.bm25

    def _search(self, query: str, terms: list[str], k: int, mask: npt.NDArray[np.bool_] | None) -> list[Hit]:
        found = self.index.search(terms, k, mask)
        return self._hits(found)
