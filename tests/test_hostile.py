"""Regression tests for what a hostile client found (issue #14): each test names its case and
failed on the code before the fix."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rag_server.build import BuildConfig, build_index

from support import FIXTURES, FakeEncoder


def _error(response: Any) -> dict[str, str]:
    body = response.get_json()
    assert isinstance(body, dict) and set(body) == {"error"}, response.get_data(as_text=True)[:300]
    assert set(body["error"]) == {"code", "message"}, body
    return body["error"]  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def shared_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One build of the fixture corpus (fake encoder) for the tests that only read it."""
    root = tmp_path_factory.mktemp("hostile") / "indexes"
    build_index(BuildConfig([FIXTURES / "corpus"], root, progress=False), encoder=FakeEncoder())
    return root


@pytest.fixture(scope="module")
def shared_app(shared_root: Path) -> Any:
    from rag_server.api import create_app
    from rag_server.pipeline import RagPipeline

    pipeline = RagPipeline(shared_root, encoder=FakeEncoder(), support_threshold=0.0)
    return create_app({"PIPELINE": pipeline, "TESTING": True})


@pytest.fixture
def hostile(shared_app: Any) -> Iterator[Any]:
    yield shared_app.test_client()


# ----- 1. deeply nested or unterminated JSON is a 400 invalid_json, not a 500 -----

NESTED = [
    '{"question":' + "[" * 1100 + "]" * 1100 + "}",  # over orjson's depth limit of 1024
    "[" * 30000,  # unterminated
    '{"query":' + '{"a":' * 5000 + "1" + "}" * 5000 + "}",
]


@pytest.mark.parametrize("path", ["/v1/ask", "/v1/search", "/v1/chat/completions"])
@pytest.mark.parametrize("body", NESTED, ids=["nested-1100", "open-30000", "objects-5000"])
def test_case_01_deep_nesting_is_invalid_json(hostile, path: str, body: str) -> None:  # type: ignore[no-untyped-def]
    response = hostile.post(path, data=body, content_type="application/json")
    assert response.status_code == 400
    assert _error(response)["code"] == "invalid_json"


# ----- 2. a lone surrogate (escaped or as raw bytes) is a 400, in a chat message too -----

SURROGATE_BODIES = {
    "chat-escaped": ("/v1/chat/completions", b'{"messages":[{"role":"user","content":"dados \\ud800 pessoais"}]}'),
    "chat-raw": ("/v1/chat/completions", b'{"messages":[{"role":"user","content":"dados \xed\xa0\x80 pessoais"}]}'),
    "chat-stream": (
        "/v1/chat/completions",
        b'{"stream":true,"messages":[{"role":"user","content":"dados \\udfff pessoais"}]}',
    ),
    "chat-key": ("/v1/chat/completions", b'{"messages":[{"role":"user","content":"dados","\\ud800":1}]}'),
    "ask-escaped": ("/v1/ask", b'{"question":"dados \\ud800 pessoais"}'),
    "search-raw": ("/v1/search", b'{"query":"dados \xed\xa0\x80"}'),
}


@pytest.mark.parametrize("case", list(SURROGATE_BODIES))
def test_case_02_lone_surrogate_is_a_400(hostile, case: str) -> None:  # type: ignore[no-untyped-def]
    path, body = SURROGATE_BODIES[case]
    response = hostile.post(path, data=body, content_type="application/json")
    assert response.status_code == 400
    error = _error(response)
    assert error["code"] == "invalid_json" and "surrogate" in error["message"]


# ----- 3. /metrics label values come from fixed sets, whatever a client sends -----


def _label_values(text: str, metric: str, label: str) -> set[str]:
    import re

    return set(re.findall(rf'^{metric}\{{[^}}]*{label}="([^"]*)"', text, flags=re.M))


