"""The Milvus backend beyond the retriever contract (tests/test_retrieval.py runs that on both
backends): builds into collections, the alias switch, pruning, interrupted and killed builds,
the API on Milvus, and Milvus failing at start or under a running app (503, never 500)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from rag_server.build import BuildConfig
from rag_server.errors import BackendUnavailableError, ConfigError, UnknownStrategyError
from rag_server.milvus import MILVUS, MilvusConnection, MilvusSettings, MilvusSource
from rag_server.milvus.build import build_into_milvus
from rag_server.milvus.schema import filter_expression

from support import FIXTURES, FakeEncoder
from support.devserver import free_port
from support.milvus_server import MilvusLiteServer

TESTS = Path(__file__).resolve().parent


def _build(settings: MilvusSettings, root: Path, corpus: Path = FIXTURES / "corpus", **options: object):  # type: ignore[no-untyped-def]
    config = BuildConfig([corpus], root, progress=False, **options)  # type: ignore[arg-type]
    return build_into_milvus(config, settings, encoder=FakeEncoder())


def _with_alias(settings: MilvusSettings, alias: str) -> MilvusSettings:
    return MilvusSettings(uri=settings.uri, alias=alias, timeout_s=settings.timeout_s, alias_ttl_s=0)


def test_a_build_is_verified_switched_in_and_older_ones_pruned(milvus_settings, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    settings = _with_alias(milvus_settings, "prune_test")
    conn = MilvusConnection(settings)
    made = [_build(settings, tmp_path, keep_builds=2) for _ in range(3)]
    assert conn.alias_target("prune_test") == made[-1].collection
    ours = sorted(n for n in conn.collections() if n.startswith("prune_test_b_"))
    assert ours == [made[1].collection, made[2].collection]  # the oldest pruned, two kept
    tables = sorted(n for n in conn.collections() if n.startswith("prune_test_t_"))
    assert tables == [m.manifest["terms_collection"] for m in made[1:]]  # term tables go with their build
    manifest = conn.manifest(made[-1].collection)
    assert manifest is not None and manifest["passage_count"] == 15 and manifest["build_id"] == made[-1].build_id
    assert manifest["embedding"]["model"] == "fake-hash-encoder" and manifest["indexes"] == ["bm25", "dense"]
    served = MilvusSource(settings).open()
    assert served.build_id == made[-1].build_id and served.holds("dense") and not served.holds("keyword")


def test_a_failed_build_leaves_the_alias_and_drops_its_collection(  # type: ignore[no-untyped-def]
    milvus_settings, milvus_build, tmp_path: Path
) -> None:
    """On the session's shared alias: a failed build changes nothing the other tests read."""
    conn = MilvusConnection(milvus_settings)
    prefix = f"{milvus_settings.alias}_b_"
    before = sorted(n for n in conn.collections() if n.startswith(prefix))
    assert milvus_build.collection in before

    def fail(stage: str) -> None:
        if stage == "insert-batch":
            raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        build_into_milvus(
            BuildConfig([FIXTURES / "corpus"], tmp_path, progress=False),
            milvus_settings,
            FakeEncoder(),
            after_stage=fail,
        )
    assert conn.alias_target(milvus_settings.alias) == milvus_build.collection
    assert sorted(n for n in conn.collections() if n.startswith(prefix)) == before


def test_a_model_other_than_the_builds_is_refused(milvus_build) -> None:  # type: ignore[no-untyped-def]
    from rag_server.errors import ModelError

    class Other(FakeEncoder):
        name = "another-model"
        checksum = "a" * 64

    with pytest.raises(ModelError):
        MILVUS.make("dense", milvus_build, encoder=Other())


def test_term_idf_equals_the_local_builds(milvus_build, built) -> None:  # type: ignore[no-untyped-def]
    """The evidence ranker weighs question terms by the same idf on both backends."""
    from rag_server.evidence import okapi_idf
    from rag_server.loader import IndexBuild

    local = IndexBuild.load(built.path)
    idf = milvus_build.term_idf()
    matrix = local.bm25.matrix
    doc_freq = matrix.doc_freq().tolist()
    terms = local.analyzer.tokens("consentimento do titular, incidente e servidores de GPU", "pt")
    assert len(terms) >= 4 and all(t in matrix.vocab for t in terms)
    for term in terms:
        assert idf(term) == pytest.approx(okapi_idf(doc_freq[matrix.vocab[term]], len(local.passages))), term
    assert idf("nosuchtermanywhere") == 0.0


