"""Dense retrieval: the query embedded by the build's own model, searched in FAISS."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from ..embedding import Encoder, SentenceTransformerEncoder
from ..errors import IndexLoadError, ModelError
from ..loader import IndexBuild
from .base import Hit, Retriever


class DenseRetriever(Retriever):
    name = "dense"

    def __init__(self, build: IndexBuild, encoder: Encoder | None = None, query_language: str | None = None) -> None:
        super().__init__(build, query_language)
        if build.dense is None:
            raise IndexLoadError(build.path / "dense", "this build has no dense index")
        meta = build.manifest.get("embedding", {})
        # One torch thread per worker: with more, latency jumps 10-80x whenever another
        # process takes a core (measured on the 2-core machines).
        self.encoder = encoder or SentenceTransformerEncoder(meta.get("model", "default"), threads=1)
        if meta.get("model_checksum") not in (None, self.encoder.checksum):
            raise ModelError(
                f"the index was built with model {meta.get('model')!r} (checksum "
                f"{str(meta.get('model_checksum'))[:12]}…) but the loaded encoder differs; rebuild or "
                "load the same model"
            )
        self.index = build.dense

    def _search(self, query: str, terms: list[str], k: int, mask: npt.NDArray[np.bool_] | None) -> list[Hit]:
        vector = self.encoder.encode([query])[0]
        found = self.index.search(vector, k, mask)
        return self._hits(found)
