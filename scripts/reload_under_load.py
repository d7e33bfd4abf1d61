"""Switch builds under load: the server serves searches while a new build is made and reloaded.

1. Builds the corpus (real default embedding model) into a temporary index root.
2. Starts the server (waitress as ``make run``, or ``--server gunicorn``; 4 threads) on 127.0.0.1
   on a free port, RAG_ADMIN_TOKEN set.
3. Client threads POST /v1/search (strategy bm25) until --requests are done. Meanwhile a copy
   of the corpus is edited (its checksum changes), built into the same root, and
   POST /v1/admin/reload switches the server to it while the clients keep going. (Requests
   past the first third wait for the new build if it is not done yet, so the reload always
   lands while requests are in flight.)
4. Checks: no failed request (non-200 or connection error), every response names a build id,
   the build id changes exactly once (old...old, new...new: one switch instant explains every
   response given its send and receive times, so no request sent after a new-build response came
   back got the old build), and the reload said changed=true. Raw switch counts in completion
   and send order are printed too: overlapping requests may be answered out of send order.

Usage:
    .venv/bin/python scripts/reload_under_load.py [--corpus DIR] [--requests 600] [--concurrency 4]

Exit status 1 if a check fails. The server is stopped at the end either way.
"""

from __future__ import annotations

import argparse
import json
import secrets
import shutil
import sys
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any

from rag_server.build import BuildConfig, build_index

from _support import FIXTURE_CORPUS, ROOT, build_in_temp_root
from support.devserver import SERVERS, LocalServer, post_json, report_checks

QUERIES = [
    "consentimento do titular",
    "Who bears the burden of proving that consent was obtained?",
    "prazo para comunicar um incidente de segurança",
    "GPU memory",
]


@dataclass
class Result:
    number: int
    sent: float
    received: float
    status: int  # 0: connection error
    build_id: str | None
    error: str = ""


def edited_copy(corpus: Path, target: Path) -> Path:
    """A copy of the corpus with one sentence appended to one file (so its checksum changes)."""
    shutil.copytree(corpus, target)
    first = sorted(p for p in target.rglob("*") if p.is_file() and p.suffix in (".md", ".txt"))[0]
    with first.open("a", encoding="utf-8") as handle:
        handle.write("\n\nReload test: this sentence was added to change the corpus checksum.\n")
    return target


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--corpus", type=Path, default=FIXTURE_CORPUS)
    parser.add_argument("--requests", type=int, default=600)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--server", choices=SERVERS, default=SERVERS[0], help="waitress (make run) or gunicorn")
    args = parser.parse_args(argv)

    token = secrets.token_hex(16)
    started = time.perf_counter()
    tmp, first = build_in_temp_root("reload-under-load-", args.corpus.resolve())
    index_root = tmp / "indexes"
    print(f"first build {first.build_id} ({time.perf_counter() - started:.1f} s) in {index_root}")
    server = LocalServer(index_root, threads=4, env={"RAG_ADMIN_TOKEN": token}, cwd=ROOT, server=args.server)
    try:
        with server:
            print(f"{server.server} pid {server.pid} on {server.base} (4 threads) serving {server.build_id}")
            return run_load(args, server.base, token, tmp, index_root, first.build_id)
    finally:
        print(f"server stopped (exit {server.proc.returncode if server.proc else None})")
        shutil.rmtree(tmp, ignore_errors=True)


