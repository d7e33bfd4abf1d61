"""Security properties: no unsafe deserialisation or dynamic code in the source, CORS off by
default, no request or manifest can make the server read outside its index, and a corrupt
build never replaces a good one (nor is served when it is the only one)."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

from rag_server.errors import IndexLoadError
from rag_server.loader import IndexBuild

ROOT = Path(__file__).resolve().parents[1]
SOURCES = sorted(path for part in ("rag_server", "scripts", "tests/support") for path in (ROOT / part).rglob("*.py"))
BANNED_MODULES = {"pickle", "cPickle", "_pickle", "dill", "shelve", "marshal", "joblib"}


def _keyword(call: ast.Call, name: str) -> ast.expr | None:
    return next((k.value for k in call.keywords if k.arg == name), None)


def _is_const(node: ast.expr | None, value: object) -> bool:
    return isinstance(node, ast.Constant) and node.value is value


def _dotted(node: ast.expr) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return ""


def unsafe_constructs(source: str, filename: str) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(source, filename)):
        where = f"{filename}:{getattr(node, 'lineno', '?')}"
        if isinstance(node, ast.Import):
            found += [f"{where} import {a.name}" for a in node.names if a.name.split(".")[0] in BANNED_MODULES]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in BANNED_MODULES:
            found.append(f"{where} from {node.module} import")
        elif isinstance(node, ast.Call):
            name = _dotted(node.func)
            if name in ("eval", "exec", "builtins.eval", "builtins.exec"):
                found.append(f"{where} {name}()")
            elif name in ("np.load", "numpy.load") and not _is_const(_keyword(node, "allow_pickle"), False):
                found.append(f"{where} {name}() without allow_pickle=False")
            elif name == "torch.load" and not _is_const(_keyword(node, "weights_only"), True):
                found.append(f"{where} torch.load() without weights_only=True")
            elif name == "yaml.load" or name.endswith(".unsafe_load") or name == "yaml.full_load":
                found.append(f"{where} {name}() (use yaml.safe_load)")
            elif name in ("__import__", "importlib.import_module") and node.args:
                arg = node.args[0]
                if isinstance(arg, ast.Constant) and str(arg.value).split(".")[0] in BANNED_MODULES:
                    found.append(f"{where} {name}({arg.value!r})")
    return found


def test_scanner_catches_each_banned_construct() -> None:
    bad = """
