"""Packaging: the server runs without the optional extras (lessons, evaluation, Milvus, parity
tests), and a missing extra is named when something needs it."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from rag_server.errors import MissingDependencyError
from rag_server.extras import EXTRAS, require

ROOT = Path(__file__).parents[1]
OPTIONAL = ("keras", "matplotlib", "ranx", "rank_bm25", "pymilvus", "milvus_lite", "rag_server.milvus")

# Serves every endpoint once through a fully loaded app (build, retrievers, the packaged
# generator), then prints the optional packages it imported.
_SERVE = """
import json, sys
sys.path.insert(0, {tests!r})
from support import FakeEncoder
from rag_server.api import create_app
from rag_server.generator import load_generator
from rag_server.generator.paths import PACKAGED_CHECKPOINT
from rag_server.pipeline import RagPipeline

pipeline = RagPipeline({root!r}, encoder=FakeEncoder(), generator=load_generator(str(PACKAGED_CHECKPOINT)))
client = create_app({{"PIPELINE": pipeline}}).test_client()
for strategy in ("keyword", "bm25", "dense", "hybrid", "hybrid-convex"):
    assert client.post("/v1/search", json={{"query": "consentimento", "strategy": strategy}}).status_code == 200
assert client.post("/v1/ask", json={{"question": "Qual o prazo para comunicar um incidente?"}}).status_code == 200
chat = {{"messages": [{{"role": "user", "content": "prazo"}}]}}
assert client.post("/v1/chat/completions", json=chat).status_code == 200
for path in ("/readyz", "/healthz", "/v1/strategies", "/v1/index", "/openapi.json", "/metrics", "/"):
    assert client.get(path).status_code == 200, path
imported = set(sys.modules) | {{name.split(".")[0] for name in sys.modules}}
print(json.dumps(sorted(imported & set({optional!r}))))
"""


def _optional_imported(index_root: Path, prelude: str = "") -> list[str]:
    code = prelude + _SERVE.format(tests=str(ROOT / "tests"), root=str(index_root), optional=OPTIONAL)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def test_serving_imports_no_optional_package(built, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    assert _optional_imported(tmp_path / "indexes") == []


def test_the_probe_sees_an_imported_package(built, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The check above can fail: the same run with rank_bm25 imported reports it."""
    assert _optional_imported(tmp_path / "indexes", "import rank_bm25\n") == ["rank_bm25"]


def test_runtime_dependencies_leave_the_extras_out() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    runtime = " ".join(project["dependencies"]).lower()
    assert not any(name in runtime for name in ("keras", "matplotlib", "ranx", "rank-bm25", "milvus"))
    extras = project["optional-dependencies"]
    for extra, modules in EXTRAS.items():
        assert [r.split(">")[0] for r in extras[extra]] == list(modules)
    assert "rag_server[teaching,eval,milvus]" in extras["dev"] and any(r.startswith("rank-bm25") for r in extras["dev"])


def test_a_missing_extra_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ranx", None)  # None in sys.modules: the import fails
    with pytest.raises(MissingDependencyError, match=r"pip install 'rag_server\[eval\]'") as caught:
        require("ranx", "eval")
    assert isinstance(caught.value, ImportError)

    monkeypatch.setitem(sys.modules, "keras", None)
    monkeypatch.delitem(sys.modules, "rag_server.teaching.mlp_keras", raising=False)
    with pytest.raises(MissingDependencyError, match=r"pip install 'rag_server\[teaching\]'"):
        import rag_server.teaching.mlp_keras  # noqa: F401
    monkeypatch.delitem(sys.modules, "rag_server.teaching.mlp_keras", raising=False)

    from rag_server.milvus import MilvusConnection, MilvusSettings

    monkeypatch.setitem(sys.modules, "pymilvus", None)
    with pytest.raises(MissingDependencyError, match=r"pip install 'rag_server\[milvus\]'"):
        MilvusConnection(MilvusSettings(uri="/nonexistent/rag.db"))


def test_the_project_bm25_never_imports_rank_bm25() -> None:
    """rank_bm25 is the parity tests' reference only: no module of the package names it in code."""
    for path in (ROOT / "rag_server").rglob("*.py"):
        for line in path.read_text().splitlines():
            code = line.split("#", 1)[0]
            assert not ("import rank_bm25" in code or "from rank_bm25" in code), path
