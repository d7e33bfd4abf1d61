"""``bm25``, ``dense``, ``hybrid`` and ``hybrid-convex`` over a Milvus collection, behind the
same contract as the local retrievers (``search(query, k, filters) -> list[Hit]``).

Queries are analysed and validated as locally; filters become a Milvus expression. The hybrids
search both components ``depth`` deep and fuse with the local code (:func:`fuse`, the boosts),
so RRF weights, min-max convex fusion and the citation boost mean the same on both backends;
Milvus's own ``hybrid_search`` rankers have no per-component ranks or citation boost.
``keyword`` stays local-only.
"""

from __future__ import annotations

import json
from abc import abstractmethod
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

import numpy as np
import numpy.typing as npt

from ..chunking import Passage
from ..embedding import DEFAULT_MODEL, Encoder, encoder_mismatch, make_encoder
from ..errors import InvalidParameterError, ModelError, UnknownStrategyError
from ..retrieval.base import MAX_K, ComponentScore, Filters, Hit, Retriever, check_k
from ..retrieval.hybrid import FUSIONS, boost_factors, fuse
from .schema import OUTPUT_FIELDS, PASSAGE_ID, ROW, SPARSE, VECTOR, filter_expression, index_terms, passage_of
from .served import MilvusBuild

MILVUS_STRATEGIES = ("bm25", "dense", "hybrid", "hybrid-convex")
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
    """HNSW search with the query embedded by the build's own model (checked by checksum)."""

    name = "dense"

    def __init__(self, build: MilvusBuild, encoder: Encoder | None = None, query_language: str | None = None) -> None:
        super().__init__(build, query_language)
        meta = build.manifest.get("embedding", {})
        self.encoder = encoder or make_encoder(meta.get("model", DEFAULT_MODEL), threads=1)
        problem = encoder_mismatch(meta, self.encoder)
        if problem is not None:
            raise ModelError(problem)
        self.query_vector = lru_cache(maxsize=256)(self._embed)

    def _embed(self, query: str) -> npt.NDArray[np.float32]:
        vector: npt.NDArray[np.float32] = self.encoder.encode_queries([query])[0]
        vector.setflags(write=False)
        return vector

    def scored(self, query: str, terms: list[str], k: int, expr: str) -> Scored:
        params = {"metric_type": "IP", "params": {"ef": max(2 * k, 64)}}
        return self._found("dense search", [self.query_vector(query).tolist()], VECTOR, k, expr, params)

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
    def __init__(
        self,
        build: MilvusBuild,
        components: Mapping[str, MilvusIndexRetriever],
        fusion: str = "rrf",
        rrf_k: float = 60.0,
        weights: Mapping[str, float] | None = None,
        depth: int = MAX_K,
        query_language: str | None = None,
        language_boost: float = 0.0,
        citation_boost: float = 0.0,
    ) -> None:
        super().__init__(build, query_language)
        if fusion not in FUSIONS:
            raise InvalidParameterError(f"unknown fusion {fusion!r}; choose one of {list(FUSIONS)}")
        if rrf_k <= 0 or language_boost < 0 or citation_boost < 0 or not 1 <= depth <= MAX_K:
            raise InvalidParameterError("rrf_k must be positive, boosts non-negative, depth from 1 to 100")
        weights = dict(weights or {})
        if set(weights) - set(components):
            raise InvalidParameterError(f"weights name unknown components {sorted(set(weights) - set(components))}")
        self.weights = {name: float(weights.get(name, 1.0)) for name in components}
        if any(w < 0 for w in self.weights.values()) or not any(self.weights.values()):
            raise InvalidParameterError("weights must be non-negative and not all zero")
        self.components = dict(components)
        self.fusion, self.rrf_k, self.depth = fusion, float(rrf_k), depth
        self.language_boost, self.citation_boost = float(language_boost), float(citation_boost)
        self.name = "hybrid" if fusion == "rrf" else "hybrid-convex"

    def ranked(self, query: str, terms: list[str], k: int, expr: str) -> list[Hit]:
        depth = max(k, self.depth)
        pool: list[Passage] = []  # every passage either component found; rows index this list
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
        fused = fuse(found, self.fusion, self.rrf_k, self.weights, pool)
        factors = boost_factors(query, self.query_language, self.language_boost, self.citation_boost)
        if factors:
            boosted = []
            for row, s in fused:
                for applies, factor in factors:
                    s = s * factor if applies(pool[row]) else s
                boosted.append((row, s))
            fused = sorted(boosted, key=lambda item: (-item[1], pool[item[0]].id))
        ranks = {name: {row: (r, s) for r, (row, s) in enumerate(pairs, start=1)} for name, pairs in found.items()}
        hits = []
        for rank, (row, score) in enumerate(fused[:k], start=1):
            components = {
                name: ComponentScore(*by_row[row]) if row in by_row else ComponentScore(None, None)
                for name, by_row in ranks.items()
            }
            hits.append(Hit(rank=rank, score=float(score), passage=pool[row], components=components))
        return hits


