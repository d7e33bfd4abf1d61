"""The HTTP API through Flask's test client: every endpoint and every error shape."""

from __future__ import annotations

import json
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from rag_server.api import create_app
from rag_server.pipeline import RagPipeline
from rag_server.retrieval import LOCAL, STRATEGIES


def _error(response) -> dict:  # type: ignore[no-untyped-def]
    body = response.get_json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}, body
    assert "Traceback" not in response.get_data(as_text=True)
    return body["error"]  # type: ignore[no-any-return]


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_search_returns_ranked_hits(client, strategy: str) -> None:  # type: ignore[no-untyped-def]
    r = client.post("/v1/search", json={"query": "consentimento do titular", "strategy": strategy, "k": 3})
    assert r.status_code == 200, r.get_json()
    body = r.get_json()
    assert body["strategy"] in (strategy, "hybrid-convex")
    assert body["build_id"] and 1 <= len(body["hits"]) <= 3
    assert [h["rank"] for h in body["hits"]] == list(range(1, len(body["hits"]) + 1))
    assert body["hits"][0]["article"] == "2"
    if strategy.startswith("hybrid"):
        assert set(body["hits"][0]["components"]) == {"bm25", "dense"}


def test_search_filters(client) -> None:  # type: ignore[no-untyped-def]
    r = client.post("/v1/search", json={"query": "consent incident", "filters": {"language": "en"}, "k": 10})
    assert r.status_code == 200
    assert {h["language"] for h in r.get_json()["hits"]} == {"en"}


def test_ask_answers_with_citations_and_prompt(client) -> None:  # type: ignore[no-untyped-def]
    r = client.post("/v1/ask", json={"question": "Em quanto tempo comunicar um incidente?", "lang": "pt"})
    assert r.status_code == 200
    body = r.get_json()
    # Without a generator the answer quotes the best evidence sentence, and says where it is.
    assert body["supported"] is True
    assert body["answer"] == (
        "O controlador deve comunicar à autoridade nacional e ao titular a ocorrência de incidente de "
        "segurança em até três dias úteis."
    )
    first = body["citations"][0]
    assert first["article"] == "3" and first["language"] == "pt" and first["number"] == 1 and "rank" not in first
    source = body["source"]
    assert source["number"] == 1 and source["passage_id"] == first["passage_id"]
    assert first["text"][source["start"] : source["end"]] == source["sentence"] == body["answer"]
    assert {"start": source["start"], "end": source["end"]} == first["sentences"][0]
    assert body["sources"] == [source]  # a clear winner: one answer sentence, one source
    assert body["prompt"].startswith("Question: Em quanto tempo") and body["prompt"].endswith("Answer:")
    assert f"[1] ({first['citation']}) {body['answer']}" == body["prompt"].split("\n")[2]
    assert set(body["timings_ms"]) == {"retrieve", "evidence", "prompt", "generate"}
    from rag_server.api.metrics import STAGES

    assert set(body["timings_ms"]) <= STAGES  # every stage is its own metric series, none counted as "other"
    assert body["build_id"] and body["generator_id"] is None


def test_unsupported_answers_say_so(built, tmp_path: Path, fake_encoder) -> None:  # type: ignore[no-untyped-def]
    from rag_server.pipeline import RagPipeline

    strict = RagPipeline(tmp_path / "indexes", encoder=fake_encoder, support_threshold=0.999)
    client = create_app({"PIPELINE": strict}).test_client()
    body = client.post("/v1/ask", json={"question": "receita de bolo de cenoura"}).get_json()
    assert body["supported"] is False and body["answer"] == "" and "evidence" in body["message"]
    assert body["citations"]  # still returned, for the user to judge


def test_strategies_index_and_health(client) -> None:  # type: ignore[no-untyped-def]
    body = client.get("/v1/strategies").get_json()
    assert [s["name"] for s in body["strategies"]] == list(STRATEGIES) == list(LOCAL.descriptions())
    assert [s["description"] for s in body["strategies"]] == list(LOCAL.descriptions().values())
    assert body["default"] == "hybrid-convex"
    manifest = client.get("/v1/index").get_json()
    assert manifest["passage_count"] > 0 and "corpus_dirs" not in manifest
    assert client.get("/healthz").get_json() == {"status": "ok"}
    ready = client.get("/readyz").get_json()
    assert ready["status"] == "ready" and ready["build_id"] == manifest["build_id"]


