"""HTTP views: parse the request, make one pipeline call, encode the result. Nothing else."""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime
from typing import cast

from flask import Blueprint, Flask, current_app, jsonify
from flask.typing import ResponseReturnValue

from ..backends import registry_for
from ..errors import BackendUnavailableError, RagServerError
from ..pipeline import RagPipeline
from ..retrieval import LOCAL
from . import responses as out
from .errors import NotReady, ReloadRefused, json_body, public_reason, require_admin, require_metrics_token
from .logs import note_query
from .metrics import metrics_of
from .openapi import DOCS_PAGE, openapi_document
from .schemas import AskRequest, SearchRequest, Strategy

log = logging.getLogger("rag_server.api")
v1 = Blueprint("v1", __name__, url_prefix="/v1")
health = Blueprint("health", __name__)


def pipeline() -> RagPipeline:
    found: RagPipeline | None = current_app.extensions.get("rag_pipeline") or _recover()
    if found is None:
        raise NotReady(current_app.extensions.get("rag_load_error") or "no index build is loaded")
    return found


_RECOVER_EVERY_S = 2.0


def _recover() -> RagPipeline | None:
    """A Milvus-backed server that started while Milvus was unreachable makes its pipeline once
    Milvus answers (tried at most every two seconds, by one request at a time): replicas come
    up by themselves, with no reload call. A local server waits for a reload."""
    app = current_app
    if app.config["BACKEND"] == "local":
        return None
    lock: threading.Lock = app.extensions["rag_reload_lock"]
    now = time.monotonic()
    if now - app.extensions.get("rag_recover_at", float("-inf")) < _RECOVER_EVERY_S or not lock.acquire(blocking=False):
        return None
    try:
        app.extensions["rag_recover_at"] = now
        fresh: RagPipeline = app.extensions["rag_make_pipeline"]()
    except RagServerError as exc:
        app.extensions["rag_load_error"] = public_reason(exc)
        return None
    finally:
        lock.release()
    _serve(app, fresh)
    return fresh


def _serve(app: Flask, fresh: RagPipeline) -> None:
    """Make ``fresh`` the app's pipeline, on a server that had none."""
    app.extensions["rag_pipeline"] = fresh
    app.extensions.pop("rag_load_error", None)
    app.extensions.setdefault("rag_warmed", threading.Event()).set()


@v1.post("/search")
def search() -> ResponseReturnValue:
    body = SearchRequest.model_validate(json_body())
    note_query(body.query)
    result = pipeline().search(body.query, body.strategy, body.k, body.filters.as_dict() if body.filters else None)
    metrics_of(current_app).observe_stages(result.timings_ms)
    response = out.SearchResponse(
        build_id=result.build_id,
        strategy=cast(Strategy, result.strategy),  # checked by the model
        hits=[out.Hit.of(h) for h in result.hits],
        timings_ms=result.timings_ms,
    )
    return jsonify(response.dump())


@v1.post("/ask")
def ask() -> ResponseReturnValue:
    body = AskRequest.model_validate(json_body())
    note_query(body.question)
    r = pipeline().ask(
        body.question, body.strategy, body.k, body.filter_dict(), body.max_new_chars, body.temperature, body.seed
    )
    metrics_of(current_app).observe_stages(r.timings_ms)
    response = out.AskResponse(
        answer=r.answer,
        supported=r.supported,
        message=r.message,
        citations=[out.Citation.of(c) for c in r.citations],
        source=out.Source.of(r.source),
        sources=[out.Source.each(s) for s in r.sources],
        quoted=r.quoted,
        prompt=r.prompt,
        strategy=cast(Strategy, r.strategy),
        build_id=r.build_id,
        generator_id=r.generator_id,
        timings_ms=r.timings_ms,
        question_truncated=r.question_truncated,
    )
    return jsonify(response.dump())


@v1.get("/strategies")
def strategies() -> ResponseReturnValue:
    """The backend's strategies, then those the API knows that it does not serve (Milvus has no
    ``keyword``): listed as not available rather than left out."""
    loaded: RagPipeline | None = current_app.extensions.get("rag_pipeline")
    # Listed even before an index loads.
    registry = loaded.registry if loaded is not None else registry_for(current_app.config["BACKEND"])
    listed = [
        out.StrategyInfo(name=cast(Strategy, s.name), description=s.description, available=True) for s in registry
    ]
    for s in LOCAL:  # the API's strategy names
        if s.name not in registry:
            note = f"{s.description} (not served by the {registry.backend} backend)"
            listed.append(out.StrategyInfo(name=cast(Strategy, s.name), description=note, available=False))
    response = out.StrategiesResponse(
        default=cast(Strategy, registry.default), backend=registry.backend, strategies=listed
    )
    return jsonify(response.dump())