import pickle
from joblib import load
import numpy as np, torch, yaml
np.load("a")
np.load("a", allow_pickle=True)
torch.load("w")
torch.load("w", weights_only=False)
yaml.load(s)
eval("1")
exec("x = 1")
"""
    assert len(unsafe_constructs(bad, "bad.py")) == 9
    good = 'import numpy as np, torch, yaml\nnp.load("a", allow_pickle=False)\ntorch.load("w", weights_only=True)\n'
    assert unsafe_constructs(good + "yaml.safe_load(s)\n", "good.py") == []


def test_source_has_no_unsafe_deserialisation_or_dynamic_code() -> None:
    assert len(SOURCES) > 20
    problems = [p for path in SOURCES for p in unsafe_constructs(path.read_text(encoding="utf-8"), str(path))]
    assert problems == []


# ----- (b) CORS is off by default -----


def test_cors_is_off_by_default(client) -> None:  # type: ignore[no-untyped-def]
    origin = {"Origin": "https://evil.example"}
    for path in ("/healthz", "/readyz", "/v1/strategies", "/openapi.json"):
        response = client.get(path, headers=origin)
        assert "Access-Control-Allow-Origin" not in response.headers
    response = client.post("/v1/search", json={"query": "consentimento", "k": 2}, headers=origin)
    assert response.status_code == 200 and "Access-Control-Allow-Origin" not in response.headers
    preflight = client.options(
        "/v1/search",
        headers={
            **origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "Content-Type",
        },
    )
    assert not any(h.lower().startswith("access-control-allow") for h, _ in preflight.headers.items())


# ----- (c) nothing reads outside the index directory -----

PATHS = [
    "../../etc/passwd",
    "/etc/passwd",
    "..\\..\\windows\\win.ini",
    "file:///etc/passwd",
    "%2e%2e/%2e%2e/etc/passwd",
]


@pytest.mark.parametrize("value", PATHS)
def test_path_like_parameters_never_read_files(client, value: str) -> None:  # type: ignore[no-untyped-def]
    bodies = [
        {"query": "consentimento", "strategy": value},
        {"query": "consentimento", "k": value},
        {"query": "consentimento", "filters": {"path": value}},
        {"question": "consentimento", "strategy": value},
        {"question": "consentimento", "lang": value},
    ]
    for body in bodies:
        route = "/v1/search" if "query" in body else "/v1/ask"
        response = client.post(route, json=body)
        assert 400 <= response.status_code < 500, (body, response.status_code)
        assert "root:" not in response.get_data(as_text=True)
        assert response.get_json()["error"]["code"]
    # Filters on known fields only filter: a path-like value matches nothing, reads nothing.
    for field in ("source", "doc_id", "doc_type", "language", "article"):
        response = client.post("/v1/search", json={"query": "consentimento", "filters": {field: value}})
        assert response.status_code in (200, 400)
        text = response.get_data(as_text=True)
        assert "root:" not in text
        if response.status_code == 200:
            assert response.get_json()["hits"] == []


def test_manifest_entry_outside_the_build_is_refused(built) -> None:  # type: ignore[no-untyped-def]
    manifest_path = built.path / "manifest.json"
    for outside in ("../../../../etc/passwd", "/etc/passwd", "../" + built.path.name + "-evil/x"):
        manifest = json.loads(manifest_path.read_text())
        manifest["files"][outside] = {"bytes": 1, "sha256": "0" * 64}
        manifest_path.write_text(json.dumps(manifest))
        with pytest.raises(IndexLoadError, match="leaves the build directory"):
            IndexBuild.load(built.path)
        del manifest["files"][outside]
        manifest_path.write_text(json.dumps(manifest))
    assert IndexBuild.load(built.path).build_id == built.build_id


# ----- (d), (e) corrupt builds -----


def _app(root: Path, encoder, **config):  # type: ignore[no-untyped-def]
    from rag_server.api import create_app
    from rag_server.pipeline import RagPipeline

    try:
        pipeline = RagPipeline(root, encoder=encoder, support_threshold=0.0)
    except IndexLoadError:
        # Same path as create_app's own loading: let create_app try (and fail) itself.
        return create_app({"INDEX_DIR": str(root), "TESTING": True, **config})
    return create_app({"PIPELINE": pipeline, "TESTING": True, **config})


def test_reload_keeps_the_previous_build_when_the_newest_is_corrupt(  # type: ignore[no-untyped-def]
    built, corpus_dir: Path, make_build, fake_encoder, tmp_path: Path
) -> None:
    root = tmp_path / "indexes"
    app = _app(root, fake_encoder, ADMIN_TOKEN="t")
    client = app.test_client()
    assert client.get("/readyz").get_json()["build_id"] == built.build_id

    first_file = sorted(corpus_dir.rglob("*.md"))[0]
    first_file.write_text(first_file.read_text(encoding="utf-8") + "\n\nA new paragraph.\n", encoding="utf-8")
    second = make_build(corpus_dir)
    assert second.build_id != built.build_id
    faiss_file = second.path / "dense" / "index.faiss"
    faiss_file.write_bytes(faiss_file.read_bytes()[: faiss_file.stat().st_size // 2])

    response = client.post("/v1/admin/reload", headers={"Authorization": "Bearer t"})
    assert response.status_code == 503
    error = response.get_json()["error"]
    assert set(error) == {"code", "message"} and error["code"]
    assert client.get("/readyz").get_json()["build_id"] == built.build_id
    search = client.post("/v1/search", json={"query": "consentimento do titular", "k": 2})
    assert search.status_code == 200 and search.get_json()["build_id"] == built.build_id


def test_app_with_only_a_bad_build_is_not_ready(built, fake_encoder, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    (built.path / "manifest.json").write_text("{ not json", encoding="utf-8")
    app = _app(tmp_path / "indexes", fake_encoder)
    client = app.test_client()
    assert client.get("/healthz").status_code == 200
    ready = client.get("/readyz")
    assert ready.status_code == 503
    body = ready.get_json()
    assert body["status"] == "not_ready" and "manifest.json" in body["reason"]
    search = client.post("/v1/search", json={"query": "consentimento", "k": 2})
    assert search.status_code == 503 and search.get_json()["error"]["code"] == "not_ready"