def test_milvus_native_rrf_equals_the_local_fusion(milvus_build, fake_encoder) -> None:  # type: ignore[no-untyped-def]
    native = MILVUS.make("hybrid", milvus_build, encoder=fake_encoder, native=True)
    fused = MILVUS.make("hybrid", milvus_build, encoder=fake_encoder)
    for query, filters in [("consentimento do titular", None), ("GPU dedicada", {"language": "pt"})]:
        ours = {h.passage_id: h.score for h in fused.search(query, k=100, filters=filters)}
        theirs = {h.passage_id: h.score for h in native.search(query, k=100, filters=filters)}
        assert theirs.keys() == ours.keys()
        assert all(theirs[p] == pytest.approx(ours[p], rel=1e-5) for p in ours)


def test_keyword_is_local_only_and_says_so(milvus_build) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(UnknownStrategyError, match=r"valid strategies: \['bm25', 'dense', 'hybrid', 'hybrid-convex'\]"):
        MILVUS.make("keyword", milvus_build)


def test_filter_values_are_quoted_not_spliced(milvus_build, fake_encoder) -> None:  # type: ignore[no-untyped-def]
    hostile = 'x"] or language in ["pt'
    assert filter_expression({"source": hostile}) == 'source in ["x\\"] or language in [\\"pt"]'
    retriever = MILVUS.make("bm25", milvus_build, encoder=fake_encoder)
    assert retriever.search("consentimento dados", k=5, filters={"source": hostile}) == []
    assert retriever.search("consentimento dados", k=5, filters={"source": "Lei 99.999/2030"})


@pytest.mark.parametrize("uri", ["", "relative/dir", "ftp://host"])
def test_bad_uris_are_refused_with_one_line(uri: str) -> None:
    with pytest.raises(ConfigError, match="RAG_MILVUS_URI"):
        MilvusSettings(uri=uri)


def test_the_api_serves_milvus(milvus_settings, milvus_build, tmp_path: Path, fake_encoder) -> None:  # type: ignore[no-untyped-def]
    from rag_server.api import create_app
    from rag_server.pipeline import RagPipeline

    pipeline = RagPipeline(tmp_path, encoder=fake_encoder, support_threshold=0.0, milvus=milvus_settings)
    client = create_app({"PIPELINE": pipeline, "BACKEND": "milvus", "TESTING": True}).test_client()
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json["build_id"] == milvus_build.build_id
    assert ready.json["backend"] == "milvus"
    found = client.post("/v1/search", json={"query": "consentimento do titular", "k": 3, "filters": {"language": "pt"}})
    assert found.status_code == 200 and found.json["build_id"] == milvus_build.build_id
    assert found.json["hits"] and all(h["language"] == "pt" for h in found.json["hits"])
    asked = client.post("/v1/ask", json={"question": "Quem deve comunicar um incidente de segurança?"})
    assert asked.status_code == 200 and asked.json["citations"] and asked.json["answer"]
    chat = client.post(
        "/v1/chat/completions", json={"messages": [{"role": "user", "content": "O que é GPU dedicada?"}]}
    )
    assert chat.status_code == 200 and chat.json["choices"][0]["message"]["content"]
    assert client.get("/").status_code == 200  # the page
    keyword = client.post("/v1/search", json={"query": "consentimento", "strategy": "keyword"})
    assert keyword.status_code == 400 and "valid strategies: ['bm25'" in keyword.json["error"]["message"]
    strategies = client.get("/v1/strategies").json
    listed = {s["name"]: s for s in strategies["strategies"]}
    assert strategies["backend"] == "milvus" and strategies["default"] == "hybrid-convex"
    keyword_row = listed["keyword"]
    assert keyword_row["available"] is False and "not served by the milvus backend" in keyword_row["description"]
    assert all(listed[name]["available"] for name in ("bm25", "dense", "hybrid", "hybrid-convex"))
    assert client.get("/v1/index").json["backend"] == "milvus"


def test_milvus_unreachable_at_start_is_a_503_naming_it(fake_encoder) -> None:  # type: ignore[no-untyped-def]
    from rag_server.api import create_app

    port = free_port()
    settings = MilvusSettings(uri=f"http://127.0.0.1:{port}", timeout_s=1)
    app = create_app(
        {
            "BACKEND": "milvus",
            "MILVUS": settings,
            "ENCODER": fake_encoder,
            "GENERATOR_CHECKPOINT": "none",
            "TESTING": True,
        }
    )
    client = app.test_client()
    ready = client.get("/readyz")
    assert ready.status_code == 503 and f"milvus at http://127.0.0.1:{port}" in ready.json["reason"]
    search = client.post("/v1/search", json={"query": "consentimento"})
    assert search.status_code == 503 and f"127.0.0.1:{port}" in search.json["error"]["message"]


