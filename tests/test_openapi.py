"""The OpenAPI document matches the real behaviour: schemathesis generates requests from it
(bounded number of examples) and checks every response: no 5xx, and each matches the schema."""

from __future__ import annotations

import json

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

MAX_EXAMPLES = int(
    __import__("os").environ.get("SCHEMATHESIS_EXAMPLES", "25")
)  # per operation; scripts may run far more


def test_api_conforms_to_its_openapi_document(app) -> None:  # type: ignore[no-untyped-def]
    schema = schemathesis.openapi.from_wsgi("/openapi.json", app)
    checked = 0
    for result in schema.get_all_operations():
        operation = result.ok()

        @given(case=operation.as_strategy())
        @settings(max_examples=MAX_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
        def conforms(case) -> None:  # type: ignore[no-untyped-def]
            # No 5xx; status, content type, headers and body match the schema. Excluded: "every
            # schema-valid request is accepted" — a valid string can still be stop words only,
            # which the API rightly refuses with 400 empty_query.
            response = case.call_and_validate(excluded_checks=[positive_data_acceptance])
            assert response.status_code < 500

        conforms()
        checked += 1
    assert checked >= 8


def test_openapi_document_and_docs_page(client) -> None:  # type: ignore[no-untyped-def]
    doc = client.get("/openapi.json").get_json()
    assert doc["openapi"].startswith("3.") and "/v1/ask" in doc["paths"]
    assert doc["components"]["schemas"]["AskRequest"]["properties"]["question"]["maxLength"] == 2000
    page = client.get("/docs")
    assert page.status_code == 200 and "/openapi.json" in page.get_data(as_text=True)


def test_every_json_response_is_its_model(client, app) -> None:  # type: ignore[no-untyped-def]
    """Each body parses as the model the document names for it, and dumps back unchanged."""
    from rag_server.api import responses as out

    app.config["ADMIN_TOKEN"] = "secret"
    chat = {"messages": [{"role": "user", "content": "prazo"}]}
    calls = [
        (client.post("/v1/search", json={"query": "consentimento", "strategy": "hybrid", "k": 3}), out.SearchResponse),
        (client.post("/v1/search", json={"query": "consentimento", "strategy": "bm25", "k": 3}), out.SearchResponse),
        (client.post("/v1/ask", json={"question": "Em quanto tempo comunicar um incidente?"}), out.AskResponse),
        (client.post("/v1/chat/completions", json=chat), out.ChatCompletion),
        (client.get("/v1/strategies"), out.StrategiesResponse),
        (client.get("/v1/index"), out.IndexManifest),
        (client.get("/healthz"), out.Healthy),
        (client.get("/readyz"), out.Ready),
        (client.post("/v1/search", json={"query": 3}), out.ErrorResponse),
        (client.post("/v1/admin/reload", headers={"Authorization": "Bearer secret"}), out.ReloadResponse),
        (client.get("/readyz"), out.Ready),  # now with its last reload
    ]
    for response, model in calls:
        body = response.get_json()
        parsed = model.model_validate(body)
        dumped = parsed.dump() if isinstance(parsed, out.Body) else parsed.model_dump()
        assert dumped == body, (model.__name__, body)
    assert "components" in calls[0][0].get_json()["hits"][0]
    assert "components" not in calls[1][0].get_json()["hits"][0]


def test_one_citation_shape_everywhere(client) -> None:  # type: ignore[no-untyped-def]
    question = "Em quanto tempo comunicar um incidente?"
    asked = client.post("/v1/ask", json={"question": question}).get_json()["citations"]
    chat = client.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": question}]})
    chatted = chat.get_json()["citations"]
    streamed = client.post(
        "/v1/chat/completions", json={"messages": [{"role": "user", "content": question}], "stream": True}
    ).get_data(as_text=True)
    first = json.loads(streamed.split("\n\n")[0].removeprefix("data: "))
    assert asked and asked == chatted == first["citations"]
    assert all(c["number"] == i and "rank" not in c for i, c in enumerate(asked, start=1))


def test_stream_events_are_chunks(client) -> None:  # type: ignore[no-untyped-def]
    from rag_server.api.responses import ChatCompletionChunk

    body = {"messages": [{"role": "user", "content": "prazo do incidente"}], "stream": True}
    events = client.post("/v1/chat/completions", json=body).get_data(as_text=True).split("\n\n")
    assert events[-2:] == ["data: [DONE]", ""]
    chunks = [json.loads(e.removeprefix("data: ")) for e in events[:-2]]
    for chunk in chunks:
        assert ChatCompletionChunk.model_validate(chunk).dump() == chunk
    assert set(chunks[0]) > set(chunks[1]) and "source" in chunks[0]  # provenance only in the first
    assert chunks[-1]["choices"][0] == {"index": 0, "delta": {}, "finish_reason": "stop"}


def test_the_document_is_generated_from_the_models() -> None:
    from rag_server.api import responses as out
    from rag_server.api.openapi import openapi_document

    doc = openapi_document()
    schemas = doc["components"]["schemas"]
    for model in (out.SearchResponse, out.AskResponse, out.ChatCompletion, out.Citation, out.ErrorResponse):
        assert model.__name__ in schemas
    citation = out.Citation.model_json_schema(ref_template="#/components/schemas/{model}")
    assert schemas["SentenceSpan"] == citation.pop("$defs")["SentenceSpan"] and schemas["Citation"] == citation
    assert "rank" not in schemas["Citation"]["properties"] and "number" in schemas["Citation"]["required"]
    ask = doc["paths"]["/v1/ask"]["post"]["responses"]
    assert ask["200"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/AskResponse"}
    assert ask["400"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/ErrorResponse"}
