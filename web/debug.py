"""Routes that misbehave on purpose, for operators (only with ENABLE_DEBUG_ROUTES): an error, and a worker held busy."""

import time

from flask import Blueprint, g, jsonify, request
from flask.typing import ResponseReturnValue

from web.errors import ApiError
from web.uploads import request_upload

# The longest /_debug/sleep may hold a worker, seconds (past gunicorn's --timeout, to see its 504).
DEBUG_SLEEP_MAX_SECONDS = 120.0

bp = Blueprint("debug", __name__, url_prefix="/_debug")


@bp.route("/error", methods=["GET", "POST"])
def debug_error() -> ResponseReturnValue:
    """Raise on purpose, so an operator can see an error arrive in Sentry; a POST first reads its upload as the
    recognition routes do, so that one can check that the upload does not go with the event."""
    if request.method == "POST":
        upload = request_upload()
        g.log_detail = f" upload_bytes={len(upload) if isinstance(upload, bytes) else 0}"
    raise RuntimeError("Deliberate error from /_debug/error to check error reporting")


@bp.get("/sleep")
def debug_sleep() -> ResponseReturnValue:
    """Hold the worker for ?seconds=N (0 to 120, default 1) on purpose, so an operator can see gunicorn's
    hard time limit answer 504 worker_timeout, or a restart finish the request in flight."""
    try:
        seconds = float(request.args.get("seconds", "1"))
    except ValueError:
        seconds = -1.0
    if not 0.0 <= seconds <= DEBUG_SLEEP_MAX_SECONDS:  # also refuses nan
        raise ApiError("bad_request", f"?seconds= takes a number from 0 to {DEBUG_SLEEP_MAX_SECONDS:g}.")
    time.sleep(seconds)
    return jsonify({"slept": seconds})
