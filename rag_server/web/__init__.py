"""The web page: one static HTML page (plus its script and style sheet) served at ``/``.

Everything ships inside the package; there is no build step and nothing is loaded from
another origin (the Content-Security-Policy below says so to the browser as well). The page
talks to the same app's JSON API (``GET /v1/strategies``, ``POST /v1/ask``, ``GET /readyz``).
"""

from __future__ import annotations

from flask import Blueprint, Response

web = Blueprint("web", __name__, static_folder="static", static_url_path="/web")

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


@web.get("/")
def index() -> Response:
    response = web.send_static_file("index.html")
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = "no-cache"
    return response
