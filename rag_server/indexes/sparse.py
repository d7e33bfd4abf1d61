"""A term × passage sparse matrix (CSR by term) and the array I/O shared by sparse indexes.

Rows are terms, columns passages: a query touches only the rows of its own terms, so scoring
is a gather of a few posting lists plus one ``np.bincount`` over the passage axis.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

from ..errors import IndexLoadError

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
        vocab: dict[str, int] = {}
        rows: list[int] = []
        cols: list[int] = []
        counts: list[int] = []
        for doc, tokens in enumerate(corpus_tokens):
            for term, count in Counter(tokens).items():
                rows.append(vocab.setdefault(term, len(vocab)))
                cols.append(doc)
                counts.append(count)
        term_ids = np.asarray(rows, dtype=np.int64)
        order = np.argsort(term_ids, kind="stable")  # stable: doc ids stay ascending per term
        indptr = np.zeros(len(vocab) + 1, dtype=np.int64)
        np.cumsum(np.bincount(term_ids, minlength=len(vocab)), out=indptr[1:])
        return cls(
            vocab=vocab,
            indptr=indptr,
            doc_ids=np.asarray(cols, dtype=np.int32)[order],
            tf=np.asarray(counts, dtype=np.float32)[order],
            doc_len=np.asarray([len(t) for t in corpus_tokens], dtype=np.float32),
        )

    @property
    def n_docs(self) -> int:
        return int(self.doc_len.shape[0])

    def doc_freq(self) -> npt.NDArray[np.int64]:
        return np.diff(self.indptr)


def query_term_weights(vocab: dict[str, int], terms: Sequence[str]) -> dict[int, int]:
    """Known query terms → how often each occurs in the query (unknown terms score nothing)."""
    counts: Counter[int] = Counter()
    for term in terms:
        row = vocab.get(term)
        if row is not None:
            counts[row] += 1
    return dict(counts)


class Accumulated(NamedTuple):
    scores: npt.NDArray[np.float64]  # (n_docs,) score of every passage
    matched: npt.NDArray[np.int64]  # passages holding at least one query term, ascending


def accumulate(
    indptr: npt.NDArray[np.int64],
    doc_ids: npt.NDArray[np.int32],
    weights: npt.NDArray[np.float32],
    rows: dict[int, int],
    n_docs: int,
) -> Accumulated:
    """Sum ``multiplicity × weight`` over the postings of the given term rows."""
    if not rows:
        return Accumulated(np.zeros(n_docs, dtype=np.float64), np.empty(0, dtype=np.int64))
    spans = [(indptr[r], indptr[r + 1], m) for r, m in rows.items()]
    ids = np.concatenate([doc_ids[a:b] for a, b, _ in spans])
    w = np.concatenate([weights[a:b].astype(np.float64) * m for a, b, m in spans])
    return Accumulated(
        np.bincount(ids, weights=w, minlength=n_docs).astype(np.float64), np.unique(ids).astype(np.int64)
    )


def top_k(found: Accumulated, k: int, mask: npt.NDArray[np.bool_] | None) -> ScoredPassages:
    """The ``k`` best passages among those matching a query term (scores can be negative
    when a term occurs in over half the corpus, as in rank_bm25); ties by passage order."""
    scores, candidates = found
    if mask is not None:
        candidates = candidates[mask[candidates]]
    if candidates.size > k:
        part = np.argpartition(-scores[candidates], k - 1)[:k]
        kth = scores[candidates[part]].min()
        candidates = candidates[scores[candidates] >= kth]  # keep ties at the boundary
    order = np.lexsort((candidates, -scores[candidates]))[:k]
    chosen = candidates[order]
    return ScoredPassages(chosen.astype(np.int64), scores[chosen].astype(np.float32))


class PostingsIndex(ABC):
    """Shared query side of the keyword and BM25 indexes: score by summing posting weights."""

    matrix: TermMatrix

    def __len__(self) -> int:
        return self.matrix.n_docs

    @abstractmethod
    def _accumulate(self, query_terms: Sequence[str]) -> Accumulated:
        """Scores of every passage for these (analysed) query terms."""

    def get_scores(self, query_terms: Sequence[str]) -> npt.NDArray[np.float64]:
        """The score of every passage, in passage order."""
        return self._accumulate(query_terms).scores

    def search(self, query_terms: Sequence[str], k: int, mask: npt.NDArray[np.bool_] | None = None) -> ScoredPassages:
        """The ``k`` best passages (among those ``mask`` allows) holding a query term."""
        return top_k(self._accumulate(query_terms), k, mask)


# --------------------------------------------------------------------------- persistence


def save_arrays(directory: Path, arrays: dict[str, Any], params: dict[str, Any]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for name, array in arrays.items():
        np.save(directory / f"{name}.npy", array, allow_pickle=False)
    (directory / "params.json").write_text(json.dumps(params, indent=2, ensure_ascii=False) + "\n")


def load_params(directory: Path, kind: str, version: int) -> dict[str, Any]:
    path = directory / "params.json"
    try:
        params = json.loads(path.read_text())
    except FileNotFoundError:
        raise IndexLoadError(path, "missing file") from None
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise IndexLoadError(path, "not valid JSON") from None
    if not isinstance(params, dict) or params.get("kind") != kind:
        raise IndexLoadError(path, f"not a {kind} index")
    if params.get("version") != version:
        raise IndexLoadError(path, f"index version {params.get('version')} is not {version}; rebuild")
    return params


def load_array(directory: Path, name: str) -> np.ndarray:
    path = directory / f"{name}.npy"
    try:
        return np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise IndexLoadError(path, "missing file") from None
    except (ValueError, OSError, EOFError) as exc:
        raise IndexLoadError(path, f"unreadable array ({exc})") from None


def check_values(
    path: Path, array: np.ndarray, kind: str, *, positive: bool = False, non_negative: bool = False
) -> np.ndarray:
    """``array`` when it is one-dimensional, of the expected kind (``"f"`` float, ``"i"``
    integer) and, for floats, finite; with ``positive``/``non_negative``, in that range. A
    checksum only proves a file is the one the manifest lists: an edited file with its checksum
    recomputed must still not put inf or NaN into every score."""
    if array.ndim != 1 or array.dtype.kind not in ({"i", "u"} if kind == "i" else {"f"}):
        raise IndexLoadError(path, f"expected a one-dimensional {'integer' if kind == 'i' else 'float'} array")
    if kind == "f" and not np.isfinite(array).all():
        raise IndexLoadError(path, "holds values that are not finite (inf or NaN)")
    if array.size and positive and not (array > 0).all():
        raise IndexLoadError(path, "holds values that are not positive")
    if array.size and non_negative and not (array >= 0).all():
        raise IndexLoadError(path, "holds negative values")
    return array


def save_vocab(directory: Path, vocab: dict[str, int]) -> None:
    terms = sorted(vocab, key=vocab.__getitem__)
    (directory / "vocab.json").write_text(json.dumps(terms, ensure_ascii=False))


def load_vocab(directory: Path) -> dict[str, int]:
    path = directory / "vocab.json"
    try:
        terms = json.loads(path.read_text())
    except FileNotFoundError:
        raise IndexLoadError(path, "missing file") from None
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise IndexLoadError(path, "not valid JSON") from None
    if not isinstance(terms, list):
        raise IndexLoadError(path, "expected a JSON list of terms")
    return {term: i for i, term in enumerate(terms)}
