"""Prometheus metrics: requests, latency per endpoint and per pipeline stage, errors.

Each app has its own registry (tests create many apps). Under gunicorn every worker process
exports its own series; run one worker with several threads (the default of ``make run``) or
aggregate in Prometheus by instance.

Every label takes values from a fixed set, whatever a client sends: a method outside the HTTP
methods, a status outside the known codes, an error code the server does not define and a stage
outside :data:`STAGES` are all counted as ``other`` (each new label value would be a new series
kept for the life of the process). Endpoints are route patterns, never raw paths.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from werkzeug.http import HTTP_STATUS_CODES

_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)

OTHER = "other"
"""The one label value that stands for every value outside a label's known set."""
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"})
STATUSES = frozenset(str(code) for code in HTTP_STATUS_CODES)
STAGES = frozenset({"retrieve", "evidence", "prompt", "generate"})
"""Pipeline stages timed in ``timings_ms``; a stage added to the pipeline must be added here."""


def bounded(value: str, known: frozenset[str]) -> str:
    return value if value in known else OTHER


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "rag_requests_total", "HTTP requests", ["endpoint", "method", "status"], registry=self.registry
        )
        self.latency = Histogram(
            "rag_request_seconds", "HTTP request latency", ["endpoint"], buckets=_BUCKETS, registry=self.registry
        )
        self.stages = Histogram(
            "rag_stage_seconds", "Pipeline stage latency", ["stage"], buckets=_BUCKETS, registry=self.registry
        )
        self.errors = Counter("rag_errors_total", "Error responses", ["code"], registry=self.registry)
        # labels() validates and locks on every call; the children of a label set never change,
        # so each is looked up once. Keys are route patterns and stage names: a bounded set.
        self._request_series: dict[tuple[str, str, int], tuple[Any, Any]] = {}
        self._stage_series: dict[str, Any] = {}

    def observe_request(self, endpoint: str, method: str, status: int, seconds: float) -> None:
        key = (endpoint, method, status)
        series = self._request_series.get(key)
        if series is None:
            # Only label sets made of known values are cached, so the cache stays bounded too.
            series = (
                self.requests.labels(endpoint, bounded(method, METHODS), bounded(str(status), STATUSES)),
                self.latency.labels(endpoint),
            )
            if method in METHODS:
                self._request_series[key] = series
        series[0].inc()
        series[1].observe(seconds)

    def observe_stages(self, timings_ms: dict[str, float]) -> None:
        for stage, ms in timings_ms.items():
            name = bounded(stage, STAGES)
            series = self._stage_series.get(name)
            if series is None:
                series = self._stage_series[name] = self.stages.labels(name)
            series.observe(ms / 1000)

    def observe_error(self, code: str, known: frozenset[str]) -> None:
        self.errors.labels(bounded(code, known)).inc()

    def export(self) -> Response:
        return Response(generate_latest(self.registry), mimetype=CONTENT_TYPE_LATEST)


def metrics_of(app: Flask) -> Metrics:
    found: Metrics = app.extensions["rag_metrics"]
    return found
