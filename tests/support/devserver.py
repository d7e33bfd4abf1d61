"""A local server for scripts and tests: started on 127.0.0.1, waited for, stopped.

with LocalServer(index_root, threads=4, env={"RAG_ADMIN_TOKEN": token}) as server:
    requests go to server.base; server.build_id is what /readyz reported

``server="waitress"`` (the default) is the served configuration of ``make run``
(``python -m rag_server.serve``); ``server="gunicorn"`` runs gunicorn's gthread worker over
the same app, for comparisons.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

APP = "rag_server.api:create_app()"
SERVERS = ("waitress", "gunicorn")


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
    """The app served over ``index_root`` (waitress, as ``make run``, or gunicorn); loopback only,
    stopped on exit."""

    def __init__(
        self,
        index_root: Path | str,
        *,
        workers: int = 1,
        threads: int = 4,
        env: dict[str, str] | None = None,
        cwd: Path | str | None = None,
        ready_timeout: float = 120,
        server: str = "waitress",
        log_file: Path | None = None,
    ) -> None:
        if server not in SERVERS or (server == "waitress" and workers != 1):
            raise ValueError(f"server must be one of {SERVERS} (waitress: one process, workers=1)")
        self.server = server
        self.log_file = log_file  # the server's stderr (its log) goes there; else a pipe read on failure
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

    def command(self) -> list[str]:
        if self.server == "waitress":
            return [sys.executable, "-m", "rag_server.serve", "--port", str(self.port), "--threads", str(self.threads)]
        gunicorn = Path(sys.executable).with_name("gunicorn")
        command = [str(gunicorn), "--workers", str(self.workers), "--threads", str(self.threads)]
        return [*command, "--bind", f"127.0.0.1:{self.port}", APP]

    def start(self) -> LocalServer:
        stderr: Any = self.log_file.open("ab") if self.log_file else subprocess.PIPE
        try:
            self.proc = subprocess.Popen(
                self.command(),
                cwd=self.cwd,
                env={**os.environ, **self.env},
                stdout=subprocess.DEVNULL,
                stderr=stderr,
            )
        finally:
            if self.log_file:
                stderr.close()  # the child holds its own descriptor
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
        detail = ""
        if exited and self.proc.stderr:
            detail = self.proc.stderr.read().decode(errors="replace")[-2000:]
        elif exited and self.log_file:
            detail = self.log_file.read_text(errors="replace")[-2000:]
        self.stop()
        raise RuntimeError(f"{self.server} did not become ready: " + detail)

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


KINDS = ("idle", "headers", "body")


class HostileClients:
    """``count`` connections to ``port`` on 127.0.0.1 that never finish a request: a third idle
    (nothing sent), a third sending their headers one byte every ``trickle`` seconds, a third
    their body the same way. One thread keeps them trickling until :meth:`close`."""

    def __init__(self, port: int, count: int, trickle: float = 1.0, kinds: Sequence[str] = KINDS) -> None:
        self.port, self.count, self.trickle, self.kinds = port, count, trickle, list(kinds)
        self.socks: list[tuple[str, socket.socket]] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._trickle, daemon=True)
        self.refused = 0

    def open(self) -> HostileClients:
        for i in range(self.count):
            kind = self.kinds[i % len(self.kinds)]
            try:
                sock = socket.create_connection(("127.0.0.1", self.port), timeout=5)
                if kind == "headers":
                    sock.sendall(b"POST /v1/search HTTP/1.1\r\nHost: x\r\n")
                elif kind == "body":
                    head = "POST /v1/search HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                    sock.sendall((head + "Content-Length: 1000\r\n\r\n").encode())
                self.socks.append((kind, sock))
            except OSError:
                self.refused += 1
        self.thread.start()
        return self

    def _trickle(self) -> None:
        while not self.stop.wait(self.trickle):
            for kind, sock in self.socks:
                if kind == "idle":
                    continue
                with contextlib.suppress(OSError):  # closed by the server: it stays closed
                    sock.sendall(b"X" if kind == "headers" else b" ")

    def close(self) -> int:
        """Close everything; how many of the connections the server had already closed."""
        self.stop.set()
        self.thread.join(timeout=5)
        closed = 0
        for _kind, sock in self.socks:
            try:
                sock.setblocking(False)
                if sock.recv(1) == b"":
                    closed += 1
            except BlockingIOError:
                pass
            except OSError:
                closed += 1
            sock.close()
        return closed

    def __enter__(self) -> HostileClients:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()
