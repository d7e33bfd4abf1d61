"""``POST /v1/chat/completions``: the OpenAI chat API over the same pipeline.

The last user message is the question; the answer is the assistant message, followed by its
numbered references; the citations also travel in an extra ``citations`` field (and in the
first chunk of a stream), so OpenAI clients work unchanged and richer clients get provenance.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any, Literal

from flask import Blueprint, Response, current_app, stream_with_context
from flask.typing import ResponseReturnValue

from ..pipeline import DEFAULT_MAX_NEW_CHARS, AskResult
from . import responses as out
from .errors import ApiError, json_body
from .logs import note_query
from .metrics import metrics_of
from .schemas import ChatRequest
from .views import pipeline

chat = Blueprint("chat", __name__, url_prefix="/v1")
MODEL_NAME = "rag_server"


def _content(result: AskResult) -> str:
    answer = result.cited_answer if result.supported else (result.message or "")  # "… [1] … [3]"
    refs = "\n".join(f"[{c.number}] {c.citation}" for c in result.citations)
    return f"{answer}\n\nReferences:\n{refs}" if refs else answer


@chat.post("/chat/completions")
def completions() -> ResponseReturnValue:
    body = ChatRequest.model_validate(json_body())
    try:
        question = body.question()
    except ValueError as exc:
        raise ApiError(str(exc)) from None
    note_query(question)
    result = pipeline().ask(
        question,
        body.strategy,
        body.k,
        None,
        body.max_completion_tokens or body.max_tokens or DEFAULT_MAX_NEW_CHARS,
        body.temperature or 0.0,
        body.seed,
    )
    metrics_of(current_app).observe_stages(result.timings_ms)
    completion_id = f"chatcmpl-{uuid.uuid4().hex}"
    created = int(time.time())
    content = _content(result)
    provenance: dict[str, Any] = {
        "citations": [out.Citation.of(c) for c in result.citations],
        "source": out.Source.of(result.source),
        "sources": [out.Source.each(s) for s in result.sources],
        "supported": result.supported,
        "build_id": result.build_id,
        "question_truncated": result.question_truncated,
    }
    if body.stream:
        return Response(
            stream_with_context(_stream(completion_id, created, content, provenance)),
            mimetype="text/event-stream",
            headers={"Cache-Control": "no-cache"},
        )
    completion = out.ChatCompletion(
        id=completion_id,
        object="chat.completion",
        created=created,
        model=MODEL_NAME,
        choices=[
            out.ChatChoice(
                index=0, message=out.AssistantMessage(role="assistant", content=content), finish_reason="stop"
            )
        ],
        usage=out.Usage(
            prompt_tokens=len(result.prompt),
            completion_tokens=len(content),
            total_tokens=len(result.prompt) + len(content),
        ),
        **provenance,
    )
    return completion.dump()


def _stream(completion_id: str, created: int, content: str, provenance: dict[str, Any]) -> Iterator[str]:
    def chunk(delta: out.Delta, finish: Literal["stop"] | None = None, **more: Any) -> str:
        event = out.ChatCompletionChunk(
            id=completion_id,
            object="chat.completion.chunk",
            created=created,
            model=MODEL_NAME,
            choices=[out.ChunkChoice(index=0, delta=delta, finish_reason=finish)],
            **more,
        )
        return f"data: {json.dumps(event.dump(), ensure_ascii=False)}\n\n"

    yield chunk(out.Delta(role="assistant", content=""), **provenance)
    for start in range(0, len(content), 64):  # the answer is complete; stream it in pieces
        yield chunk(out.Delta(content=content[start : start + 64]))
    yield chunk(out.Delta(), "stop")
    yield "data: [DONE]\n\n"