def test_case_03_metric_labels_are_bounded(hostile) -> None:  # type: ignore[no-untyped-def]
    for i in range(40):
        for path in ("/v1/ask", "/healthz", f"/no/such/{i}"):
            hostile.open(path, method=f"M{i}X")
    hostile.open("/v1/ask", method="get")  # methods are case-sensitive: not GET
    text = hostile.get("/metrics").get_data(as_text=True)
    methods = _label_values(text, "rag_requests_total", "method")
    assert methods <= {"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH", "other"}
    assert "other" in methods, methods
    assert "M1X" not in text and "/no/such" not in text

    from rag_server.api.errors import known_error_codes
    from rag_server.api.metrics import OTHER, STAGES, STATUSES, Metrics

    assert _label_values(text, "rag_requests_total", "status") <= STATUSES | {OTHER}

    metrics = Metrics()  # what no request can reach today: an unknown error code or stage
    metrics.observe_error("made_up_code", known_error_codes())
    metrics.observe_stages({"made_up_stage": 1.0, "retrieve": 1.0})
    metrics.observe_request("/v1/ask", "BREW", 999, 0.01)
    exported = metrics.export().get_data(as_text=True)
    assert _label_values(exported, "rag_errors_total", "code") == {OTHER}
    assert _label_values(exported, "rag_stage_seconds_count", "stage") == {OTHER, "retrieve"}
    assert _label_values(exported, "rag_requests_total", "status") == {OTHER}
    assert "made_up" not in exported and "BREW" not in exported
    assert {"retrieve", "prompt", "generate"} <= STAGES


# ----- 5. a reload refuses a build that cannot serve the default strategy, and says why -----

ADMIN = {"Authorization": "Bearer t"}


def _own_app(root: Path, encoder: FakeEncoder, **config: Any) -> Any:
    """An app that loads its own index (as under gunicorn), with the fake encoder."""
    from rag_server.api import create_app

    settings = {"INDEX_DIR": str(root), "ENCODER": encoder, "GENERATOR_CHECKPOINT": "none", "SUPPORT_THRESHOLD": 0.0}
    app = create_app({**settings, "TESTING": True, "ADMIN_TOKEN": "t", **config})
    # /readyz is 503 until the background warm-up ends: wait for it, as a client polling /readyz would,
    # so that a test reading /readyz right away does not race it (on a busy machine it did).
    warmed = app.extensions.get("rag_warmed")
    assert warmed is None or warmed.wait(timeout=60)
    return app


def test_case_05_reload_refuses_a_build_without_the_default_strategys_indexes(  # type: ignore[no-untyped-def]
    built, corpus_dir: Path, make_build, fake_encoder, tmp_path: Path
) -> None:
    client = _own_app(tmp_path / "indexes", fake_encoder).test_client()
    partial = make_build(corpus_dir, indexes=["keyword", "bm25"])  # now named in CURRENT
    response = client.post("/v1/admin/reload", headers=ADMIN)
    assert response.status_code == 503
    message = _error(response)["message"]
    assert "default strategy" in message and "dense" in message and partial.build_id in message, message
    assert str(tmp_path) not in message
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.get_json()["build_id"] == built.build_id
    assert any("default strategy" in w for w in ready.get_json()["warnings"]), ready.get_json()
    search = client.post("/v1/search", json={"query": "consentimento do titular"})  # default strategy
    assert search.status_code == 200 and search.get_json()["build_id"] == built.build_id


def test_case_05_a_server_starting_on_such_a_build_serves_the_newest_one_that_can(  # type: ignore[no-untyped-def]
    built, corpus_dir: Path, make_build, fake_encoder, tmp_path: Path
) -> None:
    make_build(corpus_dir, indexes=["keyword", "bm25"])
    client = _own_app(tmp_path / "indexes", fake_encoder).test_client()
    ready = client.get("/readyz").get_json()
    assert ready["build_id"] == built.build_id
    assert any("cannot be served" in w and "default strategy" in w for w in ready["warnings"]), ready


# ----- 6. a server started on a bad CURRENT recovers by reload once a good build exists -----


def test_case_06_reload_recovers_a_server_that_started_on_a_bad_build(  # type: ignore[no-untyped-def]
    built, corpus_dir: Path, make_build, fake_encoder, tmp_path: Path
) -> None:
    (built.path / "manifest.json").write_text("{ not json", encoding="utf-8")
    client = _own_app(tmp_path / "indexes", fake_encoder).test_client()
    assert client.get("/readyz").status_code == 503
    refused = client.post("/v1/admin/reload", headers=ADMIN)  # still nothing good to load
    assert refused.status_code == 503 and "manifest.json" in _error(refused)["message"]
    assert client.get("/readyz").get_json()["last_reload"]["status"] == "refused"  # the reason, there too
    good = make_build(corpus_dir)
    response = client.post("/v1/admin/reload", headers=ADMIN)
    assert response.status_code == 200, response.get_json()
    assert response.get_json() == {"previous_build_id": None, "build_id": good.build_id, "changed": True}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.get_json()["build_id"] == good.build_id
    assert client.post("/v1/search", json={"query": "consentimento do titular"}).status_code == 200


