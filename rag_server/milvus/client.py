"""One connection to Milvus: where it is, and every call bounded by a timeout and turned into
a domain error.

pymilvus raises its own exceptions (and gRPC's, and ``ConnectionError``) for an unreachable,
stopped or overloaded server; callers here see only :class:`BackendUnavailableError`, naming
the backend, so the HTTP edge answers 503 and the CLI prints one line. pymilvus itself (the
``[milvus]`` extra) is imported when a connection opens, never by a local server.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

from ..errors import BackendUnavailableError, ConfigError
from ..extras import require

T = TypeVar("T")
DEFAULT_ALIAS = "rag_server"
MANIFEST_PROPERTY = "rag_server.manifest"
"""Collection property holding the build's manifest; set last, so it marks a complete build."""


@dataclass(frozen=True)
class MilvusSettings:
    """Where the builds live (``RAG_MILVUS_URI``, ``RAG_MILVUS_TOKEN``: :mod:`rag_server.settings`)
    and how long any call may take."""

    uri: str
    token: str = ""
    alias: str = DEFAULT_ALIAS  # the name served; each build is a collection named after its build id
    timeout_s: float = 5.0  # every call: a dead or stuck Milvus answers 503, never a hung request
    alias_ttl_s: float = 1.0  # how long a process trusts its last look-up of the alias

    def __post_init__(self) -> None:
        if not self.uri:
            raise ConfigError("RAG_MILVUS_URI", "the Milvus backend needs a *.db path or http://host:19530")
        remote = self.uri.startswith(("http://", "https://", "tcp://", "unix:"))
        if not remote and not self.uri.endswith(".db"):
            raise ConfigError(f"RAG_MILVUS_URI={self.uri!r}", "a Milvus Lite file ending in .db, or http://host:port")
        if not self.alias.replace("_", "a").isalnum() or self.alias[0].isdigit():
            raise ConfigError(
                f"Milvus alias {self.alias!r}", "letters, digits and underscores, not starting with a digit"
            )
        if self.timeout_s <= 0 or self.alias_ttl_s < 0:
            raise ConfigError(f"Milvus timeouts {self.timeout_s}, {self.alias_ttl_s}", "must be positive")

    @property
    def lite_file(self) -> bool:
        """Whether the URI is a Milvus Lite file, served from this process, not a server's address."""
        return self.uri.endswith(".db") and "://" not in self.uri

    @property
    def backend(self) -> str:
        """The backend as errors name it: the URI without credentials or a local directory."""
        if self.lite_file:
            return f"milvus (Milvus Lite file {self.uri.rstrip('/').rsplit('/', 1)[-1]})"
        parts = urlsplit(self.uri)
        host = parts.hostname or ""
        netloc = f"{host}:{parts.port}" if parts.port else host
        return f"milvus at {urlunsplit((parts.scheme, netloc, '', '', ''))}"


_NOT_LOADED = 101  # pymilvus's code for a collection that is not loaded
_LITE_GRPC_OPTIONS = {"grpc.keepalive_permit_without_calls": False, "grpc.keepalive_time_ms": 600_000}
"""pymilvus pings its channel every 10 s, idle or not. A Milvus Lite file is served from this
process by a gRPC server at gRPC's default policy (a ping without data every 5 minutes at most),
which answers the third idle ping with GOAWAY "too many pings" and fails a call that races it.
A server in this very process cannot vanish behind a network: no pings on an idle channel."""
_RECONNECT_PAUSE_S = 0.25  # long enough for a reset channel to close, short against any timeout


def _reason(exc: BaseException) -> str:
    text = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    return str(text).strip().splitlines()[0][:300]


