"""The retriever contract: ``search(query, k, filters) -> list[Hit]``, for every strategy."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from ..analysis import detect_language
from ..errors import EmptyQueryError, InvalidParameterError, UnknownFilterError
from ..glossary import expanded_terms
from ..indexes import ScoredPassages
from ..loader import IndexBuild
from ..passage import Passage, normalize_article

MAX_K = 100
FILTER_FIELDS = ("language", "doc_type", "source", "article", "doc_id")
Filters = Mapping[str, str | Sequence[str]]


@dataclass(frozen=True)
class ComponentScore:
    """What one strategy inside a hybrid gave a passage (rank is 1-based; None = not retrieved)."""

    rank: int | None
    score: float | None


@dataclass(frozen=True)
class Hit:
    """One retrieved passage: where it ranked, why, and everything a citation needs."""

    rank: int
    score: float
    passage: Passage
    components: dict[str, ComponentScore] = field(default_factory=dict)

    @property
    def passage_id(self) -> str:
        return self.passage.id


def check_k(k: int) -> int:
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or not 1 <= k <= MAX_K:
        raise InvalidParameterError(f"k must be an integer from 1 to {MAX_K}, got {k!r}")
    return int(k)


def _values(name: str, value: str | Sequence[str]) -> set[str]:
    values = [value] if isinstance(value, str) else list(value)
    if not values or not all(isinstance(v, str) and v.strip() for v in values):
        raise InvalidParameterError(f"filter {name!r} needs a non-empty string or list of strings")
    if name == "article":
        return {normalize_article(v) for v in values}
    return {v.strip() for v in values}


def filter_values(filters: Filters | None) -> dict[str, set[str]]:
    """The filters validated, each field's values normalised ({} when nothing is filtered);
    shared by the local masks and the Milvus expressions."""
    if not filters:
        return {}
    unknown = sorted(set(filters) - set(FILTER_FIELDS))
    if unknown:
        raise UnknownFilterError(f"unknown filter {unknown}; valid filters: {list(FILTER_FIELDS)}")
    return {name: _values(name, value) for name, value in filters.items()}


def filter_mask(build: IndexBuild, filters: Filters | None) -> npt.NDArray[np.bool_] | None:
    """Boolean mask over the build's passages, or None when nothing is filtered."""
    wanted = filter_values(filters)
    if not wanted:
        return None
    mask: npt.NDArray[np.bool_] | None = None
    for name, values in wanted.items():
        allowed = build.field_mask(name, values)
        mask = allowed if mask is None else mask & allowed
    return mask


class Retriever(ABC):
    """Base class: validation and Hit assembly are shared; subclasses rank row numbers."""

    name: str = ""

    def __init__(self, build: IndexBuild, query_language: str | None = None) -> None:
        self.build = build
        # Stemmer for queries: None detects it per query; a dataset in one language sets it.
        self.query_language = query_language

    def search(self, query: str, k: int = 10, filters: Filters | None = None) -> list[Hit]:
        k = check_k(k)
        terms = self.query_terms(query)
        mask = filter_mask(self.build, filters)
        return self._search(query, terms, k, mask)

    def query_terms(self, query: str) -> list[str]:
        if not isinstance(query, str):
            raise InvalidParameterError("query must be a string")
        analyzer = self.build.analyzer
        # Detected once here when the build uses a glossary, which needs the language too.
        language = self.query_language
        if language is None and analyzer.settings.glossary:
            language = detect_language(query)
        terms = analyzer.tokens(query, language)
        if not terms:
            raise EmptyQueryError("the query is empty or holds only stop words")
        return expanded_terms(analyzer, query, terms, language)

    @abstractmethod
    def _search(self, query: str, terms: list[str], k: int, mask: npt.NDArray[np.bool_] | None) -> list[Hit]:
        """Top ``k`` hits among passages allowed by ``mask``."""


class IndexRetriever(Retriever):
    """A strategy that ranks with one index: rows and scores first, Hits only for the caller.

    A hybrid fuses the components' rows and scores 100 deep and makes Hits for its top k only.
    """

    @abstractmethod
    def scored(self, query: str, terms: list[str], k: int, mask: npt.NDArray[np.bool_] | None) -> ScoredPassages:
        """Rows of the top ``k`` passages allowed by ``mask`` and their scores, best first.
        ``terms`` are the query's analysed terms (:meth:`query_terms`): a hybrid analyses the
        query once and asks each component with them."""

    def _search(self, query: str, terms: list[str], k: int, mask: npt.NDArray[np.bool_] | None) -> list[Hit]:
        return ranked_hits(self.scored(query, terms, k, mask), self.build.passages)


def ranked_hits(found: ScoredPassages, passages: Sequence[Passage]) -> list[Hit]:
    """``Hit(rank, score, passages[row])`` for each found passage, best first.

    Equal to calling ``Hit(...)`` (tests check it) but about 3× faster: the frozen dataclass's
    ``__init__`` sets each field through ``object.__setattr__``, which at k = 100 costs as much
    as scoring the query. The instance dictionary is filled directly instead."""
    new = object.__new__
    hits = []
    for rank, (row, score) in enumerate(zip(found.indices.tolist(), found.scores.tolist(), strict=True), start=1):
        hit = new(Hit)
        fields = hit.__dict__
        fields["rank"] = rank
        fields["score"] = score
        fields["passage"] = passages[row]
        fields["components"] = {}
        hits.append(hit)
    return hits
