"""BM25 (Okapi) with scores identical to ``rank_bm25.BM25Okapi``, at sparse-index speed.

rank_bm25 computes, for each query token ``q`` (repeated tokens count again)::

    idf(q)   = ln(N - df + 0.5) - ln(df + 0.5)      negative idf → epsilon · mean(idf)
    score   += idf(q) · tf·(k1 + 1) / (tf + k1·(1 - b + b·|d| / avgdl))

Everything right of ``score +=`` depends only on (term, passage), so it is computed once at
build time and stored as the weight of each posting. A query then sums the postings of its
terms: cost proportional to their document frequencies, not to the corpus size.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from ..errors import IndexLoadError
from . import sparse, storage

VERSION = 1


@dataclass(frozen=True)
class BM25Params:
    """rank_bm25's defaults. (Lucene uses k1=0.9, b=0.4; both are configurable.)"""

    k1: float = 1.5
    b: float = 0.75
    epsilon: float = 0.25

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def okapi_idf(doc_freq: npt.NDArray[np.int64], n_docs: int, epsilon: float) -> npt.NDArray[np.float64]:
    idf = np.log(n_docs - doc_freq + 0.5) - np.log(doc_freq + 0.5)
    if idf.size:
        floor = epsilon * idf.mean()  # rank_bm25 averages over every term, negatives included
        idf = np.where(idf < 0, floor, idf)
    return idf


class BM25Index(sparse.PostingsIndex):
    """``get_scores`` returns what ``BM25Okapi.get_scores`` would, for every passage."""

    kind = "bm25"

    def __init__(self, matrix: sparse.TermMatrix, params: BM25Params, weights: sparse.FloatArray) -> None:
        self.matrix = matrix
        self.params = params
        self.weights = weights  # (nnz,) precomputed per-posting score contribution

    @cached_property
    def weights64(self) -> npt.NDArray[np.float64]:
        """The weights in float64, as rank_bm25 sums them (float32 on disk, half the size)."""
        return self.weights.astype(np.float64)

    @classmethod
    def build(cls, corpus_tokens: Sequence[Sequence[str]], params: BM25Params | None = None) -> BM25Index:
        matrix = sparse.TermMatrix.from_tokens(corpus_tokens)
        params = params or BM25Params()
        return cls(matrix, params, cls._weights(matrix, params))

    @staticmethod
    def _weights(m: sparse.TermMatrix, p: BM25Params) -> sparse.FloatArray:
        n = m.n_docs
        avgdl = float(m.doc_len.sum()) / n if n else 0.0
        idf = okapi_idf(m.doc_freq(), n, p.epsilon)
        posting_idf = np.repeat(idf, np.diff(m.indptr))
        tf = m.tf.astype(np.float64)
        dl = m.doc_len[m.doc_ids].astype(np.float64)
        norm = p.k1 * (1 - p.b + p.b * dl / avgdl) if avgdl else np.full_like(tf, p.k1)
        return (posting_idf * tf * (p.k1 + 1) / (tf + norm)).astype(np.float32)

    def _accumulate(self, query_terms: Sequence[str]) -> sparse.Accumulated:
        # Repeated query terms count again, as in rank_bm25's get_scores.
        m = self.matrix
        rows = sparse.query_term_weights(m.vocab, query_terms)
        return sparse.accumulate(self.starts, self.posting_rows, self.weights64, rows, m.n_docs)

    def save(self, directory: Path) -> None:
        m = self.matrix
        params = {"kind": self.kind, "version": VERSION, "n_docs": m.n_docs, **self.params.to_dict()}
        storage.save_matrix(directory, m, params, weights=self.weights)

    @classmethod
    def load(cls, directory: Path) -> BM25Index:
        params = storage.load_params(directory, cls.kind, VERSION)
        matrix = storage.load_matrix(directory)
        weights = storage.check_values(directory / "weights.npy", storage.load_array(directory, "weights"), "f")
        if weights.shape != matrix.doc_ids.shape:
            raise IndexLoadError(directory / "weights.npy", "length differs from doc_ids.npy")
        if matrix.n_docs != params.get("n_docs"):
            raise IndexLoadError(directory / "doc_len.npy", "passage count differs from params.json")
        bm25 = BM25Params(k1=float(params["k1"]), b=float(params["b"]), epsilon=float(params["epsilon"]))
        return cls(matrix, bm25, weights)
