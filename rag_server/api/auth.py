"""Optional API keys for ``/v1/*`` (RAG_API_KEYS) and a separate token for ``/metrics``
(RAG_METRICS_TOKEN). Both are off by default.

``RAG_API_KEYS`` is a comma-separated list of keys, or of ``sha256:<hex>`` digests of keys, or
``@<file>``: a file of sha256 hex digests, one per line, optionally followed by a name (``#``
starts a comment), e.g. made with ``printf %s "$KEY" | sha256sum >> keys.sha256``. Only the
digests are kept in memory. A request presents its key as ``Authorization: Bearer <key>``; its
digest is compared with every configured digest in constant time (``hmac.compare_digest``, no
early exit). Keys are never logged: the access log
holds no header. ``/healthz``, ``/readyz``, ``/openapi.json``, ``/docs`` and the page's static
files stay open (they hold no data; the page asks for a key when the API answers 401);
``/v1/admin/reload`` has its own token (RAG_ADMIN_TOKEN).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable
from pathlib import Path

from flask import request

_DIGEST = re.compile(r"^[0-9a-fA-F]{64}$")


def digest(key: str | bytes) -> bytes:
    return hashlib.sha256(key.encode("utf-8") if isinstance(key, str) else key).digest()


def parse_api_keys(value: str) -> frozenset[bytes]:
    """The sha256 digests of the keys ``value`` configures; ValueError for a malformed file or
    digest (a server must not start with an authentication setting it cannot read)."""
    value = value.strip()
    if not value:
        return frozenset()
    if value.startswith("@"):
        path = Path(value[1:])
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise ValueError(f"RAG_API_KEYS: cannot read the key file {path}: {exc.strerror}") from None
        found = set()
        for number, line in enumerate(lines, start=1):
            fields = line.split("#", 1)[0].split()  # sha256sum's "<digest>  <name>" lines too
            if not fields:
                continue
            entry = fields[0].removeprefix("sha256:")
            if not _DIGEST.match(entry):
                raise ValueError(f"RAG_API_KEYS: {path}, line {number}: not a sha256 hex digest")
            found.add(bytes.fromhex(entry))
        if not found:
            raise ValueError(f"RAG_API_KEYS: {path} holds no key digest")
        return frozenset(found)
    digests = set()
    for entry in (e.strip() for e in value.split(",")):
        if not entry:
            continue
        if entry.startswith("sha256:"):
            if not _DIGEST.match(entry[7:]):
                raise ValueError("RAG_API_KEYS: a sha256: entry is not a sha256 hex digest")
            digests.add(bytes.fromhex(entry[7:]))
        else:
            digests.add(digest(entry))
    return frozenset(digests)


def bearer_token() -> bytes | None:
    """The raw bytes of the request's bearer token, or None."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return None
    return token.encode("latin-1", "replace")  # WSGI headers are latin-1: these are the bytes sent


def matches_any(token: bytes | None, digests: Iterable[bytes]) -> bool:
    """Whether ``token``'s digest is one of ``digests``, comparing with every one of them."""
    presented = digest(token if token is not None else b"")
    found = False
    for expected in digests:
        found |= hmac.compare_digest(presented, expected)
    return found and bool(token)
