"""Logging: the service's loggers, its log format and level, and log values that stay on one line."""

import json
import logging
import re
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # gunicorn's master imports this module (gunicorn.conf.py) and need not load Flask
    from flask import Flask

# The service's own log lines (Sentry, unhandled errors) and its one line per request.
logger = logging.getLogger("digit_recognition")
request_logger = logging.getLogger("digit_recognition.requests")
# The format of every line, when nothing (gunicorn, a test runner) set logging up before the app.
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# A log value is written bare when it is this plain, else quoted and escaped (no forged log lines).
PLAIN_LOG_VALUE = re.compile(r"^[\w./:@%+-]*$")


def init_app(app: "Flask") -> None:
    """Log to stderr in LOG_FORMAT unless logging is set up already, at the app's LOG_LEVEL."""
    if not logging.getLogger().handlers:
        logging.basicConfig(stream=sys.stderr, format=LOG_FORMAT)
        # no format here shows a thread: skip collecting it for every record (the logging HOWTO's advice); the
        # process id stays, since gunicorn's own format (its lines from the workers) shows it
        logging.logThreads = logging.logMultiprocessing = False
    logging.getLogger().setLevel(app.config["LOG_LEVEL"])


def log_value(text: str) -> str:
    """A logfmt value: as it is when plain, else quoted and escaped, so that a log line stays one line."""
    return text if PLAIN_LOG_VALUE.match(text) else json.dumps(text)


def log_request(method: str, path: str, status: int, seconds: float, request_id: str, detail: str = "") -> None:
    """Write a request's one logfmt line, the app's (web/hooks.py) and the worker's for what it answers itself."""
    # `method` and `path` are "-" where they were not read; `detail` is more ` name=value` pairs of the service's own
    request_logger.info(
        "method=%s path=%s status=%s duration_ms=%.1f request_id=%s%s",
        log_value(method),
        log_value(path),
        status,
        seconds * 1000,
        request_id,
        detail,
    )
