"""The read path stays apart from the write path: serving imports neither the builder nor what
only building needs (corpus parsing with yaml, chunking, the generator's training data)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BUILD_ONLY = (
    "rag_server.build",
    "rag_server.documents",
    "rag_server.chunking",
    "rag_server.generator.examples",
    "rag_server.generator.batches",
    "yaml",
)
TRAINING_ONLY = {"rag_server.generator.examples", "rag_server.generator.batches"}


def _imported(module: str) -> set[str]:
    """Modules in ``sys.modules`` after importing ``module`` in a fresh interpreter."""
    code = f"import json, sys; import {module}; print(json.dumps(sorted(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT, env=_env()
    ).stdout
    return set(json.loads(out.strip().splitlines()[-1]))


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}


@pytest.mark.parametrize("module", ["rag_server.loader", "rag_server.pipeline", "rag_server.api"])
def test_serving_does_not_import_the_builder(module: str) -> None:
    imported = _imported(module)
    assert module in imported  # the check sees what it imports
    assert not imported & set(BUILD_ONLY), sorted(imported & set(BUILD_ONLY))


def test_the_builder_is_seen_when_imported() -> None:
    """The check can fail: importing the builder does show the write-path modules."""
    assert set(BUILD_ONLY) - TRAINING_ONLY <= _imported("rag_server.build")
    assert _imported("rag_server.generator.batches") >= TRAINING_ONLY
