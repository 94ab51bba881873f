"""Every error code of the API, its HTTP status and what it means: the one source for the app's error handlers
(web/error_handlers.py), the gunicorn worker's own refusals (raw sockets, no Flask), the OpenAPI description and the
errors table of docs/API.md; tests/test_errors.py checks every code the code raises against it."""

import json
from collections.abc import Mapping
from http import HTTPStatus
from typing import NamedTuple

from model.errors import error_answer


class ErrorCode(NamedTuple):
    """An error code's HTTP status and when a client gets it."""

    status: int
    meaning: str


ERRORS: dict[str, ErrorCode] = {
    "bad_request": ErrorCode(
        400,
        "The request itself is malformed (a broken multipart or chunked body, a bad request "
        "line or header, an unknown ?include= value).",
    ),
    "missing_image": ErrorCode(400, "No image in the request."),
    "invalid_json": ErrorCode(400, "The JSON body does not parse, or is not an object of the documented shape."),
    "invalid_image": ErrorCode(
        400, "The upload is not an image this service reads, or is corrupted, or its base64 is invalid."
    ),
    "unauthorized": ErrorCode(401, "API keys are required and the request has no valid 'Authorization: Bearer <key>'."),
    "forbidden": ErrorCode(
        403,
        "The connection may not make this request (a PROXY protocol line from an address that "
        "is not trusted to send one).",
    ),
    "not_found": ErrorCode(404, "No such route."),
    "method_not_allowed": ErrorCode(405, "The route exists but not for this method."),
    "request_timeout": ErrorCode(408, "The request's body did not arrive in full within the read deadline."),
    "too_large": ErrorCode(
        413,
        "The body, the image's pixel count or decoded size, the batch's images or decoded "
        "pixels, or the number of form parts is over its limit.",
    ),
    "uri_too_long": ErrorCode(414, "The request line (the path and query) is longer than the server reads."),
    "unsupported_media_type": ErrorCode(
        415, "The Content-Type (or a data URL's type) is not an image or an accepted form."
    ),
    "expectation_failed": ErrorCode(
        417,
        "The request's Expect header asks for something other than 100-continue, the "
        "only expectation the server meets.",
    ),
    "no_digit": ErrorCode(422, "The image is readable but holds no digit (blank, too little contrast, only specks)."),
    "too_many_marks": ErrorCode(
        422,
        "Only /recognize/number.json: reading the number(s) would take more work than a "
        "request may use (MAX_NUMBER_GROUPS reads of groups of strokes, or MAX_NUMBER_READ_PIXELS "
        "pixels worked on), "
        "as for a page of hundreds of strokes or a solid block of ink; in a batch, the "
        "numbers left once the budget is spent.",
    ),
    "headers_too_large": ErrorCode(431, "The request's headers are more or longer than the server reads."),
    "internal": ErrorCode(500, "A bug on the service's side; it is reported to Sentry."),
    "not_implemented": ErrorCode(501, "The request's Transfer-Encoding is not one the server reads (only chunked is)."),
    "overloaded": ErrorCode(
        503, "Too many requests are waiting, or the service is restarting; try again after the Retry-After seconds."
    ),
    "metrics_unavailable": ErrorCode(
        503,
        "Only GET /metrics: the workers' metrics cannot be added up right now (their "
        "folder was removed or is full); the message says why. Recognition is not "
        "affected.",
    ),
    "worker_timeout": ErrorCode(
        504,
        "The request took longer than the worker's hard time limit and its worker was "
        "restarted; reported in the metrics and the log.",
    ),
}
# snake_case codes for the HTTP errors Flask, Werkzeug and gunicorn raise themselves, by status.
CODE_BY_STATUS: dict[int, str] = {
    400: "bad_request",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    408: "request_timeout",
    413: "too_large",
    414: "uri_too_long",
    415: "unsupported_media_type",
    417: "expectation_failed",
    431: "headers_too_large",
    500: "internal",
    501: "not_implemented",
    503: "overloaded",
    504: "worker_timeout",
}
# Seconds a client refused for overload (or a restart) is asked to wait before trying again.
RETRY_AFTER_SECONDS = 1


class ApiError(Exception):
    """A client error detected by the web layer itself (the request's shape or credentials, not the image)."""

    def __init__(self, code: str, message: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.headers = headers


def status_of(code: str) -> int:
    """The HTTP status of an error code."""
    return ERRORS[code].status


# The one JSON shape of every error, defined beside the model's errors (the offline reader writes it too).
error_body = error_answer


def raw_error_response(code: str, message: str, headers: Mapping[str, str] | None = None) -> bytes:
    """A whole HTTP/1.1 error answer in the shared shape, for code that writes to the socket itself (web/worker.py)."""
    status = status_of(code)
    body = json.dumps(error_body(code, message)).encode()
    head = [
        f"HTTP/1.1 {status} {HTTPStatus(status).phrase}",
        "Content-Type: application/json",
        f"Content-Length: {len(body)}",
        "Connection: close",
        *(f"{name}: {value}" for name, value in (headers or {}).items()),
    ]
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body
