"""Structured JSON logs with a request id; question text is never written in clear.

A question may hold personal data (a CPF, an e-mail, a health condition), so logs carry only
an HMAC-SHA256 of it (``query_hmac``) and its length. The key comes from ``RAG_LOG_HASH_KEY``
or is drawn at random per process: equal questions can be correlated within a process's logs,
but a hash cannot be reversed by hashing guesses without the key.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import re
import secrets
import sys
import uuid

from ..jsonlog import JsonFormatter

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_KEY = (os.environ.get("RAG_LOG_HASH_KEY") or secrets.token_hex(32)).encode()


def query_digest(text: str) -> str:
    return hmac.new(_KEY, text.encode("utf-8"), hashlib.sha256).hexdigest()[:24]


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
