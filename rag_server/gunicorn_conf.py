"""gunicorn settings for serving ``rag_server.api:create_app()`` with JSON log lines only.

    gunicorn -c python:rag_server.gunicorn_conf --bind 127.0.0.1:8000 'rag_server.api:create_app()'

``make run`` serves with waitress (``rag_server/serve.py``); this is for a deployment that wants
gunicorn, behind a buffering proxy (gunicorn's threads read requests themselves, so slow clients
hold them: docs/RELIABILITY.md). gunicorn's error and access logs go through the app's
:class:`~rag_server.jsonlog.JsonFormatter`, progress bars are off, and each worker routes
warnings, uncaught exceptions and library loggers to JSON as well.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from rag_server.jsonlog import configure_process
from rag_server.settings import Settings

workers = 1  # one copy of the index and models; threads for concurrency
threads = int(os.environ.get("THREADS", "4"))
accesslog = None  # the app logs every request itself (rag_server.access), with its request id
logconfig_dict: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": "rag_server.jsonlog.JsonFormatter"}},
    "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}},
    "root": {"level": "WARNING", "handlers": ["stderr"]},
    "loggers": {
        "gunicorn.error": {"level": "INFO", "handlers": ["stderr"], "propagate": False},
        "gunicorn.access": {"level": "INFO", "handlers": ["stderr"], "propagate": False},
    },
}
for _name, _value in {"TQDM_DISABLE": "1", "HF_HUB_DISABLE_PROGRESS_BARS": "1"}.items():
    os.environ.setdefault(_name, _value)  # inherited by the workers


def post_worker_init(worker: Any) -> None:
    configure_process(Settings.from_env().log_level)
    for name in ("gunicorn.error", "gunicorn.access"):  # configure_process left these on the root handler
        logging.getLogger(name).propagate = False
