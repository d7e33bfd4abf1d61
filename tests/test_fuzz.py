"""Property-based fuzz tests (hypothesis): text analysis, chunking, Markdown parsing, the prompt
assembler, the request schemas and the HTTP API never fail with an unexpected exception, and
keep their documented invariants on arbitrary input."""

from __future__ import annotations

import contextlib
import json
import time
from pathlib import Path
from typing import Any

import pydantic
import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from rag_server.analysis import Analyzer, detect_language, fold
from rag_server.api.schemas import AskRequest, ChatRequest, SearchRequest
from rag_server.chunking import chunk_document
from rag_server.documents import DOC_TYPES, Document, parse_markdown, parse_text
from rag_server.errors import CorpusError, EmptyQueryError, InvalidParameterError
from rag_server.passage import Passage
from rag_server.prompt import NO_PASSAGES, build_prompt, one_line
from rag_server.retrieval.base import Hit

from support import passage

# Every Unicode category, control characters included; st.text()'s default alphabet leaves out
# lone surrogates only, which a UTF-8 corpus file or JSON body can never hold.
ANY_TEXT = st.text()

# Fragments that steer random text into the structures the parsers look for.
_FRAGMENTS = [
    "Art. 1º ",
    "Art. 55-A ",
    "Artigo 7 ",
    "Article 3 ",
    "§ 1º ",
    "§ 2o ",
    "Parágrafo único. ",
    "I - ",
    "IV – ",
    "a) ",
    "CAPÍTULO I",
    "SEÇÃO II",
    "DISPOSIÇÕES GERAIS",
    "# ",
    "## Art. 7",
    "### Art. 7, § 1º",
    "#### ",
    "###### x ##",
    "---",
    "\n",
    "\n\n",
    "\r\n",
    "\r",
    " ",
    "\t",
    "\u2028",
    "\x85",
    "\x00",
    ". ",
    "! ",
    "? ",
    "; ",
    "palavra",
    "ação",
    "cafe\u0301",
    "Dados",
    "memory",
    "GPU",
    "日本語",
    "👩\u200d💻",
    "x" * 150,  # a "word" longer than the smallest size limit
]
STRUCTURED_TEXT = st.lists(st.sampled_from(_FRAGMENTS) | ANY_TEXT, max_size=40).map("".join)
FUZZ_TEXT = ANY_TEXT | STRUCTURED_TEXT


# --------------------------------------------------------------------------- analysis


def _check_tokens(tokens: Any) -> None:
    assert isinstance(tokens, list)
    for token in tokens:
        assert isinstance(token, str)
        assert token
        assert not any(ch.isspace() for ch in token), repr(token)


@settings(max_examples=150, deadline=None)
@given(text=FUZZ_TEXT, language=st.sampled_from([None, "pt", "en", "xx", ""]))
def test_analyzer_never_raises_and_is_deterministic(text: str, language: str | None) -> None:
    analyzer = Analyzer()
    tokens = analyzer.tokens(text, language)
    _check_tokens(tokens)
    assert analyzer.tokens(text, language) == tokens  # warm stem cache
    assert Analyzer().tokens(text, language) == tokens  # cold stem cache
    assert isinstance(fold(text), str)
    assert fold(text) == fold(text)
    assert detect_language(text) in ("pt", "en")
    assert detect_language(text) == detect_language(text)


