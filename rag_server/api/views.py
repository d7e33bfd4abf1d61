"""HTTP views: parse the request, make one pipeline call, encode the result. Nothing else."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, g, jsonify
from flask.typing import ResponseReturnValue

from ..pipeline import STRATEGY_DESCRIPTIONS, AskResult, RagPipeline
from ..retrieval import DEFAULT_STRATEGY
from .errors import NotReady, json_body, require_admin
from .logs import query_digest
from .metrics import metrics_of
from .openapi import DOCS_PAGE, openapi_document
from .schemas import AskRequest, SearchRequest

v1 = Blueprint("v1", __name__, url_prefix="/v1")
health = Blueprint("health", __name__)


def pipeline() -> RagPipeline:
    found: RagPipeline | None = current_app.extensions.get("rag_pipeline")
    if found is None:
        raise NotReady(current_app.extensions.get("rag_load_error") or "no index build is loaded")
    return found


def source_dict(result: AskResult) -> dict[str, Any] | None:
    """The answer's source sentence as the API shows it (``/v1/ask`` and the chat endpoint)."""
    found = result.source
    if found is None:
        return None
    return {
        "number": found.number,
        "passage_id": found.passage_id,
        "start": found.start,
        "end": found.end,
        "sentence": found.text,
    }


def _note_query(text: str) -> None:
    g.log_fields = {"query_hmac": query_digest(text), "query_chars": len(text)}


@v1.post("/search")
def search() -> ResponseReturnValue:
    body = SearchRequest.model_validate(json_body())
    _note_query(body.query)
    result = pipeline().search(body.query, body.strategy, body.k, body.filters.as_dict() if body.filters else None)
    metrics_of(current_app).observe_stages(result.timings_ms)
    return jsonify(
        build_id=result.build_id,
        strategy=result.strategy,
        hits=[h.to_dict() for h in result.hits],
        timings_ms=result.timings_ms,
    )


@v1.post("/ask")
def ask() -> ResponseReturnValue:
    body = AskRequest.model_validate(json_body())
    _note_query(body.question)
    r = pipeline().ask(
        body.question, body.strategy, body.k, body.filter_dict(), body.max_new_chars, body.temperature, body.seed
    )
    metrics_of(current_app).observe_stages(r.timings_ms)
    payload: dict[str, Any] = {
        "answer": r.answer,
        "supported": r.supported,
        "message": r.message,
        "citations": [
            {
                "number": c.number,
                "rank": c.number,  # the same number under its former name, kept for existing clients
                "passage_id": c.passage_id,
                "title": c.title,
                "source": c.source,
                "article": c.article,
                "provision": c.provision,
                "citation": c.citation,
                "language": c.language,
                "score": c.score,
                "text": c.text,
                "sentences": [{"start": span.start, "end": span.end} for span in c.sentences],
            }
            for c in r.citations
        ],
        "source": source_dict(r),
        "prompt": r.prompt,
        "strategy": r.strategy,
        "build_id": r.build_id,
        "generator_id": r.generator_id,
        "timings_ms": r.timings_ms,
    }
    return jsonify(payload)


@v1.get("/strategies")
def strategies() -> ResponseReturnValue:
    return jsonify(
        default=DEFAULT_STRATEGY, strategies=[{"name": n, "description": d} for n, d in STRATEGY_DESCRIPTIONS.items()]
    )


@v1.get("/index")
def index_manifest() -> ResponseReturnValue:
    manifest = dict(pipeline().build.manifest)
    manifest.pop("corpus_dirs", None)  # server paths are not the client's business
    return jsonify(manifest)


@health.get("/openapi.json")
def openapi_json() -> ResponseReturnValue:
    return jsonify(openapi_document())


@health.get("/docs")
def docs_page() -> ResponseReturnValue:
    return DOCS_PAGE, 200, {"Content-Type": "text/html; charset=utf-8"}


@health.get("/metrics")
def metrics() -> ResponseReturnValue:
    return metrics_of(current_app).export()


@health.get("/healthz")
def healthz() -> ResponseReturnValue:
    return jsonify(status="ok")


@health.get("/readyz")
def readyz() -> ResponseReturnValue:
    found: RagPipeline | None = current_app.extensions.get("rag_pipeline")
    if found is None:
        error = current_app.extensions.get("rag_load_error") or "no index build is loaded"
        return jsonify(status="not_ready", reason=error), 503
    warmed = current_app.extensions.get("rag_warmed")
    if warmed is not None and not warmed.is_set():
        return jsonify(status="not_ready", reason="loading the embedding model (warm-up search)"), 503
    return jsonify(
        status="ready",
        build_id=found.build.build_id,
        generator=getattr(found.generator, "checkpoint_id", None),
        warnings=found.warnings(),
    )


@v1.post("/admin/reload")
def admin_reload() -> ResponseReturnValue:
    """Switch to the newest complete build; in-flight requests finish on the old one."""
    require_admin()
    found = pipeline()
    previous = found.build.build_id
    current = found.reload()
    return jsonify(previous_build_id=previous, build_id=current, changed=previous != current)