def run_load(args: argparse.Namespace, base: str, token: str, tmp: Path, index_root: Path, old_id: str) -> int:
    results: list[Result] = []
    results_lock = threading.Lock()
    counter = iter(range(args.requests))
    counter_lock = threading.Lock()
    built = threading.Event()
    gate = args.requests // 3  # requests past this wait for the new build if it is not done yet
    reload_info: dict[str, Any] = {}

    def client() -> None:
        while True:
            with counter_lock:
                number = next(counter, None)
            if number is None:
                return
            if number >= gate:
                built.wait(timeout=600)
            body = {"query": QUERIES[number % len(QUERIES)], "strategy": "bm25", "k": 3}
            sent = time.perf_counter()
            try:
                status, payload = post_json(base + "/v1/search", body)
                build_id = payload.get("build_id") if isinstance(payload, dict) else None
                result = Result(number, sent, time.perf_counter(), status, build_id)
            except (OSError, ValueError) as exc:
                result = Result(number, sent, time.perf_counter(), 0, None, repr(exc))
            with results_lock:
                results.append(result)

    def rebuild_and_reload() -> None:
        try:
            corpus = edited_copy(args.corpus.resolve(), tmp / "corpus-edited")
            start = time.perf_counter()
            second = build_index(BuildConfig([corpus], index_root, progress=False))
            reload_info["build_id"] = second.build_id
            reload_info["build_s"] = time.perf_counter() - start
            with results_lock:
                reload_info["done_before_build"] = len(results)
        finally:
            built.set()
        reload_info["sent"] = time.perf_counter()
        status, payload = post_json(base + "/v1/admin/reload", {}, {"Authorization": f"Bearer {token}"})
        reload_info["received"] = time.perf_counter()
        reload_info["status"], reload_info["payload"] = status, payload
        with results_lock:
            reload_info["done_at_reload"] = len(results)

    start = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(args.concurrency)]
    rebuilder = threading.Thread(target=rebuild_and_reload)
    rebuilder.start()
    for thread in threads:
        thread.start()
    rebuilder.join()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - start
    return report(results, reload_info, old_id, elapsed, args)


def report(results: list[Result], info: dict[str, Any], old_id: str, elapsed: float, args: argparse.Namespace) -> int:
    new_id = info.get("build_id")
    by_send = sorted(results, key=lambda r: r.sent)
    failed = [r for r in results if r.status != 200]
    missing = [r for r in results if r.status == 200 and not r.build_id]
    ids = [r.build_id for r in by_send]
    switches = sum(1 for a, b in pairwise(ids) if a != b)
    by_received = [r.build_id for r in sorted(results, key=lambda r: r.received)]
    switches_received = sum(1 for a, b in pairwise(by_received) if a != b)
    counts = Counter(ids)
    first_new_back = min((r.received for r in results if r.build_id == new_id), default=None)
    stale = [r for r in results if first_new_back is not None and r.sent > first_new_back and r.build_id == old_id]
    # Each request read the served build at some instant between its send and its receive. One
    # atomic switch explains every response iff the last old request was sent before the first
    # new response came back; ordered by that instant, the sequence is old...old, new...new.
    last_old_sent = max((r.sent for r in results if r.build_id == old_id), default=None)
    single_switch = (
        last_old_sent is not None and first_new_back is not None and last_old_sent < first_new_back and not stale
    )
    payload = info.get("payload") or {}

    print(f"new build {new_id} made in {info.get('build_s', float('nan')):.1f} s while serving")
    print(
        f"requests: {len(results)} in {elapsed:.1f} s with {args.concurrency} client threads "
        f"({len(results) / elapsed:.0f}/s); done before the new build finished: {info.get('done_before_build')}, "
        f"done when the reload returned: {info.get('done_at_reload')}"
    )
    took = info.get("received", float("nan")) - info.get("sent", float("nan"))
    print(f"reload: HTTP {info.get('status')} in {took:.2f} s {json.dumps(payload)}")
    print(f"failed requests (non-200 or connection error): {len(failed)}")
    for r in failed[:5]:
        print(f"  request {r.number}: status {r.status} {r.error}")
    print(f"responses without a build id: {len(missing)}")
    print(f"responses by build id: old {counts.get(old_id, 0)}, new {counts.get(new_id, 0)}")
    print(
        f"build id switches: {1 if single_switch else 'not explained by one switch'} (ordered by when each request "
        f"read the build); raw: {switches_received} in completion order, {switches} in send order (overlapping "
        "requests can be served out of send order by the 4 server threads)"
    )
    print(f"requests sent after a new-build response came back that still got the old build: {len(stale)}")

    checks = {
        "zero failed requests": not failed and len(results) == args.requests,
        "every response names a build id": not missing,
        "only the old and the new build served": set(counts) <= {old_id, new_id} and new_id != old_id,
        "build id changes exactly once, old then new": single_switch
        and by_received[0] == old_id
        and by_received[-1] == new_id,
        "no stale response after the switch was seen": not stale,
        "reload answered 200 with changed=true": info.get("status") == 200
        and payload.get("changed") is True
        and payload.get("previous_build_id") == old_id
        and payload.get("build_id") == new_id,
    }
    return report_checks(checks)


if __name__ == "__main__":
    sys.exit(main())
