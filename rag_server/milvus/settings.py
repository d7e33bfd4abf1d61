"""Where the Milvus backend lives and how long any call to it may take.

``RAG_BACKEND=milvus`` selects it; ``RAG_MILVUS_URI`` is a local ``*.db`` path (Milvus Lite,
embedded in the process that opens it) or ``http://host:19530`` (a Milvus server or cluster);
``RAG_MILVUS_TOKEN`` is the optional ``user:password`` or API token.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from ..errors import BuildError

BACKENDS = ("local", "milvus")
DEFAULT_ALIAS = "rag_server"


@dataclass(frozen=True)
class MilvusSettings:
    uri: str
    token: str = ""
    alias: str = DEFAULT_ALIAS  # the name served; each build is a collection named after its build id
    timeout_s: float = 5.0  # every call: a dead or stuck Milvus answers 503, never a hung request
    alias_ttl_s: float = 1.0  # how long a process trusts its last look-up of the alias

    def __post_init__(self) -> None:
        if not self.uri:
            raise BuildError("the Milvus backend needs RAG_MILVUS_URI (a *.db path or http://host:19530)")
        remote = self.uri.startswith(("http://", "https://", "tcp://", "unix:"))
        if not remote and not self.uri.endswith(".db"):
            raise BuildError(f"RAG_MILVUS_URI {self.uri!r}: give a Milvus Lite file ending in .db or http://host:port")
        if not self.alias.replace("_", "a").isalnum() or self.alias[0].isdigit():
            raise BuildError(f"Milvus alias {self.alias!r}: letters, digits and underscores, not starting with a digit")
        if self.timeout_s <= 0 or self.alias_ttl_s < 0:
            raise BuildError("Milvus timeouts must be positive")

    @property
    def backend(self) -> str:
        """The backend as errors name it: the URI without credentials or a local directory."""
        if self.uri.endswith(".db") and "://" not in self.uri:
            return f"milvus (Milvus Lite file {self.uri.rstrip('/').rsplit('/', 1)[-1]})"
        parts = urlsplit(self.uri)
        host = parts.hostname or ""
        netloc = f"{host}:{parts.port}" if parts.port else host
        return f"milvus at {urlunsplit((parts.scheme, netloc, '', '', ''))}"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> MilvusSettings:
        env = os.environ if env is None else env
        return cls(
            uri=env.get("RAG_MILVUS_URI", ""),
            token=env.get("RAG_MILVUS_TOKEN", ""),
            alias=env.get("RAG_MILVUS_ALIAS") or DEFAULT_ALIAS,
            timeout_s=float(env.get("RAG_MILVUS_TIMEOUT") or 5.0),
        )


def check_backend(name: str) -> str:
    if name not in BACKENDS:
        raise BuildError(f"unknown backend {name!r}; choose one of {list(BACKENDS)}")
    return name
