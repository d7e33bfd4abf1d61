"""Keyword overlap: a passage scores the number of distinct query terms it contains.

This is the seed project's retriever ("how many query words does the document share"), kept
as a baseline and for teaching, but served from an inverted index instead of a scan.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..errors import IndexLoadError
from . import sparse, storage

VERSION = 1


class KeywordIndex(sparse.PostingsIndex):
    kind = "keyword"

    def __init__(self, matrix: sparse.TermMatrix) -> None:
        self.matrix = matrix
        self._ones = np.ones(matrix.tf.shape, dtype=np.float64)

    @classmethod
    def build(cls, corpus_tokens: Sequence[Sequence[str]]) -> KeywordIndex:
        return cls(sparse.TermMatrix.from_tokens(corpus_tokens))

    def _accumulate(self, query_terms: Sequence[str]) -> sparse.Accumulated:
        # Each distinct query term counts once, whatever its frequency in query or passage.
        rows = {row: 1 for row in sparse.query_term_weights(self.matrix.vocab, query_terms)}
        m = self.matrix
        return sparse.accumulate(self.starts, self.posting_rows, self._ones, rows, m.n_docs)

    def save(self, directory: Path) -> None:
        m = self.matrix
        storage.save_matrix(directory, m, {"kind": self.kind, "version": VERSION, "n_docs": m.n_docs})

    @classmethod
    def load(cls, directory: Path) -> KeywordIndex:
        params = storage.load_params(directory, cls.kind, VERSION)
        matrix = storage.load_matrix(directory)
        if matrix.n_docs != params.get("n_docs"):
            raise IndexLoadError(directory / "doc_len.npy", "passage count differs from params.json")
        return cls(matrix)
