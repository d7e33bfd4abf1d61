"""One connection to Milvus: every call bounded by a timeout, every failure a domain error.

pymilvus raises its own exceptions (and gRPC's, and ``ConnectionError``) for an unreachable,
stopped or overloaded server; callers here see only :class:`BackendUnavailableError`, naming
the backend, so the HTTP edge answers 503 and the CLI prints one line.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from typing import Any, TypeVar

from ..errors import BackendUnavailableError
from .settings import MilvusSettings

T = TypeVar("T")
MANIFEST_PROPERTY = "rag_server.manifest"
"""Collection property holding the build's manifest; set last, so it marks a complete build."""


def _import_pymilvus() -> Any:
    try:
        import pymilvus
    except ImportError:  # the [milvus] extra is optional
        raise BackendUnavailableError("milvus", "pymilvus is not installed: pip install 'rag_server[milvus]'") from None
    return pymilvus


_NOT_LOADED = 101  # pymilvus's code for a collection that is not loaded


def _reason(exc: BaseException) -> str:
    text = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    return str(text).strip().splitlines()[0][:300]


class MilvusConnection:
    """A ``MilvusClient`` whose calls all carry ``settings.timeout_s``."""

    def __init__(self, settings: MilvusSettings) -> None:
        self.settings = settings
        self.backend = settings.backend
        pymilvus = _import_pymilvus()
        self.pymilvus = pymilvus
        self._client = self.call(
            "connect",
            lambda: pymilvus.MilvusClient(uri=settings.uri, token=settings.token, timeout=settings.timeout_s),
        )

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
