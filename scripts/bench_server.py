#!/usr/bin/env python3
"""HTTP server benchmark: gunicorn on 127.0.0.1 vs the same work done in-process, same run.

For each endpoint and strategy, ``--repeats`` times, on the same questions for both sides:

- steady load at concurrency 1: blocks of BLOCK requests sent back to back to the server, taking
  turns with blocks of the same pipeline calls made in-process; the overhead is the median of
  the per-question differences (server minus in-process);
- idle arrivals: the two sides alternate call by call, so each server request finds the server
  idle after one in-process call;

then throughput under a bounded load (``--requests`` requests at ``--concurrency``). Questions
are the project's evaluation questions. The server is started and stopped by the script.

    .venv/bin/python scripts/bench_server.py [--index indexes] [--requests 200] [--repeats 3]
"""

from __future__ import annotations

import argparse
import functools
import http.client
import json
import re
import socket
import statistics
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from rag_server.evaluation import load_project_questions
from rag_server.generator import Generator
from rag_server.generator.paths import PACKAGED_CHECKPOINT
from rag_server.pipeline import DEFAULT_SUPPORT_THRESHOLD, AskResult, RagPipeline, SearchResult

from _support import percentile
from support.devserver import SERVERS, LocalServer

STRATEGIES = ("bm25", "dense", "hybrid", "hybrid-convex")
BLOCK = 10  # requests per block of the steady concurrency-1 measurement


class Client:
    """One keep-alive connection per thread, as a real client library would hold."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.local = threading.local()

    def post(self, path: str, body: dict[str, object]) -> tuple[float, dict[str, object]]:
        payload = json.dumps(body)
        for attempt in (1, 2):
            conn = getattr(self.local, "conn", None)
            if conn is None:
                conn = self.local.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
            start = time.perf_counter()
            try:
                conn.request("POST", path, payload, {"Content-Type": "application/json"})
                response = conn.getresponse()
                data = response.read()
                break
            except (BrokenPipeError, ConnectionResetError, http.client.RemoteDisconnected):
                # The server closed an idle keep-alive connection: reconnect once (untimed).
                conn.close()
                self.local.conn = None
                if attempt == 2:
                    raise
        elapsed = (time.perf_counter() - start) * 1000
        if response.status != 200:
            raise RuntimeError(f"{path} answered {response.status}")
        return elapsed, json.loads(data)


class RawClient(Client):
    """The same keep-alive requests over a bare socket, as compiled load generators (wrk, hey)
    send them: the request is written in one call and only the status line and
    Content-Length are parsed. http.client parses every header with the email package, which
    costs the client ~0.1-0.3 ms per response: client time the server is not to blame for."""

    def post(self, path: str, body: dict[str, object]) -> tuple[float, dict[str, object]]:
        payload = json.dumps(body).encode()
        head = (
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(payload)}\r\n\r\n"
        ).encode()
        for attempt in (1, 2):
            sock = self._socket()
            start = time.perf_counter()
            try:
                sock.sendall(head + payload)
                status, headers, data = _read_response(sock)
                break
            except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError):
                sock.close()  # the server closed an idle keep-alive connection: reconnect once
                self.local.sock = None
                if attempt == 2:
                    raise
        elapsed = (time.perf_counter() - start) * 1000
        if b"connection: close" in headers.lower():
            sock.close()
            self.local.sock = None
        if status != 200:
            raise RuntimeError(f"{path} answered {status}")
        return elapsed, json.loads(data)

    def _socket(self) -> socket.socket:
        sock: socket.socket | None = getattr(self.local, "sock", None)
        if sock is None:
            sock = self.local.sock = socket.create_connection(("127.0.0.1", self.port), timeout=60)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock


def _read_response(sock: socket.socket) -> tuple[int, bytes, bytes]:
    """(status, header block, body) of one HTTP/1.1 response with a Content-Length."""
    buffer = b""
    while b"\r\n\r\n" not in buffer:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionResetError("the server closed the connection")
        buffer += chunk
    headers, _, body = buffer.partition(b"\r\n\r\n")
    found = _CONTENT_LENGTH.search(headers)
    if found is None:
        raise RuntimeError("response without Content-Length")
    length = int(found.group(1))
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionResetError("the server closed the connection")
        body += chunk
    return int(headers[9:12]), headers, body


_CONTENT_LENGTH = re.compile(rb"\r\ncontent-length:\s*(\d+)", re.IGNORECASE)
CLIENTS = {"raw": RawClient, "http.client": Client}


def request_body(path: str, strategy: str, text: str) -> dict[str, object]:
    if path == "/v1/search":
        return {"query": text, "strategy": strategy, "k": 10}
    return {"question": text, "strategy": strategy, "k": 3, "max_new_chars": 200}


@dataclass
class Pairs:
    """The same questions timed on both sides; ``*_retrieve`` is each side's own retrieve stage."""

    local_ms: list[float] = field(default_factory=list)
    local_retrieve: list[float] = field(default_factory=list)
    server_ms: list[float] = field(default_factory=list)
    server_retrieve: list[float] = field(default_factory=list)
    bodies: list[dict[str, object]] = field(default_factory=list)

    def add_local(self, timed: tuple[float, float]) -> None:
        self.local_ms.append(timed[0])
        self.local_retrieve.append(timed[1])

    def add_server(self, reply: tuple[float, dict[str, object]]) -> None:
        self.server_ms.append(reply[0])
        self.server_retrieve.append(float(reply[1]["timings_ms"]["retrieve"]))  # type: ignore[index]
        self.bodies.append(reply[1])

    def overhead(self) -> float:
        """Median of the per-question differences, server minus in-process (ms)."""
        return statistics.median(s - lo for s, lo in zip(self.server_ms, self.local_ms, strict=True))

    def outside_retrieval(self) -> float:
        """The same, with each side's own retrieve stage taken out: HTTP, framework and the
        wake-ups, without the run-to-run noise of the ~15-25 ms query encoder."""
        pairs = zip(self.server_ms, self.server_retrieve, self.local_ms, self.local_retrieve, strict=True)
        return statistics.median((s - sr) - (lo - lr) for s, sr, lo, lr in pairs)