# ----- 7. pruning never removes the served build nor the newest build that verifies -----


def _corrupt(build_dir: Path) -> None:
    with (build_dir / "passages.jsonl").open("ab") as handle:
        handle.write(b"\n")  # size and checksum no longer match the manifest


def test_case_07_corrupt_newer_builds_do_not_count_for_keep(  # type: ignore[no-untyped-def]
    built, corpus_dir: Path, make_build, tmp_path: Path
) -> None:
    from rag_server.loader import IndexBuild

    for _ in range(6):  # six builds that fail verification, each named in CURRENT in turn
        _corrupt(make_build(corpus_dir, keep_builds=3).path)
    make_build(corpus_dir, keep_builds=3)
    builds = tmp_path / "indexes" / "builds"
    assert (builds / built.build_id).is_dir(), "the newest build that verified was pruned"
    assert IndexBuild.load(builds / built.build_id).build_id == built.build_id


def test_case_07_the_served_build_is_never_pruned(  # type: ignore[no-untyped-def]
    built, corpus_dir: Path, make_build, fake_encoder, tmp_path: Path
) -> None:
    client = _own_app(tmp_path / "indexes", fake_encoder).test_client()
    assert client.get("/readyz").get_json()["build_id"] == built.build_id
    for _ in range(6):  # refused by reload: the server keeps serving the first build
        _corrupt(make_build(corpus_dir, keep_builds=3).path)
        assert client.post("/v1/admin/reload", headers=ADMIN).status_code == 503
    for _ in range(4):  # good builds the server has not switched to: the served one is the oldest
        make_build(corpus_dir, keep_builds=3)
    builds = sorted(p.name for p in (tmp_path / "indexes" / "builds").iterdir() if not p.name.startswith("."))
    assert built.build_id in builds, "the served build was pruned"
    assert len(builds) == 4  # the 3 newest that verify, and the served one
    assert client.post("/v1/search", json={"query": "consentimento do titular"}).status_code == 200


# ----- 8. an embedding cache killed while being saved leaves no file behind for good -----


def test_case_08_a_killed_cache_save_is_debris_the_next_build_removes(  # type: ignore[no-untyped-def]
    built, corpus_dir: Path, make_build, tmp_path: Path
) -> None:
    import subprocess
    import sys
    import textwrap

    from rag_server.catalog import IndexCatalog

    catalog = IndexCatalog(tmp_path / "indexes")
    cache = next(catalog.cache_dir.glob("embeddings-*.npy"))
    # A process killed inside EmbeddingCache.save, after the temporary file is written.
    script = textwrap.dedent(
        f"""
        import os, signal
        from pathlib import Path
        from rag_server.embedding import EmbeddingCache
        cache = EmbeddingCache(Path({str(cache)!r}))
        os.replace = lambda *a: os.kill(os.getpid(), signal.SIGKILL)
        cache.save()
        """
    )
    killed = subprocess.run([sys.executable, "-c", script], check=False, cwd=Path(__file__).parents[1])
    assert killed.returncode == -9
    left = sorted(catalog.cache_dir.glob("embeddings-*.tmp-*.npy"))
    assert len(left) == 1
    assert left[0] in catalog.debris()
    make_build(corpus_dir)
    assert not left[0].exists() and catalog.debris() == []
    assert cache.is_file()


# ----- 9. arrays that must be finite are checked when a build is loaded -----


def _rewrite(build_dir: Path, rel: str, write: Any) -> None:
    """Edit one file of a build and record its new size and checksum in the manifest, as an
    attacker (or a bug) with write access would: verification by checksum then passes."""
    import json

    from rag_server.manifest import sha256_file

    write(build_dir / rel)
    manifest_path = build_dir / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["files"][rel] = {"sha256": sha256_file(build_dir / rel), "bytes": (build_dir / rel).stat().st_size}
    manifest_path.write_text(json.dumps(manifest))


def _poke(name: str, index: int, value: float) -> Any:
    import numpy as np

    def write(path: Path) -> None:
        array = np.load(path, allow_pickle=False)
        array[index] = value
        np.save(path, array, allow_pickle=False)

    return write


def _dense_with_inf(path: Path) -> None:
    import faiss
    import numpy as np

    index = faiss.read_index(str(path))
    vectors = index.reconstruct_n(0, index.ntotal)
    vectors[1, 3] = np.inf
    fresh = faiss.IndexFlatIP(index.d)
    fresh.add(vectors)
    faiss.write_index(fresh, str(path))


