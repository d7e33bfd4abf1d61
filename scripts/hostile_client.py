"""Try the 18 cases of issue #14 as a hostile client would, against a real server on 127.0.0.1.

    .venv/bin/python scripts/hostile_client.py                       # this tree
    .venv/bin/python scripts/hostile_client.py --tree /tmp/old-tree  # another checkout (before)

Standard library only, so that it runs against any version of the tree: ``--tree`` is put on
PYTHONPATH of every process it starts. The server is the tree's ``make run`` stack (waitress
via ``python -m rag_server.serve`` when the tree has it, else gunicorn gthread, 1 worker,
4 threads), on a free loopback port, over builds of tests/fixtures/corpus made with the real
embedding model (later builds reuse the embedding cache). Every request has a client timeout,
every wait a deadline; the whole run is bounded by the number of steps below (a few minutes).

Prints one line per case (what was sent, what came back, ok or FAIL against the fixed
behaviour) and a markdown table of them; exit status 0 when every case is ok.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CORPUS = "tests/fixtures/corpus"
TOKEN = "hostile-admin-token"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """The tree's served stack on 127.0.0.1; stdout and stderr go to ``log``."""

    def __init__(self, tree: Path, root: Path, log: Path, env: dict[str, str] | None = None) -> None:
        self.tree, self.root, self.log = tree, root, log
        self.port = free_port()
        self.kind = "waitress" if (tree / "rag_server" / "serve.py").is_file() else "gunicorn"
        self.env = {**os.environ, "PYTHONPATH": str(tree), "RAG_INDEX_DIR": str(root), **(env or {})}
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, ready: bool = True, timeout: float = 180) -> Server:
        py = sys.executable
        if self.kind == "waitress":
            cmd = [py, "-m", "rag_server.serve", "--port", str(self.port), "--threads", "4"]
        else:  # the make run of the tree before the change
            gunicorn = str(Path(py).with_name("gunicorn"))
            app = "rag_server.api:create_app()"
            cmd = [gunicorn, "--workers", "1", "--threads", "4", "--bind", f"127.0.0.1:{self.port}"]
            cmd += ["--access-logfile", "-", app]
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(cmd, cwd=self.tree, env=self.env, stdout=out, stderr=out)
        deadline = time.monotonic() + timeout
        path = "/readyz" if ready else "/healthz"
        while time.monotonic() < deadline and self.proc.poll() is None:
            if request(self.port, "GET", path, timeout=5)[0] == 200:
                return self
            time.sleep(0.5)
        raise RuntimeError(f"{self.kind} did not answer {path} within {timeout:.0f} s; see {self.log}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=30)


def request(
    port: int,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 30,
) -> tuple[int, dict[str, str], bytes]:
    """(status, headers, body); status 0 when the connection failed or timed out."""
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        conn.request(method, path, body, headers or {})
        response = conn.getresponse()
        data = response.read()
        conn.close()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, data
    except OSError:
        return 0, {}, b""


def post(port: int, path: str, body: Any, headers: dict[str, str] | None = None, raw: bytes | None = None) -> Any:
    data = raw if raw is not None else json.dumps(body).encode()
    status, head, payload = request(port, "POST", path, data, {"Content-Type": "application/json", **(headers or {})})
    return status, head, _json(payload)


def _json(payload: bytes) -> Any:
    try:
        return json.loads(payload)
    except ValueError:
        return payload[:200].decode(errors="replace")


def code_of(body: Any) -> str:
    """The error code of a JSON error body; "" for any other body."""
    error = body.get("error") if isinstance(body, dict) else None
    return str(error.get("code")) if isinstance(error, dict) else ""


def run_py(tree: Path, code: str, timeout: float = 600) -> str:
    """Run ``code`` with the tree's rag_server; its stdout."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if done.returncode not in (0, -9):
        raise RuntimeError(f"helper failed ({done.returncode}): {done.stderr[-1500:]}")
    return done.stdout


def build(tree: Path, root: Path, indexes: str = "keyword,bm25,dense", keep: int = 3) -> str:
    out = run_py(
        tree,
        f"""
        from rag_server.build import BuildConfig, build_index
        r = build_index(BuildConfig([{CORPUS!r}], {str(root)!r}, indexes={indexes.split(",")!r},
                                    keep_builds={keep}, progress=False))
        print(r.build_id)
        """,
    )
    return out.strip().splitlines()[-1]


RECOMPUTE = """
import json, hashlib
from pathlib import Path
def recompute(build_dir, rel):
    build_dir = Path(build_dir); manifest_path = build_dir / "manifest.json"
    manifest = json.loads(manifest_path.read_text()); data = (build_dir / rel).read_bytes()
    manifest["files"][rel] = {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
    manifest_path.write_text(json.dumps(manifest))
"""


class Report:
    def __init__(self) -> None:
        self.rows: list[tuple[str, str, str, bool]] = []

    def add(self, case: str, tried: str, observed: str, ok: bool) -> None:
        self.rows.append((case, tried, observed, ok))
        print(f"[{'ok' if ok else 'FAIL'}] {case}: {tried} -> {observed}", flush=True)


def stateless_cases(port: int, report: Report) -> None:
    nested = '{"question":' + "[" * 1100 + "]" * 1100 + "}"
    s1, _, b1 = post(port, "/v1/ask", None, raw=nested.encode())
    s2, _, b2 = post(port, "/v1/ask", None, raw=b"[" * 30000)
    report.add(
        "1 nesting",
        "POST /v1/ask 1100-deep list; '['*30000",
        f"{s1} {code_of(b1)}; {s2} {code_of(b2)}",
        (s1, code_of(b1), s2, code_of(b2)) == (400, "invalid_json", 400, "invalid_json"),
    )

    chat = "/v1/chat/completions"
    escaped = b'{"messages":[{"role":"user","content":"dados \\ud800 pessoais"}]}'
    raw = b'{"messages":[{"role":"user","content":"dados \xed\xa0\x80 pessoais"}]}'
    stream = b'{"stream":true,"messages":[{"role":"user","content":"dados \\ud800"}]}'
    got = [post(port, chat, None, raw=b) for b in (escaped, raw, stream)]
    report.add(
        "2 lone surrogate",
        "chat content with \\ud800, raw ED A0 80, stream true",
        "; ".join(f"{s} {code_of(b)}" for s, _, b in got),
        all(s == 400 for s, _, _ in got),
    )

    for i in range(50):
        request(port, f"M{i}X", "/v1/ask", timeout=10)
    metrics = request(port, "GET", "/metrics")[2].decode(errors="replace")
    methods = set(re.findall(r'rag_requests_total\{[^}]*method="([^"]*)"', metrics))
    known = {"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH", "other"}
    report.add(
        "3 metric labels",
        "50 requests with made-up methods M0X..M49X",
        f"{len(methods)} method label values ({len(methods - known)} made-up)",
        methods <= known,
    )

    long_question = ("Quem prova que o consentimento do titular foi obtido conforme a lei " * 30)[:1000]
    s, _, b = post(port, "/v1/ask", {"question": long_question})
    cut = b.get("question_truncated") if isinstance(b, dict) else None
    report.add(
        "10 question length", "POST /v1/ask, 1,000-character question", f"{s} {code_of(b)} truncated={cut}", s == 200
    )

    status, head, _ = request(port, "GET", "/web//etc/passwd", headers={"Host": "evil.example"})
    location = head.get("location", "")
    report.add(
        "11 Host in redirect",
        "GET /web//etc/passwd, Host: evil.example",
        f"{status} Location: {location or '-'}",
        "evil.example" not in location,
    )

    parts = {"messages": [{"role": "user", "content": [{"type": "text", "text": "Quem prova o consentimento?"}]}]}
    image = {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]}
    base = {"messages": [{"role": "user", "content": "dados pessoais"}]}
    results = [
        post(port, chat, parts)[0],
        post(port, chat, image),
        post(port, chat, {**base, "n": 2})[0],
        post(port, chat, {**base, "stream": "yes"})[0],
    ]
    image_status, _, image_body = results[1]
    image_clear = isinstance(image_body, dict) and "text" in str(image_body.get("error", {}).get("message", ""))
    report.add(
        "12 chat compatibility",
        "text parts; an image part; n=2; stream \"yes\"",
        f"{results[0]}; {image_status} (names text parts: {image_clear}); {results[2]}; {results[3]}",
        results[0] == 200 and image_status == 400 and image_clear and results[2] == 400 and results[3] == 400,
    )

    loose = [
        post(port, "/v1/ask", {"question": "dados pessoais", "temperature": "0.5"})[0],
        post(port, "/v1/ask", {"question": "dados pessoais", "temperature": True})[0],
        post(port, "/v1/ask", {"question": "dados pessoais", "seed": "1"})[0],
        post(port, chat, {**base, "k": "3"})[0],
    ]
    report.add(
        "13 strict types",
        'temperature "0.5", temperature true, seed "1", chat k "3"',
        ", ".join(map(str, loose)),
        loose == [400, 400, 400, 400],
    )

    status, payload = chunked_post(port, b'{"query": "' + b"x" * 70_000 + b'"}')
    report.add(
        "14 chunked over limit", "70 KB chunked body to /v1/search", f"{status} {code_of(payload)}", status == 413
    )


def chunked_post(port: int, body: bytes) -> tuple[int, Any]:
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        head = "POST /v1/search HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        sock.sendall((head + "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n").encode())
        try:
            for start in range(0, len(body), 8192):
                piece = body[start : start + 8192]
                sock.sendall(b"%x\r\n%s\r\n" % (len(piece), piece))
            sock.sendall(b"0\r\n\r\n")
        except OSError:
            pass
        reply = b""
        try:
            while chunk := sock.recv(65536):
                reply += chunk
        except OSError:
            pass
    status_line, _, rest = reply.partition(b"\r\n")
    try:
        status = int(status_line.split()[1])
    except (IndexError, ValueError):
        return 0, "-"
    return status, _json(rest.partition(b"\r\n\r\n")[2])


def slow_clients_case(port: int, report: Report) -> None:
    socks = []
    for i in range(16):
        sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        if i % 3 == 1:
            sock.sendall(b"POST /v1/search HTTP/1.1\r\nHost: x\r\n")
        elif i % 3 == 2:
            sock.sendall(b"POST /v1/search HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n")
        socks.append((i % 3, sock))
    stop = threading.Event()

    def trickle() -> None:
        while not stop.wait(0.5):
            for kind, sock in socks:
                if kind:
                    with contextlib.suppress(OSError):
                        sock.sendall(b"X")

    thread = threading.Thread(target=trickle, daemon=True)
    thread.start()
    time.sleep(1)
    started = time.perf_counter()
    status = request(port, "POST", "/v1/search", b'{"query": "consentimento", "strategy": "bm25"}',
                     {"Content-Type": "application/json"}, timeout=10)[0]
    elapsed = time.perf_counter() - started
    stop.set()
    thread.join(timeout=5)
    for _, sock in socks:
        sock.close()
    report.add(
        "4 slow clients",
        "16 idle/slow-header/slow-body connections, then one search (10 s timeout)",
        f"{status or 'timeout'} after {elapsed:.2f} s",
        status == 200,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tree", type=Path, default=ROOT, help="source tree to try (default: this one)")
    args = parser.parse_args()
    tree = args.tree.resolve()
    report = Report()
    tmp = Path(tempfile.mkdtemp(prefix="hostile-"))
    try:
        root = tmp / "indexes"
        first = build(tree, root)
        log = tmp / "served.log"
        server = Server(tree, root, log, {"RAG_ADMIN_TOKEN": TOKEN, "RAG_LOG_LEVEL": "INFO"}).start()
        print(f"tree {tree}; {server.kind} on 127.0.0.1:{server.port} serving {first}", flush=True)
        port, admin = server.port, {"Authorization": f"Bearer {TOKEN}"}
        try:
            stateless_cases(port, report)
            slow_clients_case(port, report)
            after_builds(tree, root, port, admin, first, report)
        finally:
            server.stop()
        lines = [line for line in log.read_text(errors="replace").splitlines() if line.strip()]
        plain = [line for line in lines if not _is_json_object(line)]
        report.add(
            "17 JSON log lines",
            f"the served log ({server.kind}: stdout and stderr) of the run above",
            f"{len(plain)} of {len(lines)} lines not JSON" + (f", e.g. {plain[0][:60]!r}" if plain else ""),
            not plain,
        )
        bad_start_case(tree, tmp, report)
        in_process_cases(tree, root, report)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    report.rows.sort(key=lambda row: int(row[0].split()[0]))
    print("\n| case | tried | observed | result |\n|---|---|---|---|")
    for case, tried, observed, ok in report.rows:
        print(f"| {case} | {tried} | {observed.replace('|', '/')} | {'ok' if ok else 'FAIL'} |")
    failed = sum(not ok for *_, ok in report.rows)
    print(f"result: {'PASS' if not failed else 'FAIL'} ({failed} of {len(report.rows)} cases failed)")
    return 0 if not failed else 1


def _is_json_object(line: str) -> bool:
    try:
        return isinstance(json.loads(line), dict)
    except ValueError:
        return False


def after_builds(tree: Path, root: Path, port: int, admin: dict[str, str], first: str, report: Report) -> None:
    build(tree, root, indexes="keyword,bm25")
    status, _, body = post(port, "/v1/admin/reload", {}, admin)
    served = _json(request(port, "GET", "/readyz")[2])
    search = post(port, "/v1/search", {"query": "consentimento do titular"})[0]
    message = str(body.get("error", {}).get("message", "")) if isinstance(body, dict) else str(body)
    report.add(
        "5 reload to a keyword,bm25 build",
        "build --indexes keyword,bm25, then POST /v1/admin/reload",
        f"reload {status}, reason given: {'default strategy' in message}; serving "
        f"{'first build' if served.get('build_id') == first else served.get('build_id')}; default search {search}",
        status != 200 and "default strategy" in message and search == 200,
    )

    broken = build(tree, root)
    run_py(
        tree,
        RECOMPUTE
        + f"""
import numpy as np
path = Path({str(root)!r}) / "builds" / {broken!r} / "bm25" / "weights.npy"
w = np.load(path, allow_pickle=False); w[0] = np.inf; np.save(path, w, allow_pickle=False)
recompute(path.parents[1], "bm25/weights.npy")
""",
    )
    status, _, body = post(port, "/v1/admin/reload", {}, admin)
    ready = _json(request(port, "GET", "/readyz")[2])
    report.add(
        "9 BM25 weight +inf, checksum recomputed",
        "edit bm25/weights.npy, fix its manifest entry, reload",
        f"reload {status} {code_of(body)}; serving "
        f"{'the first build' if ready.get('build_id') == first else 'the edited one'}",
        status != 200 and ready.get("build_id") == first,
    )
    message = str(body.get("error", {}).get("message", "")) if isinstance(body, dict) else str(body)
    has_path = str(root) in message or "indexes/builds" in message or "/tmp/" in message
    readyz_reason = "weights.npy" in json.dumps(ready)
    report.add(
        "16 paths and reasons",
        "the refused reload of case 9, and /readyz after it",
        f"message: {message[:70]!r}; server path in it: {has_path}; /readyz gives the reason: {readyz_reason}",
        bool(message) and not has_path and "see /readyz" not in message and readyz_reason,
    )

    served_id = _json(request(port, "GET", "/readyz")[2]).get("build_id")
    run_py(
        tree,
        f"""
from pathlib import Path
from rag_server.build import BuildConfig, build_index
for _ in range(6):
    r = build_index(BuildConfig([{CORPUS!r}], {str(root)!r}, keep_builds=3, progress=False))
    with (r.path / "passages.jsonl").open("ab") as f:
        f.write(b"\\n")
""",
    )
    kept = (root / "builds" / str(served_id)).is_dir()
    search = post(port, "/v1/search", {"query": "consentimento do titular"})[0]
    report.add(
        "7 pruning",
        "6 builds corrupted after they were made (each refused), --keep 3",
        f"served build still on disk: {kept}; search {search}",
        kept,
    )

    run_py(
        tree,
        f"""
import os, signal
from pathlib import Path
from rag_server.embedding import EmbeddingCache
cache = EmbeddingCache(next((Path({str(root)!r}) / "cache").glob("embeddings-*.npy")))
os.replace = lambda *a: os.kill(os.getpid(), signal.SIGKILL)
cache.save()
""",
    )
    left = sorted((root / "cache").glob("*.tmp-*"))
    build(tree, root)
    remaining = sorted((root / "cache").glob("*.tmp-*"))
    report.add(
        "8 cache temp files",
        "SIGKILL inside EmbeddingCache.save, then one build",
        f"temp files after the kill: {len(left)}, after the next build: {len(remaining)}",
        len(left) == 1 and not remaining,
    )


def bad_start_case(tree: Path, tmp: Path, report: Report) -> None:
    root = tmp / "bad-start"
    only = build(tree, root)
    (root / "builds" / only / "manifest.json").write_text("{ not json")
    server = Server(tree, root, tmp / "bad-start.log", {"RAG_ADMIN_TOKEN": TOKEN}).start(ready=False)
    try:
        before, _, reason = request(server.port, "GET", "/readyz")
        search = post(server.port, "/v1/search", {"query": "consentimento"})
        shown = reason.decode(errors="replace") + json.dumps(search[2])
        has_path = str(tmp) in shown or "indexes/builds" in shown
        report.add(
            "16 paths and reasons (not ready)",
            "/readyz and a search on a server started on a build with a broken manifest",
            f"server path in them: {has_path}; names manifest.json: {'manifest.json' in shown}",
            not has_path and "manifest.json" in shown,
        )
        good = build(tree, root)
        status, _, body = post(server.port, "/v1/admin/reload", {}, {"Authorization": f"Bearer {TOKEN}"})
        after = _json(request(server.port, "GET", "/readyz", timeout=60)[2])
    finally:
        server.stop()
    report.add(
        "6 start on a bad CURRENT",
        "start on a build with a broken manifest, make a good build, reload",
        f"/readyz {before}; reload {status} {code_of(body)}; then {after.get('status')}",
        status == 200 and after.get("build_id") == good,
    )


def in_process_cases(tree: Path, root: Path, report: Report) -> None:
    """Cases 15 and 18 need other settings: the tree's app in one process, Flask's test client."""
    out = run_py(
        tree,
        f"""
import json
from rag_server.api import create_app
settings = {{"INDEX_DIR": {str(root)!r}, "GENERATOR_CHECKPOINT": "none", "TESTING": True}}
c = create_app({{**settings, "RATE_LIMIT": "6/minute"}}).test_client()
codes = [c.get(p).status_code for p in ["/v1/strategies", "/v1/index", "/v1/strategies", "/v1/index",
                                           "/v1/strategies", "/v1/index"]]
over = c.post("/v1/search", json={{"query": "consentimento", "strategy": "bm25"}})
keyed = create_app({{**settings, "API_KEYS": "k-123"}}).test_client()
no_key = keyed.post("/v1/search", json={{"query": "consentimento", "strategy": "bm25"}}).status_code
with_key = keyed.post("/v1/search", json={{"query": "consentimento", "strategy": "bm25"}},
                      headers={{"Authorization": "Bearer k-123"}}).status_code
print(json.dumps({{"codes": codes, "over": over.status_code, "retry_after": over.headers.get("Retry-After"),
                  "no_key": no_key, "with_key": with_key, "healthz": keyed.get("/healthz").status_code}}))
""",
    )
    got = json.loads(out.strip().splitlines()[-1])
    report.add(
        "15 rate limit per address",
        "RAG_RATE_LIMIT=6/minute: 6 GETs over 2 routes, then a search (in-process app)",
        f"7th request {got['over']}, Retry-After {got['retry_after']}",
        got["over"] == 429 and bool(got["retry_after"]),
    )
    report.add(
        "18 API keys",
        "RAG_API_KEYS=k-123: search without, then with the key; /healthz (in-process app)",
        f"without {got['no_key']}, with {got['with_key']}, /healthz {got['healthz']}",
        (got["no_key"], got["with_key"], got["healthz"]) == (401, 200, 200),
    )


if __name__ == "__main__":
    raise SystemExit(main())
