"""The retrieval strategies, each registered once: name → factory, description, the indexes a
build must hold for it, whether it embeds the query, and which other strategies it fuses.

The API's strategy enum, the CLI's help, the evaluation runner's checks, the pipeline and the
servable-build check all read this registry, so a strategy added here is offered everywhere.
A registry is one backend's strategies: :data:`LOCAL` ranks with the build's own files (sparse
arrays and FAISS); another backend makes its own :class:`StrategyRegistry`, registers its
strategies under the same names, and hands it to the pipeline.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from ..embedding import Encoder
from ..errors import IndexLoadError, UnknownStrategyError
from ..loader import IndexBuild
from .base import Retriever


class RetrieverFactory(Protocol):
    def __call__(
        self,
        build: IndexBuild,
        encoder: Encoder | None,
        query_language: str | None,
        components: Mapping[str, Retriever],
        **options: Any,
    ) -> Retriever: ...


@dataclass(frozen=True)
class Strategy:
    """One retrieval strategy of a registry."""

    name: str
    description: str
    factory: RetrieverFactory
    indexes: tuple[str, ...]  # the indexes a build must hold for it
    needs_encoder: bool = False  # it (or a component) embeds the query: the factory gets the build's encoder
    components: tuple[str, ...] = ()  # strategies whose retrievers it fuses (made first, shared)

    def check(self, build: IndexBuild) -> None:
        """IndexLoadError naming the first index this strategy needs that ``build`` lacks:
        checked before anything is loaded for it (its encoder, its components)."""
        for index in self.indexes:
            if not build.holds(index):
                raise IndexLoadError(build.path / index, f"this build has no {index} index")


class StrategyRegistry:
    """One backend's strategies by name, in the order they were registered, and the default one."""

    def __init__(self, default: str, backend: str = "local") -> None:
        self.default = default
        self.backend = backend  # where the builds it ranks live (IndexBuild.backend)
        self._strategies: dict[str, Strategy] = {}

    def register(self, strategy: Strategy) -> Strategy:
        if strategy.name in self._strategies:
            raise ValueError(f"strategy {strategy.name!r} is already registered")
        unknown = [c for c in strategy.components if c not in self._strategies]
        if unknown:
            raise ValueError(f"strategy {strategy.name!r} fuses unregistered strategies {unknown}")
        self._strategies[strategy.name] = strategy
        return strategy

    def get(self, name: str | None) -> Strategy:
        """The strategy called ``name`` (None: the default), or UnknownStrategyError listing the valid ones."""
        found = self._strategies.get(self.default if name is None else name)
        if found is None:
            raise UnknownStrategyError(f"unknown strategy {name!r}; valid strategies: {list(self.names())}")
        return found

    def names(self) -> tuple[str, ...]:
        return tuple(self._strategies)

    def descriptions(self) -> dict[str, str]:
        return {s.name: s.description for s in self}

    def __contains__(self, name: object) -> bool:
        return name in self._strategies

    def __iter__(self) -> Iterator[Strategy]:
        return iter(self._strategies.values())

    def make(
        self,
        name: str | None,
        build: IndexBuild,
        encoder: Encoder | None = None,
        query_language: str | None = None,
        components: Mapping[str, Retriever] | None = None,
        **options: Any,
    ) -> Retriever:
        """The retriever of strategy ``name`` over ``build``; ``options`` go to its factory.
        Components missing from ``components`` are made here, without options; a strategy
        that embeds queries and gets no ``encoder`` loads the one its build names."""
        strategy = self.get(name)
        strategy.check(build)
        parts = dict(components or {})
        for part in strategy.components:
            if part not in parts:
                parts[part] = self.make(part, build, encoder)
        return strategy.factory(build, encoder, query_language, parts, **options)