@pytest.mark.parametrize(
    ("rel", "edit"),
    [
        ("bm25/weights.npy", _poke("weights", 0, float("inf"))),
        ("bm25/weights.npy", _poke("weights", 2, float("nan"))),
        ("keyword/tf.npy", _poke("tf", 0, float("-inf"))),
        ("bm25/doc_len.npy", _poke("doc_len", 0, -3.0)),
        ("dense/index.faiss", _dense_with_inf),
    ],
    ids=["bm25-weight-inf", "bm25-weight-nan", "keyword-tf-neg-inf", "doc-len-negative", "dense-vector-inf"],
)
def test_case_09_non_finite_arrays_are_refused(built, rel: str, edit: Any) -> None:  # type: ignore[no-untyped-def]
    from rag_server.errors import IndexLoadError
    from rag_server.loader import IndexBuild

    _rewrite(built.path, rel, edit)
    with pytest.raises(IndexLoadError, match=rel.split("/")[-1]):
        IndexBuild.load(built.path)


def test_case_09_an_embedding_cache_with_non_finite_vectors_is_not_used(built, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import numpy as np

    from rag_server.embedding import EmbeddingCache

    path = next((tmp_path / "indexes" / "cache").glob("embeddings-*.npy"))
    assert len(EmbeddingCache(path)) > 0
    table = np.load(path, allow_pickle=False)
    table["vector"][0, 0] = np.inf
    np.save(path, table, allow_pickle=False)
    assert len(EmbeddingCache(path)) == 0  # damaged: the build embeds again rather than index inf


# ----- 11. the Host header never ends up in a redirect -----


@pytest.mark.parametrize("path", ["/web//etc/passwd", "//web/app.js", "/v1//strategies", "/web/../web//app.js"])
def test_case_11_host_header_is_never_echoed(hostile, path: str) -> None:  # type: ignore[no-untyped-def]
    response = hostile.get(path, headers={"Host": "evil.example"})
    assert "evil.example" not in str(response.headers) + response.get_data(as_text=True)
    assert response.status_code in (200, 404), response.status_code
    assert "root:" not in response.get_data(as_text=True)


def test_case_11_locations_are_made_relative() -> None:
    from rag_server.api import relative_location

    assert relative_location("http://evil.example/web/etc/passwd") == "/web/etc/passwd"
    assert relative_location("http://evil.example//evil.example/x?a=1") == "/evil.example/x?a=1"
    assert relative_location("//evil.example/x") == "/x"
    assert relative_location("/v1/strategies") == "/v1/strategies"
    assert relative_location("page#top") == "page#top"


# ----- 12. chat: text content parts are accepted, other parts, n > 1 and stream "yes" refused -----


def test_case_12_text_content_parts_are_accepted(hostile) -> None:  # type: ignore[no-untyped-def]
    parts = [{"type": "text", "text": "Quem prova que o consentimento"}, {"type": "text", "text": "foi obtido?"}]
    plain = hostile.post(
        "/v1/chat/completions",
        json={"messages": [{"role": "user", "content": "Quem prova que o consentimento\nfoi obtido?"}]},
    )
    response = hostile.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": parts}]})
    assert response.status_code == 200, response.get_json()
    answer = response.get_json()["choices"][0]["message"]["content"]
    assert answer == plain.get_json()["choices"][0]["message"]["content"]


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        (
            {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]},
            "only text parts",
        ),
        ({"messages": [{"role": "user", "content": [{"type": "text", "text": "a"}, "b"]}]}, "only text parts"),
        ({"messages": [{"role": "user", "content": "dados pessoais"}], "n": 2}, "n:"),
        ({"messages": [{"role": "user", "content": "dados pessoais"}], "stream": "yes"}, "stream:"),
        ({"messages": [{"role": "user", "content": "dados pessoais"}], "stream": 1}, "stream:"),
    ],
    ids=["image-part", "bare-string-part", "n-2", "stream-yes", "stream-1"],
)
def test_case_12_what_the_server_cannot_honour_is_refused(hostile, body: dict[str, Any], needle: str) -> None:  # type: ignore[no-untyped-def]
    response = hostile.post("/v1/chat/completions", json=body)
    assert response.status_code == 400
    assert needle in _error(response)["message"]


def test_case_12_n_of_one_is_accepted(hostile) -> None:  # type: ignore[no-untyped-def]
    body = {"messages": [{"role": "user", "content": "dados pessoais"}], "n": 1}
    assert hostile.post("/v1/chat/completions", json=body).status_code == 200


