"""What a server serves from Milvus: the build the alias names, followed across rebuilds.

Every replica resolves the alias itself (at most once per ``alias_ttl_s``), so a rebuild that
switches the alias switches every replica within that time, with no reload call. The build's
manifest (embedding model and checksum, analyzer, BM25 parameters) travels with its collection,
so queries are embedded and analysed exactly as its passages were.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from ..analysis import Analyzer, AnalyzerSettings
from ..errors import BackendUnavailableError
from ..evidence import okapi_idf
from ..loader import IndexBuild
from .client import MilvusConnection, MilvusSettings
from .schema import DOC_FREQ, TERM

TERM_CACHE_SIZE = 100_000


@dataclass
class MilvusBuild(IndexBuild):
    """A build held in a Milvus collection. ``passages`` stays empty: hits carry their passage
    from Milvus, and no replica holds the corpus in memory."""

    backend: ClassVar[str] = "milvus"
    collection: str = ""
    connection: Any = None  # MilvusConnection (Any: the dataclass field must take a default)

    def holds(self, index: str) -> bool:
        return index in self.manifest.get("indexes", [])

    def term_idf(self) -> Callable[[str], float] | None:
        """BM25's idf of a term from the build's term table, remembered per term (questions
        repeat their words); None for a build made without one."""
        table = self.manifest.get("terms_collection")
        if not table:
            return None
        connection: MilvusConnection = self.connection
        n_docs = int(self.manifest["passage_count"])
        known: dict[str, float] = {}
        lock = threading.Lock()

        def idf(term: str) -> float:
            with lock:
                found = known.get(term)
            if found is not None:
                return found
            rows = connection.read(
                table,
                "term look-up",
                lambda: connection.client.query(
                    table,
                    filter=f"{TERM} in [{json.dumps(term, ensure_ascii=False)}]",
                    output_fields=[DOC_FREQ],
                    timeout=connection.settings.timeout_s,
                ),
            )
            value = okapi_idf(int(rows[0][DOC_FREQ]), n_docs) if rows else 0.0  # unknown terms count for nothing
            with lock:
                if len(known) >= TERM_CACHE_SIZE:
                    known.clear()
                known[term] = value
            return value

        return idf

    @classmethod
    def open(cls, connection: MilvusConnection, collection: str) -> MilvusBuild:
        manifest = connection.manifest(collection)
        if manifest is None:
            raise BackendUnavailableError(
                connection.backend, f"collection {collection} holds no complete build (no manifest)"
            )
        connection.load(collection)  # a no-op when loaded; a restarted Milvus Lite loads nothing itself
        analyzer = Analyzer(AnalyzerSettings(**manifest["analyzer"]))
        return cls(Path(collection), manifest, [], analyzer, collection=collection, connection=connection)


class MilvusSource:
    """The alias's current build for one process; thread-safe."""

    def __init__(self, settings: MilvusSettings, connection: MilvusConnection | None = None) -> None:
        self.settings = settings
        self.connection = connection or MilvusConnection(settings)
        self._lock = threading.Lock()
        self._target: str | None = None
        self._checked = float("-inf")

    def target(self, fresh: bool = False) -> str:
        """The collection the alias names (looked up again after ``alias_ttl_s``, or now)."""
        with self._lock:
            if fresh or self._target is None or time.monotonic() - self._checked >= self.settings.alias_ttl_s:
                found = self.connection.alias_target(self.settings.alias)
                if found is None:
                    raise BackendUnavailableError(
                        self.connection.backend,
                        f"alias {self.settings.alias!r} names no collection: run rag-server build --backend milvus",
                    )
                self._target, self._checked = found, time.monotonic()
            return self._target

    def open(self) -> MilvusBuild:
        return MilvusBuild.open(self.connection, self.target(fresh=True))

    def follow(self, build: IndexBuild) -> MilvusBuild | None:
        """The build to serve now: None when ``build`` is still the alias's, else the new one."""
        name = self.target()
        if isinstance(build, MilvusBuild) and build.collection == name:
            return None
        return MilvusBuild.open(self.connection, name)
