"""A local gunicorn for scripts and tests: started on 127.0.0.1, waited for, stopped.

with LocalServer(index_root, threads=4, env={"RAG_ADMIN_TOKEN": token}) as server:
    requests go to server.base; server.build_id is what /readyz reported
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import Any

APP = "rag_server.api:create_app()"


def report_checks(checks: dict[str, bool]) -> int:
    """Print each named check as ok/FAIL and the overall result; the exit status (0 only if all pass)."""
    for name, ok in checks.items():
        print(f"  [{'ok' if ok else 'FAIL'}] {name}")
    passed = all(checks.values())
    print(f"result: {'PASS' if passed else 'FAIL'}")
    return 0 if passed else 1


def post_json(
    url: str, body: dict[str, Any], headers: dict[str, str] | None = None, timeout: float = 30
) -> tuple[int, Any]:
    """POST ``body`` as JSON; the status and the decoded JSON answer (an error's too)."""
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json", **(headers or {})}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as r:
            return int(r.status), json.loads(r.read())
    except urllib.error.HTTPError as e:
        return int(e.code), json.loads(e.read() or b"null")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LocalServer:
    """gunicorn serving the app over ``index_root``; loopback only, stopped on exit."""

    def __init__(
        self,
        index_root: Path | str,
        *,
        workers: int = 1,
        threads: int = 4,
        env: dict[str, str] | None = None,
        cwd: Path | str | None = None,
        ready_timeout: float = 120,
    ) -> None:
        self.index_root = Path(index_root)
        self.workers, self.threads = workers, threads
        self.env = {"RAG_INDEX_DIR": str(self.index_root), "RAG_LOG_LEVEL": "WARNING", **(env or {})}
        self.cwd = cwd
        self.ready_timeout = ready_timeout
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.build_id = ""

    @property
    def pid(self) -> int:
        assert self.proc is not None, "the server is not started"
        return self.proc.pid

    def start(self) -> LocalServer:
        gunicorn = Path(sys.executable).with_name("gunicorn")
        command = [str(gunicorn), "--workers", str(self.workers), "--threads", str(self.threads)]
        self.proc = subprocess.Popen(
            [*command, "--bind", f"127.0.0.1:{self.port}", APP],
            cwd=self.cwd,
            env={**os.environ, **self.env},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        self.build_id = self._wait_ready()
        return self

    def _wait_ready(self) -> str:
        assert self.proc is not None
        deadline = time.monotonic() + self.ready_timeout
        while time.monotonic() < deadline and self.proc.poll() is None:
            try:
                with urllib.request.urlopen(self.base + "/readyz", timeout=5) as r:
                    return str(json.loads(r.read())["build_id"])
            except (OSError, ValueError):
                time.sleep(0.2)
        exited = self.proc.poll() is not None
        detail = self.proc.stderr.read().decode(errors="replace")[-2000:] if self.proc.stderr and exited else ""
        self.stop()
        raise RuntimeError("gunicorn did not become ready: " + detail)

    def stop(self) -> int | None:
        """SIGTERM (graceful), SIGKILL after 30 s; returns the exit status."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=30)
        return self.proc.returncode

    def __enter__(self) -> LocalServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
