"""Shared fixtures: a tiny corpus, a deterministic fake encoder, and builds made from them.

Helpers that tests import (``passage``, ``FakeEncoder``, the dev server) live in ``support``."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from rag_server.build import BuildConfig, BuildResult, build_index
from rag_server.milvus import MilvusBuild, MilvusSettings, MilvusSource

from support import FIXTURES, FakeEncoder
from support.milvus_server import MilvusLiteServer

# Markers that follow from a fixture a test uses (directly or through another fixture), so that
# they cannot be forgotten; tests that are slow or start servers on their own are marked by hand.
FIXTURE_MARKS = {
    "server": ("server", "slow"),  # the served stack over a build made with the real model
    "real_index": ("slow",),  # a build of the fixture corpus with the real embedding model
    "browser": ("browser",),  # Chromium
    "milvus_server": ("server",),  # Milvus Lite as its own process (python -m milvus_lite server)
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        names = set(getattr(item, "fixturenames", ()))
        for fixture, marks in FIXTURE_MARKS.items():
            if fixture in names:
                for mark in marks:
                    item.add_marker(mark)


@pytest.fixture
def corpus_dir(tmp_path: Path) -> Path:
    """A writable copy of the fixture corpus (tests may edit it)."""
    target = tmp_path / "corpus"
    shutil.copytree(FIXTURES / "corpus", target)
    return target


@pytest.fixture
def fake_encoder() -> FakeEncoder:
    return FakeEncoder()


@pytest.fixture
def make_build(tmp_path: Path, fake_encoder: FakeEncoder):  # type: ignore[no-untyped-def]
    def _make(corpus: Path, root: Path | None = None, **options: object) -> BuildResult:
        config = BuildConfig([corpus], index_root=root or tmp_path / "indexes", progress=False, **options)  # type: ignore[arg-type]
        return build_index(config, encoder=fake_encoder)

    return _make


@pytest.fixture
def built(corpus_dir: Path, make_build) -> BuildResult:  # type: ignore[no-untyped-def]
    return make_build(corpus_dir)


@pytest.fixture
def app(built, tmp_path: Path, fake_encoder: FakeEncoder):  # type: ignore[no-untyped-def]
    """The Flask app over a build of the fixture corpus (fake encoder, extractive answers)."""
    from rag_server.api import create_app
    from rag_server.pipeline import RagPipeline

    pipeline = RagPipeline(tmp_path / "indexes", encoder=fake_encoder, support_threshold=0.0)
    return create_app({"PIPELINE": pipeline, "TESTING": True})


@pytest.fixture
def client(app):  # type: ignore[no-untyped-def]
    return app.test_client()


# ----- a real server: the served stack (waitress) on 127.0.0.1 over a build with the real model -----


@pytest.fixture(scope="session")
def real_index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The fixture corpus built with the real bundled embedding model, as a server would use."""
    root = tmp_path_factory.mktemp("real-index")
    build_index(BuildConfig([FIXTURES / "corpus"], root, progress=False))
    return root


@pytest.fixture(scope="session")
def server(real_index: Path):  # type: ignore[no-untyped-def]
    """Base URL of the server of ``make run`` (``python -m rag_server.serve``) over ``real_index``;
    shared by the session."""
    from support.devserver import LocalServer

    try:
        server = LocalServer(real_index, threads=4, ready_timeout=60).start()
    except RuntimeError as exc:
        pytest.fail(str(exc))
    yield server.base
    server.stop()


# ----- the Milvus backend: one Milvus Lite database per session (in a temporary directory) -----
# Builds take a few seconds each in Milvus Lite (creating a collection and its indexes), so the
# tests that only read share one build; tests that rebuild use their own alias on the same file.


@pytest.fixture(scope="session")
def milvus_settings(tmp_path_factory: pytest.TempPathFactory) -> MilvusSettings:
    """Milvus Lite in a temporary directory; tests that rebuild use their own alias on it."""
    return MilvusSettings(uri=str(tmp_path_factory.mktemp("milvus") / "rag.db"))


@pytest.fixture(scope="session")
def milvus_build(milvus_settings: MilvusSettings, tmp_path_factory: pytest.TempPathFactory) -> MilvusBuild:
    """The fixture corpus built into Milvus with the fake encoder, as served through the alias."""
    from rag_server.milvus.build import build_into_milvus

    root = tmp_path_factory.mktemp("milvus-cache")
    build_into_milvus(BuildConfig([FIXTURES / "corpus"], root, progress=False), milvus_settings, encoder=FakeEncoder())
    return MilvusSource(milvus_settings).open()


@pytest.fixture
def milvus_server(tmp_path: Path) -> Iterator[MilvusLiteServer]:
    """Milvus Lite as its own server process on 127.0.0.1, for tests where several processes
    share it or where it dies under a running app; stopped after the test."""
    server = MilvusLiteServer(tmp_path / "milvus").start()
    yield server
    server.stop()
