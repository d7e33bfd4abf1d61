"""Structured JSON logs with a request id; question text is never written in clear.

A question may hold personal data (a CPF, an e-mail, a health condition), so logs carry only
an HMAC-SHA256 of it (``query_hmac``) and its length. The key comes from ``RAG_LOG_HASH_KEY``
(the app's ``LOG_HASH_KEY``) or is drawn at random once per process: equal questions can be
correlated within a process's logs, but a hash cannot be reversed by hashing guesses without
the key.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
import sys
import uuid
from functools import cache

from flask import Flask, current_app, g

from ..jsonlog import JsonFormatter

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


@cache
def _process_key() -> bytes:
    return secrets.token_hex(32).encode()


def init_app(app: Flask) -> None:
    """Choose the key that stands for questions in ``app``'s logs."""
    configured = str(app.config.get("LOG_HASH_KEY") or "")
    app.extensions["rag_query_key"] = configured.encode() if configured else _process_key()


def query_digest(text: str, key: bytes) -> str:
    return hmac.new(key, text.encode("utf-8"), hashlib.sha256).hexdigest()[:24]


def note_query(text: str) -> None:
    """Record the request's question in its access-log fields: its HMAC and length, never the text."""
    g.log_fields = {"query_hmac": query_digest(text, current_app.extensions["rag_query_key"]), "query_chars": len(text)}


def request_id(incoming: str | None) -> str:
    """The caller's X-Request-ID when it is well-formed, else a fresh one."""
    if incoming and _REQUEST_ID.match(incoming):
        return incoming
    return uuid.uuid4().hex


def configure(level: str = "INFO") -> logging.Logger:
    logger = logging.getLogger("rag_server")
    if not any(isinstance(h.formatter, JsonFormatter) for h in logger.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonFormatter())
        logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False
    return logger
