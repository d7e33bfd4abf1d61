"""The served configuration (``make run``): the app under waitress.

    python -m rag_server.serve --host 127.0.0.1 --port 8000 --threads 4

Waitress reads every request, headers and body, in its event loop and hands a thread only a
complete request; responses are buffered the same way. Idle connections and clients that send
their headers or body a byte at a time therefore hold no thread: with gunicorn's gthread worker,
4 such connections left a 4-thread server answering nothing (docs/RELIABILITY.md,
scripts/slow_clients.py). Idle connections are closed after ``--channel-timeout`` seconds, at
most ``--connection-limit`` are open at once, headers are at most 32 KiB and a body over
``2 x RAG_MAX_BODY_BYTES`` is refused by waitress itself (smaller ones over the limit get the
app's JSON 413).

One process, several threads: the index and the models are loaded once, as with one gunicorn
worker (rag_server.api:create_app() can still be served by gunicorn or any WSGI server).
"""

from __future__ import annotations

import argparse
import signal
import sys
from typing import Any

from .errors import ConfigError
from .jsonlog import configure_process
from .settings import Settings


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m rag_server.serve", description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--threads", type=int, default=4, help="threads running requests (default 4)")
    parser.add_argument("--connection-limit", type=int, default=1000, help="open connections at most")
    parser.add_argument("--channel-timeout", type=int, default=60, help="seconds before an idle connection closes")
    return parser.parse_args(argv)


def server_options(args: argparse.Namespace, max_body_bytes: int) -> dict[str, Any]:
    return {
        "host": args.host,
        "port": args.port,
        "threads": args.threads,
        "connection_limit": args.connection_limit,
        "channel_timeout": args.channel_timeout,
        # Buffered per connection before the app sees a request: bounded so that 1,000 slow
        # clients cannot hold more than ~160 MB. A body between RAG_MAX_BODY_BYTES and this gets
        # the app's JSON 413; a larger one waitress's own 413.
        "max_request_body_size": max(2 * max_body_bytes, 1 << 16),
        "max_request_header_size": 32 * 1024,
        "asyncore_use_poll": True,  # poll(), not select(): no limit of 1024 descriptors
        "clear_untrusted_proxy_headers": True,
        "ident": "rag_server",
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    configure_process(settings.log_level)  # before anything logs: JSON lines only
    from waitress import serve

    from .api import create_app

    app = create_app()
    # SIGTERM (what process managers send) stops the loop like Ctrl-C: waitress then lets the
    # threads finish the requests they hold (up to 5 s) before the process exits.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    serve(app, **server_options(args, int(app.config["MAX_CONTENT_LENGTH"])))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
