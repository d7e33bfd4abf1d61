"""The Flask application: ``create_app(test_config=None)``.

Configuration comes from the ``RAG_*`` environment variables (:mod:`rag_server.settings`,
documented in the README) unless ``test_config`` overrides them. The index, the embedding
model and the generator are loaded once per process, when the app is created.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from flask import Flask, Response, g, request

from ..backends import registry_for
from ..errors import RagServerError
from ..pipeline import RagPipeline
from ..settings import Settings
from ..web import web
from . import auth, errors, logs
from .chat import chat
from .json_provider import JsonProvider
from .metrics import Metrics
from .views import health, v1

if TYPE_CHECKING:
    from ..milvus import MilvusSettings


def load_settings(test_config: dict[str, Any] | None) -> dict[str, Any]:
    """The app's configuration: the ``RAG_*`` settings (:mod:`rag_server.settings`), read now,
    with ``test_config`` over them."""
    return {**Settings.from_env().flask_config(), **(test_config or {})}


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    app = Flask(__name__)
    app.config.update(load_settings(test_config))
    # "/web//etc/passwd" is a 404, not a redirect to a URL built from the client's Host header.
    app.url_map.merge_slashes = False
    app.json = JsonProvider(app)  # orjson; keys keep their order, text is UTF-8, not \u escapes
    log = logs.configure(app.config["LOG_LEVEL"])
    logs.init_app(app)

    try:
        import torch

        torch.set_num_threads(int(app.config["TORCH_THREADS"]))
        pipeline = app.config.get("PIPELINE")
        if pipeline is None:
            pipeline = _make_pipeline(app.config)
            # The embedding model loads on the first dense search: start that now, beside the
            # server rather than before it (gunicorn times out a worker that boots too long).
            # A question arriving meanwhile waits for the same load, not for a second one.
            # /readyz answers 503 until it is done, so a balancer sends no traffic meanwhile.
            warmed = app.extensions["rag_warmed"] = threading.Event()
            threading.Thread(target=_warm_up, args=(pipeline, warmed), name="rag-warm-up", daemon=True).start()
        app.extensions["rag_pipeline"] = pipeline
        log.info("index loaded", extra={"fields": {"build_id": pipeline.build.build_id}})
    except RagServerError as exc:
        # Serve /healthz and a 503 /readyz rather than crash: the operator sees why.
        app.extensions["rag_pipeline"] = None
        app.extensions["rag_load_error"] = errors.public_reason(exc)  # for clients: no server paths
        log.error("index not loaded", extra={"fields": {"error": str(exc)}})

    app.extensions["rag_make_pipeline"] = lambda: _make_pipeline(app.config)  # a reload of a server not ready
    app.extensions["rag_reload_lock"] = threading.Lock()
    # Parsed before anything is served: a key setting that cannot be read stops the start.
    app.extensions["rag_api_keys"] = auth.parse_api_keys(str(app.config.get("API_KEYS") or ""))
    app.extensions["rag_metrics"] = Metrics()
    errors.register(app)
    app.register_blueprint(v1)
    app.register_blueprint(health)
    app.register_blueprint(chat)
    app.register_blueprint(web)
    _rate_limit(app, health)

    access_log = logging.getLogger("rag_server.access")
    metrics: Metrics = app.extensions["rag_metrics"]
    error_codes = errors.known_error_codes()

    # These two hooks run on every request, right after the query encoder has flushed the CPU
    # caches: they are kept short (docs/BENCHMARKS.md, "HTTP server").
    @app.before_request
    def _start() -> None:
        g.request_id = logs.request_id(request.headers.get("X-Request-ID"))
        g.started = time.perf_counter()
        g.log_fields = {}
        if request.path.startswith("/v1/"):
            errors.require_api_key()

    @app.after_request
    def _finish(response: Response) -> Response:
        request_id = g.get("request_id", "")
        response.headers["X-Request-ID"] = request_id
        if "Location" in response.headers:  # any redirect stays on this server, whatever Host says
            response.headers["Location"] = relative_location(response.headers["Location"])
        seconds = time.perf_counter() - g.get("started", time.perf_counter())
        status = response.status_code
        # Label by route pattern, not raw path: unknown paths must not create new series.
        rule = request.url_rule
        metrics.observe_request(rule.rule if rule is not None else "unmatched", request.method, status, seconds)
        if status >= 400 and response.is_json:
            body = response.get_json(silent=True)
            error = body.get("error") if isinstance(body, dict) else None
            code = error.get("code") if isinstance(error, dict) else None
            metrics.observe_error(code if isinstance(code, str) else str(status), error_codes)
        if access_log.isEnabledFor(logging.INFO):
            fields = {
                "request_id": request_id,
                "method": request.method,
                "path": request.path,
                "status": status,
                "duration_ms": round(seconds * 1000, 2),
                **g.get("log_fields", {}),
            }
            access_log.info("request", extra={"fields": fields})
        return response

    return app


def relative_location(location: str) -> str:
    """``location`` without scheme and host (Werkzeug builds those from the request's Host
    header), and with one leading slash, so that it can never name another site."""
    parts = urlsplit(location)
    if not (parts.scheme or parts.netloc or location.startswith("/")):
        return location  # already relative to the current path
    return urlunsplit(("", "", "/" + parts.path.lstrip("/"), parts.query, parts.fragment))


def _rate_limit(app: Flask, exempt: Any) -> None:
    """Optional per-client-address limit (Flask-Limiter, in-memory, so per worker process): one
    budget per address shared by every route (an application limit; a default limit would give
    each route its own). Health, readiness and metrics stay exempt for probes; a 429 goes
    through the JSON HTTPException handler in errors.py like any other HTTP error and carries
    Retry-After (and the X-RateLimit-* headers on every limited response)."""
    limit = str(app.config.get("RATE_LIMIT") or "").strip()
    if not limit:
        return
    from flask_limiter import Limiter
    from flask_limiter.util import get_remote_address

    limiter = Limiter(
        get_remote_address, app=app, application_limits=[limit], storage_uri="memory://", headers_enabled=True
    )
    limiter.exempt(exempt)
    app.extensions["rag_limiter"] = limiter


def _warm_up(pipeline: RagPipeline, done: threading.Event) -> None:
    try:
        pipeline.warm_up()
    finally:
        done.set()


def _make_pipeline(config: dict[str, Any]) -> RagPipeline:
    from ..generator import load_generator

    milvus = _milvus_settings(config)
    if milvus is not None:
        from ..milvus import MilvusSource

        MilvusSource(milvus).target()  # Milvus answers and names a build: checked before the generator loads
    generator = load_generator(config["GENERATOR_CHECKPOINT"])
    return RagPipeline(
        config["INDEX_DIR"],
        encoder=config.get("ENCODER"),  # tests give a fake one; None: each build's own model
        generator=generator,
        support_threshold=config["SUPPORT_THRESHOLD"],
        serving=True,
        threads=int(config["TORCH_THREADS"]),  # the encoder sets the same count when its model loads
        registry=registry_for(config["BACKEND"]),
        milvus=milvus,
    )


def _milvus_settings(config: dict[str, Any]) -> MilvusSettings | None:
    """Where the Milvus backend is, when it is the one configured (tests may give ``MILVUS``,
    settings with their own alias and timeouts, instead of the URI)."""
    if config["BACKEND"] != "milvus":
        return None
    from ..milvus import MilvusSettings

    given: MilvusSettings | None = config.get("MILVUS")
    return given or MilvusSettings(uri=str(config["MILVUS_URI"]), token=str(config["MILVUS_TOKEN"]))