class MilvusConnection:
    """A ``MilvusClient`` whose calls all carry ``settings.timeout_s``."""

    def __init__(self, settings: MilvusSettings) -> None:
        self.settings = settings
        self.backend = settings.backend
        pymilvus = require("pymilvus", "milvus")
        self.pymilvus = pymilvus
        self._client = self._connect()

    def _connect(self) -> Any:
        """A client, with one more try when the first fails fast.

        A connection that fails at once was reset rather than unreachable: pymilvus pings an
        idle channel every 10 s, a server left at gRPC's default ping policy (Milvus Lite's)
        answers the third idle ping with GOAWAY "too many pings", and a connect that races it
        fails with UNAVAILABLE; a fresh channel a moment later succeeds. A connect that timed
        out is not retried, so an unreachable Milvus still fails within one timeout.
        """
        settings = self.settings

        options = {"grpc_options": _LITE_GRPC_OPTIONS} if settings.lite_file else {}

        def connect() -> Any:
            return self.pymilvus.MilvusClient(
                uri=settings.uri, token=settings.token, timeout=settings.timeout_s, **options
            )

        started = time.monotonic()
        try:
            return self.call("connect", connect)
        except BackendUnavailableError:
            if time.monotonic() - started > settings.timeout_s / 2:
                raise
        time.sleep(_RECONNECT_PAUSE_S)
        return self.call("connect", connect)

    def call(self, what: str, fn: Callable[[], T]) -> T:
        try:
            return fn()
        except BackendUnavailableError:
            raise
        except Exception as exc:  # pymilvus, grpc and socket errors alike: the backend failed us
            raise BackendUnavailableError(self.backend, f"{what} failed: {_reason(exc)}") from exc

    def read(self, collection: str, what: str, fn: Callable[[], T]) -> T:
        """A search or query on ``collection``; a collection found released (a restarted Milvus
        Lite loads nothing by itself) is loaded and the call made once more."""
        try:
            return fn()
        except Exception as exc:
            if getattr(exc, "code", None) != _NOT_LOADED and "load" not in str(exc).lower():
                raise BackendUnavailableError(self.backend, f"{what} failed: {_reason(exc)}") from exc
        self.load(collection)
        return self.call(what, fn)

    def load(self, collection: str) -> None:
        self.call("load collection", lambda: self._client.load_collection(collection, timeout=self.settings.timeout_s))

    @property
    def client(self) -> Any:
        return self._client

    # ----- the few operations the backend needs, each with the timeout

    def collections(self) -> list[str]:
        names = self.call("list collections", lambda: self._client.list_collections(timeout=self.settings.timeout_s))
        return [str(n) for n in names]

    def alias_target(self, alias: str) -> str | None:
        """The collection ``alias`` names, or None when the alias does not exist."""
        listed = self.call("list aliases", lambda: self._client.list_aliases(timeout=self.settings.timeout_s)).get(
            "aliases", []
        )
        if alias not in listed:
            return None
        found = self.call("describe alias", lambda: self._client.describe_alias(alias, timeout=self.settings.timeout_s))
        return str(found["collection_name"])

    def point_alias(self, alias: str, collection: str) -> None:
        """Make ``alias`` name ``collection``: one atomic metadata change on the server."""
        timeout = self.settings.timeout_s
        if self.alias_target(alias) is None:
            self.call("create alias", lambda: self._client.create_alias(collection, alias, timeout=timeout))
        else:
            self.call("alter alias", lambda: self._client.alter_alias(collection, alias, timeout=timeout))

    def manifest(self, collection: str) -> dict[str, Any] | None:
        """The manifest stored on ``collection``; None when it has none (an unfinished build)."""
        described = self.call(
            "describe collection",
            lambda: self._client.describe_collection(collection, timeout=self.settings.timeout_s),
        )
        raw = (described.get("properties") or {}).get(MANIFEST_PROPERTY)
        if not raw:
            return None
        try:
            found = json.loads(raw)
        except json.JSONDecodeError:
            return None
        return found if isinstance(found, dict) else None

    def drop(self, collection: str) -> None:
        self.call("drop collection", lambda: self._client.drop_collection(collection, timeout=self.settings.timeout_s))

    def close(self) -> None:
        with contextlib.suppress(Exception):  # closing a connection to a dead server must not raise
            self._client.close()
