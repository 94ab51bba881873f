"""The app's error handlers: every error, the client's or ours, answers in the one JSON shape of web/errors.py."""

import re
from collections.abc import Mapping

from flask import Flask, Response, current_app, g, jsonify, request
from werkzeug.exceptions import HTTPException, InternalServerError

from model.errors import RecognitionError
from web.errors import CODE_BY_STATUS, ApiError, error_body, status_of
from web.logs import log_value, logger


def init_app(app: Flask) -> None:
    """Answer the model's errors, the web layer's, HTTP errors and bugs in JSON."""
    app.register_error_handler(RecognitionError, handle_recognition_error)
    app.register_error_handler(ApiError, handle_api_error)
    app.register_error_handler(HTTPException, handle_http_error)
    app.register_error_handler(InternalServerError, handle_internal_error)


def error_response(status: int, code: str, message: str, headers: Mapping[str, str] | None = None) -> Response:
    """Every error has the same JSON shape: {"error": {"code": ..., "message": ...}}."""
    response = jsonify(error_body(code, message))
    response.status_code = status
    response.headers.update(headers or {})
    return response


def handle_recognition_error(error: RecognitionError) -> Response:
    """An image the model cannot read: its code's status and message."""
    return error_response(status_of(error.code), error.code, error.message)


def handle_api_error(error: ApiError) -> Response:
    """A request the web layer refuses: its code's status, message and headers (Retry-After, WWW-Authenticate)."""
    return error_response(status_of(error.code), error.code, error.message, error.headers)


def handle_http_error(error: HTTPException) -> Response:
    """An HTTP error Flask or Werkzeug raised (404, 405, 413, ...), with its code and a message that says why."""
    status = error.code or 500
    headers = {"Allow": error.get_response().headers["Allow"]} if status == 405 else None
    message = error.description or error.name
    max_bytes = current_app.config["MAX_CONTENT_LENGTH"]
    if status == 413 and (request.content_length is None or request.content_length > max_bytes):
        message = f"The request is larger than the limit of {max_bytes:,} bytes."
    elif status == 413:
        message = f"The form has too many parts (at most {request.max_form_parts:,}) or a field too large to read."
    return error_response(status, CODE_BY_STATUS.get(status, re.sub(r"\W+", "_", error.name.lower())), message, headers)


def handle_internal_error(error: InternalServerError) -> Response:
    """A bug: logged in one line (Flask has logged its traceback and signalled it to Sentry), answered 500."""
    logger.error(
        "unhandled error on %s %s (request_id=%s): %s",
        request.method,
        log_value(request.path),
        g.get("request_id", "-"),
        type(error.original_exception).__name__,
    )
    return error_response(500, "internal", "Something went wrong on our side; it has been reported.")
