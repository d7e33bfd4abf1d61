"""RAG_RATE_LIMIT: off by default; when set, the request past the limit gets a JSON 429."""

from __future__ import annotations

from pathlib import Path

from rag_server.api import create_app
from rag_server.pipeline import RagPipeline


def _client(tmp_path: Path, encoder, **config):  # type: ignore[no-untyped-def]
    pipeline = RagPipeline(tmp_path / "indexes", encoder=encoder, support_threshold=0.0)
    return create_app({"PIPELINE": pipeline, "TESTING": True, **config}).test_client()


def test_61st_request_gets_a_json_429(built, tmp_path: Path, fake_encoder) -> None:  # type: ignore[no-untyped-def]
    client = _client(tmp_path, fake_encoder, RATE_LIMIT="60/minute")
    for _ in range(60):
        assert client.get("/v1/strategies").status_code == 200
    response = client.get("/v1/strategies")
    assert response.status_code == 429
    assert response.is_json
    error = response.get_json()["error"]
    assert set(error) == {"code", "message"} and error["code"] == "too_many_requests"
    assert client.get("/healthz").status_code == 200  # probes are exempt


def test_no_limit_by_default(built, tmp_path: Path, fake_encoder, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.delenv("RAG_RATE_LIMIT", raising=False)
    client = _client(tmp_path, fake_encoder)
    assert all(client.get("/v1/strategies").status_code == 200 for _ in range(80))


def test_env_var_sets_the_limit(built, tmp_path: Path, fake_encoder, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("RAG_RATE_LIMIT", "2/minute")
    client = _client(tmp_path, fake_encoder)
    assert [client.get("/v1/strategies").status_code for _ in range(3)] == [200, 200, 429]
