"""Prometheus metrics: requests, latency per endpoint and per pipeline stage, errors.

Each app has its own registry (tests create many apps). Under gunicorn every worker process
exports its own series; run one worker with several threads (the default of ``make run``) or
aggregate in Prometheus by instance.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest

_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


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
            series = self._request_series[key] = (
                self.requests.labels(endpoint, method, str(status)),
                self.latency.labels(endpoint),
            )
        series[0].inc()
        series[1].observe(seconds)

    def observe_stages(self, timings_ms: dict[str, float]) -> None:
        for stage, ms in timings_ms.items():
            series = self._stage_series.get(stage)
            if series is None:
                series = self._stage_series[stage] = self.stages.labels(stage)
            series.observe(ms / 1000)

    def export(self) -> Response:
        return Response(generate_latest(self.registry), mimetype=CONTENT_TYPE_LATEST)


def metrics_of(app: Flask) -> Metrics:
    found: Metrics = app.extensions["rag_metrics"]
    return found
