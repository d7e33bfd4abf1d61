"""Helpers shared by the tests (and the scripts that drive a local server): hand-made passages,
a deterministic fake encoder, the fixture corpus. Fixtures stay in ``conftest.py``.

The tests directory is on ``sys.path`` under pytest (rootdir conftest), so tests import this as
``from support import passage``; scripts put it there with ``scripts/_support.py``."""

from __future__ import annotations

import hashlib
import importlib.util
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

import numpy as np
import numpy.typing as npt

from rag_server.analysis import Analyzer
from rag_server.embedding import PrefixedEncoding
from rag_server.passage import Passage

FIXTURES = Path(__file__).parents[1] / "fixtures"
FIXTURE_CORPUS = FIXTURES / "corpus"


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


SCRIPTS = Path(__file__).parents[2] / "scripts"


def load_script(name: str) -> ModuleType:
    """``scripts/<name>.py`` as a module (as ``python scripts/<name>.py`` sees it: with scripts/
    on ``sys.path``, for their shared ``_support``)."""
    if str(SCRIPTS) not in sys.path:
        sys.path.insert(0, str(SCRIPTS))
    spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses of the script look their module up
    spec.loader.exec_module(module)
    return module
