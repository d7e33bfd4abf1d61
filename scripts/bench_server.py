#!/usr/bin/env python3
"""HTTP server benchmark: gunicorn on 127.0.0.1 vs the same work done in-process, same run.

For each endpoint and strategy: latency at concurrency 1 (p50/p99, compared with the
in-process pipeline call on the same questions, the two alternating: the server's overhead),
then throughput under a bounded load (``--requests`` requests at ``--concurrency``). Questions
are the project's evaluation questions, cycled. The server is started and stopped by the script.

    .venv/bin/python scripts/bench_server.py [--index indexes] [--requests 200] [--concurrency 4]
"""

from __future__ import annotations

import argparse
import functools
import http.client
import json
import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from rag_server.devserver import LocalServer
from rag_server.evaluation import load_project_questions
from rag_server.generator import Generator
from rag_server.generator.paths import PACKAGED_CHECKPOINT
from rag_server.pipeline import DEFAULT_SUPPORT_THRESHOLD, AskResult, RagPipeline, SearchResult

STRATEGIES = ("bm25", "dense", "hybrid", "hybrid-convex")


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


def request_body(path: str, strategy: str, text: str) -> dict[str, object]:
    if path == "/v1/search":
        return {"query": text, "strategy": strategy, "k": 10}
    return {"question": text, "strategy": strategy, "k": 3, "max_new_chars": 200}


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--index", default="indexes")
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--threads", type=int, default=4, help="gunicorn threads (one worker)")
    parser.add_argument("--strategies", default=",".join(STRATEGIES), help="/v1/search rows to run")
    parser.add_argument("--skip-ask", action="store_true", help="leave out the /v1/ask row")
    args = parser.parse_args()

    questions = [q.text for q in load_project_questions().queries]
    server = LocalServer(args.index, threads=args.threads).start()
    port = server.port
    try:
        import torch

        # The in-process baseline: what the server's worker holds (the packaged generator, the
        # default support threshold), on one torch thread like a worker.
        torch.set_num_threads(1)
        pipeline = RagPipeline(
            args.index, generator=Generator.load(PACKAGED_CHECKPOINT), support_threshold=DEFAULT_SUPPORT_THRESHOLD
        )
        client = Client(port)
        n = min(args.requests, len(questions))
        print(
            f"machine: 2 vCPU; gunicorn 1 worker x {args.threads} threads; {n} requests per row; "
            f"concurrency {args.concurrency} for throughput"
        )
        print(
            "| endpoint | strategy | in-process p50 ms | server p50 ms (c=1) | difference of p50s ms "
            "| overhead ms (median of paired differences) | of which retrieval inside the server | server p99 ms (c=1) "
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
                # ranking unchanged.
                return [f"{q} zq{row}{phase}{i}" for i, q in enumerate(questions[:n])]

            # In-process and server calls alternate, so both see the same machine state (a
            # background burst or a frequency change hits both sides, not one).
            local: list[float] = []
            local_retrieve_ms: list[float] = []  # the retrieve stage of the local calls
            replies: list[tuple[float, dict[str, object]]] = []
            # The same question on both sides (each process embeds it once: their caches are
            # separate), so each pair costs the same compute and its difference is the overhead.
            for q_local, q_server in zip(unique("a"), unique("a"), strict=True):
                start = time.perf_counter()
                if path == "/v1/search":
                    result: SearchResult | AskResult = pipeline.search(q_local, strategy, 10)
                else:
                    result = pipeline.ask(q_local, strategy, 3)
                local_retrieve_ms.append(result.timings_ms["retrieve"])
                local.append((time.perf_counter() - start) * 1000)
                replies.append(client.post(path, request_body(path, strategy, q_server)))
            serial = [ms for ms, _ in replies]
            bodies = [request_body(path, strategy, q) for q in unique("c")]
            start = time.perf_counter()
            with ThreadPoolExecutor(args.concurrency) as pool:
                loaded = [ms for ms, _ in pool.map(functools.partial(client.post, path), bodies)]
            wall = time.perf_counter() - start
            if path == "/v1/ask":
                answers = [str(body["answer"]) for _, body in replies if body["supported"]]
                generate = [float(body["timings_ms"]["generate"]) for _, body in replies if body["supported"]]  # type: ignore[index]
                notes.append(
                    f"/v1/ask: {len(answers)}/{len(replies)} answered by the generator (the rest below the "
                    f"support threshold, not generated); answers of {statistics.mean(map(len, answers)):.0f} "
                    f"characters on average (max {max(map(len, answers))}); generate stage p50 "
                    f"{statistics.median(generate):.1f} ms"
                )
            p50_local, p50_server = statistics.median(local), statistics.median(serial)
            # The server reports its own retrieval time: the part of the overhead that is compute
            # (the same search, slower inside the server) rather than HTTP and framework.
            inside = statistics.median(float(body["timings_ms"]["retrieve"]) for _, body in replies)  # type: ignore[index]
            local_retrieve = statistics.median(local_retrieve_ms)
            print(
                f"| {path} | {strategy} | {p50_local:.2f} | {p50_server:.2f} | {p50_server - p50_local:+.2f} "
                f"| {statistics.median(s - lo for s, lo in zip(serial, local, strict=True)):+.2f} "
                f"| {inside - local_retrieve:+.2f} "
                f"| {pct(serial, 99):.2f} | {len(bodies) / wall:.1f} | {pct(loaded, 50):.1f} / {pct(loaded, 99):.1f} |"
            )
        for note in notes:
            print(note)
    finally:
        server.stop()


if __name__ == "__main__":
    main()
