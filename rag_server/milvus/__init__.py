"""The Milvus backend: builds written into collections, served through an alias.

``RAG_BACKEND=milvus`` with ``RAG_MILVUS_URI`` (a Milvus Lite ``*.db`` file or a server URL)
selects it for ``rag-server build`` and the API; the local backend stays the default. pymilvus
is optional (``pip install 'rag_server[milvus]'``) and imported only when a connection opens.

>>> settings = MilvusSettings(uri="/tmp/rag.db")
>>> build_into_milvus(BuildConfig([Path("corpus")]), settings)
>>> build = MilvusSource(settings).open()
>>> make_retriever("hybrid", build).search("prazo para comunicar incidente", k=5)
"""

from .build import MilvusBuildResult, build_into_milvus, prune, verify
from .client import MilvusConnection
from .retrievers import MILVUS_STRATEGIES, make_milvus_retriever
from .served import MilvusBuild, MilvusSource
from .settings import BACKENDS, MilvusSettings, check_backend

__all__ = [
    "BACKENDS",
    "MILVUS_STRATEGIES",
    "MilvusBuild",
    "MilvusBuildResult",
    "MilvusConnection",
    "MilvusSettings",
    "MilvusSource",
    "build_into_milvus",
    "check_backend",
    "make_milvus_retriever",
    "prune",
    "verify",
]
