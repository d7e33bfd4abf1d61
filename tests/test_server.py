"""The real thing: the served stack (waitress, as `make run`) on 127.0.0.1 (fixture `server`)."""

from __future__ import annotations

import json
import urllib.request

import pytest


def _get(url: str) -> tuple[int, dict]:  # type: ignore[type-arg]
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_the_server_serves_search_and_ask(server: str) -> None:
    status, ready = _get(server + "/readyz")
    assert status == 200 and ready["status"] == "ready"
    request = urllib.request.Request(
        server + "/v1/search",
        data=json.dumps({"query": "consentimento do titular", "strategy": "bm25", "k": 2}).encode(),
        headers={"Content-Type": "application/json", "X-Request-ID": "it-1"},
    )
    with urllib.request.urlopen(request, timeout=10) as r:
        assert r.headers["X-Request-ID"] == "it-1"
        hits = json.loads(r.read())["hits"]
    assert hits[0]["article"] == "2"
    bad = urllib.request.Request(server + "/v1/ask", data=b"{oops", headers={"Content-Type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(bad, timeout=10)
    assert err.value.code == 400 and json.loads(err.value.read())["error"]["code"] == "invalid_json"


def test_openai_client_non_streaming_and_streaming(server: str) -> None:
    from openai import OpenAI

    client = OpenAI(base_url=server + "/v1", api_key="unused", max_retries=0)
    extra = {"k": 2}
    reply = client.chat.completions.create(
        model="rag_server",
        messages=[
            {"role": "system", "content": "Answer in Portuguese."},
            {"role": "user", "content": "Quem prova que o consentimento foi obtido?"},
        ],
        extra_body=extra,
    )
    content = reply.choices[0].message.content or ""
    assert reply.choices[0].message.role == "assistant" and "References:\n[1] " in content
    citations = reply.model_extra["citations"]  # type: ignore[index]
    assert citations[0]["article"] == "2" and citations[0]["number"] == 1

    stream = client.chat.completions.create(
        model="rag_server",
        messages=[{"role": "user", "content": "Quem prova que o consentimento foi obtido?"}],
        stream=True,
        extra_body=extra,
    )
    chunks = list(stream)
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert streamed == content
    assert chunks[0].model_extra["citations"] == citations  # type: ignore[index]
    assert chunks[-1].choices[0].finish_reason == "stop"


def _post(url: str, body: dict) -> dict:  # type: ignore[type-arg]
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as r:
        return json.loads(r.read())  # type: ignore[no-any-return]


def test_supported_flag_with_the_real_model(server: str) -> None:
    on_topic = _post(server + "/v1/ask", {"question": "Who bears the burden of proving that consent was obtained?"})
    assert on_topic["supported"] is True and on_topic["citations"][0]["article"] == "2"
    off_topic = _post(server + "/v1/ask", {"question": "How do I bake sourdough bread at home?"})
    assert off_topic["supported"] is False and off_topic["answer"] == "" and off_topic["citations"]
