"""The Milvus backend: builds written into collections, served through an alias.

``RAG_BACKEND=milvus`` with ``RAG_MILVUS_URI`` (a Milvus Lite ``*.db`` file or a server URL;
:mod:`rag_server.settings`) selects it for ``rag-server build`` and the API; the local backend
stays the default. Nothing imports this package unless that backend is chosen, and pymilvus
(``pip install 'rag_server[milvus]'``) only when a connection opens. This module holds the read
path; the writer is :mod:`rag_server.milvus.build`.

>>> settings = MilvusSettings(uri="/tmp/rag.db")
>>> build_into_milvus(BuildConfig([Path("corpus")]), settings)  # rag_server.milvus.build
>>> build = MilvusSource(settings).open()
>>> MILVUS.make("hybrid", build).search("prazo para comunicar incidente", k=5)
"""

from .client import MilvusConnection, MilvusSettings
from .served import MilvusBuild, MilvusSource
from .strategies import MILVUS

__all__ = ["MILVUS", "MilvusBuild", "MilvusConnection", "MilvusSettings", "MilvusSource"]
