"""Shared fixtures: a tiny corpus, a deterministic fake encoder, and builds made from them.

Helpers that tests import (``passage``, ``FakeEncoder``, the dev server) live in ``support``."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from rag_server.build import BuildConfig, BuildResult, build_index

from support import FIXTURES, FakeEncoder

# Markers that follow from a fixture a test uses (directly or through another fixture), so that
# they cannot be forgotten; tests that are slow or start servers on their own are marked by hand.
FIXTURE_MARKS = {
    "server": ("server", "slow"),  # the served stack over a build made with the real model
    "real_index": ("slow",),  # a build of the fixture corpus with the real embedding model
    "browser": ("browser",),  # Chromium
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