def steady(
    local: Callable[[str], tuple[float, float]],
    served: Callable[[str], tuple[float, dict[str, object]]],
    questions: list[str],
) -> Pairs:
    """Blocks of BLOCK calls back to back per side, the sides taking turns (and turns at going
    first), so a background burst or a frequency change hits both."""
    pairs = Pairs()
    for first in range(0, len(questions), BLOCK):
        block = questions[first : first + BLOCK]
        if first // BLOCK % 2 == 0:
            timed = [local(q) for q in block]
            replies = [served(q) for q in block]
        else:
            replies = [served(q) for q in block]
            timed = [local(q) for q in block]
        for t, r in zip(timed, replies, strict=True):
            pairs.add_local(t)
            pairs.add_server(r)
    return pairs


def idle_arrivals(
    local: Callable[[str], tuple[float, float]],
    served: Callable[[str], tuple[float, dict[str, object]]],
    questions: list[str],
) -> Pairs:
    """The sides alternate call by call: each server request arrives after the server sat idle
    for one in-process call (~15-25 ms for the embedding strategies)."""
    pairs = Pairs()
    for q in questions:
        pairs.add_local(local(q))
        pairs.add_server(served(q))
    return pairs


def in_process(pipeline: RagPipeline, path: str, strategy: str, text: str) -> tuple[float, float]:
    """(total ms, retrieve-stage ms) of the pipeline call the server makes for ``path``."""
    start = time.perf_counter()
    if path == "/v1/search":
        result: SearchResult | AskResult = pipeline.search(text, strategy, 10)
    else:
        result = pipeline.ask(text, strategy, 3)
    return (time.perf_counter() - start) * 1000, result.timings_ms["retrieve"]


