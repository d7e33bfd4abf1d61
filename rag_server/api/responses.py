"""Response bodies: one pydantic model per JSON shape the API sends, the single definition that
the views build their bodies from and that ``/openapi.json`` is generated from.

One rule for optional keys: a field with a default is left out of the body unless it was given
(``Body.dump`` excludes unset fields), so a model says exactly which keys may be absent. A field
that can be null but is always sent has no default.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, RootModel

from ..answer import AnswerSource
from ..prompt import Citation as PromptCitation
from ..retrieval import Hit as RetrievedHit
from ..settings import BACKENDS
from .schemas import Strategy

Timings = dict[str, float]


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")

    def dump(self) -> dict[str, Any]:
        """The JSON object this model stands for (keys in field order, unset defaults left out)."""
        return self.model_dump(exclude_unset=True)


# --------------------------------------------------------------------------- errors


class ErrorDetail(Body):
    code: str = Field(description="a stable machine-readable code, such as invalid_request or not_ready")
    message: str = Field(description="what went wrong, for a person; never a trace or a server path")


class ErrorResponse(Body):
    """Every 4xx and 5xx answer of the API."""

    error: ErrorDetail

    @classmethod
    def of(cls, code: str, message: str) -> ErrorResponse:
        return cls(error=ErrorDetail(code=code, message=message))


# --------------------------------------------------------------------------- search


class ComponentScore(Body):
    """What one strategy inside a hybrid gave the passage; null when it did not retrieve it."""

    rank: int | None
    score: float | None


class Hit(Body):
    """One retrieved passage: where it ranked, why, and everything a citation needs."""

    rank: int = Field(ge=1)
    score: float
    passage_id: str
    doc_id: str
    title: str
    source: str
    article: str | None
    provision: str | None
    citation: str
    language: str
    doc_type: str
    section: str
    text: str
    components: dict[str, ComponentScore] = Field(
        default_factory=dict, description="hybrid strategies only: the score of each strategy it fuses"
    )

    @classmethod
    def of(cls, hit: RetrievedHit) -> Hit:
        p = hit.passage
        hit_fields: dict[str, Any] = {}
        if hit.components:
            hit_fields["components"] = {
                name: ComponentScore(rank=c.rank, score=c.score) for name, c in hit.components.items()
            }
        return cls(
            rank=hit.rank,
            score=hit.score,
            passage_id=p.id,
            doc_id=p.doc_id,
            title=p.title,
            source=p.source,
            article=p.article,
            provision=p.provision,
            citation=p.citation,
            language=p.language,
            doc_type=p.doc_type,
            section=p.section,
            text=p.text,
            **hit_fields,
        )


class SearchResponse(Body):
    build_id: str
    strategy: Strategy
    hits: list[Hit]
    timings_ms: Timings


# --------------------------------------------------------------------------- ask and chat


class SentenceSpan(Body):
    start: int = Field(ge=0)
    end: int = Field(ge=0)


class Citation(Body):
    """A numbered passage of the prompt; ``[number]`` in the prompt and the answer refers to it."""

    number: int = Field(ge=1, description="[n] in the prompt and the answer")
    passage_id: str
    title: str
    source: str
    article: str | None
    provision: str | None
    citation: str
    language: str
    score: float
    text: str = Field(description="the passage's whole text")
    sentences: list[SentenceSpan] = Field(
        description="offsets into text of the passage's sentences that the prompt holds"
    )

    @classmethod
    def of(cls, c: PromptCitation) -> Citation:
        return cls(
            number=c.number,
            passage_id=c.passage_id,
            title=c.title,
            source=c.source,
            article=c.article,
            provision=c.provision,
            citation=c.citation,
            language=c.language,
            score=c.score,
            text=c.text,
            sentences=[SentenceSpan(start=span.start, end=span.end) for span in c.sentences],
        )


class Source(Body):
    """The context sentence the answer came from: its citation number and offsets in that passage.
    From a sentence too long for the generator that lists items, the unit is one item:
    ``sentence`` is the item quoted after its lead-in ("…: [...] (IV) 5% por cooperação"), and
    ``start``/``end`` mark the item itself."""

    number: int = Field(ge=1)
    passage_id: str
    start: int = Field(ge=0)
    end: int = Field(ge=0)
    sentence: str

    @classmethod
    def of(cls, found: AnswerSource | None) -> Source | None:
        return None if found is None else cls.each(found)

    @classmethod
    def each(cls, found: AnswerSource) -> Source:
        return cls(
            number=found.number, passage_id=found.passage_id, start=found.start, end=found.end, sentence=found.text
        )


SOURCES = "the source of each answer sentence, in answer order (an answer has one or two sentences)"
SOURCE = "the source of the answer's first sentence (the first of ``sources``)"


class AskResponse(Body):
    answer: str
    supported: bool
    message: str | None
    citations: list[Citation]
    source: Source | None = Field(description=SOURCE)
    sources: list[Source] = Field(description=SOURCES)
    quoted: bool = Field(
        description="the answer quotes a source sentence instead of the generator's text "
        "(no generator, or its text did not follow the sentence)"
    )
    prompt: str
    strategy: Strategy
    build_id: str
    generator_id: str | None
    timings_ms: Timings
    question_truncated: bool = Field(
        description="the prompt holds only the question's start (at a word boundary): "
        "a question of any accepted length is answered"
    )


class AssistantMessage(Body):
    role: Literal["assistant"]
    content: str


class ChatChoice(Body):
    index: int
    message: AssistantMessage
    finish_reason: Literal["stop"]


class Usage(Body):
    """Counted in characters: the generator works on characters, not tokens."""

    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class ChatCompletion(Body):
    """OpenAI's chat.completion, with the answer's provenance in extra fields."""

    id: str
    object: Literal["chat.completion"]
    created: int
    model: str
    choices: list[ChatChoice]
    usage: Usage
    citations: list[Citation]
    source: Source | None = Field(description=SOURCE)
    sources: list[Source] = Field(description=SOURCES)
    supported: bool
    build_id: str
    question_truncated: bool


class Delta(Body):
    role: Literal["assistant"] = "assistant"
    content: str = ""


class ChunkChoice(Body):
    index: int
    delta: Delta
    finish_reason: Literal["stop"] | None


class ChatCompletionChunk(Body):
    """One server-sent event of a streamed completion; the first one also carries the provenance
    fields of :class:`ChatCompletion`, and the stream ends with the event ``[DONE]``."""

    id: str
    object: Literal["chat.completion.chunk"]
    created: int
    model: str
    choices: list[ChunkChoice]
    citations: list[Citation] = Field(default_factory=list)
    source: Source | None = Field(default=None, description=SOURCE)
    sources: list[Source] = Field(default_factory=list, description=SOURCES)
    supported: bool = False
    build_id: str = ""
    question_truncated: bool = False


# --------------------------------------------------------------------------- the rest


if TYPE_CHECKING:
    Backend = str
else:
    Backend = Literal[BACKENDS]  # rag_server.settings' names, as an enum in the OpenAPI document
BACKEND_FIELD = "where the served builds live: local index files, or Milvus collections behind an alias"


class StrategyInfo(Body):
    name: Strategy
    description: str
    available: bool = Field(description="served by this server's backend (Milvus serves no keyword strategy)")


class StrategiesResponse(Body):
    default: Strategy
    backend: Backend = Field(description=BACKEND_FIELD)
    strategies: list[StrategyInfo]


class IndexManifest(RootModel[dict[str, Any]]):
    """The served build's manifest (format version, corpus, analyzer, indexes, embedding model),
    without the server's paths."""


class LastReload(Body):
    status: Literal["ok", "refused"]
    build_id: str = Field(default="", description="the build switched to (status ok)")
    reason: str = Field(default="", description="why the reload was refused (status refused)")
    at: str = Field(description="when, ISO 8601 UTC")


class ReloadResponse(Body):
    previous_build_id: str | None
    build_id: str
    changed: bool


class Healthy(Body):
    status: Literal["ok"]


class Ready(Body):
    status: Literal["ready"]
    build_id: str
    backend: Backend = Field(description=BACKEND_FIELD)
    generator: str | None
    warnings: list[str]
    last_reload: LastReload | None


class NotReadyBody(Body):
    status: Literal["not_ready"]
    reason: str = Field(description="why: no build loaded, the search backend unreachable, or the warm-up")
    backend: Backend = Field(description=BACKEND_FIELD)
    last_reload: LastReload | None = Field(default=None, description="sent when no build could be loaded")
