"""The OpenAPI 3.1 document of the API, built from the same pydantic models that validate
requests (so the two cannot drift), and a small self-contained page that renders it."""

from __future__ import annotations

from typing import Any

from .. import __version__
from ..retrieval import STRATEGIES
from .schemas import AskRequest, ChatRequest, SearchRequest

_ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
        }
    },
}
_COMPONENTS_SCORE = {
    "type": "object",
    "properties": {"rank": {"type": ["integer", "null"]}, "score": {"type": ["number", "null"]}},
}
_HIT = {
    "type": "object",
    "required": ["rank", "score", "passage_id", "doc_id", "title", "language", "citation", "text"],
    "properties": {
        "rank": {"type": "integer", "minimum": 1},
        "score": {"type": "number"},
        "passage_id": {"type": "string"},
        "doc_id": {"type": "string"},
        "title": {"type": "string"},
        "source": {"type": "string"},
        "article": {"type": ["string", "null"]},
        "provision": {"type": ["string", "null"]},
        "citation": {"type": "string"},
        "language": {"type": "string"},
        "doc_type": {"type": "string"},
        "section": {"type": "string"},
        "text": {"type": "string"},
        # /v1 needs an API key (bearer) when the server sets RAG_API_KEYS; without it, none.
        "security": [{"bearer": []}, {}],
        "components": {"type": "object", "additionalProperties": _COMPONENTS_SCORE},
    },
}
_CITATION = {
    "type": "object",
    "required": ["number", "rank", "passage_id", "title", "citation", "language", "text"],
    "properties": {
        "number": {"type": "integer", "minimum": 1, "description": "[n] in the prompt and the answer"},
        "rank": {"type": "integer", "description": "the same as number (former name)"},
        "passage_id": {"type": "string"},
        "title": {"type": "string"},
        "source": {"type": "string"},
        "article": {"type": ["string", "null"]},
        "provision": {"type": ["string", "null"]},
        "citation": {"type": "string"},
        "language": {"type": "string"},
        "score": {"type": "number"},
        "text": {"type": "string", "description": "the passage's whole text"},
        "sentences": {
            "type": "array",
            "description": "offsets into text of the passage's sentences that the prompt holds",
            "items": {
                "type": "object",
                "required": ["start", "end"],
                "properties": {"start": {"type": "integer", "minimum": 0}, "end": {"type": "integer", "minimum": 0}},
            },
        },
    },
}
_SOURCE = {
    "type": ["object", "null"],
    "description": "the context sentence the answer came from: its citation number and offsets in that passage",
    "required": ["number", "passage_id", "start", "end", "sentence"],
    "properties": {
        "number": {"type": "integer", "minimum": 1},
        "passage_id": {"type": "string"},
        "start": {"type": "integer", "minimum": 0},
        "end": {"type": "integer", "minimum": 0},
        "sentence": {"type": "string"},
    },
}
_TIMINGS = {"type": "object", "additionalProperties": {"type": "number"}}


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": schema}}}


def _errors(*codes: int) -> dict[str, Any]:
    reasons = {
        400: "Invalid request",
        401: "Missing or wrong bearer token (API key, admin or metrics token)",
        404: "Not found",
        405: "Method not allowed",
        413: "Body too large",
        415: "Not JSON",
        503: "No index loaded",
    }
    return {str(c): {"description": reasons[c], **_json({"$ref": "#/components/schemas/Error"})} for c in codes}


