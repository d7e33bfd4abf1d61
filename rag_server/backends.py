"""Where builds live, and each backend's strategies: ``local`` (index files under the index
root, :data:`rag_server.retrieval.LOCAL`) or ``milvus`` (collections behind an alias,
:data:`rag_server.milvus.MILVUS`).

The Milvus package is imported only when that backend is chosen: a local server never loads it,
nor pymilvus (tests/test_packaging.py)."""

from __future__ import annotations

from .errors import ConfigError
from .retrieval import LOCAL, StrategyRegistry
from .settings import BACKENDS


def registry_for(backend: str) -> StrategyRegistry:
    """The strategies of ``backend`` (one of :data:`~rag_server.settings.BACKENDS`)."""
    if backend == "milvus":
        from .milvus import MILVUS

        return MILVUS
    if backend != "local":
        raise ConfigError(f"RAG_BACKEND={backend!r}", f"expected one of {', '.join(BACKENDS)}")
    return LOCAL
