"""Soak test: a real gunicorn under steady concurrent load, watching errors, latency and memory.

1. Builds tests/fixtures/corpus with the real default embedding model into a temporary root.
2. Starts gunicorn on 127.0.0.1 on a free port: 1 worker x 16 threads (one process holds the
   model and the index once, as in production sizing for a small box; 16 threads match the 16
   client threads so every client has a server thread and queueing happens in the app, not in
   gunicorn's accept backlog).
3. 16 client threads loop until --minutes have passed, cycling through POST /v1/search with the
   strategies bm25, dense and hybrid-convex and POST /v1/ask.
4. Every 10 s the resident memory (RSS) of the gunicorn master plus its workers is sampled
   (psutil if installed, else VmRSS from /proc/<pid>/status). After a --warmup (60 s) the last
   sample is compared with the first post-warm-up sample.

Prints requests, errors, req/s, p50/p99 latency, the RSS series and its growth.
Exit status 1 if any request failed (non-200 or connection error) or RSS grew by >= 10 %.

Usage:
    .venv/bin/python scripts/soak.py [--minutes 5] [--concurrency 16] [--warmup 60]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import threading
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from _support import ROOT, build_in_temp_root, percentile
from support.devserver import SERVERS, LocalServer, post_json, report_checks

SAMPLE_EVERY_S = 10.0
MAX_GROWTH = 0.10
WORKERS, THREADS = 1, 16
QUERIES = [
    "consentimento do titular",
    "Who bears the burden of proving that consent was obtained?",
    "prazo para comunicar um incidente de segurança",
    "GPU memory",
    "What must a controller do after a data breach?",
]
# (path, strategy) pairs, cycled by every client thread.
CALLS: list[tuple[str, str]] = [
    ("/v1/search", "bm25"),
    ("/v1/search", "dense"),
    ("/v1/search", "hybrid-convex"),
    ("/v1/ask", "hybrid-convex"),
]


def server_pids(master: int) -> list[int]:
    """The server process and its direct children (gunicorn's workers; waitress has none)."""
    pids = [master]
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # pid (comm) state ppid ...: comm may hold spaces, so split after the last ')'.
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == master:
            pids.append(int(entry.name))
    return pids


def rss_bytes(master: int) -> int:
    try:
        import psutil  # type: ignore[import-untyped]

        parent = psutil.Process(master)
        return int(sum(p.memory_info().rss for p in [parent, *parent.children()]))
    except ImportError:
        pass
    total = 0
    for pid in server_pids(master):
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
        except OSError:
            continue
    return total


def run_load(base: str, master: int, args: argparse.Namespace) -> int:
    latencies: list[float] = []
    outcomes: Counter[str] = Counter()
    errors: list[str] = []
    lock = threading.Lock()
    samples: list[tuple[float, int]] = []
    start = time.monotonic()
    deadline = start + args.minutes * 60
    stop = threading.Event()

    def client(worker: int) -> None:
        n = worker
        while time.monotonic() < deadline:
            path, strategy = CALLS[n % len(CALLS)]
            query = QUERIES[(n // len(CALLS)) % len(QUERIES)]
            body: dict[str, Any] = (
                {"query": query, "strategy": strategy, "k": 5}
                if path == "/v1/search"
                else {"question": query, "strategy": strategy, "k": 3}
            )
            n += 1
            sent = time.perf_counter()
            try:
                status, _ = post_json(base + path, body, timeout=60)
                error = "" if status == 200 else f"{path} {strategy}: HTTP {status}"
            except (OSError, ValueError) as exc:
                status, error = 0, f"{path} {strategy}: {exc!r}"
            elapsed = time.perf_counter() - sent
            with lock:
                latencies.append(elapsed)
                outcomes[f"{path} {strategy} {status}"] += 1
                if error:
                    errors.append(error)

    def sampler() -> None:
        while True:
            samples.append((time.monotonic() - start, rss_bytes(master)))
            if stop.wait(SAMPLE_EVERY_S):
                return

    sampling = threading.Thread(target=sampler)
    sampling.start()
    threads = [threading.Thread(target=client, args=(i,)) for i in range(args.concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stop.set()
    sampling.join()
    samples.append((time.monotonic() - start, rss_bytes(master)))
    elapsed = time.monotonic() - start

    print(f"duration: {elapsed:.1f} s, concurrency {args.concurrency}")
    print(f"requests: {len(latencies)}, errors: {len(errors)}, throughput: {len(latencies) / elapsed:.1f} req/s")
    print(f"latency: p50 {percentile(latencies, 50) * 1000:.1f} ms, p99 {percentile(latencies, 99) * 1000:.1f} ms")
    for key, count in sorted(outcomes.items()):
        print(f"  {key}: {count}")
    for error in errors[:10]:
        print(f"  error: {error}")
    print(f"RSS (server process + its children), every {SAMPLE_EVERY_S:.0f} s:")
    for t, rss in samples:
        print(f"  t={t:6.1f} s  {rss / 2**20:8.1f} MiB{'  (warm-up)' if t < args.warmup else ''}")
    post_warmup = [rss for t, rss in samples if t >= args.warmup]
    if len(post_warmup) >= 2:
        growth = (post_warmup[-1] - post_warmup[0]) / post_warmup[0]
        print(
            f"RSS growth after warm-up: {post_warmup[0] / 2**20:.1f} -> {post_warmup[-1] / 2**20:.1f} MiB "
            f"({growth * 100:+.2f} %, limit {MAX_GROWTH * 100:.0f} %)"
        )
    else:
        growth = 0.0
        print("RSS growth after warm-up: not enough post-warm-up samples (run longer)")
    checks = {
        "zero errors": not errors and len(latencies) > 0,
        f"RSS growth < {MAX_GROWTH * 100:.0f} %": growth < MAX_GROWTH and len(post_warmup) >= 2,
    }
    return report_checks(checks)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--warmup", type=float, default=60.0, help="seconds before the RSS baseline")
    parser.add_argument("--server", choices=SERVERS, default=SERVERS[0], help="waitress (make run) or gunicorn")
    args = parser.parse_args(argv)

    started = time.perf_counter()
    tmp, build = build_in_temp_root("soak-")
    index_root = tmp / "indexes"
    print(f"build {build.build_id} ({time.perf_counter() - started:.1f} s) in {index_root}")
    server = LocalServer(index_root, workers=WORKERS, threads=THREADS, cwd=ROOT, server=args.server)
    try:
        with server:
            print(
                f"{server.server} pid {server.pid} on {server.base} ({WORKERS} process x {THREADS} threads) "
                f"serving {server.build_id}"
            )
            return run_load(server.base, server.pid, args)
    finally:
        print(f"server stopped (exit {server.proc.returncode if server.proc else None})")
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
