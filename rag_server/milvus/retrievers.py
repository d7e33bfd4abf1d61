"""``bm25``, ``dense``, ``hybrid`` and ``hybrid-convex`` over a Milvus collection, behind the
same contract as the local retrievers (``search(query, k, filters) -> list[Hit]``).

Queries are analysed and validated as locally; filters become a Milvus expression. The hybrids
search both components ``depth`` deep and fuse with the local code (:class:`Fusion`), so RRF
weights, convex fusion and the citation boost mean the same on both backends; Milvus's
own ``hybrid_search`` rankers have no per-component ranks or citation boost. ``keyword`` stays
local-only. :mod:`rag_server.milvus.strategies` registers these under the API's strategy names.
"""

from __future__ import annotations

import json
from abc import abstractmethod
from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

from ..embedding import Encoder
from ..errors import InvalidParameterError
from ..passage import Passage
from ..retrieval.base import MAX_K, Filters, Hit, Retriever, check_k
from ..retrieval.dense import query_vectors, search_vector
from ..retrieval.hybrid import Fusion
from .schema import OUTPUT_FIELDS, PASSAGE_ID, ROW, SPARSE, VECTOR, filter_expression, index_terms, passage_of
from .served import MilvusBuild

Scored = list[tuple[Passage, float]]


class MilvusRetriever(Retriever):
    build: MilvusBuild

    def __init__(self, build: MilvusBuild, query_language: str | None = None) -> None:
        super().__init__(build, query_language)
        self.connection = build.connection
        self.collection = build.collection

    def search(self, query: str, k: int = 10, filters: Filters | None = None) -> list[Hit]:
        k = check_k(k)
        terms = self.query_terms(query)
        return self.ranked(query, terms, k, filter_expression(filters))

    def _search(self, query: str, terms: list[str], k: int, mask: npt.NDArray[np.bool_] | None) -> list[Hit]:
        if mask is not None:  # Milvus filters with expressions; no row mask exists here
            raise InvalidParameterError("Milvus retrievers take filters, not row masks")
        return self.ranked(query, terms, k, "")

    @abstractmethod
    def ranked(self, query: str, terms: list[str], k: int, expr: str) -> list[Hit]:
        """Top ``k`` hits among passages matching ``expr`` ("" = all)."""


class MilvusIndexRetriever(MilvusRetriever):
    """One Milvus search: (passage, score) pairs first, Hits only for the caller."""

    @abstractmethod
    def scored(self, query: str, terms: list[str], k: int, expr: str) -> Scored:
        """The top ``k`` passages matching ``expr`` and their scores, best first."""

    def ranked(self, query: str, terms: list[str], k: int, expr: str) -> list[Hit]:
        return [Hit(rank, score, p) for rank, (p, score) in enumerate(self.scored(query, terms, k, expr), start=1)]

    def _found(self, what: str, data: list[Any], field: str, k: int, expr: str, params: dict[str, Any]) -> Scored:
        timeout = self.connection.settings.timeout_s
        result = self.connection.read(
            self.collection,
            what,
            lambda: self.connection.client.search(
                self.collection,
                data=data,
                anns_field=field,
                limit=k,
                filter=expr,
                output_fields=[ROW, *OUTPUT_FIELDS],
                search_params=params,
                timeout=timeout,
            ),
        )
        hits = list(result[0]) if result else []
        # Milvus Lite reports BM25 as a negative distance, a server as a positive score: the
        # magnitude is the score. Ties fall back to corpus order, as in the local indexes.
        pairs = [
            (hit["entity"], abs(float(hit["distance"])) if field == SPARSE else float(hit["distance"])) for hit in hits
        ]
        pairs.sort(key=lambda item: (-item[1], int(item[0][ROW])))
        return [(passage_of(entity), score) for entity, score in pairs]


class MilvusBM25Retriever(MilvusIndexRetriever):
    name = "bm25"

    def scored(self, query: str, terms: list[str], k: int, expr: str) -> Scored:
        return self._found("bm25 search", [index_terms(terms)], SPARSE, k, expr, {"metric_type": "BM25"})