def test_milvus_dying_under_a_running_app_is_a_503_then_it_recovers(  # type: ignore[no-untyped-def]
    milvus_server: MilvusLiteServer, tmp_path: Path, fake_encoder
) -> None:
    from rag_server.api import create_app
    from rag_server.pipeline import RagPipeline

    settings = MilvusSettings(uri=milvus_server.uri, timeout_s=2)
    _build(settings, tmp_path / "cache")
    pipeline = RagPipeline(tmp_path, encoder=fake_encoder, support_threshold=0.0, milvus=settings)
    client = create_app({"PIPELINE": pipeline, "BACKEND": "milvus", "TESTING": True}).test_client()
    body = {"query": "consentimento do titular", "strategy": "hybrid"}
    assert client.post("/v1/search", json=body).status_code == 200
    milvus_server.kill()
    for path in ("/v1/search", "/v1/ask"):
        failed = client.post(path, json=body if path == "/v1/search" else {"question": body["query"]})
        assert failed.status_code == 503, failed.json
        assert failed.json["error"]["code"] == "backend_unavailable"
        assert f"milvus at {milvus_server.uri}" in failed.json["error"]["message"]
    ready = client.get("/readyz")
    assert ready.status_code == 503 and ready.json["backend"] == "milvus"
    milvus_server.start()  # the same port and data: the app reconnects by itself
    statuses = []
    for _ in range(100):  # gRPC reconnects with a back-off: wait for it, up to ~20 s
        statuses.append(client.post("/v1/search", json=body).status_code)
        if statuses[-1] == 200:
            break
        time.sleep(0.2)
    assert statuses[-1] == 200 and set(statuses) <= {200, 503}
    assert client.get("/readyz").status_code == 200


_KILLED_BUILD = textwrap.dedent(
    """
    import os, signal, sys
    from pathlib import Path
    sys.path.insert(0, {tests!r})
    from support import FIXTURES, FakeEncoder
    from rag_server.build import BuildConfig
    from rag_server.milvus import MilvusSettings
    from rag_server.milvus.build import build_into_milvus

    def die(stage):
        if stage == {stage!r}:
            os.kill(os.getpid(), signal.SIGKILL)

    config = BuildConfig([FIXTURES / "corpus"], Path({root!r}), progress=False)
    build_into_milvus(config, MilvusSettings(uri={uri!r}), FakeEncoder(), after_stage=die)
    """
)


def test_builds_killed_midway_leave_the_alias_on_the_previous_collection(
    milvus_server: MilvusLiteServer, tmp_path: Path
) -> None:
    """SIGKILLed while inserting, then another after writing its manifest but before switching
    the alias: the alias stays on the first build throughout, and the next build prunes the
    unfinished collection as debris (the complete one is kept, like any older build)."""
    settings = MilvusSettings(uri=milvus_server.uri)
    first = _build(settings, tmp_path / "cache")
    conn = MilvusConnection(settings)
    killed: list[str] = []
    for stage in ("insert-batch", "manifest"):
        script = _KILLED_BUILD.format(
            tests=str(TESTS), stage=stage, root=str(tmp_path / "cache"), uri=milvus_server.uri
        )
        done = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=300)
        assert done.returncode == -9, done.stderr.decode()[-2000:]
        assert conn.alias_target(settings.alias) == first.collection
        left = [n for n in conn.collections() if "_b_" in n and n not in (first.collection, *killed)]
        assert len(left) == 1, (stage, left)  # the killed build's collection, never served
        killed += left
        served = MilvusSource(settings).open()
        assert served.build_id == first.build_id
        assert MILVUS.make("bm25", served).search("consentimento", k=3)
    unfinished, complete = killed
    assert conn.manifest(unfinished) is None and conn.manifest(complete) is not None
    third = _build(settings, tmp_path / "cache")
    assert conn.alias_target(settings.alias) == third.collection
    assert unfinished not in conn.collections() and complete in conn.collections()


def test_unreachable_milvus_fails_a_build_with_one_line(tmp_path: Path) -> None:
    from rag_server.cli import main

    uri = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(BackendUnavailableError, match="milvus at"):
        _build(MilvusSettings(uri=uri, timeout_s=1), tmp_path)
    code = main(
        [
            "build",
            "--backend",
            "milvus",
            "--milvus-uri",
            uri,
            "--corpus",
            str(FIXTURES / "corpus"),
            "--out",
            str(tmp_path / "idx"),
            "--model",
            "minilm",
            "--quiet",
        ]
    )
    assert code == 2


