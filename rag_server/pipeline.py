"""The question-answering pipeline behind every interface: retrieve → prompt → generate.

A :class:`RagPipeline` owns the served build, one retriever per strategy (created on first use
and shared), and the generator. :meth:`RagPipeline.reload` loads the newest complete build and
swaps it in with a single reference assignment, so a request that already holds the old state
finishes on it while new requests see the new one.

A server's pipeline (``serving=True``) serves only *servable* builds (:mod:`rag_server.servable`):
a reload refuses any other build (the one served stays); a start on a ``CURRENT`` that is not
servable serves the newest servable build instead and says so in :attr:`RagPipeline.notes`
(on /readyz). It holds a lease on the build it serves, so pruning never removes it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .catalog import BuildLease, IndexCatalog
from .embedding import Encoder
from .loader import IndexBuild
from .prompt import DEFAULT_BUDGET, Citation, build_prompt, one_line
from .retrieval import DEFAULT_STRATEGY, HYBRID_STRATEGIES, Hit, Retriever, make_retriever
from .retrieval.base import Filters, check_k
from .servable import open_build, open_servable

STRATEGY_DESCRIPTIONS: Mapping[str, str] = {
    "keyword": "distinct query terms shared with the passage",
    "bm25": "Okapi BM25 (scores identical to rank_bm25's BM25Okapi)",
    "dense": "cosine similarity of all-MiniLM-L6-v2 embeddings (FAISS)",
    "hybrid": "reciprocal-rank fusion of bm25 and dense (c = 60)",
    "hybrid-convex": "min-max-normalised bm25 0.6 + dense 0.4, boost for cited articles (default)",
}


DEFAULT_SUPPORT_THRESHOLD = 0.41
"""Least evidence score for an answer: calibrated on the dev split by scripts/calibrate_support.py."""


@dataclass(frozen=True)
class SearchResult:
    build_id: str
    strategy: str
    hits: list[Hit]
    timings_ms: dict[str, float]


@dataclass(frozen=True)
class AskResult:
    answer: str
    supported: bool
    message: str | None
    citations: list[Citation]
    hits: list[Hit]
    prompt: str
    strategy: str
    build_id: str
    generator_id: str | None
    timings_ms: dict[str, float]
    question_truncated: bool = False  # the prompt holds only the question's start (fit_question)


def fit_question(question: str, budget: int) -> tuple[str, bool]:
    """The question as a prompt of ``budget`` characters can hold it, and whether it was cut.

    Whole when it fits the prompt frame; else its start, cut at a word boundary to half of the
    room the frame leaves, so that the other half can still hold context. Any question the API
    accepts (2,000 characters) thus gets an answer instead of a 400 asking the client to raise a
    budget it cannot set. Retrieval and the evidence check still use the whole question."""
    frame = len(build_prompt("x", [], budget=10**9).text) - 1  # the prompt around a question, no passages
    room = budget - frame
    asked = one_line(question)
    if len(asked) <= room:
        return question, False
    keep = max(1, room // 2)
    head = asked[:keep]
    if not asked[keep].isspace() and " " in head:  # do not end inside a word
        head = head[: head.rindex(" ")]
    return head.rstrip(), True


@dataclass
class _Served:
    """Everything that changes together on a reload."""

    build: IndexBuild
    retrievers: dict[str, Retriever] = field(default_factory=dict)
    lease: BuildLease | None = None


class RagPipeline:
    def __init__(
        self,
        index_root: Path | str,
        encoder: Encoder | None = None,
        generator: Any | None = None,
        support_threshold: float = 0.0,
        prompt_budget: int = DEFAULT_BUDGET,
        serving: bool = False,
    ) -> None:
        """``serving`` (a server): a CURRENT that cannot serve the default strategy is passed
        over for the newest build that can, and the served build is leased (never pruned)."""
        self.index_root = Path(index_root)
        self._encoder = encoder
        self.generator = generator  # rag_server.generator.Generator, or None: extractive answers
        self.support_threshold = support_threshold
        self.prompt_budget = prompt_budget
        self.serving = serving
        self._catalog = IndexCatalog(self.index_root)
        self._lock = threading.Lock()  # serialises retriever creation and reloads, not queries
        self.notes: list[str] = []  # shown on /readyz
        if serving:
            build, lease, self.notes = open_servable(self._catalog, lease=True)
            self._state = _Served(build, lease=lease)
        else:
            self._state = _Served(IndexBuild.load(self.index_root))

    @property
    def build(self) -> IndexBuild:
        return self._state.build

    def reload(self) -> str:
        """Load the newest complete build, warm it up, and switch to it; the old one keeps
        serving until then. A build that cannot serve the default strategy, or whose warm-up
        search fails, is refused (IndexLoadError, or the warm-up's error) and nothing changes."""
        build, lease = open_build(self._catalog, self._catalog.current_path(), lease=self.serving)
        fresh = _Served(build, lease=lease)
        try:
            self._warm(fresh, strict=True)
        except BaseException:
            if fresh.lease is not None:
                fresh.lease.release()
            raise
        with self._lock:
            previous, self._state = self._state, fresh
            self.notes = []
        if previous.lease is not None:
            previous.lease.release()  # requests still on the old build hold it in memory
        return fresh.build.build_id

    def warm_up(self, strict: bool = False) -> None:
        """One search with the default strategy, so that what it loads on first use (the
        embedding model and its trace, a few seconds) loads now rather than on a user's first
        question. A failure is only logged (the same error will reach the request that needs
        it), or raised when ``strict``."""
        self._warm(self._state, strict=strict)

    def _warm(self, state: _Served, query: str = "proteção de dados pessoais", strict: bool = False) -> None:
        try:
            self.retriever(None, state).search(query, k=1)
        except Exception as exc:  # a warm-up never stops a start; requests will report the error
            if strict:
                raise
            logging.getLogger("rag_server.pipeline").warning(
                "warm-up search failed", extra={"fields": {"error": f"{type(exc).__name__}: {exc}"}}
            )

    def retriever(self, strategy: str | None, state: _Served | None = None) -> Retriever:
        """The build's retriever for ``strategy``, made on first use. Hybrids reuse the build's
        one bm25 and one dense retriever, so a question is embedded once per request even when
        the evidence check asks the dense index again."""
        state = state or self._state
        name = strategy or DEFAULT_STRATEGY
        found = state.retrievers.get(name)
        if found is not None:
            return found
        components = None
        if name in HYBRID_STRATEGIES:  # outside the lock: these calls take it themselves
            components = {"bm25": self.retriever("bm25", state), "dense": self.retriever("dense", state)}
        with self._lock:
            found = state.retrievers.get(name)
            if found is None:
                found = make_retriever(name, state.build, encoder=self._encoder_for(state.build), components=components)
                state.retrievers[name] = found
        return found

    def _encoder_for(self, build: IndexBuild) -> Encoder | None:
        """The encoder given to the pipeline; else the served build's, when ``build`` was
        embedded by the same model (checksum), so that a reload does not load it a second time.
        None lets the dense retriever load the model its build names."""
        if self._encoder is not None:
            return self._encoder
        encoder: Encoder | None = getattr(self._state.retrievers.get("dense"), "encoder", None)
        wanted = build.manifest.get("embedding", {}).get("model_checksum")
        return encoder if encoder is not None and encoder.checksum == wanted else None

    def search(
        self, query: str, strategy: str | None = None, k: int = 10, filters: Filters | None = None
    ) -> SearchResult:
        state = self._state  # one build for the whole request, even if a reload happens meanwhile
        start = time.perf_counter()
        retriever = self.retriever(strategy, state)
        hits = retriever.search(query, k=check_k(k), filters=filters)
        elapsed = (time.perf_counter() - start) * 1000
        return SearchResult(state.build.build_id, retriever.name or str(strategy), hits, {"retrieve": elapsed})

    def ask(
        self,
        question: str,
        strategy: str | None = None,
        k: int = 3,
        filters: Filters | None = None,
        max_new_chars: int = 200,
        temperature: float = 0.0,
        seed: int | None = None,
    ) -> AskResult:
        state = self._state
        timings: dict[str, float] = {}
        start = time.perf_counter()
        retriever = self.retriever(strategy, state)
        hits = retriever.search(question, k=check_k(k), filters=filters)
        timings["retrieve"] = (time.perf_counter() - start) * 1000

        start = time.perf_counter()
        budget = self.prompt_budget
        if self.generator is not None:
            # Prompt and answer must fit the model's window, or the question falls out of it
            # (without a generator the prompt is only shown, so it may hold more passages).
            max_new_chars = min(max_new_chars, self.generator.block_size // 3)
            budget = min(budget, self.generator.block_size - max_new_chars - 1)
        prompt_question, question_truncated = fit_question(question, budget)
        prompt = build_prompt(prompt_question, hits, budget)
        timings["prompt"] = (time.perf_counter() - start) * 1000

        supported = bool(hits) and self.evidence(question, hits, state) >= self.support_threshold
        start = time.perf_counter()
        if not supported:
            answer = ""
            message = "The indexed documents do not contain enough evidence to answer this question."
        elif self.generator is not None:
            answer = self.generator.complete(
                prompt.text, max_new_chars=max_new_chars, temperature=temperature, seed=seed
            ).strip()
            message = None
        else:
            # No trained generator is loaded: answer with the best evidence, verbatim and cited.
            answer = f"[1] {prompt.citations[0].text}" if prompt.citations else ""
            message = "No generator checkpoint is loaded; the answer is the best passage, quoted."
        timings["generate"] = (time.perf_counter() - start) * 1000
        return AskResult(
            answer=answer,
            supported=supported,
            message=message,
            citations=prompt.citations,
            hits=hits,
            prompt=prompt.text,
            strategy=retriever.name or str(strategy),
            build_id=state.build.build_id,
            generator_id=getattr(self.generator, "checkpoint_id", None),
            timings_ms=timings,
            question_truncated=question_truncated,
        )

    def warnings(self) -> list[str]:
        """Problems that do not stop serving but that an operator must see (on /readyz)."""
        found = []
        corpus = self.build.manifest.get("corpus_checksum")
        trained_on = getattr(self.generator, "corpus_checksum", None)
        if self.generator is not None and trained_on != corpus:
            found.append(
                f"the generator checkpoint was trained on corpus {str(trained_on)[:12]}…, but the index "
                f"was built from corpus {str(corpus)[:12]}…: retrain it (scripts/train_generator.py)"
            )
        return found

    def evidence(self, question: str, hits: Sequence[Hit], state: _Served | None = None) -> float:
        """Strength of the best evidence on one absolute scale whatever the strategy: the highest
        cosine similarity between the question and a retrieved passage (BM25 and fused scores
        are not comparable across questions). Without a dense index every hit counts as
        evidence (returns +inf)."""
        state = state or self._state
        if state.build.dense is None or not hits:
            return float("inf") if hits else 0.0
        dense = self.retriever("dense", state)
        scores = dense.similarity(question, [h.passage_id for h in hits])  # type: ignore[attr-defined]
        return max(scores, default=0.0)
