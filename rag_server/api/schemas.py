"""Request bodies, validated with pydantic: wrong types, missing fields, unknown fields and
out-of-range values become one clear 400 error before any work is done.

One rule for types, on every field of every endpoint: strict. A value must have the JSON type
the OpenAPI document gives it: no string is read as a number ("0.5", "3"), no boolean as a
number (true), no number as a boolean (1) or a string; an integer is accepted where a number is
expected, as JSON Schema's "number" includes the integers."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from ..pipeline import DEFAULT_ASK_K, DEFAULT_MAX_NEW_CHARS
from ..retrieval import LOCAL, MAX_K

if TYPE_CHECKING:
    Strategy = str
else:
    # The registry's names as an enum: unknown strategies are refused with the list of valid ones.
    Strategy = Literal[LOCAL.names()]

MAX_QUESTION_CHARS = 2000
"""Longest question or query accepted (characters)."""

Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_QUESTION_CHARS)]
FilterValue = str | list[str]


class Filters(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    language: FilterValue | None = None
    doc_type: FilterValue | None = None
    source: FilterValue | None = None
    article: FilterValue | None = None
    doc_id: FilterValue | None = None

    def as_dict(self) -> dict[str, str | list[str]]:
        return {k: v for k, v in self.model_dump().items() if v is not None}


class SearchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    query: Text
    strategy: Strategy | None = None
    k: int = Field(default=10, ge=1, le=MAX_K)
    filters: Filters | None = None


class AskRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    question: Text
    strategy: Strategy | None = None
    k: int = Field(default=DEFAULT_ASK_K, ge=1, le=20, strict=True)
    lang: Literal["pt", "en"] | None = None
    filters: Filters | None = None
    max_new_chars: int = Field(default=DEFAULT_MAX_NEW_CHARS, ge=1, le=1000, strict=True)
    temperature: float = Field(default=0.0, ge=0.0, le=2.0)
    seed: int | None = Field(default=None, ge=0, le=2**31 - 1)

    def filter_dict(self) -> dict[str, str | list[str]]:
        filters = self.filters.as_dict() if self.filters else {}
        if self.lang:
            filters["language"] = self.lang
        return filters


class TextPart(BaseModel):
    """A content part of a chat message (OpenAI's ``{"type": "text", "text": …}``); only text
    parts are understood, any other type is refused with a clear 400."""

    model_config = ConfigDict(extra="ignore", strict=True)

    type: Literal["text"]
    text: str


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)

    role: Literal["system", "user", "assistant", "developer", "tool"]
    content: str | list[TextPart] | None = None

    @field_validator("content", mode="before")
    @classmethod
    def _text_parts_only(cls, value: Any) -> Any:
        if isinstance(value, list):
            for i, part in enumerate(value):
                kind = part.get("type") if isinstance(part, dict) else None
                if kind != "text":
                    shown = kind if isinstance(kind, str) else type(part).__name__
                    raise ValueError(f"content part {i} is {shown!r}: only text parts are supported")
        return value

    def text(self) -> str:
        if isinstance(self.content, list):
            return "\n".join(part.text for part in self.content)
        return self.content or ""


class ChatRequest(BaseModel):
    """OpenAI-compatible chat request; fields the server does not use are ignored."""

    model_config = ConfigDict(extra="ignore", strict=True)

    model: str = "rag_server"
    messages: list[ChatMessage] = Field(min_length=1, max_length=100)
    stream: bool = False  # true or false, never "yes"
    n: int | None = Field(default=None, ge=1, le=1, description="only one choice is made")
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    max_tokens: int | None = Field(default=None, ge=1, le=1000)
    max_completion_tokens: int | None = Field(default=None, ge=1, le=1000)
    seed: int | None = Field(default=None, ge=0, le=2**31 - 1)
    strategy: Strategy | None = None  # rag_server extensions
    k: int = Field(default=DEFAULT_ASK_K, ge=1, le=20)

    def question(self) -> str:
        for message in reversed(self.messages):
            if message.role == "user" and message.text().strip():
                text = message.text().strip()
                if len(text) > MAX_QUESTION_CHARS:
                    raise ValueError(f"the last user message exceeds {MAX_QUESTION_CHARS} characters")
                return text
        raise ValueError("the conversation holds no user message with text")