@settings(max_examples=4, deadline=None)
@given(piece=st.text(min_size=1, max_size=40))
@example(piece="1")  # one 200k-digit "word": the article-suffix alternative of the token regex
@example(piece="ação de dados ")
def test_analyzer_on_a_huge_input_is_fast(piece: str) -> None:
    text = (piece * (200_000 // len(piece) + 1))[:200_000]
    started = time.perf_counter()
    tokens = Analyzer().tokens(text)
    language = detect_language(text)
    folded = fold(text)
    elapsed = time.perf_counter() - started
    _check_tokens(tokens)
    assert language in ("pt", "en")
    assert isinstance(folded, str)
    assert elapsed < 5.0, f"{elapsed:.2f}s for 200k characters of {piece!r}"


# --------------------------------------------------------------------------- chunking


def _words(text: str) -> set[str]:
    return set(text.replace("\r\n", "\n").replace("\r", "\n").split())


@st.composite
def documents(draw: st.DrawFn) -> Document:
    body = draw(FUZZ_TEXT).replace("\r\n", "\n").replace("\r", "\n")  # as _read_text leaves it
    fmt = draw(st.sampled_from(["markdown", "text", "beir", "text-parsed"]))
    if fmt == "text-parsed":  # parse_text decides between a statute ("law") and plain text
        return parse_text(body, "doc.txt")
    return Document(
        id="doc",
        title=draw(st.text(max_size=20)),
        language=draw(st.sampled_from(["pt", "en"])),
        type=draw(st.sampled_from(DOC_TYPES)),
        source="src",
        text=body,
        format=fmt,
        path="doc",
    )


@settings(max_examples=200, deadline=None)
@given(doc=documents(), max_chars=st.integers(100, 2000))
def test_chunk_document_properties(doc: Document, max_chars: int) -> None:
    passages = chunk_document(doc, max_chars)
    assert all(isinstance(p, Passage) for p in passages)

    ids = [p.id for p in passages]
    assert len(ids) == len(set(ids)), ids
    assert [p.id for p in chunk_document(doc, max_chars)] == ids  # stable
    assert all(p.id.startswith(f"{doc.id}#") and p.doc_id == doc.id for p in passages)

    source_words = _words(doc.text)
    long_words = [w for w in source_words if len(w) > max_chars]
    for p in passages:
        assert p.text and p.text.strip(), p
        assert len(p.text) <= max_chars, (len(p.text), max_chars)
        for word in _words(p.text):
            # No invented text: every word is from the input, or a piece of an input word that
            # was longer than the limit and had to be cut.
            assert word in source_words or any(word in w for w in long_words), word


# --------------------------------------------------------------------------- Markdown parsing


def _parse_or_corpus_error(text: str) -> Document | None:
    try:
        doc = parse_markdown(text, Path("doc.md"), "doc.md")
    except CorpusError as exc:
        assert exc.path == "doc.md"
        return None
    assert isinstance(doc, Document)
    assert doc.format == "markdown" and doc.language in ("pt", "en") and doc.type in DOC_TYPES
    return doc


@settings(max_examples=200, deadline=None)
@given(text=FUZZ_TEXT | st.builds(lambda rest: "---" + rest, FUZZ_TEXT))
def test_parse_markdown_gives_a_document_or_a_corpus_error(text: str) -> None:
    _parse_or_corpus_error(text)


_YAML_LINES = [
    "id: doc-1",
    "id: Not An Id",
    "id: 7",
    "title: Título",
    "title:",
    "language: pt",
    "language: fr",
    "type: law",
    "type: guide",
    "type: [1, 2]",
    "source: Lei 1/2000",
    "articles: ['7', '55-A']",
    "articles: 7",
    "articles:",
    "- item",
    "key: {a: 1}",
    "date: 2024-01-31",
    "date: 2024-13-01",  # matches YAML's timestamp pattern, but is no date
    "n: !!int x",
    "f: !!float abc",
    "t: !!timestamp foo",
    "b: !!binary '@@'",
    "o: !!python/object:os.system x",
    "a: &x 1",
    "b: *missing",
    ": :",
    "  bad indent: 1",
    "'unclosed",
    "[",
]


@st.composite
def front_matter_documents(draw: st.DrawFn) -> str:
    lines = draw(st.lists(st.sampled_from(_YAML_LINES) | st.text(max_size=20), max_size=8))
    close = draw(st.sampled_from(["---\n", "---", "--- \n", "", "--\n"]))
    return "---\n" + "\n".join(lines) + "\n" + close + draw(FUZZ_TEXT)


@settings(max_examples=200, deadline=None)
@given(text=front_matter_documents())
@example(text="---\ndate: 2024-13-01\n---\n")  # ValueError: month must be in 1..12
@example(text="---\nn: !!int x\n---\n")  # ValueError: invalid literal for int()
@example(text="---\nt: !!timestamp foo\n---\n")  # AttributeError: 'NoneType' ... 'groupdict'
@example(text="---\n" + "[" * 2000 + "\n---\n")  # RecursionError
def test_parse_markdown_front_matter_gives_a_document_or_a_corpus_error(text: str) -> None:
    _parse_or_corpus_error(text)


# --------------------------------------------------------------------------- prompt assembly


_PASSAGES = st.builds(
    passage,
    pid=st.sampled_from(["a#1", "a#2", "b#1", "c#9"]) | st.text(max_size=8),
    text=FUZZ_TEXT,
    title=ANY_TEXT,
    source=ANY_TEXT,
    article=st.none() | ANY_TEXT,
    provision=st.none() | ANY_TEXT,
)


@settings(max_examples=200, deadline=None)
@given(
    question=FUZZ_TEXT,
    passages=st.lists(_PASSAGES, max_size=8),
    budget=st.integers(-10, 3000) | st.integers(3000, 10**6),
)
def test_build_prompt_properties(question: str, passages: list[Passage], budget: int) -> None:
    hits = [Hit(rank=i, score=1.0 / i, passage=p) for i, p in enumerate(passages, start=1)]
    asked = one_line(question)
    minimum = len(f"Question: {asked}\nContext:\n{NO_PASSAGES}\nAnswer:")
    if not asked:
        with pytest.raises(EmptyQueryError):
            build_prompt(question, hits, budget)
        return
    if minimum > budget:
        with pytest.raises(InvalidParameterError):
            build_prompt(question, hits, budget)
        return
    prompt = build_prompt(question, hits, budget)
    assert len(prompt.text) <= budget
    lines = prompt.text.split("\n")
    assert prompt.text.splitlines() == lines  # no other line boundary smuggled in
    assert len(lines) == (3 + len(prompt.lines) if prompt.lines else 4)
    assert lines[0] == f"Question: {asked}" and lines[1] == "Context:" and lines[-1] == "Answer:"
    if not prompt.lines:
        assert lines[2:-1] == [NO_PASSAGES] and not prompt.citations
    assert [c.number for c in prompt.citations] == list(range(1, len(prompt.citations) + 1))
    for line, context in zip(lines[2:-1], prompt.lines, strict=bool(prompt.lines)):
        cited = prompt.citations[context.number - 1]
        assert line == f"[{cited.number}] ({cited.citation}) {context.text}"
        assert context.text == one_line(cited.text[context.span.start : context.span.end])
    prompt.text.encode("utf-8")
    assert build_prompt(question, list(hits), budget) == prompt  # deterministic


# --------------------------------------------------------------------------- request schemas and HTTP

_JSON_SCALARS = (
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=30)
)
JSON = st.recursive(
    _JSON_SCALARS,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12,
)
# Values close to valid ones, so validation gets past the first field more often.
_PLAUSIBLE = (
    st.sampled_from(
        [
            *("keyword", "bm25", "dense", "hybrid", "hybrid-convex", "pt", "en"),
            *("user", "system", "assistant", "tool"),
            *("GPU memory", "Qual o prazo?", "Art. 7", "", " ", "\x00", "the of and"),
        ]
    )
    | st.integers(-3, 120)
    | st.floats(-1.0, 3.0)
    | st.text(max_size=30)
)
VALUE = JSON | _PLAUSIBLE
_FILTERS = st.dictionaries(
    st.sampled_from(["language", "doc_type", "source", "article", "doc_id"]) | st.text(max_size=8),
    VALUE | st.lists(VALUE, max_size=3),
    max_size=3,
)
_MESSAGE = st.fixed_dictionaries({"role": VALUE}, optional={"content": VALUE, "name": VALUE}) | JSON
_FIELDS = {
    "query": VALUE,
    "question": VALUE,
    "strategy": VALUE,
    "k": VALUE,
    "lang": VALUE,
    "filters": _FILTERS | VALUE,
    "max_new_chars": VALUE,
    "temperature": VALUE,
    "seed": VALUE,
    "messages": st.lists(_MESSAGE, max_size=3) | VALUE,
    "model": VALUE,
    "stream": VALUE,
    "max_tokens": VALUE,
    "max_completion_tokens": VALUE,
}
BODY = JSON | st.fixed_dictionaries({}, optional=_FIELDS)

_MODELS = {"/v1/search": SearchRequest, "/v1/ask": AskRequest, "/v1/chat/completions": ChatRequest}


@settings(max_examples=300, deadline=None)
@given(model=st.sampled_from(list(_MODELS.values())), value=BODY)
def test_request_models_validate_or_raise_validation_error(model: type[pydantic.BaseModel], value: Any) -> None:
    try:
        parsed = model.model_validate(value)
    except pydantic.ValidationError:
        return
    assert isinstance(parsed, model)
    if isinstance(parsed, ChatRequest):
        with contextlib.suppress(ValueError):  # documented: no user message with text
            parsed.question()


def _check_response(response: Any) -> None:
    assert response.status_code < 500, (response.status_code, response.get_data(as_text=True)[:500])
    if response.status_code >= 400:
        body = response.get_json(silent=True)
        assert isinstance(body, dict), response.get_data(as_text=True)[:500]
        error = body.get("error")
        assert isinstance(error, dict) and set(error) >= {"code", "message"}, body
        assert isinstance(error["code"], str) and isinstance(error["message"], str), body


_WORDS = ["GPU", "memory", "prazo", "comunicar", "dados", "the", "of", "Art. 7", "§ 1º", " ", "?", "ação"]
_QUERY = st.lists(st.sampled_from(_WORDS), min_size=1, max_size=8).map(" ".join) | FUZZ_TEXT
_GOOD_FILTERS = st.dictionaries(
    st.sampled_from(["language", "doc_type", "source", "article", "doc_id"]),
    st.sampled_from(["pt", "en", "law", "guide", "7", "55-A", "gpu-guide-en"])
    | st.lists(st.sampled_from(["pt", "en", "law", "7"]), min_size=1, max_size=2),
    max_size=2,
)
_STRATEGY = st.sampled_from(["keyword", "bm25", "dense", "hybrid", "hybrid-convex"])
# Bodies of the right shape with in-range values (BODY covers wrong types and ranges), so that
# requests also get past validation and reach the pipeline and its answers.
_NEAR_VALID = {
    "/v1/search": st.fixed_dictionaries(
        {"query": _QUERY},
        optional={"strategy": _STRATEGY, "k": st.integers(1, 100), "filters": _GOOD_FILTERS},
    ),
    "/v1/ask": st.fixed_dictionaries(
        {"question": _QUERY},
        optional={
            "strategy": _STRATEGY,
            "k": st.integers(1, 20),
            "lang": st.sampled_from(["pt", "en"]),
            "filters": _GOOD_FILTERS,
            "max_new_chars": st.integers(1, 1000),
            "temperature": st.floats(0.0, 2.0),
            "seed": st.integers(0, 2**31 - 1),
        },
    ),
    "/v1/chat/completions": st.fixed_dictionaries(
        {
            "messages": st.lists(
                st.fixed_dictionaries(
                    {"role": st.sampled_from(["user", "user", "system", "assistant", "tool"])},
                    optional={"content": _QUERY},
                ),
                min_size=1,
                max_size=3,
            )
        },
        optional={
            "stream": st.booleans(),
            "model": st.text(max_size=10),
            "strategy": _STRATEGY,
            "k": st.integers(1, 20),
            "temperature": st.floats(0.0, 2.0),
            "max_tokens": st.integers(1, 1000),
            "max_completion_tokens": st.integers(1, 1000),
            "seed": st.integers(0, 2**31 - 1),
        },
    ),
}
_REQUESTS = st.one_of(
    st.tuples(st.sampled_from(list(_MODELS)), BODY),
    *(st.tuples(st.just(path), near) for path, near in _NEAR_VALID.items()),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(request=_REQUESTS)
def test_api_never_fails_with_a_server_error(client: Any, request: tuple[str, Any]) -> None:
    path, body = request
    # Encoded by the standard library, as any client may send it (integers of any size, too).
    response = client.post(path, data=json.dumps(body), content_type="application/json")
    event(f"{path} -> {response.status_code}")  # see --hypothesis-show-statistics
    _check_response(response)
    if response.status_code == 200:
        response.get_data()  # drain a streamed chat completion too


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(path=st.sampled_from(list(_MODELS)), data=st.binary(max_size=64) | st.text(max_size=64).map(str.encode))
def test_api_rejects_malformed_json_with_a_client_error(client: Any, path: str, data: bytes) -> None:
    response = client.post(path, data=data, content_type="application/json")
    _check_response(response)


# Deep nesting (issue #14, case 1): orjson stops at 1024 levels and the standard library's
# recursive parser then raises RecursionError; every depth must give a JSON 4xx.
_OPENERS = st.sampled_from(["[", '{"a":', '{"question":', '{"messages":'])


@st.composite
def nested_bodies(draw: st.DrawFn) -> str:
    opener = draw(_OPENERS)
    depth = draw(st.integers(1000, 40_000))
    closer = {"[": "]"}.get(opener, "}")
    inner = draw(st.sampled_from(["", "1", '"x"', "[]", "{}"]))
    closed = draw(st.booleans())
    return opener * depth + inner + (closer * depth if closed else "")


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(path=st.sampled_from(list(_MODELS)), body=nested_bodies())
@example(path="/v1/ask", body='{"question":' + "[" * 1100 + "]" * 1100 + "}")
@example(path="/v1/ask", body="[" * 30000)
def test_api_deep_nesting_is_a_client_error(client: Any, path: str, body: str) -> None:
    response = client.post(path, data=body, content_type="application/json")
    _check_response(response)
    assert response.status_code in (400, 413)  # 413 when the body is over the 64 KiB limit


# Lone surrogates (issue #14, case 2): escaped by json.dumps or sent as raw (surrogatepass)
# bytes, anywhere in a body; the standard library accepts them, the API must refuse them.
_WITH_SURROGATE = st.lists(st.characters(categories=["Cs"]) | st.text(max_size=5), min_size=1, max_size=6).map("".join)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@example(path="/v1/search", text="\ud800\udc00", where="query", raw=False, stream=False)  # a pair: U+10000
@example(path="/v1/search", text="\ud800\udc00", where="query", raw=True, stream=False)  # its halves as bytes
@example(path="/v1/search", text="a\udc00", where="query", raw=False, stream=False)  # a lone low half
@given(
    path=st.sampled_from(list(_MODELS)),
    text=_WITH_SURROGATE,
    where=st.sampled_from(["query", "question", "message", "key"]),
    raw=st.booleans(),
    stream=st.booleans(),
)
def test_api_lone_surrogates_are_a_client_error(  # type: ignore[no-untyped-def]
    client, path: str, text: str, where: str, raw: bool, stream: bool
) -> None:
    body: Any = {"query": text} if where == "query" else {"question": text}
    if where == "message":
        body = {"messages": [{"role": "user", "content": text}], "stream": stream}
    elif where == "key":
        body = {"messages": [{"role": "user", "content": "dados"}], text: 1}
    data = json.dumps(body, ensure_ascii=not raw).encode("utf-8", "surrogatepass")
    response = client.post(path, data=data, content_type="application/json")
    _check_response(response)
    response.get_data()  # drain a stream
    # Escaped (ensure_ascii), a high surrogate followed by a low one is a valid JSON pair: one
    # character past the BMP, which the API accepts. Raw bytes carry each half on its own:
    # invalid UTF-8, always refused.
    arrives_as = text if raw else json.loads(json.dumps(text))
    if any("\ud800" <= ch <= "\udfff" for ch in arrives_as):
        assert response.status_code == 400


# Metric labels (issue #14, case 3): any method token a client sends, on any path, adds no
# label value outside the known sets.
_TOKEN = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789!#$%&'*+-.^_`|~", min_size=1)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(method=_TOKEN | st.sampled_from(["GET", "POST", "HEAD", "OPTIONS", "PUT"]), path=st.sampled_from(
    ["/v1/ask", "/v1/search", "/healthz", "/metrics", "/", "/web/app.js", "/nowhere"]
))
def test_metric_labels_stay_bounded_whatever_the_method(client: Any, method: str, path: str) -> None:
    import re

    from rag_server.api.metrics import METHODS, OTHER, STATUSES

    response = client.open(path, method=method)
    assert response.status_code < 500
    text = client.get("/metrics").get_data(as_text=True)
    assert set(re.findall(r'method="([^"]*)"', text)) <= METHODS | {OTHER}
    assert set(re.findall(r'status="([^"]*)"', text)) <= STATUSES | {OTHER}
    assert set(re.findall(r'endpoint="([^"]*)"', text)) <= {r.rule for r in client.application.url_map.iter_rules()} | {
        "unmatched"
    }