# ----- 13. one strict rule for types, on every endpoint -----

CHAT = {"messages": [{"role": "user", "content": "dados pessoais"}]}


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/ask", {"question": "dados pessoais", "temperature": "0.5"}),
        ("/v1/ask", {"question": "dados pessoais", "temperature": True}),
        ("/v1/ask", {"question": "dados pessoais", "seed": "1"}),
        ("/v1/ask", {"question": "dados pessoais", "seed": 1.0}),
        ("/v1/ask", {"question": "dados pessoais", "max_new_chars": "10"}),
        ("/v1/search", {"query": "dados pessoais", "k": 3.0}),
        ("/v1/chat/completions", {**CHAT, "k": "3"}),
        ("/v1/chat/completions", {**CHAT, "temperature": "0.5"}),
        ("/v1/chat/completions", {**CHAT, "temperature": False}),
        ("/v1/chat/completions", {**CHAT, "seed": "1"}),
        ("/v1/chat/completions", {**CHAT, "max_tokens": "10"}),
        ("/v1/chat/completions", {**CHAT, "max_completion_tokens": True}),
        ("/v1/chat/completions", {"messages": [{"role": "user", "content": 42}]}),
    ],
)
def test_case_13_types_are_strict_everywhere(hostile, path: str, body: dict[str, Any]) -> None:  # type: ignore[no-untyped-def]
    response = hostile.post(path, json=body)
    assert response.status_code == 400, (body, response.get_json())
    assert _error(response)["code"] == "invalid_request"


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/ask", {"question": "dados pessoais", "temperature": 1, "seed": 7}),
        ("/v1/chat/completions", {**CHAT, "temperature": 0, "k": 2, "seed": 3, "max_tokens": 50}),
    ],
)
def test_case_13_an_integer_is_a_number(hostile, path: str, body: dict[str, Any]) -> None:  # type: ignore[no-untyped-def]
    assert hostile.post(path, json=body).status_code == 200


def test_case_13_the_rule_is_published(hostile) -> None:  # type: ignore[no-untyped-def]
    assert "strict" in hostile.get("/openapi.json").get_json()["info"]["description"]


# ----- 14. a chunked body over the size limit is a 413, like one with a Content-Length -----


def _chunked_post(base: str, path: str, body: bytes) -> tuple[int, dict[str, Any]]:
    """POST ``body`` with Transfer-Encoding: chunked (no Content-Length) over a raw socket."""
    import json
    import socket
    from urllib.parse import urlsplit

    where = urlsplit(base)
    with socket.create_connection((where.hostname, where.port), timeout=30) as sock:
        head = f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        sock.sendall((head + "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n").encode())
        try:
            for start in range(0, len(body), 8192):
                piece = body[start : start + 8192]
                sock.sendall(b"%x\r\n%s\r\n" % (len(piece), piece))
            sock.sendall(b"0\r\n\r\n")
        except OSError:
            pass  # the server may answer 413 and close before the whole body is sent
        reply = b""
        while chunk := sock.recv(65536):
            reply += chunk
    status_line, _, rest = reply.partition(b"\r\n")
    _headers, _, payload = rest.partition(b"\r\n\r\n")
    return int(status_line.split()[1]), json.loads(payload or b"null")


def test_case_14_a_chunked_body_over_the_limit_is_a_413(server: str) -> None:
    body = b'{"query": "' + b"x" * 70_000 + b'"}'  # over the 64 KiB default
    status, payload = _chunked_post(server, "/v1/search", body)
    assert status == 413, payload
    assert payload["error"]["code"] == "request_entity_too_large"
    small = b'{"query": "consentimento do titular", "strategy": "bm25", "k": 1}'
    assert _chunked_post(server, "/v1/search", small)[0] == 200


def test_case_14_in_the_app_too(hostile) -> None:  # type: ignore[no-untyped-def]
    import io

    body = b'{"query": "' + b"x" * 70_000 + b'"}'
    response = hostile.post(
        "/v1/search",
        input_stream=io.BytesIO(body),
        headers={"Transfer-Encoding": "chunked", "Content-Type": "application/json"},
        environ_overrides={"wsgi.input_terminated": True},
    )
    assert response.status_code == 413 and _error(response)["code"] == "request_entity_too_large"


# ----- 16. errors name the problem, never the server's paths; a failed reload says why on /readyz -----


