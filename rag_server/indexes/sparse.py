"""A term × passage sparse matrix (CSR by term) and the scoring shared by sparse indexes.

Rows are terms, columns passages: a query touches only the rows of its own terms, so scoring
is a gather of a few posting lists plus one ``np.bincount`` over the passage axis.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from functools import cached_property
from itertools import chain
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float32]
IntArray = npt.NDArray[np.int64]


class ScoredPassages(NamedTuple):
    """Top passages of one query: row numbers into the build's passage list, best first."""

    indices: npt.NDArray[np.int64]
    scores: npt.NDArray[np.float32]

    def pairs(self) -> list[tuple[int, float]]:
        """(row, score) as Python numbers, best first."""
        return list(zip(self.indices.tolist(), self.scores.tolist(), strict=True))


class TermMatrix(NamedTuple):
    vocab: dict[str, int]
    indptr: npt.NDArray[np.int64]  # (n_terms + 1,) start of each term's postings
    doc_ids: npt.NDArray[np.int32]  # (nnz,) passage row of each posting, ascending per term
    tf: npt.NDArray[np.float32]  # (nnz,) term frequency of each posting
    doc_len: npt.NDArray[np.float32]  # (n_docs,) number of terms of each passage

    @classmethod
    def from_tokens(cls, corpus_tokens: Sequence[Sequence[str]]) -> TermMatrix:
        """Term ids in order of first occurrence; postings sorted by term, then passage."""
        flat = list(chain.from_iterable(corpus_tokens))
        vocab: dict[str, int] = dict.fromkeys(flat, 0)  # keeps first-occurrence order
        for i, term in enumerate(vocab):
            vocab[term] = i
        n_docs = len(corpus_tokens)
        lengths = np.fromiter(map(len, corpus_tokens), dtype=np.int64, count=n_docs)
        term_ids = np.fromiter(map(vocab.__getitem__, flat), dtype=np.int64, count=len(flat))
        # One sort of (term, passage) keys gives each posting and, from repeats, its tf.
        keys, tf = np.unique(term_ids * max(n_docs, 1) + np.repeat(np.arange(n_docs), lengths), return_counts=True)
        terms, docs = np.divmod(keys, max(n_docs, 1))
        indptr = np.zeros(len(vocab) + 1, dtype=np.int64)
        np.cumsum(np.bincount(terms, minlength=len(vocab)), out=indptr[1:])
        return cls(
            vocab=vocab,
            indptr=indptr,
            doc_ids=docs.astype(np.int32),
            tf=tf.astype(np.float32),
            doc_len=lengths.astype(np.float32),
        )

    @property
    def n_docs(self) -> int:
        return int(self.doc_len.shape[0])

    def doc_freq(self) -> npt.NDArray[np.int64]:
        return np.diff(self.indptr)


def query_term_weights(vocab: dict[str, int], terms: Sequence[str]) -> dict[int, int]:
    """Known query terms → how often each occurs in the query (unknown terms score nothing)."""
    counts: dict[int, int] = {}
    for term in terms:
        row = vocab.get(term)
        if row is not None:
            counts[row] = counts.get(row, 0) + 1
    return counts


class Accumulated(NamedTuple):
    scores: npt.NDArray[np.float64]  # (n_docs,) score of every passage
    matched: npt.NDArray[np.int64]  # passages holding at least one query term, ascending


def accumulate(
    starts: Sequence[int],
    doc_ids: npt.NDArray[np.intp],
    weights: npt.NDArray[np.float64],
    rows: dict[int, int],
    n_docs: int,
) -> Accumulated:
    """Sum ``multiplicity × weight`` over the postings of the given term rows (``starts`` is
    the index's ``indptr`` as a list: Python ints index arrays faster than numpy scalars;
    ``doc_ids`` and ``weights`` are best given as intp and float64, which bincount computes in).

    Only the query terms' posting lists are read: one ``np.bincount`` sums them (in float64,
    a term repeated in the query counting once more each time, as in rank_bm25). The passages
    they name are the candidates for the top k: those scoring above 0 when every weight summed
    is positive (the usual case), else those marked in a boolean array. Nothing here is
    proportional to the vocabulary or sorts the postings."""
    if not rows:
        return Accumulated(np.zeros(n_docs, dtype=np.float64), np.empty(0, dtype=np.int64))
    spans = [(starts[r], starts[r + 1]) for r, m in rows.items() for _ in range(m)]
    if len(spans) == 1:
        a, b = spans[0]
        ids, w = doc_ids[a:b], weights[a:b]
        return Accumulated(_sum(ids, w, n_docs), ids.astype(np.int64))
    ids = np.concatenate([doc_ids[a:b] for a, b in spans])
    w = np.concatenate([weights[a:b] for a, b in spans])
    scores = _sum(ids, w, n_docs)
    if w.size and w.min() > 0:  # the usual case: a passage holds a query term exactly when it scores above 0
        return Accumulated(scores, np.flatnonzero(scores > 0))
    seen = np.zeros(n_docs, dtype=bool)
    seen[ids] = True
    return Accumulated(scores, np.flatnonzero(seen))


def _sum(ids: npt.NDArray[np.intp], w: npt.NDArray[np.float64], n_docs: int) -> npt.NDArray[np.float64]:
    return np.bincount(ids, weights=w, minlength=n_docs).astype(np.float64, copy=False)


def top_k(found: Accumulated, k: int, mask: npt.NDArray[np.bool_] | None) -> ScoredPassages:
    """The ``k`` best passages among those matching a query term (scores can be negative
    when a term occurs in over half the corpus, as in rank_bm25); ties by passage order."""
    scores, candidates = found  # candidates ascending, so a stable sort breaks ties by row
    if mask is not None:
        candidates = candidates[mask[candidates]]
    chosen = scores[candidates]
    if candidates.size > k:
        cut = chosen.size - k
        keep = np.flatnonzero(chosen >= np.partition(chosen, cut)[cut])  # the k best and ties with the k-th
        candidates, chosen = candidates[keep], chosen[keep]
    order = np.argsort(-chosen, kind="stable")[:k]
    return ScoredPassages(candidates[order].astype(np.int64, copy=False), chosen[order].astype(np.float32))


class PostingsIndex(ABC):
    """Shared query side of the keyword and BM25 indexes: score by summing posting weights."""

    matrix: TermMatrix

    def __len__(self) -> int:
        return self.matrix.n_docs

    @cached_property
    def starts(self) -> list[int]:
        """``matrix.indptr`` as Python ints (made on first use)."""
        return self.matrix.indptr.tolist()

    @cached_property
    def posting_rows(self) -> npt.NDArray[np.intp]:
        """``matrix.doc_ids`` as ``np.intp``, the index type ``np.bincount`` and fancy indexing
        want (int32 on disk; converting on every query cost a third of its scoring time)."""
        return self.matrix.doc_ids.astype(np.intp)

    @abstractmethod
    def _accumulate(self, query_terms: Sequence[str]) -> Accumulated:
        """Scores of every passage for these (analysed) query terms."""

    def get_scores(self, query_terms: Sequence[str]) -> npt.NDArray[np.float64]:
        """The score of every passage, in passage order."""
        return self._accumulate(query_terms).scores

    def search(self, query_terms: Sequence[str], k: int, mask: npt.NDArray[np.bool_] | None = None) -> ScoredPassages:
        """The ``k`` best passages (among those ``mask`` allows) holding a query term."""
        return top_k(self._accumulate(query_terms), k, mask)