@pytest.mark.parametrize(
    ("path", "body", "status", "code"),
    [
        ("/v1/search", {}, 400, "invalid_request"),
        ("/v1/search", {"query": ""}, 400, "invalid_request"),
        ("/v1/search", {"query": "   "}, 400, "invalid_request"),
        ("/v1/search", {"query": 42}, 400, "invalid_request"),
        ("/v1/search", {"query": "x" * 2001}, 400, "invalid_request"),
        ("/v1/search", {"query": "dados", "k": 0}, 400, "invalid_request"),
        ("/v1/search", {"query": "dados", "k": 101}, 400, "invalid_request"),
        ("/v1/search", {"query": "dados", "k": "5"}, 400, "invalid_request"),
        ("/v1/search", {"query": "dados", "strategy": "magic"}, 400, "invalid_request"),
        ("/v1/search", {"query": "dados", "filters": {"colour": "x"}}, 400, "invalid_request"),
        ("/v1/search", {"query": "dados", "extra": 1}, 400, "invalid_request"),
        ("/v1/search", {"query": "the of and"}, 400, "empty_query"),
        ("/v1/ask", {"question": None}, 400, "invalid_request"),
        ("/v1/ask", {"question": "dados", "temperature": -1}, 400, "invalid_request"),
        ("/v1/ask", {"question": "dados", "lang": "fr"}, 400, "invalid_request"),
        ("/v1/ask", [1, 2], 400, "bad_request"),
    ],
)
def test_bad_requests_get_a_clear_json_error(client, path: str, body: object, status: int, code: str) -> None:  # type: ignore[no-untyped-def]
    r = client.post(path, json=body)
    assert r.status_code == status
    assert _error(r)["code"] == code


def test_transport_errors(client) -> None:  # type: ignore[no-untyped-def]
    assert (
        _error(client.post("/v1/search", data="query=x", content_type="text/plain"))["code"] == "unsupported_media_type"
    )
    r = client.post("/v1/search", data="{not json", content_type="application/json")
    assert r.status_code == 400 and _error(r)["code"] == "invalid_json"
    r = client.post("/v1/search", data=json.dumps({"query": "x" * 70_000}), content_type="application/json")
    assert r.status_code == 413 and _error(r)["code"] == "request_entity_too_large"
    assert _error(client.get("/v1/nope"))["code"] == "not_found"
    r = client.get("/v1/search")
    assert r.status_code == 405 and _error(r)["code"] == "method_not_allowed"


def test_request_id_is_returned_and_question_never_logged(client, caplog) -> None:  # type: ignore[no-untyped-def]
    secret = "meu CPF é 123.456.789-09 e tenho diabetes"
    logger = logging.getLogger("rag_server")
    logger.propagate = True
    try:
        with caplog.at_level(logging.INFO, logger="rag_server"):
            r = client.post("/v1/ask", json={"question": secret}, headers={"X-Request-ID": "abc-123"})
    finally:
        logger.propagate = False
    assert r.headers["X-Request-ID"] == "abc-123"
    assert "123.456.789-09" not in caplog.text and "diabetes" not in caplog.text
    access = [rec for rec in caplog.records if rec.name == "rag_server.access"]
    fields = access[-1].fields  # type: ignore[attr-defined]
    assert fields["request_id"] == "abc-123" and len(fields["query_hmac"]) == 24 and fields["status"] == 200
    assert client.get("/healthz", headers={"X-Request-ID": "bad id!"}).headers["X-Request-ID"] != "bad id!"


