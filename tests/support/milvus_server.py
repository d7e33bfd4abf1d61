"""A Milvus Lite server in its own process (``python -m milvus_lite server``) on 127.0.0.1, for
tests where several processes share one Milvus or where Milvus dies under a running app."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from .devserver import free_port


class MilvusLiteServer:
    def __init__(self, data_dir: Path, port: int | None = None) -> None:
        self.data_dir = data_dir
        self.port = port or free_port()
        self.uri = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, ready_timeout: float = 60) -> MilvusLiteServer:
        main = Path(__file__).with_name("milvus_lite_main.py")  # python -m milvus_lite, a cluster's keepalive policy
        command = [sys.executable, str(main), "server", "--data-dir", str(self.data_dir)]
        self.proc = subprocess.Popen(
            [*command, "--host", "127.0.0.1", "--port", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + ready_timeout
        while time.monotonic() < deadline and self.proc.poll() is None:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return self
            except OSError:
                time.sleep(0.1)
        detail = self.proc.stderr.read().decode(errors="replace")[-1000:] if self.proc.poll() is not None else ""
        self.stop()
        raise RuntimeError(f"Milvus Lite did not start: {detail}")

    def kill(self) -> None:
        """SIGKILL: Milvus gone at once, as when its machine dies."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)  # its graceful shutdown closes the database
            try:
                # A healthy shutdown takes about 0.3 s. On a fresh machine's first run it has been
                # seen to hang (three teardowns of exactly 15 s, the old limit, in one suite); the
                # data directory is the test's own temporary one, so a kill loses nothing.
                self.proc.wait(timeout=3)
            except subprocess.TimeoutExpired:
                self.kill()
