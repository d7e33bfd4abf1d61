"""Keyword overlap: a passage scores the number of distinct query terms it contains.

This is the seed project's retriever ("how many query words does the document share"), kept
as a baseline and for teaching, but served from an inverted index instead of a scan.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..errors import IndexLoadError
from . import sparse

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
        arrays = {"indptr": m.indptr, "doc_ids": m.doc_ids, "tf": m.tf, "doc_len": m.doc_len}
        sparse.save_arrays(directory, arrays, {"kind": self.kind, "version": VERSION, "n_docs": m.n_docs})
        sparse.save_vocab(directory, m.vocab)

    @classmethod
    def load(cls, directory: Path) -> KeywordIndex:
        params = sparse.load_params(directory, cls.kind, VERSION)
        matrix = _load_matrix(directory)
        if matrix.n_docs != params.get("n_docs"):
            raise IndexLoadError(directory / "doc_len.npy", "passage count differs from params.json")
        return cls(matrix)


def _load_matrix(directory: Path) -> sparse.TermMatrix:
    vocab = sparse.load_vocab(directory)
    def load(name: str, kind: str, **bounds: bool) -> np.ndarray:
        return sparse.check_values(directory / f"{name}.npy", sparse.load_array(directory, name), kind, **bounds)

    matrix = sparse.TermMatrix(
        vocab=vocab,
        indptr=load("indptr", "i", non_negative=True),
        doc_ids=load("doc_ids", "i", non_negative=True),
        tf=load("tf", "f", positive=True),
        doc_len=load("doc_len", "f", non_negative=True),
    )
    if matrix.indptr.shape != (len(vocab) + 1,) or int(matrix.indptr[-1]) != matrix.doc_ids.shape[0]:
        raise IndexLoadError(directory / "indptr.npy", "does not match vocab.json and doc_ids.npy")
    if int(matrix.indptr[0]) != 0 or (np.diff(matrix.indptr) < 0).any():
        raise IndexLoadError(directory / "indptr.npy", "offsets do not start at 0 and never decrease")
    if matrix.tf.shape != matrix.doc_ids.shape:
        raise IndexLoadError(directory / "tf.npy", "length differs from doc_ids.npy")
    if matrix.doc_ids.size and int(matrix.doc_ids.max()) >= matrix.n_docs:
        raise IndexLoadError(directory / "doc_ids.npy", "refers to passages beyond doc_len.npy")
    return matrix