class MilvusNativeHybridRetriever(MilvusRetriever):
    """RRF with equal weights done by Milvus (``hybrid_search`` with ``RRFRanker``): one round
    trip instead of two, the same formula as ``hybrid``, but no per-component ranks and no
    boosts. For comparison (scripts/bench_milvus.py); the served ``hybrid`` fuses locally."""

    name = "hybrid"

    def __init__(
        self, build: MilvusBuild, dense: MilvusDenseRetriever, rrf_k: float = 60.0, depth: int = MAX_K
    ) -> None:
        super().__init__(build, dense.query_language)
        if rrf_k <= 0 or not 1 <= depth <= MAX_K:
            raise InvalidParameterError("rrf_k must be positive and depth from 1 to 100")
        self.dense, self.rrf_k, self.depth = dense, float(rrf_k), depth

    def ranked(self, query: str, terms: list[str], k: int, expr: str) -> list[Hit]:
        pymilvus, depth = self.connection.pymilvus, max(k, self.depth)
        dense_params = {"metric_type": "IP", "params": {"ef": max(2 * depth, 64)}}
        requests = [
            pymilvus.AnnSearchRequest([index_terms(terms)], SPARSE, {"metric_type": "BM25"}, depth, expr=expr),
            pymilvus.AnnSearchRequest(
                [self.dense.query_vector(query).tolist()], VECTOR, dense_params, depth, expr=expr
            ),
        ]
        timeout = self.connection.settings.timeout_s
        result = self.connection.read(
            self.collection,
            "hybrid search",
            lambda: self.connection.client.hybrid_search(
                self.collection,
                requests,
                pymilvus.RRFRanker(self.rrf_k),
                limit=k,
                output_fields=[ROW, *OUTPUT_FIELDS],
                timeout=timeout,
            ),
        )
        found = sorted(result[0] if result else [], key=lambda h: (-float(h["distance"]), str(h["entity"][PASSAGE_ID])))
        return [Hit(rank, float(h["distance"]), passage_of(h["entity"])) for rank, h in enumerate(found, start=1)]


def make_milvus_retriever(
    name: str,
    build: MilvusBuild,
    encoder: Encoder | None = None,
    query_language: str | None = None,
    components: Mapping[str, Retriever] | None = None,
    **options: Any,
) -> Retriever:
    """The Milvus retriever called ``name`` (the options of :func:`rag_server.retrieval.make_retriever`)."""
    from ..retrieval import CONVEX_DEFAULTS, HYBRID_STRATEGIES, STRATEGIES

    if name == "bm25":
        return MilvusBM25Retriever(build, query_language)
    if name == "dense":
        return MilvusDenseRetriever(build, encoder, query_language)
    if name in HYBRID_STRATEGIES:
        given = dict(components or {})
        parts = {
            "bm25": given.get("bm25") or MilvusBM25Retriever(build),
            "dense": given.get("dense") or MilvusDenseRetriever(build, encoder),
        }
        usable = {n: r for n, r in parts.items() if isinstance(r, MilvusIndexRetriever)}
        if len(usable) != len(parts):
            raise InvalidParameterError("Milvus hybrids fuse Milvus bm25 and dense retrievers")
        if name == "hybrid" and options.pop("native", False):
            dense = usable["dense"]
            assert isinstance(dense, MilvusDenseRetriever)
            return MilvusNativeHybridRetriever(build, dense, **options)
        if name == "hybrid":
            return MilvusHybridRetriever(build, usable, fusion="rrf", query_language=query_language, **options)
        options = {**CONVEX_DEFAULTS, **options}
        return MilvusHybridRetriever(build, usable, fusion="convex", query_language=query_language, **options)
    if name in STRATEGIES:
        raise UnknownStrategyError(
            f"strategy {name!r} is served by the local backend only; "
            f"the milvus backend serves {list(MILVUS_STRATEGIES)}"
        )
    raise UnknownStrategyError(f"unknown strategy {name!r}; valid strategies: {list(MILVUS_STRATEGIES)}")
