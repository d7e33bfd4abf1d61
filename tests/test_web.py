"""The web page end to end: Debian's headless Chromium, driven by Playwright, against the server.

The browser is the system one (``/usr/bin/chromium``, installed by ``make browser``); Playwright
never downloads one. Screenshots are kept in ``artifacts/screenshots/``.
"""

from __future__ import annotations

import json
import os
import shutil
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path(os.environ.get("RAG_TEST_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ROOT = Path(__file__).resolve().parents[1]
SCREENSHOTS = ROOT / "artifacts" / "screenshots"
README_SCREENSHOT = ROOT / "docs" / "screenshot.png"
ON_TOPIC = "Who bears the burden of proving that consent was obtained?"
OFF_TOPIC = "How do I bake sourdough bread at home?"
TIMEOUT_MS = 30_000


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    # A missing browser or driver is a broken setup, not a reason to skip: fail and say how to fix it.
    if not CHROMIUM.is_file():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (`make browser`, or apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("the playwright package is missing: .venv/bin/pip install -e '.[dev]' (never `playwright install`)")
    with sync_playwright() as pw:
        launched = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def warm_server(server: str) -> str:
    """One question first, so the model is warm and the screenshots show typical timings."""
    body = json.dumps({"question": ON_TOPIC}).encode()
    request = urllib.request.Request(server + "/v1/ask", data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as r:
        assert r.status == 200
    return server


@pytest.fixture
def page(browser: Any, warm_server: str) -> Iterator[Any]:
    """A fresh English page (its own context: no stored language choice) with the strategies loaded."""
    context = browser.new_context(locale="en-US", viewport={"width": 1200, "height": 900})
    context.set_default_timeout(TIMEOUT_MS)
    # Anything not on the test server is refused: the page must not need another origin.
    context.route(lambda url: not url.startswith(warm_server), lambda route: route.abort())
    p = context.new_page()
    p.console_errors = []  # type: ignore[attr-defined]
    p.on("console", lambda m: p.console_errors.append(m.text) if m.type == "error" else None)  # type: ignore[attr-defined]
    p.goto(warm_server + "/")
    p.wait_for_selector("#strategy option:checked", state="attached")
    yield p
    context.close()


def _shot(page: Any, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def _ask(page: Any, question: str) -> None:
    page.fill("#question", question)
    page.click("#submit")
    page.wait_for_selector("#result:not([hidden]), #error:not([hidden])")


def test_every_answer_sentence_is_marked_in_its_citation(page: Any) -> None:
    """A two-sentence answer has two sources: each is marked inside its own citation, which opens.
    The server's response is kept, with a second source added on another citation's first
    sentence, so the page is tested on the shape whatever the ranking does."""
    added: dict[str, Any] = {}

    def two_sources(route: Any) -> None:
        body = route.fetch().json()
        second = body["citations"][1]
        span = second["sentences"][0]
        added.update(
            number=second["number"],
            passage_id=second["passage_id"],
            start=span["start"],
            end=span["end"],
            sentence=second["text"][span["start"] : span["end"]],
        )
        body["sources"] = [body["source"], dict(added)]
        route.fulfill(json=body)

    page.route("**/v1/ask", two_sources)
    _ask(page, ON_TOPIC)
    assert page.is_hidden("#error"), page.text_content("#error")
    sources = page.locator("#citations li.answer-source")
    assert sources.count() == 2
    marks = page.locator("#citations li.answer-source blockquote.passage mark.source-sentence")
    assert marks.count() == 2 and marks.nth(1).is_visible()
    assert " ".join(marks.nth(1).inner_text().split()) == " ".join(added["sentence"].split())


def test_answer_with_citations_prompt_and_build_id(page: Any) -> None:
    assert page.input_value("#strategy") == "hybrid-convex"  # the server's default strategy
    assert page.locator("#strategy option").count() == 5
    _ask(page, ON_TOPIC)
    assert page.is_hidden("#error"), page.text_content("#error")
    assert page.is_hidden("#unsupported")
    answer = page.text_content("#answer") or ""
    assert answer.strip() and answer != "(no answer)"

    citations = page.locator("#citations li.citation")
    assert citations.count() >= 1
    first = citations.nth(0)
    summary = first.locator("summary").inner_text()
    assert summary.startswith("[1] ") and " — " in summary and summary.endswith(")")
    # The citation the answer came from is open, with the answer's sentence marked in its passage.
    source = page.locator("#citations li.answer-source")
    assert source.count() == 1
    mark = source.locator("blockquote.passage mark.source-sentence")
    assert mark.is_visible() and answer.strip().removesuffix("…")[:30] in mark.inner_text()
    # The others stay collapsed until clicked.
    others = page.locator("#citations li.citation:not(.answer-source)")
    if others.count():
        passage = others.nth(0).locator("blockquote.passage")
        assert not passage.is_visible()
        others.nth(0).locator("summary").click()
        assert passage.is_visible() and len(passage.inner_text().strip()) > 20

    assert page.locator("#prompt-details").count() == 1
    assert not page.is_visible("#prompt")
    page.click("#prompt-details summary")
    prompt = page.inner_text("#prompt")
    assert ON_TOPIC in prompt and "[1]" in prompt

    build_id = page.text_content("#build-id") or ""
    assert build_id.strip()
    assert build_id in (page.text_content("#server-state") or "")
    assert " ms" in (page.text_content("#timings") or "")
    assert page.console_errors == []
    shot = _shot(page, "answer-en")
    if not README_SCREENSHOT.exists() or os.environ.get("RAG_UPDATE_SCREENSHOT"):
        README_SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, README_SCREENSHOT)


def test_empty_question_shows_validation_and_sends_nothing(page: Any) -> None:
    asked: list[str] = []
    page.on("request", lambda r: asked.append(r.url) if "/v1/ask" in r.url else None)
    page.fill("#question", "   ")
    page.click("#submit")
    page.wait_for_selector("#question-error:not([hidden])")
    assert page.text_content("#question-error") == "Please type a question."
    assert page.get_attribute("#question", "aria-invalid") == "true"
    page.wait_for_timeout(300)
    assert asked == []
    assert page.is_hidden("#result")
    _shot(page, "validation-en")


def test_switch_the_page_language(page: Any) -> None:
    assert page.inner_text("#submit") == "Ask"
    assert page.get_attribute("html", "lang") == "en"
    page.click("button[data-ui-lang='pt']")
    assert page.inner_text("#submit") == "Perguntar"
    assert page.inner_text("label[for='question']") == "Pergunta"
    assert page.inner_text("label[for='lang']") == "Idioma dos trechos"
    assert page.get_attribute("html", "lang") == "pt-BR"
    assert page.get_attribute("button[data-ui-lang='pt']", "aria-pressed") == "true"
    # The passage-language selector is separate from the page language: still "any".
    assert page.input_value("#lang") == ""
    page.click("#submit")
    assert page.text_content("#question-error") == "Digite uma pergunta."
    _ask(page, "Quem prova que o consentimento foi obtido?")
    assert page.inner_text("#citations-heading") == "Citações"
    _shot(page, "answer-pt")
    # The choice is remembered, and switching back re-labels the shown result.
    page.reload()
    page.wait_for_selector("#strategy option:checked", state="attached")
    assert page.inner_text("#submit") == "Perguntar"
    page.click("button[data-ui-lang='en']")
    assert page.inner_text("#submit") == "Ask"


def test_portuguese_browser_gets_portuguese_labels(browser: Any, server: str) -> None:
    context = browser.new_context(locale="pt-BR")
    try:
        p = context.new_page()
        p.goto(server + "/")
        p.wait_for_selector("#strategy option:checked", state="attached")
        assert p.inner_text("#submit") == "Perguntar"
        assert "(padrão)" in p.inner_text("#strategy option:checked")
    finally:
        context.close()


def test_off_topic_question_shows_the_unsupported_notice(page: Any) -> None:
    _ask(page, OFF_TOPIC)
    assert page.is_visible("#unsupported")
    notice = page.inner_text("#unsupported")
    assert "Not supported by the evidence." in notice
    assert "enough evidence" in notice  # the server's own message
    assert page.inner_text("#answer") == "(no answer)"
    assert page.inner_text("#citations-heading") == "Closest passages"
    _shot(page, "unsupported-en")


def test_api_errors_are_shown_inline(page: Any) -> None:
    # A question over the server's limit (the textarea caps typing, so set the value directly).
    page.eval_on_selector("#question", "(el) => { el.removeAttribute('maxlength'); el.value = 'x'.repeat(2500); }")
    page.click("#submit")
    page.wait_for_selector("#error:not([hidden])")
    text = page.inner_text("#error")
    assert "400" in text and "invalid_request" in text and "question" in text
    assert page.is_hidden("#result")
    _shot(page, "error-en")


def test_page_is_self_contained(server: str) -> None:
    with urllib.request.urlopen(server + "/", timeout=10) as r:
        html = r.read().decode()
        assert r.headers["Content-Type"].startswith("text/html")
        assert "default-src 'none'" in r.headers["Content-Security-Policy"]
    assert "http://" not in html and "https://" not in html
    for asset in ("web/app.js", "web/style.css"):
        assert asset in html
        with urllib.request.urlopen(f"{server}/{asset}", timeout=10) as r:
            assert r.status == 200
            body = r.read().decode()
        assert "http://" not in body and "https://" not in body and "@import" not in body


def test_the_page_asks_for_the_api_key_when_the_server_requires_one(browser: Any, tmp_path: Path) -> None:
    """RAG_API_KEYS on (issue #14, case 18): the page asks for the key once, then works with it."""
    import threading

    from werkzeug.serving import make_server

    from rag_server.api import create_app
    from rag_server.build import BuildConfig, build_index
    from rag_server.pipeline import RagPipeline

    from support import FIXTURES, FakeEncoder

    encoder = FakeEncoder()
    build_index(BuildConfig([FIXTURES / "corpus"], tmp_path / "indexes", progress=False), encoder=encoder)
    pipeline = RagPipeline(tmp_path / "indexes", encoder=encoder, support_threshold=0.0)
    app = create_app({"PIPELINE": pipeline, "API_KEYS": "page-key-123"})
    httpd = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{httpd.server_port}"
    context = browser.new_context(locale="en-US")
    try:
        context.set_default_timeout(TIMEOUT_MS)
        p = context.new_page()
        asked: list[str] = []

        def answer(dialog: Any) -> None:
            asked.append(dialog.message)
            dialog.accept("page-key-123")

        p.on("dialog", answer)
        p.goto(base + "/")
        p.wait_for_selector("#strategy option:checked", state="attached")
        assert len(asked) == 1 and "API key" in asked[0]
        _ask(p, ON_TOPIC)
        assert p.is_hidden("#error"), p.text_content("#error")
        assert (p.text_content("#answer") or "").strip()
        assert len(asked) == 1  # the key is kept for the tab
    finally:
        context.close()
        httpd.shutdown()
