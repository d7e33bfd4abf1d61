"""Dense retrieval: unit-length embeddings in a FAISS inner-product index (= cosine).

``flat`` (exact, the default) suits the product's corpus; ``hnsw`` and ``ivf`` trade a little
recall for speed on large corpora. The index is saved in FAISS's own format, never pickled.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import faiss as _faiss
import numpy as np
import numpy.typing as npt

from ..errors import BuildError, IndexLoadError
from .sparse import ScoredPassages
from .storage import load_params

# faiss's bundled stubs lack the SearchParameters keyword arguments and per-class methods.
faiss: Any = _faiss

VERSION = 1
EXACT_FILTER_LIMIT = 50_000  # a filter allowing fewer passages is scored exactly
KINDS = ("flat", "hnsw", "ivf")


class DenseIndex:
    kind = "dense"

    def __init__(self, index: faiss.Index, params: dict[str, Any]) -> None:
        self.index = index
        self.params = params

    @property
    def dimension(self) -> int:
        return int(self.index.d)

    def __len__(self) -> int:
        return int(self.index.ntotal)

    @classmethod
    def build(
        cls,
        embeddings: npt.NDArray[np.float32],
        model: str,
        index_kind: str = "flat",
        hnsw_m: int = 32,
        ivf_lists: int | None = None,
    ) -> DenseIndex:
        """Index ``embeddings`` (n, dim), already L2-normalised by the encoder."""
        if index_kind not in KINDS:
            raise BuildError(f"unknown dense index kind {index_kind!r}; choose one of {list(KINDS)}")
        vectors = np.ascontiguousarray(embeddings, dtype=np.float32)
        n, dim = vectors.shape
        params: dict[str, Any] = {
            "kind": cls.kind,
            "version": VERSION,
            "model": model,
            "n_docs": n,
            "dimension": dim,
            "index_kind": index_kind,
        }
        index: faiss.Index
        if index_kind == "flat":
            index = faiss.IndexFlatIP(dim)
        elif index_kind == "hnsw":
            index = faiss.IndexHNSWFlat(dim, hnsw_m, faiss.METRIC_INNER_PRODUCT)
            params["hnsw_m"] = hnsw_m
        else:
            lists = ivf_lists or max(1, int(4 * np.sqrt(max(n, 1))))
            lists = min(lists, max(n, 1))
            index = faiss.IndexIVFFlat(faiss.IndexFlatIP(dim), dim, lists, faiss.METRIC_INNER_PRODUCT)
            index.train(vectors)
            index.nprobe = min(lists, 16)
            params.update(ivf_lists=lists, nprobe=index.nprobe)
        index.add(vectors)
        if index_kind == "ivf":
            index.make_direct_map()  # lets filtered searches reconstruct vectors
        return cls(index, params)

    def search(
        self, query: npt.NDArray[np.float32], k: int, mask: npt.NDArray[np.bool_] | None = None
    ) -> ScoredPassages:
        """Top ``k`` passages by cosine similarity to ``query`` (dim,), optionally restricted to
        passages where ``mask`` is True (applied inside FAISS, so k results still come back)."""
        n = len(self)
        k = min(k, n)
        if k <= 0:
            return ScoredPassages(np.empty(0, np.int64), np.empty(0, np.float32))
        q = np.ascontiguousarray(query, dtype=np.float32).reshape(1, -1)
        if mask is None:
            scores, ids = self.index.search(q, k)
        else:
            allowed = np.flatnonzero(mask).astype(np.int64)
            if allowed.size == 0:
                return ScoredPassages(np.empty(0, np.int64), np.empty(0, np.float32))
            if self.params.get("index_kind") == "flat" or allowed.size > EXACT_FILTER_LIMIT:
                selector = faiss.IDSelectorBatch(allowed)
                scores, ids = self.index.search(q, min(k, allowed.size), params=self._search_params(selector))
            else:
                # Approximate indexes visit only part of the collection, and a narrow filter
                # may leave none of the visited vectors: score the allowed ones exactly.
                return self._exact(q[0], allowed, k)
        keep = ids[0] >= 0
        return ScoredPassages(ids[0][keep].astype(np.int64), scores[0][keep].astype(np.float32))

    def vectors(self, rows: npt.NDArray[np.int64]) -> npt.NDArray[np.float32]:
        """The stored (unit-length) embeddings of passage ``rows``, shape (len(rows), dim)."""
        vectors: npt.NDArray[np.float32] = self.index.reconstruct_batch(rows)
        return vectors

    def _exact(self, q: npt.NDArray[np.float32], allowed: npt.NDArray[np.int64], k: int) -> ScoredPassages:
        vectors = self.vectors(allowed)
        scores = vectors @ q
        order = np.lexsort((allowed, -scores))[:k]
        return ScoredPassages(allowed[order], scores[order].astype(np.float32))

    def _search_params(self, selector: faiss.IDSelector) -> faiss.SearchParameters:
        kind = self.params.get("index_kind")
        if kind == "hnsw":
            return faiss.SearchParametersHNSW(sel=selector, efSearch=max(64, self._ef_search()))
        if kind == "ivf":
            return faiss.SearchParametersIVF(sel=selector, nprobe=int(self.params.get("nprobe", 16)))
        return faiss.SearchParameters(sel=selector)

    def _ef_search(self) -> int:
        return int(getattr(getattr(self.index, "hnsw", None), "efSearch", 16))

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        faiss.write_index(self.index, str(directory / "index.faiss"))
        (directory / "params.json").write_text(json.dumps(self.params, indent=2) + "\n")

    @classmethod
    def load(cls, directory: Path) -> DenseIndex:
        params = load_params(directory, cls.kind, VERSION)
        path = directory / "index.faiss"
        if not path.is_file():
            raise IndexLoadError(path, "missing file")
        try:
            index = faiss.read_index(str(path))
        except RuntimeError as exc:
            first = str(exc).strip().splitlines()[-1] if str(exc).strip() else "unreadable"
            raise IndexLoadError(path, f"unreadable FAISS index ({first[:200]})") from None
        if index.ntotal != params.get("n_docs") or index.d != params.get("dimension"):
            raise IndexLoadError(path, "vector count or dimension differs from params.json")
        if params.get("index_kind") == "ivf":
            ivf = faiss.extract_index_ivf(index)
            ivf.nprobe = int(params.get("nprobe", 16))
            ivf.make_direct_map()
        for start in range(0, int(index.ntotal), 65536):  # inf or NaN would poison every score
            rows = index.reconstruct_n(start, min(65536, int(index.ntotal) - start))
            if not np.isfinite(rows).all():
                raise IndexLoadError(path, "holds vectors that are not finite (inf or NaN)")
        return cls(index, params)
