"""Shared fixtures: a tiny corpus, a deterministic fake encoder, and builds made from them."""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from rag_server.analysis import Analyzer
from rag_server.build import BuildConfig, BuildResult, build_index
from rag_server.embedding import PrefixedEncoding
from rag_server.passage import Passage

FIXTURES = Path(__file__).parent / "fixtures"


class FakeEncoder(PrefixedEncoding):
    """Hashed bag-of-stems vectors: deterministic, fast, and similar for similar texts.
    Counts every text it encodes, so tests can check what a rebuild re-embedded. No prefixes,
    like MiniLM (a test may set ``query_prefix`` / ``passage_prefix`` on an instance)."""

    name = "fake-hash-encoder"
    checksum = "f" * 64
    dimension = 64

    def __init__(self) -> None:
        self.analyzer = Analyzer()
        self.calls = 0
        self.texts_encoded: list[str] = []

    def encode(self, texts: Sequence[str], batch_size: int = 64, progress: bool = False) -> npt.NDArray[np.float32]:
        self.calls += 1
        self.texts_encoded.extend(texts)
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for i, text in enumerate(texts):
            for term in self.analyzer.tokens(text):
                h = int.from_bytes(hashlib.md5(term.encode()).digest()[:4], "little")
                out[i, h % self.dimension] += 1.0
            out[i, 0] += 1e-3  # never the zero vector
        return out / np.linalg.norm(out, axis=1, keepdims=True)


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
    from rag_server.devserver import LocalServer

    try:
        server = LocalServer(real_index, threads=4, ready_timeout=60).start()
    except RuntimeError as exc:
        pytest.fail(str(exc))
    yield server.base
    server.stop()


# ----- hand-made passages for unit tests of the prompt and fuzzing -----


def passage(
    pid: str,
    text: str,
    *,
    title: str = "Guia de GPUs",
    source: str = "Guia interno",
    article: str | None = None,
    provision: str | None = None,
) -> Passage:
    return Passage(
        id=pid,
        doc_id=pid.split("#")[0],
        title=title,
        language="pt",
        doc_type="law" if article else "guide",
        source=source,
        section="",
        article=article,
        provision=provision,
        text=text,
    )
