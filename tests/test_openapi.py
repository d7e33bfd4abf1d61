"""The OpenAPI document matches the real behaviour: schemathesis generates requests from it
(bounded number of examples) and checks every response: no 5xx, and each matches the schema."""

from __future__ import annotations

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
