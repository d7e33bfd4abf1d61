#!/usr/bin/env python3
"""Where a served request's overhead goes on this machine: two probes behind bench_server.py.

1. Wake-ups. A loopback round trip to a forked echo process, answered either by the thread
   that reads the socket ("direct") or handed to a thread pool the way gunicorn's gthread
   worker hands a request from its poller to a worker thread ("pool"). Each is timed right
   after the caller did nothing, slept 20 ms, or spun 20 ms: the sleep and the spin leave the
   other process idle for 20 ms, as an in-process call or a query encoding does.
2. The app's own code. One WSGI call of ``/v1/search`` with the search itself stubbed out,
   for rag_server's app and for a bare Flask app that only parses, searches and encodes the
   same hits: warm (back to back) and right after a query encoding has run.

    .venv/bin/python scripts/probe_latency.py [--index indexes] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import selectors
import socket
import statistics
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

IDLE_S = 0.020
CALLS = 300


def spin(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def _serve_echo(listener: socket.socket, pooled: bool) -> None:
    """Child process: echo each message, from the reading thread or through a pool."""
    conn, _ = listener.accept()
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if not pooled:
        while data := conn.recv(65536):
            conn.sendall(data)
        os._exit(0)
    pool = ThreadPoolExecutor(4)
    poller = selectors.DefaultSelector()

    def answer() -> None:
        data = conn.recv(65536)
        if not data:
            os._exit(0)
        conn.sendall(data)
        poller.register(conn, selectors.EVENT_READ)  # back to the poller, as gthread does

    poller.register(conn, selectors.EVENT_READ)
    while True:
        for _ in poller.select(1.0):
            poller.unregister(conn)
            pool.submit(answer)


def probe_wakeups() -> None:
    print("| echo server | after nothing µs | after 20 ms asleep µs | after 20 ms spinning µs |")
    print("| --- | ---: | ---: | ---: |")
    for pooled in (False, True):
        listener = socket.create_server(("127.0.0.1", 0))
        pid = os.fork()
        if pid == 0:
            _serve_echo(listener, pooled)
        client = socket.create_connection(listener.getsockname())
        client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        cells = []
        before: Callable[[], None]
        for before in (lambda: None, lambda: time.sleep(IDLE_S), lambda: spin(IDLE_S)):
            rtt = []
            for _ in range(CALLS):
                before()
                start = time.perf_counter()
                client.sendall(b"x" * 200)
                client.recv(65536)
                rtt.append((time.perf_counter() - start) * 1e6)
            cells.append(f"{statistics.median(rtt):.0f}")
        client.close()
        os.waitpid(pid, 0)
        print(f"| {'through a thread pool' if pooled else 'direct'} | {' | '.join(cells)} |")


def _ignore_start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable[[bytes], object]:
    return lambda _: None


def probe_app(index: str, rounds: int) -> None:
    import torch
    from flask import Flask, jsonify, request
    from flask_orjson import OrjsonProvider
    from werkzeug.test import EnvironBuilder

    from rag_server.api import create_app
    from rag_server.api.responses import Hit as HitBody
    from rag_server.evaluation import load_project_questions
    from rag_server.pipeline import SearchResult

    torch.set_num_threads(1)
    questions = [q.text for q in load_project_questions().queries][:150]
    app = create_app({"INDEX_DIR": index, "LOG_LEVEL": "WARNING", "GENERATOR_CHECKPOINT": "none"})
    pipeline = app.extensions["rag_pipeline"]
    search = pipeline.search
    fixed: SearchResult = search(questions[0], "bm25", 10)

    def stub(*_: Any, **__: Any) -> SearchResult:
        return fixed

    bare = Flask("bare")
    bare.json = OrjsonProvider(bare)

    @bare.post("/v1/search")
    def bare_search() -> Any:
        body = request.get_json()
        r = stub(body["query"], body["strategy"], body["k"])
        return jsonify(build_id=r.build_id, strategy=r.strategy, hits=[HitBody.of(h).dump() for h in r.hits])

    def call(target: Flask) -> float:
        environ = EnvironBuilder(
            path="/v1/search", method="POST", json={"query": "x", "strategy": "bm25", "k": 10}
        ).get_environ()
        start = time.perf_counter()
        b"".join(target.wsgi_app(environ, _ignore_start))
        return (time.perf_counter() - start) * 1000

    print("\n| app (search stubbed) | round | warm ms | right after a query encoding ms |")
    print("| --- | ---: | ---: | ---: |")
    for round_ in range(1, rounds + 1):
        for name, target in (("rag_server", app), ("bare Flask", bare)):
            pipeline.search = stub
            warm = [call(target) for _ in questions]
            cold = []
            for i, q in enumerate(questions):
                search(f"{q} probe{round_}{name}{i}", "dense", 10)  # a fresh query: no cache hit
                cold.append(call(target))
            print(f"| {name} | {round_} | {statistics.median(warm):.3f} | {statistics.median(cold):.3f} |")
    pipeline.search = search


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--index", default="indexes")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    probe_wakeups()
    probe_app(args.index, args.rounds)


if __name__ == "__main__":
    main()
