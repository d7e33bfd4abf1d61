"""The strategies of the Milvus backend (:data:`MILVUS`), under the local backend's names so the
API, the CLI and the evaluation runner take either: ``bm25``, ``dense``, ``hybrid`` and
``hybrid-convex``. ``keyword`` has no Milvus counterpart; ``/v1/strategies`` lists it as not
available, and asking for it is an unknown strategy naming the ones served."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from ..embedding import Encoder
from ..errors import IndexLoadError
from ..loader import IndexBuild
from ..retrieval import LOCAL, Retriever, Strategy, StrategyRegistry, convex_defaults, encoder_for_build
from ..retrieval.registry import RetrieverFactory
from .retrievers import MilvusBM25Retriever, MilvusDenseRetriever, MilvusHybridRetriever, MilvusNativeHybridRetriever
from .served import MilvusBuild


def _milvus(build: IndexBuild) -> MilvusBuild:
    if not isinstance(build, MilvusBuild):  # a local build given to this registry: its indexes are files
        raise IndexLoadError(build.path, f"a {build.backend} build; Milvus strategies rank builds held in Milvus")
    return build


def _fused(fusion: str) -> RetrieverFactory:
    """The factory of a hybrid that searches bm25 and dense in Milvus and fuses them here with
    ``fusion`` ("rrf"; or "convex", from the same per-model defaults as the local backend)."""

    def make(
        build: IndexBuild,
        encoder: Encoder | None,
        query_language: str | None,
        components: Mapping[str, Retriever],
        native: bool = False,
        **options: Any,
    ) -> Retriever:
        """``native``: RRF done by Milvus's ``hybrid_search`` instead (compared in
        scripts/bench_milvus.py, not served: it has no component scores and no boosts)."""
        dense = components["dense"]
        if native and fusion == "rrf" and isinstance(dense, MilvusDenseRetriever):
            return MilvusNativeHybridRetriever(_milvus(build), dense, **options)
        if fusion == "convex":
            options = {**convex_defaults(build), **options}
        return MilvusHybridRetriever(_milvus(build), components, fusion, query_language, **options)

    return make


MILVUS = StrategyRegistry(default=LOCAL.default, backend="milvus")
"""The strategies served from a Milvus collection (the build the alias names)."""

for _strategy in (
    Strategy(
        "bm25",
        "Okapi BM25 computed by Milvus over the project's analysed terms",
        lambda build, encoder, query_language, components, **_: MilvusBM25Retriever(_milvus(build), query_language),
        ("bm25",),
    ),
    Strategy(
        "dense",
        "inner product of the build's embeddings, HNSW in Milvus",
        lambda build, encoder, query_language, components, **_: MilvusDenseRetriever(
            _milvus(build), encoder or encoder_for_build(build), query_language
        ),
        ("dense",),
        needs_encoder=True,
    ),
    # The same fusions as locally (rag_server.retrieval.hybrid.Fusion), so the same descriptions.
    replace(LOCAL.get("hybrid"), factory=_fused("rrf")),
    replace(LOCAL.get("hybrid-convex"), factory=_fused("convex")),
):
    MILVUS.register(_strategy)
