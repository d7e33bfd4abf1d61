"""Mapping errors to HTTP responses: ``{"error": {"code": …, "message": …}}``, never a trace.

Domain errors are raised by the core (``rag_server.errors``); this is the only place that
knows their HTTP status codes.
"""

from __future__ import annotations

import hmac
import logging
import re
from typing import Any, ClassVar

from flask import Flask, current_app, jsonify, request
from flask.typing import ResponseReturnValue
from pydantic import ValidationError
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge
from werkzeug.http import HTTP_STATUS_CODES

from ..errors import BackendUnavailableError, IndexLoadError, ModelError, QueryError, RagServerError
from . import auth
from .responses import ErrorResponse

log = logging.getLogger("rag_server.api")


class ApiError(Exception):
    status = 400
    code = "bad_request"
    headers: ClassVar[dict[str, str]] = {}  # sent with the error response

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidJson(ApiError):
    code = "invalid_json"


class NotReady(ApiError):
    status = 503
    code = "not_ready"


class ReloadRefused(ApiError):
    status = 503
    code = "reload_refused"


class UnsupportedMediaType(ApiError):
    status = 415
    code = "unsupported_media_type"


class Unauthorized(ApiError):
    status = 401
    code = "unauthorized"
    headers: ClassVar[dict[str, str]] = {"WWW-Authenticate": 'Bearer realm="rag_server"'}


class AdminDisabled(ApiError):
    status = 404
    code = "not_found"


def require_admin() -> None:
    """Bearer token from RAG_ADMIN_TOKEN, compared in constant time; no token, no endpoint."""
    expected = str(current_app.config.get("ADMIN_TOKEN") or "")
    if not expected:
        raise AdminDisabled("the admin API is disabled (set RAG_ADMIN_TOKEN to enable it)")
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(token.encode(), expected.encode()):
        raise Unauthorized("a valid bearer token is required")


_ABSOLUTE_PATH = re.compile(r"(?<![\w.~-])/(?:[^\s/:'\"(),]+/)+([^\s/:'\"(),]*)")


def public_reason(exc: BaseException) -> str:
    """What a client may be told about ``exc``: the problem, never the server's directories
    (an index file is named inside its build; any other absolute path is cut to its last part)."""
    if isinstance(exc, IndexLoadError):
        return exc.public()
    text = str(exc) if isinstance(exc, RagServerError) else f"{type(exc).__name__}: {exc}"
    return _ABSOLUTE_PATH.sub(lambda m: "…/" + m.group(1), text)[:500]


def require_api_key() -> None:
    """With RAG_API_KEYS set, a /v1 request (but the admin one, which has its own token) must
    carry one of the keys as a bearer token."""
    digests = current_app.extensions.get("rag_api_keys")
    if not digests or request.endpoint == "v1.admin_reload":
        return
    if not auth.matches_any(auth.bearer_token(), digests):
        log.warning("request without a valid API key", extra={"fields": {"path": request.path}})
        raise Unauthorized("an API key is required: send it as Authorization: Bearer <key>")


def require_metrics_token() -> None:
    """With RAG_METRICS_TOKEN set, /metrics wants it as a bearer token."""
    expected = str(current_app.config.get("METRICS_TOKEN") or "")
    if expected and not auth.matches_any(auth.bearer_token(), [auth.digest(expected)]):
        raise Unauthorized("/metrics needs the metrics token: send it as Authorization: Bearer <token>")


def error_response(status: int, code: str, message: str) -> ResponseReturnValue:
    return jsonify(ErrorResponse.of(code, message).dump()), status


def json_body() -> Any:
    """The request's JSON object, or a clear 4xx."""
    if not request.is_json:
        raise UnsupportedMediaType("send a JSON body with Content-Type: application/json")
    try:
        body = current_app.json.loads(_body_bytes())
    except ValueError as exc:  # the provider turns every parse failure into a ValueError
        raise InvalidJson(f"the body is not valid JSON ({_first_line(exc)})") from None
    if not isinstance(body, dict):
        raise ApiError("the body must be a JSON object")
    return body


def _body_bytes() -> bytes:
    """The request body; 413 when it is over the limit, sent with a Content-Length or not.

    Werkzeug stops reading a streamed (chunked) body at the limit without a word, so a body
    cut there would otherwise reach the parser and be called invalid JSON."""
    data = request.get_data()
    limit = current_app.config.get("MAX_CONTENT_LENGTH")
    cut = limit is not None and request.content_length is None and len(data) >= limit
    if cut and request.environ["wsgi.input"].read(1):  # more follows the limit
        raise RequestEntityTooLarge(f"the body is over the limit of {limit} bytes")
    return data


def _first_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__


def _validation_message(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        where = ".".join(str(p) for p in err["loc"]) or "body"
        parts.append(f"{where}: {err['msg']}")
    return "; ".join(parts)


def _http_code(name: str | None) -> str:
    return (name or "error").lower().replace(" ", "_")


def _codes(cls: type[ApiError] | type[RagServerError]) -> set[str]:
    """The ``code`` of ``cls`` and of every subclass."""
    found = {cls.code}
    for sub in cls.__subclasses__():
        found |= _codes(sub)
    return found


def known_error_codes() -> frozenset[str]:
    """Every ``error.code`` this module can answer with (the metrics label takes only these)."""
    codes = {"invalid_request", "internal_error"}
    codes |= _codes(ApiError) | _codes(RagServerError)
    codes |= {_http_code(name) for name in HTTP_STATUS_CODES.values()}
    return frozenset(codes)


def register(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def _api(exc: ApiError) -> ResponseReturnValue:
        return jsonify(ErrorResponse.of(exc.code, exc.message).dump()), exc.status, exc.headers

    @app.errorhandler(ValidationError)
    def _invalid(exc: ValidationError) -> ResponseReturnValue:
        return error_response(400, "invalid_request", _validation_message(exc))

    @app.errorhandler(QueryError)
    def _query(exc: QueryError) -> ResponseReturnValue:
        return error_response(400, exc.code, str(exc))

    @app.errorhandler(IndexLoadError)
    @app.errorhandler(ModelError)
    def _unavailable(exc: RagServerError) -> ResponseReturnValue:
        log.error("backend unavailable", extra={"fields": {"error": str(exc)}})  # the full text, paths too
        return error_response(503, exc.code, f"the index or model is unavailable: {public_reason(exc)}")

    @app.errorhandler(BackendUnavailableError)
    def _backend(exc: BackendUnavailableError) -> ResponseReturnValue:
        log.error("search backend unavailable", extra={"fields": {"error": str(exc)}})
        return error_response(503, exc.code, f"the search backend is unavailable: {public_reason(exc)}")

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException) -> ResponseReturnValue:
        return error_response(exc.code or 500, _http_code(exc.name), exc.description or exc.name)

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> ResponseReturnValue:
        log.error("unhandled error", exc_info=exc)
        return error_response(500, "internal_error", "an internal error occurred")