def test_concurrent_asks(client, app) -> None:  # type: ignore[no-untyped-def]
    questions = ["consentimento", "incident report", "GPU memory", "dados pessoais", "encryption keys"] * 8

    def ask(q: str) -> int:
        with app.test_client() as c:
            return int(c.post("/v1/ask", json={"question": q, "strategy": "hybrid"}).status_code)

    with ThreadPoolExecutor(max_workers=8) as pool:
        assert set(pool.map(ask, questions)) == {200}


def test_no_build_means_not_ready_not_a_crash(tmp_path: Path) -> None:
    client = create_app({"INDEX_DIR": str(tmp_path / "empty")}).test_client()
    assert client.get("/healthz").status_code == 200
    r = client.get("/readyz")
    assert r.status_code == 503 and "no build" in r.get_json()["reason"]
    r = client.post("/v1/search", json={"query": "dados"})
    assert r.status_code == 503 and _error(r)["code"] == "not_ready"


def test_admin_reload_needs_the_token_and_switches_builds(
    built, corpus_dir: Path, make_build, tmp_path: Path, fake_encoder
) -> None:  # type: ignore[no-untyped-def]
    from rag_server.pipeline import RagPipeline

    pipeline = RagPipeline(tmp_path / "indexes", encoder=fake_encoder)
    client = create_app({"PIPELINE": pipeline, "ADMIN_TOKEN": "s3cret-token"}).test_client()
    assert client.post("/v1/admin/reload").status_code == 401
    wrong = client.post("/v1/admin/reload", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401 and _error(wrong)["code"] == "unauthorized"
    same = client.post("/v1/admin/reload", headers={"Authorization": "Bearer s3cret-token"}).get_json()
    assert same["changed"] is False and same["build_id"] == built.build_id
    (corpus_dir / "extra.md").write_text("# Extra\n\nUm novo documento sobre retenção de backups.\n")
    newer = make_build(corpus_dir)
    switched = client.post("/v1/admin/reload", headers={"Authorization": "Bearer s3cret-token"}).get_json()
    assert switched == {"previous_build_id": built.build_id, "build_id": newer.build_id, "changed": True}
    assert client.get("/readyz").get_json()["build_id"] == newer.build_id


def test_admin_reload_is_disabled_without_a_token(client) -> None:  # type: ignore[no-untyped-def]
    r = client.post("/v1/admin/reload", headers={"Authorization": "Bearer anything"})
    assert r.status_code == 404 and "disabled" in _error(r)["message"]


def test_metrics_count_requests_stages_and_errors(client) -> None:  # type: ignore[no-untyped-def]
    client.post("/v1/ask", json={"question": "consentimento"})
    client.post("/v1/search", json={"query": "consentimento", "strategy": "bm25"})
    client.post("/v1/search", json={"query": "x", "k": 0})
    client.get("/no/such/path")
    text = client.get("/metrics").get_data(as_text=True)
    assert 'rag_requests_total{endpoint="/v1/ask",method="POST",status="200"} 1.0' in text
    assert 'rag_requests_total{endpoint="/v1/search",method="POST",status="400"} 1.0' in text
    assert 'rag_requests_total{endpoint="unmatched",method="GET",status="404"} 1.0' in text
    assert 'rag_stage_seconds_count{stage="generate"} 1.0' in text
    assert 'rag_stage_seconds_count{stage="retrieve"} 2.0' in text
    assert 'rag_errors_total{code="invalid_request"} 1.0' in text
    assert "/no/such/path" not in text


def test_schema_strategies_match_the_factory() -> None:
    from typing import get_args

    from rag_server.api.schemas import Strategy

    assert get_args(Strategy) == STRATEGIES


@pytest.mark.parametrize(
    "body",
    [
        {"messages": []},
        {"messages": [{"role": "assistant", "content": "hi"}]},
        {"messages": "hello"},
        {"messages": [{"role": "user", "content": "x" * 2001}]},
    ],
)
def test_chat_completions_bad_requests(client, body: dict) -> None:  # type: ignore[no-untyped-def,type-arg]
    r = client.post("/v1/chat/completions", json=body)
    assert r.status_code == 400 and _error(r)["code"] in ("invalid_request", "bad_request")


def test_generator_answers_and_stale_checkpoint_warning(built, tmp_path: Path, fake_encoder) -> None:  # type: ignore[no-untyped-def]
    import torch

    from rag_server.generator import CharTransformer, CharVocab, Generator, GeneratorConfig
    from rag_server.generator.checkpoint import save_checkpoint
    from rag_server.pipeline import RagPipeline

    torch.manual_seed(0)
    vocab = CharVocab.build(["abcdefghijklmnopqrstuvwxyz ÁÉÍÓÚáéíóúãõç.,:?[]()\n0123456789-ABCDEFGHIJKLMNOPQRSTUVWXYZ"])
    model = CharTransformer(GeneratorConfig(vocab_size=len(vocab), block_size=256, n_layer=1, n_head=2, n_embd=16))
    path = save_checkpoint(tmp_path / "gen.pt", model, vocab, corpus_checksum="0" * 64, metrics={})
    generator = Generator.load(path)
    pipeline = RagPipeline(tmp_path / "indexes", encoder=fake_encoder, generator=generator)
    client = create_app({"PIPELINE": pipeline}).test_client()
    body = client.post("/v1/ask", json={"question": "consentimento do titular", "max_new_chars": 500}).get_json()
    assert body["generator_id"] == generator.checkpoint_id and body["message"] is None
    # The prompt fits the model's window with room for the answer; it may pass two thirds of the
    # window only to hold the best sentence's line whole (the line the answer is pointed to).
    prompt = body["prompt"]
    assert len(prompt) <= 256 - 1
    context_lines = [line for line in prompt.splitlines() if line.startswith("[")]
    assert len(prompt) <= 256 - 256 // 3 - 1 or len(context_lines) == 1
    ready = client.get("/readyz").get_json()
    assert ready["generator"] == generator.checkpoint_id
    assert len(ready["warnings"]) == 1 and "retrain" in ready["warnings"][0]


def test_an_app_that_loads_its_own_index_warms_it_up_in_the_background(  # type: ignore[no-untyped-def]
    built, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    warmed = threading.Event()
    monkeypatch.setattr(RagPipeline, "warm_up", lambda self: warmed.set())
    app = create_app({"INDEX_DIR": str(tmp_path / "indexes"), "GENERATOR_CHECKPOINT": "none"})
    assert app.extensions["rag_pipeline"] is not None
    assert warmed.wait(timeout=10)


def test_not_ready_until_the_warm_up_is_done(  # type: ignore[no-untyped-def]
    built, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    release = threading.Event()
    monkeypatch.setattr(RagPipeline, "warm_up", lambda self: release.wait(timeout=10))
    app = create_app({"INDEX_DIR": str(tmp_path / "indexes"), "GENERATOR_CHECKPOINT": "none"})
    client = app.test_client()
    r = client.get("/readyz")
    assert r.status_code == 503 and "embedding model" in r.get_json()["reason"]
    assert client.post("/v1/search", json={"query": "dados", "strategy": "bm25"}).status_code == 200
    release.set()
    assert app.extensions["rag_warmed"].wait(timeout=10)
    assert client.get("/readyz").status_code == 200


def test_an_integer_beyond_64_bits_is_a_clear_400(client) -> None:  # type: ignore[no-untyped-def]
    body = '{"query": "dados", "k": 123456789012345678901234567890}'  # orjson reads it as a float
    r = client.post("/v1/search", data=body, content_type="application/json")
    assert r.status_code == 400 and _error(r)["message"].startswith("k:")


def test_a_body_with_a_byte_order_mark_is_accepted(client) -> None:  # type: ignore[no-untyped-def]
    body = "\ufeff" + json.dumps({"query": "consentimento do titular", "strategy": "bm25"})
    r = client.post("/v1/search", data=body.encode("utf-8"), content_type="application/json")
    assert r.status_code == 200, r.get_json()


def test_an_injected_pipeline_is_not_warmed_up(app, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    calls: list[str] = []
    monkeypatch.setattr(RagPipeline, "warm_up", lambda self: calls.append("warm"))
    create_app({"PIPELINE": app.extensions["rag_pipeline"], "TESTING": True})
    assert calls == []