def spread(values: list[float]) -> str:
    """Median of the repeats and their range."""
    return f"{statistics.median(values):+.2f} ({min(values):+.2f} to {max(values):+.2f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--index", default="indexes")
    parser.add_argument("--requests", type=int, default=200, help="questions per measurement")
    parser.add_argument("--repeats", type=int, default=3, help="concurrency-1 measurements per row")
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--threads", type=int, default=4, help="server threads (one process)")
    parser.add_argument("--server", choices=SERVERS, default=SERVERS[0], help="waitress (make run) or gunicorn")
    parser.add_argument("--strategies", default=",".join(STRATEGIES), help="/v1/search rows to run")
    parser.add_argument("--skip-ask", action="store_true", help="leave out the /v1/ask row")
    parser.add_argument("--client", choices=sorted(CLIENTS), default="raw", help="HTTP client of the measurements")
    args = parser.parse_args()

    questions = [q.text for q in load_project_questions().queries]
    server = LocalServer(args.index, threads=args.threads, server=args.server).start()
    try:
        import torch

        # The in-process baseline: what the server's worker holds (the packaged generator, the
        # default support threshold), on one torch thread like a worker.
        torch.set_num_threads(1)
        pipeline = RagPipeline(
            args.index, generator=Generator.load(PACKAGED_CHECKPOINT), support_threshold=DEFAULT_SUPPORT_THRESHOLD
        )
        client = CLIENTS[args.client](server.port)
        n = min(args.requests, len(questions))
        print(
            f"machine: 2 vCPU; {args.server} 1 process x {args.threads} threads; {n} questions per measurement; "
            f"{args.repeats} repeats; concurrency {args.concurrency} for throughput; client {args.client}"
        )
        print(
            "| endpoint | strategy | in-process p50 ms | server p50 ms (c=1) "
            "| overhead ms, steady c=1 (median of repeats, range) | of it outside retrieval "
            "| overhead ms, idle arrivals | server p99 ms (c=1) "
            f"| req/s (c={args.concurrency}) | p50 / p99 ms under load |"
        )
        print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
        rows = [("/v1/search", s) for s in args.strategies.split(",") if s]
        rows += [] if args.skip_ask else [("/v1/ask", "hybrid-convex")]
        notes: list[str] = []
        for row, (path, strategy) in enumerate(rows):

            def unique(phase: str, row: int = row) -> list[str]:
                # Query embeddings are cached (LRU) in both processes: a token that matches no
                # index term makes every request new work, as with real users, and leaves the
                # ranking unchanged. Each process sees a question once per side.
                return [f"{q} zq{row}{phase}{i}" for i, q in enumerate(questions[:n])]

            local = functools.partial(in_process, pipeline, path, strategy)

            def served(text: str, path: str = path, strategy: str = strategy) -> tuple[float, dict[str, object]]:
                return client.post(path, request_body(path, strategy, text))

            runs = [steady(local, served, unique(f"s{r}")) for r in range(args.repeats)]
            idles = [idle_arrivals(local, served, unique(f"i{r}")) for r in range(args.repeats)]
            bodies = [request_body(path, strategy, q) for q in unique("c")]
            start = time.perf_counter()
            with ThreadPoolExecutor(args.concurrency) as pool:
                loaded = [ms for ms, _ in pool.map(functools.partial(client.post, path), bodies)]
            wall = time.perf_counter() - start
            local_all = [ms for run in runs for ms in run.local_ms]
            server_all = [ms for run in runs for ms in run.server_ms]
            if path == "/v1/ask":
                replies = [body for run in runs for body in run.bodies]
                answers = [str(body["answer"]) for body in replies if body["supported"]]
                generate = [float(body["timings_ms"]["generate"]) for body in replies if body["supported"]]  # type: ignore[index]
                notes.append(
                    f"/v1/ask: {len(answers)}/{len(replies)} answered by the generator (the rest below the "
                    f"support threshold, not generated); answers of {statistics.mean(map(len, answers)):.0f} "
                    f"characters on average (max {max(map(len, answers))}); generate stage p50 "
                    f"{statistics.median(generate):.1f} ms"
                )
            print(
                f"| {path} | {strategy} | {statistics.median(local_all):.2f} | {statistics.median(server_all):.2f} "
                f"| {spread([run.overhead() for run in runs])} "
                f"| {spread([run.outside_retrieval() for run in runs])} "
                f"| {spread([run.overhead() for run in idles])} "
                f"| {percentile(server_all, 99):.2f} | {len(bodies) / wall:.1f} "
                f"| {percentile(loaded, 50):.1f} / {percentile(loaded, 99):.1f} |"
            )
        for note in notes:
            print(note)
    finally:
        server.stop()


if __name__ == "__main__":
    main()
