"""Hybrid retrieval: BM25 and dense lists fused, keeping each component's rank and score.

* ``rrf`` — reciprocal-rank fusion: ``score(d) = Σ_s w_s / (c + rank_s(d))`` (Cormack et al.
  2009), ``c`` = 60 by default. Rank-based, so the two strategies' score scales never meet.
* ``convex`` — ``score(d) = Σ_s w_s · (score_s(d) − min_s) / σ_s``: each component's scores
  shifted to start at 0 and counted in its own standard deviations; a passage absent from one
  list gets 0 from it. Uses the scores, so it can reward a clear winner more than RRF does.

Each component is searched ``depth`` deep (default 100) before fusing, so that a passage
ranked low by one strategy and high by the other is still seen by both.

``language_boost`` multiplies the fused score of passages written in the query's language by
``1 + language_boost``. The corpus holds most texts in both languages, and the English-only
embedding model matches a Portuguese question to the English twin about as well as to the
Portuguese original; the boost lets the user's own language win such ties without hiding
documents that exist in one language only.

``citation_boost`` multiplies by ``1 + citation_boost`` the fused score of passages that explain
an article or resolution the query names ("art. 18", "Res. CD/ANPD 15/2024"), see
:mod:`rag_server.retrieval.citations`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from ..analysis import detect_language
from ..errors import InvalidParameterError
from ..loader import IndexBuild
from ..passage import Passage
from .base import MAX_K, ComponentScore, Hit, IndexRetriever, Retriever
from .citations import cited_refs

FUSIONS = ("rrf", "convex")
Found = Mapping[str, list[tuple[int, float]]]
"""Each component's (row, score) pairs, best first; rows index one list of passages."""


@dataclass(frozen=True)
class Fusion:
    """How a hybrid fuses its components' lists into hits: checked once, and the same on every
    backend (a Milvus hybrid fuses with this too, so weights and boosts mean the same there)."""

    kind: str  # one of FUSIONS
    rrf_k: float
    weights: Mapping[str, float]  # by component name
    depth: int  # how deep each component is searched before fusing
    language_boost: float
    citation_boost: float

    @classmethod
    def checked(
        cls,
        components: Iterable[str],
        fusion: str = "rrf",
        rrf_k: float = 60.0,
        weights: Mapping[str, float] | None = None,
        depth: int = MAX_K,
        language_boost: float = 0.0,
        citation_boost: float = 0.0,
    ) -> Fusion:
        """The settings of a fusion of ``components``, or InvalidParameterError naming the bad one."""
        names = list(components)
        if fusion not in FUSIONS:
            raise InvalidParameterError(f"unknown fusion {fusion!r}; choose one of {list(FUSIONS)}")
        if rrf_k <= 0:
            raise InvalidParameterError("the RRF constant must be positive")
        if language_boost < 0 or citation_boost < 0:
            raise InvalidParameterError("language_boost and citation_boost must be non-negative")
        if not 1 <= depth <= MAX_K:
            raise InvalidParameterError(f"depth must be from 1 to {MAX_K}")
        given = dict(weights or {})
        unknown = set(given) - set(names)
        if unknown:
            raise InvalidParameterError(f"weights name unknown components {sorted(unknown)}")
        resolved = {name: float(given.get(name, 1.0)) for name in names}
        if any(w < 0 for w in resolved.values()) or not any(resolved.values()):
            raise InvalidParameterError("weights must be non-negative and not all zero")
        return cls(fusion, float(rrf_k), resolved, depth, float(language_boost), float(citation_boost))

    @property
    def strategy(self) -> str:
        return "hybrid" if self.kind == "rrf" else "hybrid-convex"

    def hits(
        self, query: str, query_language: str | None, found: Found, passages: Sequence[Passage], k: int
    ) -> list[Hit]:
        """The top ``k`` of the fused lists, boosted, each hit with every component's rank and score."""
        fused = fuse(found, self.kind, self.rrf_k, self.weights, passages)
        factors = self._boosts(query, query_language)
        if factors:
            boosted = []
            for row, s in fused:
                for applies, factor in factors:
                    s = s * factor if applies(passages[row]) else s
                boosted.append((row, s))
            fused = sorted(boosted, key=lambda item: (-item[1], passages[item[0]].id))
        # Each component's rank (1-based) and score of the passages shown, by row.
        ranked = {
            name: {row: (rank, score) for rank, (row, score) in enumerate(pairs, start=1)}
            for name, pairs in found.items()
        }
        hits = []
        for rank, (row, score) in enumerate(fused[:k], start=1):
            components = {}
            for name, by_row in ranked.items():
                mine = by_row.get(row)
                components[name] = ComponentScore(*mine) if mine else ComponentScore(None, None)
            hits.append(Hit(rank=rank, score=float(score), passage=passages[row], components=components))
        return hits

    def _boosts(self, query: str, query_language: str | None) -> list[tuple[Callable[[Passage], bool], float]]:
        factors: list[tuple[Callable[[Passage], bool], float]] = []
        if self.language_boost:
            language = query_language or detect_language(query)
            factors.append((lambda p: p.language == language, 1.0 + self.language_boost))
        if self.citation_boost:
            refs = cited_refs(query)
            if refs:
                factors.append((refs.matches, 1.0 + self.citation_boost))
        return factors