@v1.get("/index")
def index_manifest() -> ResponseReturnValue:
    manifest = dict(pipeline().build.manifest)
    manifest.pop("corpus_dirs", None)  # server paths are not the client's business
    if isinstance(manifest.get("embedding"), dict):  # a model given as a path: its name only
        model = str(manifest["embedding"].get("model", ""))
        manifest["embedding"] = {**manifest["embedding"], "model": model.rstrip("/").rsplit("/", 1)[-1]}
    return jsonify(out.IndexManifest(manifest).model_dump())


@health.get("/openapi.json")
def openapi_json() -> ResponseReturnValue:
    return jsonify(openapi_document())


@health.get("/docs")
def docs_page() -> ResponseReturnValue:
    return DOCS_PAGE, 200, {"Content-Type": "text/html; charset=utf-8"}


@health.get("/metrics")
def metrics() -> ResponseReturnValue:
    require_metrics_token()
    return metrics_of(current_app).export()


@health.get("/healthz")
def healthz() -> ResponseReturnValue:
    return jsonify(out.Healthy(status="ok").dump())


@health.get("/readyz")
def readyz() -> ResponseReturnValue:
    found: RagPipeline | None = current_app.extensions.get("rag_pipeline") or _recover()
    if found is None:
        error = current_app.extensions.get("rag_load_error") or "no index build is loaded"
        last = current_app.extensions.get("rag_last_reload")
        backend = current_app.config["BACKEND"]
        return jsonify(
            out.NotReadyBody(status="not_ready", reason=error, backend=backend, last_reload=last).dump()
        ), 503
    try:
        found.check_backend()  # Milvus: the alias resolves now (bounded by its timeout)
    except BackendUnavailableError as exc:
        down = out.NotReadyBody(status="not_ready", reason=public_reason(exc), backend=found.backend)
        return jsonify(down.dump()), 503
    warmed = current_app.extensions.get("rag_warmed")
    if warmed is not None and not warmed.is_set():
        reason = "loading the embedding model (warm-up search)"
        loading = out.NotReadyBody(status="not_ready", reason=reason, backend=found.backend)
        return jsonify(loading.dump()), 503
    warnings = [*found.warnings(), *found.notes]
    last_reload: out.LastReload | None = current_app.extensions.get("rag_last_reload")
    if last_reload is not None and last_reload.status == "refused":
        warnings.append(f"the last reload was refused: {last_reload.reason}")
    ready = out.Ready(
        status="ready",
        build_id=found.build.build_id,
        backend=found.backend,
        generator=getattr(found.generator, "checkpoint_id", None),
        warnings=warnings,
        last_reload=last_reload,
    )
    return jsonify(ready.dump())


@v1.post("/admin/reload")
def admin_reload() -> ResponseReturnValue:
    """Switch to the build named in CURRENT; in-flight requests finish on the old one. A build
    that cannot be served is refused with the reason (here and on /readyz). A server that
    serves nothing (it started on a bad build) loads the newest servable build."""
    require_admin()
    app = current_app
    with app.extensions["rag_reload_lock"]:
        found: RagPipeline | None = app.extensions.get("rag_pipeline")
        previous = found.build.build_id if found is not None else None
        try:
            if found is None:
                fresh: RagPipeline = app.extensions["rag_make_pipeline"]()
                fresh.warm_up(strict=True)
                current = fresh.build.build_id
                _serve(app, fresh)
            else:
                current = found.reload()
        except Exception as exc:  # any failure of a reload leaves the served build in place
            reason = public_reason(exc)
            log.error("reload refused", extra={"fields": {"error": f"{type(exc).__name__}: {exc}"}})
            app.extensions["rag_last_reload"] = out.LastReload(status="refused", reason=reason, at=_now())
            serving = f"still serving build {previous}" if previous else "no build is served"
            raise ReloadRefused(f"reload refused: {reason}; {serving}") from None
        app.extensions["rag_last_reload"] = out.LastReload(status="ok", build_id=current, at=_now())
    return jsonify(out.ReloadResponse(previous_build_id=previous, build_id=current, changed=previous != current).dump())


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