def test_dense_search_reads_the_glossary_as_the_local_backend_does(  # type: ignore[no-untyped-def]
    milvus_settings, make_build, tmp_path: Path, fake_encoder
) -> None:
    from rag_server.loader import IndexBuild
    from rag_server.retrieval import LOCAL

    settings = _with_alias(milvus_settings, "glossary")
    _build(settings, tmp_path / "milvus-cache", glossary="lgpd")
    build = MilvusSource(settings).open()
    local = IndexBuild.load(make_build(FIXTURES / "corpus", tmp_path / "local", glossary="lgpd").path)
    assert build.analyzer.settings.glossary == local.analyzer.settings.glossary == "lgpd"

    question = "Is my permission needed?"  # plain words: the glossary adds "consent"
    theirs = MILVUS.make("dense", build, encoder=fake_encoder).search(question, k=5)
    ours = LOCAL.make("dense", local, encoder=fake_encoder).search(question, k=5)
    assert [h.passage_id for h in theirs] == [h.passage_id for h in ours]
    assert [h.score for h in theirs] == pytest.approx([h.score for h in ours], rel=1e-5)
    # Milvus's native fusion sends the same dense vector as the fusion made here.
    native = MILVUS.make("hybrid", build, encoder=fake_encoder, native=True).search(question, k=20)
    fused = MILVUS.make("hybrid", build, encoder=fake_encoder).search(question, k=20)
    assert {h.passage_id: round(h.score, 5) for h in native} == {h.passage_id: round(h.score, 5) for h in fused}


class _FlakyClient:
    """Stands in for ``pymilvus.MilvusClient``: the first ``failures`` constructions fail after
    ``delay`` seconds, as a reset (fast) or a timed-out (slow) connect does."""

    calls = 0
    failures = 1
    delay = 0.0

    def __init__(self, **_: object) -> None:
        type(self).calls += 1
        if type(self).calls <= type(self).failures:
            time.sleep(type(self).delay)
            raise ConnectionError("UNAVAILABLE: GOAWAY received; too_many_pings")


@pytest.mark.parametrize(
    ("failures", "delay", "timeout_s", "tries", "connects"),
    [
        (1, 0.0, 5.0, 2, True),  # reset at once: one more try, and it connects
        (2, 0.0, 5.0, 2, False),  # reset twice: the error, after two tries only
        (1, 0.05, 0.05, 1, False),  # timed out: no second wait, the error at once
    ],
)
def test_a_connect_reset_at_once_is_tried_once_more_and_a_timeout_is_not(  # type: ignore[no-untyped-def]
    monkeypatch, failures: int, delay: float, timeout_s: float, tries: int, connects: bool
) -> None:
    import pymilvus

    flaky = type("Flaky", (_FlakyClient,), {"calls": 0, "failures": failures, "delay": delay})
    monkeypatch.setattr(pymilvus, "MilvusClient", flaky)
    settings = MilvusSettings(uri="http://127.0.0.1:1", timeout_s=timeout_s)
    if connects:
        assert isinstance(MilvusConnection(settings).client, flaky)
    else:
        with pytest.raises(BackendUnavailableError, match="connect failed: UNAVAILABLE"):
            MilvusConnection(settings)
    assert flaky.calls == tries


@pytest.mark.parametrize(("uri", "pings_when_idle"), [("/tmp/rag.db", False), ("http://milvus:19530", True)])
def test_a_lite_file_s_channel_is_not_pinged_when_idle(monkeypatch, uri: str, pings_when_idle: bool) -> None:  # type: ignore[no-untyped-def]
    """pymilvus pings every 10 s, idle or not; the Milvus Lite server in this process allows one
    idle ping in 5 minutes and answers the third with GOAWAY. A cluster allows them: its client
    keeps pymilvus's keepalive."""
    import pymilvus

    seen: dict[str, object] = {}

    class Recording:
        def __init__(self, **kwargs: object) -> None:
            seen.update(kwargs)

    monkeypatch.setattr(pymilvus, "MilvusClient", Recording)
    MilvusConnection(MilvusSettings(uri=uri))
    options = seen.get("grpc_options") or {}
    assert isinstance(options, dict)
    assert options.get("grpc.keepalive_permit_without_calls", True) is pings_when_idle
