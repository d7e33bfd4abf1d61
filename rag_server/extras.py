"""Optional dependencies: the lessons, the offline evaluation, the Milvus backend and the parity
tests need packages the local server does not. Each is installed by an extra of the package and
imported only where it is used, through :func:`require`, so that a missing one says what to
install."""

from __future__ import annotations

import importlib
from types import ModuleType

from .errors import MissingDependencyError

EXTRAS = {"teaching": ("keras",), "eval": ("ranx", "matplotlib"), "milvus": ("pymilvus", "milvus-lite")}
"""The packages of each extra (pyproject.toml's optional-dependencies)."""


def require(module: str, extra: str) -> ModuleType:
    """Import ``module``, or raise :class:`MissingDependencyError` naming the extra to install."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependencyError(module, extra) from exc