def _no_paths(text: str, *paths: Path | str) -> None:
    for path in paths:
        assert str(path) not in text, text
    assert "/tmp/" not in text and "indexes/builds" not in text, text


def test_case_16_a_failed_reload_gives_its_reason_without_paths(  # type: ignore[no-untyped-def]
    built, corpus_dir: Path, make_build, fake_encoder, tmp_path: Path
) -> None:
    client = _own_app(tmp_path / "indexes", fake_encoder).test_client()
    second = make_build(corpus_dir)
    faiss_file = second.path / "dense" / "index.faiss"
    faiss_file.write_bytes(faiss_file.read_bytes()[:100])
    response = client.post("/v1/admin/reload", headers=ADMIN)
    assert response.status_code == 503
    message = _error(response)["message"]
    assert "dense/index.faiss" in message and second.build_id in message and "see /readyz" not in message
    _no_paths(message, tmp_path)
    ready = client.get("/readyz").get_json()
    assert ready["status"] == "ready" and ready["build_id"] == built.build_id
    reason = ready["last_reload"]["reason"]
    assert "dense/index.faiss" in reason and any(reason in w for w in ready["warnings"])
    _no_paths(str(ready), tmp_path)


def test_case_16_not_ready_answers_name_the_file_inside_its_build(  # type: ignore[no-untyped-def]
    built, fake_encoder, tmp_path: Path
) -> None:
    (built.path / "manifest.json").write_text("{ not json", encoding="utf-8")
    client = _own_app(tmp_path / "indexes", fake_encoder).test_client()
    ready = client.get("/readyz")
    assert ready.status_code == 503 and "manifest.json" in ready.get_json()["reason"]
    search = client.post("/v1/search", json={"query": "consentimento"})
    assert search.status_code == 503 and "manifest.json" in _error(search)["message"]
    _no_paths(ready.get_data(as_text=True) + search.get_data(as_text=True), tmp_path)


