"""The OpenAPI 3.1 document of the API, generated from the pydantic models that validate the
requests (``schemas``) and build the responses (``responses``), so that the document and the
behaviour cannot drift; and a small self-contained page that renders it."""

from __future__ import annotations

from typing import Any, NamedTuple

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from .. import __version__
from . import responses as out
from .schemas import AskRequest, ChatRequest, SearchRequest

DESCRIPTION = (
    "Retrieval-augmented answers about the LGPD and AI infrastructure, with citations. "
    "Request types are strict on every endpoint: each value must have the JSON type given "
    "here (no string is read as a number, no boolean as a number, no number as a boolean; "
    "an integer is a valid number)."
)
ERRORS = {
    400: "Invalid request",
    401: "Missing or wrong bearer token (API key, admin or metrics token)",
    404: "Not found",
    405: "Method not allowed",
    413: "Body too large",
    415: "Not JSON",
    503: "No index loaded, or the search backend (Milvus) is unreachable",
}
BODY_ERRORS = (400, 401, 413, 415, 503)
"""What an endpoint that reads a JSON body may answer besides its success."""

Security = list[dict[str, list[str]]]
OPEN: Security = []  # health probes
BEARER: Security = [{"bearer": []}]
BEARER_IF_SET: Security = [{"bearer": []}, {}]
"""A bearer token when the server sets one (RAG_API_KEYS, RAG_METRICS_TOKEN), else none."""


class Operation(NamedTuple):
    """One row of the paths table; ``responses`` maps a status to (description, body model)."""

    method: str
    path: str
    summary: str
    responses: dict[int, tuple[str, type[BaseModel]]]
    request: type[BaseModel] | None = None
    errors: tuple[int, ...] = ()
    security: Security | None = None  # None: the document's default, BEARER_IF_SET
    streams: bool = False  # the success may be server-sent events instead (stream: true)


OPERATIONS = (
    Operation(
        "post",
        "/v1/search",
        "Rank passages for a query",
        {200: ("Ranked hits", out.SearchResponse)},
        SearchRequest,
        BODY_ERRORS,
    ),
    Operation(
        "post",
        "/v1/ask",
        "Answer a question with cited evidence",
        {200: ("Answer, citations and the exact prompt", out.AskResponse)},
        AskRequest,
        BODY_ERRORS,
    ),
    Operation(
        "post",
        "/v1/chat/completions",
        "OpenAI-compatible chat: the last user message is the question",
        {200: ("A chat.completion object (or an SSE stream when stream is true)", out.ChatCompletion)},
        ChatRequest,
        BODY_ERRORS,
        streams=True,
    ),
    Operation(
        "get", "/v1/strategies", "Retrieval strategies", {200: ("Strategies", out.StrategiesResponse)}, errors=(401,)
    ),
    Operation(
        "get", "/v1/index", "The served build's manifest", {200: ("Manifest", out.IndexManifest)}, errors=(401, 503)
    ),
    Operation(
        "post",
        "/v1/admin/reload",
        "Switch to the newest complete build (bearer token)",
        {200: ("Reloaded", out.ReloadResponse)},
        errors=(401, 404, 503),
        security=BEARER,
    ),
    Operation("get", "/healthz", "Liveness", {200: ("Alive", out.Healthy)}, security=OPEN),
    Operation(
        "get",
        "/readyz",
        "Readiness",
        {200: ("Ready", out.Ready), 503: ("Not ready", out.NotReadyBody)},
        security=OPEN,
    ),
)
DOCUMENTED_ONLY: tuple[type[BaseModel], ...] = (out.ChatCompletionChunk,)
"""Models with no path of their own: the data of each event of a streamed chat completion."""


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def _json(model: type[BaseModel]) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": _ref(model)}}}


def _operation(op: Operation) -> dict[str, Any]:
    responses = {str(status): {"description": text, **_json(model)} for status, (text, model) in op.responses.items()}
    if op.streams:
        # Server-sent events: each event's data is a JSON ChatCompletionChunk, the last one the
        # literal [DONE].
        responses["200"]["content"]["text/event-stream"] = {
            "schema": {"type": "object", "required": ["data"], "properties": {"data": {"type": "string"}}}
        }
    for status in op.errors:
        responses[str(status)] = {"description": ERRORS[status], **_json(out.ErrorResponse)}
    found: dict[str, Any] = {"summary": op.summary}
    if op.security is not None:
        found["security"] = op.security
    if op.request is not None:
        found["requestBody"] = {"required": True, **_json(op.request)}
    found["responses"] = responses
    return found


def _metrics() -> dict[str, Any]:
    return {
        "summary": "Prometheus metrics (bearer RAG_METRICS_TOKEN when it is set)",
        "security": BEARER_IF_SET,
        "responses": {
            "200": {"description": "Text exposition format", "content": {"text/plain": {"schema": {"type": "string"}}}},
            "401": {"description": ERRORS[401], **_json(out.ErrorResponse)},
        },
    }


def component_models() -> list[type[BaseModel]]:
    """Every model the document names, each once, in the order of the paths table."""
    found: list[type[BaseModel]] = []
    for op in OPERATIONS:
        found += [m for m in (op.request, *(model for _, model in op.responses.values())) if m is not None]
    found += [out.ErrorResponse, *DOCUMENTED_ONLY]
    return list(dict.fromkeys(found))


def openapi_document() -> dict[str, Any]:
    _, schemas = models_json_schema(
        [(model, "validation") for model in component_models()], ref_template="#/components/schemas/{model}"
    )
    paths: dict[str, dict[str, Any]] = {}
    for op in OPERATIONS:
        paths.setdefault(op.path, {})[op.method] = _operation(op)
    paths["/metrics"] = {"get": _metrics()}
    return {
        "openapi": "3.1.0",
        "info": {"title": "rag_server", "version": __version__, "description": DESCRIPTION},
        "paths": paths,
        "security": BEARER_IF_SET,
        "components": {
            "schemas": schemas.get("$defs", {}),
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }


DOCS_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>rag_server API</title>
<style>body{font:15px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}
code,pre{background:#f4f4f4;padding:.1rem .3rem}h2{border-bottom:1px solid #ddd}.m{font-weight:bold;color:#06c}</style>
</head><body><h1>rag_server API</h1>
<p>The machine-readable document is at <a href="/openapi.json">/openapi.json</a>.</p>
<div id="paths">Loading…</div>
<script>
fetch('/openapi.json').then(r => r.json()).then(doc => {
  const root = document.getElementById('paths'); root.textContent = '';
  for (const [path, ops] of Object.entries(doc.paths)) for (const [method, op] of Object.entries(ops)) {
    const h = document.createElement('h2'); h.innerHTML = '<span class="m"></span> <code></code>';
    h.querySelector('.m').textContent = method.toUpperCase(); h.querySelector('code').textContent = path;
    const p = document.createElement('p'); p.textContent = op.summary || '';
    const codes = document.createElement('p'); codes.textContent = 'Responses: ' + Object.keys(op.responses).join(', ');
    root.append(h, p, codes);
    if (op.requestBody) { const pre = document.createElement('pre');
      const ref = op.requestBody.content['application/json'].schema.$ref.split('/').pop();
      pre.textContent = JSON.stringify(doc.components.schemas[ref], null, 2); root.append(pre); }
  }
});
</script></body></html>
"""
