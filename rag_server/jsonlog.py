"""JSON log lines for a whole server process: one formatter, everything through it.

:class:`JsonFormatter` writes one JSON object per line (time, level, logger, message and the
record's ``fields``). :func:`configure_process` makes it the only output of a server process
(``python -m rag_server.serve``; ``rag_server/gunicorn_conf.py`` under gunicorn): the root
logger and so waitress's, gunicorn's and every library's records, Python warnings, uncaught
exceptions of any thread, and the transformers / sentence-transformers loggers (which bring their
own plain-text handler); progress bars (tqdm, Hugging Face) are turned off, since a server has no
terminal to draw them on. Light on purpose: gunicorn's master imports it from its log settings.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
from types import TracebackType
from typing import Any

_PROGRESS_OFF = {"TQDM_DISABLE": "1", "HF_HUB_DISABLE_PROGRESS_BARS": "1", "TRANSFORMERS_NO_ADVISORY_WARNINGS": "1"}
_LIBRARY_LOGGERS = ("transformers", "sentence_transformers", "huggingface_hub")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update(getattr(record, "fields", {}))
        if record.exc_info and record.levelno >= logging.ERROR:
            entry["error_type"] = record.exc_info[0].__name__ if record.exc_info[0] else None
        return json.dumps(entry, ensure_ascii=False, default=str)


def json_handler(stream: Any = None) -> logging.Handler:
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter())
    return handler


def configure_process(level: str = "INFO") -> None:
    """Make every line this process writes to stderr through logging a JSON object."""
    for name, value in _PROGRESS_OFF.items():
        os.environ.setdefault(name, value)
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    root.addHandler(json_handler())
    root.setLevel(logging.WARNING)  # libraries: warnings and errors
    for name in ("waitress", "gunicorn.error", "gunicorn.access"):
        logging.getLogger(name).setLevel(level)
    logging.captureWarnings(True)  # warnings.warn() goes to the "py.warnings" logger
    sys.excepthook = _log_uncaught
    threading.excepthook = _log_thread_uncaught
    adopt_library_loggers()


def adopt_library_loggers() -> None:
    """Route the Hugging Face libraries' loggers (each with its own plain-text handler) to the
    root logger, when the process was configured with :func:`configure_process`. Called again
    after those libraries are imported (they are imported lazily, with the embedding model)."""
    if not any(isinstance(h.formatter, JsonFormatter) for h in logging.getLogger().handlers):
        return
    for name in _LIBRARY_LOGGERS:
        logger = logging.getLogger(name)
        for handler in list(logger.handlers):
            logger.removeHandler(handler)
        logger.propagate = True


def _log_uncaught(kind: type[BaseException], value: BaseException, tb: TracebackType | None) -> None:
    logging.getLogger("rag_server").critical(f"uncaught {kind.__name__}: {value}", exc_info=(kind, value, tb))


def _log_thread_uncaught(args: threading.ExceptHookArgs) -> None:
    if args.exc_type is SystemExit:
        return
    name = args.thread.name if args.thread else "?"
    logging.getLogger("rag_server").error(
        f"uncaught {args.exc_type.__name__} in thread {name}: {args.exc_value}",
        exc_info=(args.exc_type, args.exc_value or args.exc_type(), args.exc_traceback),
    )