# Over-long questions (issue #14, case 10): what fit_question leaves always fits the budget,
# and is the start of the flattened question.
@settings(max_examples=150, deadline=None)
@given(question=FUZZ_TEXT, budget=st.integers(45, 3000), passages=st.lists(_PASSAGES, max_size=3))
def test_fit_question_always_fits_the_budget(question: str, budget: int, passages: list[Passage]) -> None:
    from rag_server.pipeline import fit_question

    asked, cut = fit_question(question, budget)
    if not one_line(question):
        return
    hits = [Hit(rank=i, score=1.0, passage=p) for i, p in enumerate(passages, start=1)]
    prompt = build_prompt(asked, hits, budget)
    assert len(prompt.text) <= budget
    assert one_line(question).startswith(one_line(asked))
    assert cut == (one_line(asked) != one_line(question))


# Slow clients (issue #14, case 4): whatever mix of idle, slow-header and slow-body connections
# is held open against the served stack's 4 threads, a normal request is answered.
@settings(max_examples=4, deadline=None)
@given(
    count=st.integers(4, 24),
    kinds=st.lists(st.sampled_from(["idle", "headers", "body"]), min_size=1, max_size=3, unique=True),
)
def test_slow_clients_never_starve_the_server(server: str, count: int, kinds: list[str]) -> None:
    from urllib.parse import urlsplit

    from support.devserver import HostileClients, post_json

    port = urlsplit(server).port
    assert port is not None
    with HostileClients(port, count, trickle=0.5, kinds=kinds):
        status, body = post_json(server + "/v1/search", {"query": "dados pessoais", "strategy": "bm25"}, timeout=30)
    assert status == 200 and body["hits"]