def test_case_16_a_model_error_names_no_path(corpus_dir: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from rag_server.api import create_app
    from rag_server.pipeline import RagPipeline

    encoder = FakeEncoder()
    encoder.name = "/opt/private/models/secret-model"  # a model given by path at build time
    build_index(BuildConfig([corpus_dir], tmp_path / "indexes", progress=False), encoder=encoder)
    pipeline = RagPipeline(tmp_path / "indexes")  # no encoder: the dense retriever looks for that model
    client = create_app({"PIPELINE": pipeline, "TESTING": True}).test_client()
    response = client.post("/v1/search", json={"query": "consentimento", "strategy": "dense"})
    assert response.status_code == 503
    message = _error(response)["message"]
    assert "secret-model" in message and "checksum" in message, message
    _no_paths(message, "/opt/private")
    manifest = client.get("/v1/index").get_data(as_text=True)
    _no_paths(manifest, "/opt/private", tmp_path)


# ----- 15. the rate limit is one budget per client address, and a 429 says when to retry -----


def test_case_15_one_budget_per_client_address_across_routes(built, tmp_path: Path, fake_encoder) -> None:  # type: ignore[no-untyped-def]
    from rag_server.api import create_app
    from rag_server.pipeline import RagPipeline

    pipeline = RagPipeline(tmp_path / "indexes", encoder=fake_encoder, support_threshold=0.0)
    client = create_app({"PIPELINE": pipeline, "TESTING": True, "RATE_LIMIT": "10/minute"}).test_client()
    routes = ["/v1/strategies", "/v1/index", "/"]
    statuses = [client.get(routes[i % 3]).status_code for i in range(10)]
    assert statuses == [200] * 10
    over = client.post("/v1/search", json={"query": "consentimento"})  # a route not used yet
    assert over.status_code == 429 and _error(over)["code"] == "too_many_requests"
    retry_after = over.headers.get("Retry-After")
    assert retry_after is not None and retry_after.isdigit() and 0 < int(retry_after) <= 60, over.headers
    assert client.get("/healthz").status_code == 200 and client.get("/readyz").status_code == 200
    other = client.get("/v1/strategies", environ_overrides={"REMOTE_ADDR": "10.0.0.2"})
    assert other.status_code == 200  # another address has its own budget


# ----- 10. every question the schema accepts is answered: an over-long one is cut in the prompt -----


class _WindowGenerator:
    """Stands for the packaged generator: its 768-character window, a fixed answer (which the
    pipeline replaces by its evidence sentence: it does not follow it)."""

    block_size = 768
    checkpoint_id = "window-768"
    corpus_checksum = None

    def complete(self, prompt: str, max_new_chars: int = 200, temperature: float = 0.0, seed: int | None = None) -> str:
        assert len(prompt) < self.block_size  # an answer may overflow: the window then drops the question's start
        return "an answer"


def test_case_10_the_longest_question_the_schema_allows_is_answered(shared_root: Path) -> None:
    from rag_server.api import create_app
    from rag_server.api.schemas import MAX_QUESTION_CHARS
    from rag_server.pipeline import RagPipeline

    pipeline = RagPipeline(shared_root, encoder=FakeEncoder(), generator=_WindowGenerator(), support_threshold=0.0)
    client = create_app({"PIPELINE": pipeline, "TESTING": True}).test_client()
    schema = client.get("/openapi.json").get_json()["components"]["schemas"]["AskRequest"]
    assert schema["properties"]["question"]["maxLength"] == MAX_QUESTION_CHARS
    words = "Quem prova que o consentimento do titular foi obtido conforme a lei "
    question = (words * 40)[: MAX_QUESTION_CHARS - 1] + "?"
    for body in ({"question": question}, {"question": question, "max_new_chars": 1000}):
        response = client.post("/v1/ask", json=body)
        assert response.status_code == 200, response.get_json()
        answer = response.get_json()
        assert answer["question_truncated"] is True and answer["citations"], answer
        asked = answer["prompt"].split("\n")[0].removeprefix("Question: ")
        assert question.startswith(asked) and question[len(asked)] == " "  # its start, at a word boundary
    short = client.post("/v1/ask", json={"question": "Quem prova que o consentimento foi obtido?"}).get_json()
    assert short["question_truncated"] is False
    assert short["prompt"].startswith("Question: Quem prova que o consentimento foi obtido?\n")
    chat = client.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": question}]})
    assert chat.status_code == 200 and chat.get_json()["question_truncated"] is True


# ----- 18. optional API keys for /v1/* (and so the page's data), a token for /metrics -----

KEY = "k3y-for-tests-0123456789"


def _keyed(shared_root: Path, **config: Any) -> Any:
    from rag_server.api import create_app
    from rag_server.pipeline import RagPipeline

    pipeline = RagPipeline(shared_root, encoder=FakeEncoder(), support_threshold=0.0)
    return create_app({"PIPELINE": pipeline, "TESTING": True, **config}).test_client()


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_case_18_api_keys_guard_v1_and_nothing_else(shared_root: Path) -> None:
    client = _keyed(shared_root, API_KEYS=f"another-key, {KEY}", ADMIN_TOKEN="adm")
    search = {"query": "consentimento do titular"}
    for headers in ({}, _bearer("wrong"), {"Authorization": KEY}, {"Authorization": f"Basic {KEY}"}):
        response = client.post("/v1/search", json=search, headers=headers)
        assert response.status_code == 401 and _error(response)["code"] == "unauthorized"
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert client.get("/v1/strategies").status_code == 401
    assert client.post("/v1/ask", json={"question": "dados"}).status_code == 401
    assert client.post("/v1/chat/completions", json=CHAT).status_code == 401
    assert client.post("/v1/search", json=search, headers=_bearer(KEY)).status_code == 200
    assert client.get("/v1/strategies", headers=_bearer("another-key")).status_code == 200
    for open_path in ("/healthz", "/readyz", "/openapi.json", "/docs", "/", "/web/app.js", "/metrics"):
        assert client.get(open_path).status_code == 200, open_path
    assert client.post("/v1/admin/reload", headers=_bearer("adm")).status_code == 200  # its own token


def test_case_18_a_file_of_key_digests(shared_root: Path, tmp_path: Path) -> None:
    import hashlib

    digest = hashlib.sha256(KEY.encode()).hexdigest()
    keys = tmp_path / "keys.sha256"
    keys.write_text(f"# API keys of the team\n{digest}  alice\n\n")
    client = _keyed(shared_root, API_KEYS=f"@{keys}")
    assert client.get("/v1/strategies").status_code == 401
    assert client.get("/v1/strategies", headers=_bearer(KEY)).status_code == 200
    assert client.get("/v1/strategies", headers=_bearer(digest)).status_code == 401  # the digest is no key
    inline = _keyed(shared_root, API_KEYS=f"sha256:{digest}")
    assert inline.get("/v1/strategies", headers=_bearer(KEY)).status_code == 200
    keys.write_text("not-a-digest\n")
    with pytest.raises(ValueError, match="line 1"):
        _keyed(shared_root, API_KEYS=f"@{keys}")


def test_case_18_keys_are_never_logged(shared_root: Path, caplog: pytest.LogCaptureFixture) -> None:
    import logging

    client = _keyed(shared_root, API_KEYS=KEY)
    logger = logging.getLogger("rag_server")
    logger.propagate = True
    try:
        with caplog.at_level(logging.DEBUG):
            client.get("/v1/strategies", headers=_bearer(KEY))
            client.get("/v1/strategies", headers=_bearer(KEY + "x"))
    finally:
        logger.propagate = False
    assert caplog.records and KEY not in caplog.text


def test_case_18_metrics_token(shared_root: Path) -> None:
    client = _keyed(shared_root, API_KEYS=KEY, METRICS_TOKEN="scrape-me")
    assert client.get("/metrics", headers=_bearer(KEY)).status_code == 401  # an API key is not the token
    assert client.get("/metrics", headers=_bearer("scrape-me")).status_code == 200


def test_case_18_every_digest_is_compared(monkeypatch: pytest.MonkeyPatch) -> None:
    from rag_server.api import auth

    calls: list[int] = []
    real = auth.hmac.compare_digest
    monkeypatch.setattr(auth.hmac, "compare_digest", lambda a, b: calls.append(1) or real(a, b))
    digests = [auth.digest(KEY), auth.digest("b"), auth.digest("c")]
    assert auth.matches_any(KEY.encode(), digests)
    assert len(calls) == 3  # no early exit on the first match
    assert not auth.matches_any(None, digests) and not auth.matches_any(b"", [auth.digest("")])


# ----- 4. idle and slow connections hold no thread of the served stack -----


def test_case_04_slow_and_idle_connections_do_not_starve_the_server(server: str) -> None:
    from urllib.parse import urlsplit

    from support.devserver import HostileClients, post_json

    port = urlsplit(server).port
    assert port is not None
    # 3 x 8 of each kind against 4 threads: on gunicorn's gthread worker, every normal request
    # then waited for a thread until the client gave up.
    with HostileClients(port, 24, trickle=0.5):
        for _ in range(3):
            status, body = post_json(server + "/v1/search", {"query": "consentimento", "strategy": "bm25"}, timeout=30)
            assert status == 200 and body["hits"]


# ----- 17. the served log is JSON lines only -----


def _json_lines(text: str) -> list[dict[str, Any]]:
    import json

    entries = []
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except ValueError:
            raise AssertionError(f"a log line is not JSON: {line[:300]!r}") from None
        assert isinstance(entry, dict) and {"time", "level", "logger", "message"} <= set(entry), line
        entries.append(entry)
    return entries


@pytest.mark.server
def test_case_17_the_served_log_is_json_lines_only(real_index: Path, tmp_path: Path) -> None:
    from support.devserver import LocalServer, post_json

    log = tmp_path / "server.log"
    # INFO: the server's own start lines and one access line per request; the warm-up loads the
    # embedding model (whose loading drew a progress bar on this stream).
    with LocalServer(real_index, threads=2, env={"RAG_LOG_LEVEL": "INFO"}, log_file=log) as server:
        assert post_json(server.base + "/v1/search", {"query": "consentimento", "strategy": "dense"})[0] == 200
        assert post_json(server.base + "/v1/search", {"query": "x", "k": 0})[0] == 400
    entries = _json_lines(log.read_text(encoding="utf-8", errors="replace"))
    loggers = {e["logger"] for e in entries}
    assert "rag_server.access" in loggers and "waitress" in loggers, loggers


def test_case_17_gunicorns_logs_use_the_same_formatter() -> None:
    import subprocess
    import sys

    # In a process of its own: dictConfig closes every existing handler (pytest's too).
    script = (
        "import logging, logging.config\n"
        "from rag_server import gunicorn_conf\n"
        "logging.config.dictConfig(gunicorn_conf.logconfig_dict)\n"
        "logging.getLogger('gunicorn.error').info('Booting worker with pid: %s', 1234)\n"
        "logging.getLogger('gunicorn.access').info('127.0.0.1 - - \"GET /healthz HTTP/1.1\" 200')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=Path(__file__).parents[1], capture_output=True, text=True, check=True
    )
    entries = _json_lines(done.stderr)
    assert [e["logger"] for e in entries] == ["gunicorn.error", "gunicorn.access"]
    assert entries[0]["message"] == "Booting worker with pid: 1234"
