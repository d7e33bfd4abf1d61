"""Every exception rag_server raises on purpose, in one place.

    RagServerError                 base class: catch this to handle any domain error
    ├── CorpusError                a corpus file cannot be read or parsed (names the file)
    ├── BuildError                 an index build cannot complete (bad settings, empty corpus…)
    ├── IndexLoadError             a built index is missing, truncated or fails its checksum
    ├── ModelError                 an embedding model or checkpoint cannot be loaded
    ├── MissingDependencyError     an optional package is not installed (names the extra)
    ├── ConfigError                a configuration file, option or RAG_* setting is invalid (names it)
    ├── BackendUnavailableError    the search backend (Milvus) cannot be reached or timed out (HTTP 503)
    └── QueryError                 a request is invalid: empty query, unknown strategy or
        │                          filter, k out of range (the API maps these to HTTP 4xx)
        ├── EmptyQueryError
        ├── UnknownStrategyError
        ├── UnknownFilterError
        └── InvalidParameterError

The core raises these; only the edges (CLI, HTTP) turn them into exit codes or status codes.
"""

from __future__ import annotations

from pathlib import Path


class RagServerError(Exception):
    """Base class of every error raised by rag_server on purpose."""

    code = "rag_server_error"


class CorpusError(RagServerError):
    """A corpus file is missing, undecodable or malformed."""

    code = "corpus_error"

    def __init__(self, path: Path | str, problem: str) -> None:
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


class BuildError(RagServerError):
    """An index build cannot complete; the served build is left untouched."""

    code = "build_error"


class IndexLoadError(RagServerError):
    """A build directory cannot be loaded: missing file, bad manifest, checksum mismatch."""

    code = "index_load_error"

    def __init__(self, path: Path | str, problem: str) -> None:
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")

    def public(self) -> str:
        """The problem with the file named inside its build (``build <id>, dense/index.faiss:
        …``), never the server's directories: what an HTTP client may be told."""
        parts = Path(self.path).parts
        if "builds" in parts[:-1]:
            at = len(parts) - 1 - parts[::-1].index("builds")
            inside = "/".join(parts[at + 2 :])
            return f"build {parts[at + 1]}{', ' + inside if inside else ''}: {self.problem}"
        return f"{Path(self.path).name}: {self.problem}"


class ModelError(RagServerError):
    """An embedding model or generator checkpoint cannot be loaded."""

    code = "model_error"


class MissingDependencyError(RagServerError, ImportError):
    """A package of an optional extra (lessons, evaluation) is not installed."""

    code = "missing_dependency"

    def __init__(self, module: str, extra: str) -> None:
        self.module = module
        self.extra = extra
        super().__init__(f"{module} is not installed: pip install 'rag_server[{extra}]'")


class ConfigError(RagServerError):
    """A configuration file (a training recipe), option or ``RAG_*`` setting is invalid."""

    code = "config_error"

    def __init__(self, path: Path | str, problem: str) -> None:
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


class BackendUnavailableError(RagServerError):
    """The search backend holding the served build cannot answer: unreachable, timed out, or
    its served collection is missing. Names the backend, never its credentials."""

    code = "backend_unavailable"

    def __init__(self, backend: str, problem: str) -> None:
        self.backend = backend
        self.problem = problem
        super().__init__(f"{backend}: {problem}")


class QueryError(RagServerError, ValueError):
    """A query or its parameters are invalid."""

    code = "invalid_query"


class EmptyQueryError(QueryError):
    """The query is empty or holds only stop words and punctuation."""

    code = "empty_query"


class UnknownStrategyError(QueryError):
    """No retrieval strategy of that name exists."""

    code = "unknown_strategy"


class UnknownFilterError(QueryError):
    """A filter names a field that cannot be filtered on."""

    code = "unknown_filter"


class InvalidParameterError(QueryError):
    """A parameter (k, a weight, a constant) is out of its allowed range."""

    code = "invalid_parameter"
