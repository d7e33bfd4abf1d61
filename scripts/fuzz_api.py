"""Fuzz the HTTP API from its OpenAPI document against a real server (the served stack).

1. Builds tests/fixtures/corpus with the real default embedding model into a temporary root.
2. Starts the server (waitress, as ``make run``; ``--server gunicorn``), 4 threads, on 127.0.0.1.
3. Loads the schema with ``schemathesis.openapi.from_url(<server>/openapi.json)`` and, for every
   operation, runs up to --examples hypothesis-generated cases over real HTTP with the same
   checks as tests/test_openapi.py: every schemathesis check (no 5xx, status code, content type,
   headers and body conform to the document) except ``positive_data_acceptance`` (a schema-valid
   query can still be stop words only, which the API rightly refuses with 400 empty_query).
   Meanwhile --slow-clients connections (default 16: idle, slow headers, slow body; see
   ``tests/support/devserver.py``, ``HostileClients``) stay open, so every case is also answered while
   slow clients hold connections (issue #14, case 4).

Prints the cases run per operation and every failure. Exit status 1 on any failure, or if fewer
than --min-total cases ran in total.

Usage:
    .venv/bin/python scripts/fuzz_api.py [--examples 250] [--min-total 1000] [--seed 0] [--slow-clients 16]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from collections.abc import Sequence

import schemathesis
from hypothesis import HealthCheck, given, seed, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from _support import ROOT, build_in_temp_root
from support.devserver import SERVERS, HostileClients, LocalServer, report_checks


def make_test(operation, label, base, args, counts, statuses):  # type: ignore[no-untyped-def]
    """A hypothesis test over one operation's generated cases (same checks as tests/test_openapi.py)."""

    @seed(args.seed)
    @given(case=operation.as_strategy())
    @settings(max_examples=args.examples, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    def conforms(case) -> None:  # type: ignore[no-untyped-def]
        counts[label] += 1
        response = case.call_and_validate(base_url=base, excluded_checks=[positive_data_acceptance])
        statuses[label][response.status_code] = statuses[label].get(response.status_code, 0) + 1
        assert response.status_code < 500, f"HTTP {response.status_code}"

    return conforms


def describe(exc: BaseException) -> str:
    """The exception and, for groups (hypothesis FlakyFailure, several checks failing), each member."""
    text = f"{type(exc).__name__}: {exc}"
    for sub in getattr(exc, "exceptions", ()) or ():
        text += "\n  " + describe(sub).replace("\n", "\n  ")
    return text


def fuzz(base: str, args: argparse.Namespace) -> int:
    schema = schemathesis.openapi.from_url(base + "/openapi.json")
    counts: dict[str, int] = {}
    statuses: dict[str, dict[int, int]] = {}
    failures: dict[str, str] = {}
    started = time.perf_counter()
    for result in schema.get_all_operations():
        operation = result.ok()
        label = operation.label
        counts[label] = 0
        statuses[label] = {}

        conforms = make_test(operation, label, base, args, counts, statuses)
        try:
            conforms()
        except Exception as exc:  # every failure is reported, then the run goes on
            failures[label] = describe(exc)[:3000]
    elapsed = time.perf_counter() - started

    total = sum(counts.values())
    print(f"operations: {len(counts)}, cases: {total} in {elapsed:.1f} s (max {args.examples} per operation)")
    for label, count in counts.items():
        by_status = ", ".join(f"{s}: {n}" for s, n in sorted(statuses[label].items()))
        print(f"  {label}: {count} cases ({by_status}){'  FAILED' if label in failures else ''}")
    print(f"failures: {len(failures)}")
    for label, message in failures.items():
        print(f"--- {label}\n{message}")
    checks = {
        "zero failures (no 5xx, no schema violation)": not failures,
        f"at least {args.min_total} cases": total >= args.min_total,
    }
    return report_checks(checks)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--examples", type=int, default=250, help="max generated cases per operation")
    parser.add_argument("--min-total", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--server", choices=SERVERS, default=SERVERS[0], help="waitress (make run) or gunicorn")
    parser.add_argument("--slow-clients", type=int, default=16, help="hostile connections held open meanwhile")
    args = parser.parse_args(argv)

    tmp, build = build_in_temp_root("fuzz-api-")
    index_root = tmp / "indexes"
    server = LocalServer(index_root, threads=4, cwd=ROOT, server=args.server)
    try:
        with server:
            print(
                f"build {build.build_id}; {server.server} pid {server.pid} on {server.base} (4 threads) "
                f"serving {server.build_id}"
            )
            with HostileClients(server.port, args.slow_clients) as hostile:
                print(f"slow clients held open: {len(hostile.socks)}")
                return fuzz(server.base, args)
    finally:
        print(f"server stopped (exit {server.proc.returncode if server.proc else None})")
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