class HybridRetriever(Retriever):
    def __init__(
        self,
        build: IndexBuild,
        components: Mapping[str, Retriever],
        fusion: str = "rrf",
        rrf_k: float = 60.0,
        weights: Mapping[str, float] | None = None,
        depth: int = MAX_K,
        query_language: str | None = None,
        language_boost: float = 0.0,
        citation_boost: float = 0.0,
    ) -> None:
        super().__init__(build, query_language)
        self.fusion = Fusion.checked(components, fusion, rrf_k, weights, depth, language_boost, citation_boost)
        not_indexed = sorted(name for name, r in components.items() if not isinstance(r, IndexRetriever))
        if not_indexed:
            raise InvalidParameterError(f"hybrid components must rank with one index each: {not_indexed}")
        self.components = {name: r for name, r in components.items() if isinstance(r, IndexRetriever)}
        self.name = self.fusion.strategy

    def _search(self, query: str, terms: list[str], k: int, mask: npt.NDArray[np.bool_] | None) -> list[Hit]:
        depth = max(k, self.fusion.depth)
        found = {name: r.scored(query, terms, depth, mask).pairs() for name, r in self.components.items()}
        return self.fusion.hits(query, self.query_language, found, self.build.passages, k)


def fuse(
    found: Found,
    fusion: str,
    rrf_k: float,
    weights: Mapping[str, float],
    passages: Sequence[Passage],
) -> list[tuple[int, float]]:
    """(passage row, fused score), best first, from each component's (row, score) pairs (best
    first); ties broken by passage id for determinism."""
    totals: dict[int, float] = {}
    for name, pairs in found.items():
        w = weights.get(name, 1.0)
        if fusion == "rrf":
            contrib = {row: w / (rrf_k + rank) for rank, (row, _) in enumerate(pairs, start=1)}
        else:
            scores = [s for _, s in pairs]
            spread, lo = _spread(scores), min(scores, default=0.0)
            contrib = {row: w * ((s - lo) / spread if spread > 0 else 1.0) for row, s in pairs}
        for row, value in contrib.items():
            totals[row] = totals.get(row, 0.0) + value
    return sorted(totals.items(), key=lambda item: (-item[1], passages[item[0]].id))


def _spread(scores: Sequence[float]) -> float:
    """The standard deviation of one component's scores: the unit its scores are counted in.

    In a list of 100, one extreme score sets the range (min-max's unit) by itself but moves the
    standard deviation by about a tenth as much, so the unit follows how far apart the list's
    scores usually are. Chosen by measurement: on the dev splits of both question sets and on
    SciFact's train queries, with either model, nDCG@10 rose over min-max's, and every other
    measure held or rose but one question of natural dev R@5 (docs/BENCHMARKS.md, session 10).
    Fewer than two scores: 0 (each listed passage counts 1)."""
    if len(scores) < 2:
        return 0.0
    mean = sum(scores) / len(scores)
    return math.sqrt(sum((s - mean) ** 2 for s in scores) / len(scores))