def openapi_document() -> dict[str, Any]:
    search = SearchRequest.model_json_schema(ref_template="#/components/schemas/{model}")
    ask = AskRequest.model_json_schema(ref_template="#/components/schemas/{model}")
    chat = ChatRequest.model_json_schema(ref_template="#/components/schemas/{model}")
    defs = {**search.pop("$defs", {}), **ask.pop("$defs", {}), **chat.pop("$defs", {})}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "rag_server",
            "version": __version__,
            "description": (
                "Retrieval-augmented answers about the LGPD and AI infrastructure, with citations. "
                "Request types are strict on every endpoint: each value must have the JSON type given "
                "here (no string is read as a number, no boolean as a number, no number as a boolean; "
                "an integer is a valid number)."
            ),
        },
        "paths": {
            "/v1/search": {
                "post": {
                    "summary": "Rank passages for a query",
                    "requestBody": {"required": True, **_json({"$ref": "#/components/schemas/SearchRequest"})},
                    "responses": {
                        "200": {
                            "description": "Ranked hits",
                            **_json(
                                {
                                    "type": "object",
                                    "required": ["build_id", "strategy", "hits", "timings_ms"],
                                    "properties": {
                                        "build_id": {"type": "string"},
                                        "strategy": {"type": "string", "enum": list(STRATEGIES)},
                                        "hits": {"type": "array", "items": _HIT},
                                        "timings_ms": _TIMINGS,
                                    },
                                }
                            ),
                        },
                        **_errors(400, 401, 413, 415, 503),
                    },
                }
            },
            "/v1/ask": {
                "post": {
                    "summary": "Answer a question with cited evidence",
                    "requestBody": {"required": True, **_json({"$ref": "#/components/schemas/AskRequest"})},
                    "responses": {
                        "200": {
                            "description": "Answer, citations and the exact prompt",
                            **_json(
                                {
                                    "type": "object",
                                    "required": ["answer", "supported", "citations", "prompt", "strategy", "build_id"],
                                    "properties": {
                                        "answer": {"type": "string"},
                                        "supported": {"type": "boolean"},
                                        "message": {"type": ["string", "null"]},
                                        "citations": {"type": "array", "items": _CITATION},
                                        "source": _SOURCE,
                                        "quoted": {
                                            "type": "boolean",
                                            "description": "the answer quotes its source sentence instead of the "
                                            "generator's text (no generator, or its text did not follow the sentence)",
                                        },
                                        "prompt": {"type": "string"},
                                        "strategy": {"type": "string"},
                                        "build_id": {"type": "string"},
                                        "generator_id": {"type": ["string", "null"]},
                                        "timings_ms": _TIMINGS,
                                        "question_truncated": {
                                            "type": "boolean",
                                            "description": "the prompt holds only the question's start "
                                            "(at a word boundary): a question of any accepted length "
                                            "is answered",
                                        },
                                    },
                                }
                            ),
                        },
                        **_errors(400, 401, 413, 415, 503),
                    },
                }
            },
            "/v1/chat/completions": {
                "post": {
                    "summary": "OpenAI-compatible chat: the last user message is the question",
                    "requestBody": {"required": True, **_json({"$ref": "#/components/schemas/ChatRequest"})},
                    "responses": {
                        "200": {
                            "description": "A chat.completion object (or an SSE stream when stream is true)",
                            "content": {
                                "application/json": {
                                    "schema": {
                                        "type": "object",
                                        "required": ["id", "choices"],
                                        "properties": {"source": _SOURCE},
                                    }
                                },
                                # Server-sent events: each event's data is a JSON chat.completion.chunk,
                                # the last one the literal [DONE].
                                "text/event-stream": {
                                    "schema": {
                                        "type": "object",
                                        "required": ["data"],
                                        "properties": {"data": {"type": "string"}},
                                    }
                                },
                            },
                        },
                        **_errors(400, 401, 413, 415, 503),
                    },
                }
            },
            "/v1/strategies": {
                "get": {
                    "summary": "Retrieval strategies",
                    "responses": {"200": {"description": "Strategies", **_json({"type": "object"})}, **_errors(401)},
                }
            },
            "/v1/index": {
                "get": {
                    "summary": "The served build's manifest",
                    "responses": {
                        "200": {"description": "Manifest", **_json({"type": "object"})},
                        **_errors(401, 503),
                    },
                }
            },
            "/v1/admin/reload": {
                "post": {
                    "summary": "Switch to the newest complete build (bearer token)",
                    "security": [{"bearer": []}],
                    "responses": {
                        "200": {"description": "Reloaded", **_json({"type": "object"})},
                        **_errors(401, 404, 503),
                    },
                }
            },
            "/healthz": {
                "get": {
                    "summary": "Liveness",
                    "security": [],
                    "responses": {"200": {"description": "Alive", **_json({"type": "object"})}},
                }
            },
            "/readyz": {
                "get": {
                    "summary": "Readiness",
                    "security": [],
                    "responses": {
                        "200": {"description": "Ready", **_json({"type": "object"})},
                        "503": {"description": "Not ready", **_json({"type": "object"})},
                    },
                }
            },
            "/metrics": {
                "get": {
                    "summary": "Prometheus metrics (bearer RAG_METRICS_TOKEN when it is set)",
                    "security": [{"bearer": []}, {}],
                    "responses": {
                        "200": {
                            "description": "Text exposition format",
                            "content": {"text/plain": {"schema": {"type": "string"}}},
                        },
                        **_errors(401),
                    },
                }
            },
        },
        # /v1 needs an API key (bearer) when the server sets RAG_API_KEYS; without it, none.
        "security": [{"bearer": []}, {}],
        "components": {
            "schemas": {"SearchRequest": search, "AskRequest": ask, "ChatRequest": chat, "Error": _ERROR, **defs},
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