class MilvusDenseRetriever(MilvusIndexRetriever):
    """HNSW search with the query embedded by the build's own model (the pipeline's encoder,
    checked against the build's by checksum)."""

    name = "dense"

    def __init__(self, build: MilvusBuild, encoder: Encoder, query_language: str | None = None) -> None:
        super().__init__(build, query_language)
        self.encoder = encoder
        self.query_vector = query_vectors(build, encoder)

    def scored(self, query: str, terms: list[str], k: int, expr: str) -> Scored:
        params = {"metric_type": "IP", "params": {"ef": max(2 * k, 64)}}
        vector = search_vector(self.build.analyzer, self.query_vector, query, self.query_language)
        return self._found("dense search", [vector.tolist()], VECTOR, k, expr, params)

    def similarity(self, query: str, passage_ids: list[str]) -> list[float]:
        """Cosine similarity between the query and each passage found (the evidence scale)."""
        if not passage_ids:
            return []
        timeout = self.connection.settings.timeout_s
        expr = _ids_expression(passage_ids)
        rows = self.connection.read(
            self.collection,
            "vector fetch",
            lambda: self.connection.client.query(
                self.collection, filter=expr, output_fields=[PASSAGE_ID, VECTOR], timeout=timeout
            ),
        )
        vectors = {str(r[PASSAGE_ID]): np.asarray(r[VECTOR], dtype=np.float32) for r in rows}
        query_vector = self.query_vector(query)
        return [float(vectors[pid] @ query_vector) for pid in passage_ids if pid in vectors]


def _ids_expression(passage_ids: list[str]) -> str:
    return f"{PASSAGE_ID} in [{', '.join(json.dumps(p, ensure_ascii=False) for p in dict.fromkeys(passage_ids))}]"


class MilvusHybridRetriever(MilvusRetriever):
    """Both components searched in Milvus, fused here (the pool of passages either found stands
    for the local build's passage list: fused rows index it)."""

    def __init__(
        self,
        build: MilvusBuild,
        components: Mapping[str, Retriever],
        fusion: str = "rrf",
        query_language: str | None = None,
        **options: Any,
    ) -> None:
        super().__init__(build, query_language)
        self.fusion = Fusion.checked(components, fusion, **options)
        foreign = sorted(name for name, r in components.items() if not isinstance(r, MilvusIndexRetriever))
        if foreign:
            raise InvalidParameterError(f"Milvus hybrids fuse Milvus bm25 and dense retrievers, not {foreign}")
        self.components = {name: r for name, r in components.items() if isinstance(r, MilvusIndexRetriever)}
        self.name = self.fusion.strategy

    def ranked(self, query: str, terms: list[str], k: int, expr: str) -> list[Hit]:
        depth = max(k, self.fusion.depth)
        pool: list[Passage] = []
        rows: dict[str, int] = {}
        found: dict[str, list[tuple[int, float]]] = {}
        for name, component in self.components.items():
            pairs = []
            for passage, score in component.scored(query, terms, depth, expr):
                if passage.id not in rows:
                    rows[passage.id] = len(pool)
                    pool.append(passage)
                pairs.append((rows[passage.id], score))
            found[name] = pairs
        return self.fusion.hits(query, self.query_language, found, pool, k)


class MilvusNativeHybridRetriever(MilvusRetriever):
    """RRF with equal weights done by Milvus (``hybrid_search`` with ``RRFRanker``): one round
    trip instead of two, the same formula as ``hybrid``, but no per-component ranks and no
    boosts. For comparison (scripts/bench_milvus.py); the served ``hybrid`` fuses locally."""

    name = "hybrid"

    def __init__(
        self, build: MilvusBuild, dense: MilvusDenseRetriever, rrf_k: float = 60.0, depth: int = MAX_K
    ) -> None:
        super().__init__(build, dense.query_language)
        self.dense = dense
        self.fusion = Fusion.checked(("bm25", "dense"), "rrf", rrf_k=rrf_k, depth=depth)  # equal weights, no boosts

    def ranked(self, query: str, terms: list[str], k: int, expr: str) -> list[Hit]:
        pymilvus, depth = self.connection.pymilvus, max(k, self.fusion.depth)
        dense_params = {"metric_type": "IP", "params": {"ef": max(2 * depth, 64)}}
        requests = [
            pymilvus.AnnSearchRequest([index_terms(terms)], SPARSE, {"metric_type": "BM25"}, depth, expr=expr),
            pymilvus.AnnSearchRequest(
                [search_vector(self.build.analyzer, self.dense.query_vector, query, self.query_language).tolist()],
                VECTOR,
                dense_params,
                depth,
                expr=expr,
            ),
        ]
        timeout = self.connection.settings.timeout_s
        result = self.connection.read(
            self.collection,
            "hybrid search",
            lambda: self.connection.client.hybrid_search(
                self.collection,
                requests,
                pymilvus.RRFRanker(self.fusion.rrf_k),
                limit=k,
                output_fields=[ROW, *OUTPUT_FIELDS],
                timeout=timeout,
            ),
        )
        found = sorted(result[0] if result else [], key=lambda h: (-float(h["distance"]), str(h["entity"][PASSAGE_ID])))
        return [Hit(rank, float(h["distance"]), passage_of(h["entity"])) for rank, h in enumerate(found, start=1)]
