"""The digit recognition web service: a thin Flask layer over the `model` package.

    gunicorn 'server:create_app()'     (see Procfile)
    python server.py                   (local use, on $PORT or 5000)
"""

import base64
import binascii
import io
import json
import logging
import os
import re
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import web  # noqa: F401  first: it sets up the process before NumPy loads

from flask import Flask, Request, g, jsonify, render_template, request
from werkzeug.exceptions import HTTPException, InternalServerError, RequestEntityTooLarge
from werkzeug.http import parse_options_header

from model.errors import InvalidImageError, RecognitionError, UnsupportedImageTypeError
from model.classifier import Classifier, NumberDigit, Prediction, number_text
from model.decoding import encode_png
from web.errors import CODE_BY_STATUS, RETRY_AFTER_SECONDS, error_body, status_of
from web.access import bearer_token, cors_headers, key_is_valid, request_id, split_list
from web.metrics import Metrics
from web.openapi import openapi_document
from web.settings import SettingError, read_settings
from web.worker import waiting_per_worker

logger = logging.getLogger("digit_recognition")
request_logger = logging.getLogger("digit_recognition.requests")

# Routes anyone may call when API keys are required: the health check and the API's description.
OPEN_ENDPOINTS = frozenset({"index", "healthz", "openapi", "docs"})
# Routes refused with 503 when too many connections wait (health checks and metrics stay answered).
SHED_ENDPOINTS = frozenset({"recognize", "recognize_number"})
# What ?include= may add to an answer: "input", the 28x28 image the network read.
INCLUDABLE = frozenset({"input"})
# A log value is written bare when it is this plain, else quoted and escaped (no forged log lines).
PLAIN_LOG_VALUE = re.compile(r"^[\w./:@%+-]*$")
DATA_URL = re.compile(r"^data:(?P<media_type>[^;,]*)(?P<parameters>(;[^;,]*)*),(?P<payload>.*)$", re.DOTALL)


class ApiError(Exception):
    """A client error detected by the web layer itself (the request's shape or credentials, not the image)."""

    def __init__(self, code: str, message: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.headers = headers


def init_sentry(settings: Mapping[str, Any]) -> None:
    """Report unhandled exceptions, with their request, to Sentry when a DSN is configured."""
    if not settings["SENTRY_DSN"]:
        return
    import sentry_sdk
    from sentry_sdk.integrations.flask import FlaskIntegration

    sentry_sdk.init(
        dsn=settings["SENTRY_DSN"],
        integrations=[FlaskIntegration()],
        environment=settings["SENTRY_ENVIRONMENT"],
        release=settings["SENTRY_RELEASE"] or None,
        traces_sample_rate=settings["SENTRY_TRACES_SAMPLE_RATE"],
        # nothing a client sent goes with an event: no body (the SDK's default sends JSON and forms up to 10 kB, a
        # canvas's data URL among them), no local variables of the stack (they hold the upload's bytes), no cookies,
        # IP address or credentials (Authorization is filtered out of the headers)
        send_default_pii=False,
        max_request_body_size="never",
        include_local_variables=False,
    )
    logger.info("Sentry enabled (environment %s, release %s)", settings["SENTRY_ENVIRONMENT"], settings["SENTRY_RELEASE"] or "unset")


def decode_base64_image(text: str) -> bytes:
    """Image bytes from a base64 string or a `data:image/...;base64,` URL."""
    text = text.strip()
    match = DATA_URL.match(text)
    if match:
        media_type = match["media_type"].strip().lower()
        if media_type and not media_type.startswith("image/"):
            raise UnsupportedImageTypeError(f"The data URL holds {media_type!r}, not an image.")
        if ";base64" not in match["parameters"].lower():
            raise InvalidImageError("The data URL must be base64-encoded (data:image/png;base64,...).")
        text = match["payload"]
    text = re.sub(r"\s+", "", text)
    if not text:
        raise InvalidImageError("The image string is empty.")
    try:
        alphabet = "-_" if ("-" in text or "_" in text) else "+/"  # accept URL-safe base64 too
        return base64.b64decode(text + "=" * (-len(text) % 4), altchars=alphabet.encode(), validate=True)
    except (binascii.Error, ValueError):
        raise InvalidImageError("The image is not valid base64.") from None


def decode_json_image(value: Any) -> bytes:
    """Image bytes from a JSON value, which must be a base64 string or data URL."""
    if not isinstance(value, str):
        raise InvalidImageError("An image must be a string: base64 or a data URL.")
    return decode_base64_image(value)


def batch_from_json(images: Any, limit: int) -> list:
    """The items of a JSON batch {"images": [...]}: image bytes, or the item's own RecognitionError."""
    if not isinstance(images, list):
        raise ApiError("invalid_json", '"images" must be a list of base64 strings or data URLs.')
    if not images:
        raise ApiError("missing_image", '"images" is empty.')
    if len(images) > limit:
        raise ApiError("too_large", f"A batch holds at most {limit} images; this one has {len(images)}.")
    uploads: list = []
    for item in images:
        try:
            uploads.append(decode_json_image(item))
        except RecognitionError as error:
            uploads.append(error)
    return uploads


def split_multipart(body: bytes, boundary: bytes, max_parts: int = 1000) -> dict[str, tuple[str | None, bytes]] | None:
    """The parts of a well-formed multipart/form-data body as {name: (filename or None, content)}.

    Werkzeug's parser compiles two regular expressions for every new boundary, and clients pick
    a random boundary per request: ~1 ms a request. This plain split reads what curl, browsers
    and HTTP libraries send (RFC 7578, CRLF line breaks); for anything else it answers None and
    Werkzeug's parser decides; so it does for more than `max_parts` parts, which it refuses.
    """
    if not boundary or len(boundary) > 200:
        return None
    segments = (b"\r\n" + body).split(b"\r\n--" + boundary, max_parts + 1)
    if len(segments) < 2 or len(segments) > max_parts + 1 or not segments[-1].startswith(b"--"):
        return None  # truncated, not this boundary, or too many parts (Werkzeug then refuses it)
    fields: dict[str, tuple[str | None, bytes]] = {}
    for segment in segments[1:-1]:
        head, separator, content = segment.lstrip(b" \t").partition(b"\r\n\r\n")
        if not separator or not head.startswith(b"\r\n"):
            return None
        headers = dict(
            (name.strip().lower(), value.strip())
            for name, _, value in (line.partition(":") for line in head[2:].decode("latin-1").split("\r\n"))
        )
        disposition, options = parse_options_header(headers.get("content-disposition", ""))
        if disposition != "form-data" or "name" not in options:
            return None
        fields.setdefault(options["name"], (options.get("filename"), content))
    return fields


def image_from_form(incoming: Request, body: bytes) -> bytes:
    """The image from a form: a file field named 'image', or a text field holding base64 or a data URL."""
    fields = None
    if incoming.mimetype == "multipart/form-data":
        boundary = incoming.mimetype_params.get("boundary", "").encode("utf-8", "replace")
        fields = split_multipart(body, boundary, incoming.max_form_parts)
    if fields is not None:
        filename, content = fields.get("image", (None, b""))
        if filename is not None and (filename or content):
            return content
        if filename is None and content:
            return decode_base64_image(content.decode("utf-8", errors="replace"))
    else:
        upload = incoming.files.get("image")
        if upload is not None and (upload.filename or upload.content_length):
            return upload.read()
        if incoming.form.get("image"):
            return decode_base64_image(incoming.form["image"])
    raise ApiError(
        "missing_image",
        "No image found: send the file in a form field named 'image' (curl -F image=@digit.png), "
        "or raw bytes with an image Content-Type such as image/png.",
    )


def read_body(incoming: Request, read_timeout: float) -> bytes:
    """The whole request body (kept for the parsers); a body shorter than its Content-Length is an error.

    A body stops short when the client went away or, under web/worker.py, did not send it
    within the read deadline: the server then ends the stream, and this names the cause.
    """
    data = incoming.get_data()
    limit = incoming.max_content_length
    if incoming.content_length is None and limit is not None and len(data) >= limit:
        raise RequestEntityTooLarge()  # a chunked body, which Werkzeug quietly cuts at the limit
    if incoming.content_length is not None and len(data) < incoming.content_length:
        raise ApiError(
            "request_timeout",
            f"The request body did not arrive in full within {read_timeout:g} seconds "
            f"({len(data):,} of {incoming.content_length:,} bytes).",
        )
    return data


def image_from_request(incoming: Request, batch_limit: int, read_timeout: float) -> bytes | list:
    """The uploaded image's bytes, from a multipart/form field, a JSON body or a raw image body.

    A JSON body {"images": [...]} is a batch: a list of image bytes (or per-item errors) instead.
    """
    body = read_body(incoming, read_timeout)
    media_type = incoming.mimetype
    if media_type in ("multipart/form-data", "application/x-www-form-urlencoded"):
        return image_from_form(incoming, body)
    if media_type == "application/json" or media_type.endswith("+json"):
        try:
            payload = incoming.get_json(silent=True)
        except RecursionError:  # nesting deeper than Python's stack, which json.loads does not catch
            payload = None
        if not isinstance(payload, dict):
            raise ApiError("invalid_json", 'The body must be a JSON object like {"image": "<base64 or data URL>"}.')
        if "images" in payload:
            return batch_from_json(payload["images"], batch_limit)
        if "image" not in payload:
            raise ApiError("missing_image", 'The JSON object has no "image" field (or "images" list).')
        return decode_json_image(payload["image"])
    if media_type.startswith("image/") or media_type == "application/octet-stream":
        if not body:
            raise ApiError("missing_image", "The request body is empty: it should be the image file.")
        return body
    if not media_type and not incoming.content_length:
        raise ApiError("missing_image", "No image found: the request has no body.")
    raise UnsupportedImageTypeError(
        f"Content-Type {media_type or '(none)'!r} is not accepted: use multipart/form-data with a field "
        "'image', application/json with an 'image' string, or the image itself with an image/* type."
    )


def log_value(text: str) -> str:
    """A logfmt value: as it is when plain, else quoted and escaped, so that a log line stays one line."""
    return text if PLAIN_LOG_VALUE.match(text) else json.dumps(text)


def answer_body(prediction: Prediction, include_input: bool) -> dict:
    """The answer for one image; with include_input, also the 28x28 image the network read, as a PNG data URL."""
    body = prediction.as_dict()
    if include_input and prediction.model_input is not None:
        body["input"] = "data:image/png;base64," + base64.b64encode(encode_png(prediction.model_input)).decode()
    return body


def result_body(result: Prediction | list[NumberDigit] | RecognitionError, include_input: bool) -> dict:
    """One item of a batch answer: the single-image (or number) answer, or that image's error."""
    if isinstance(result, RecognitionError):
        return error_body(result.code, result.message)
    return number_body(result, include_input) if isinstance(result, list) else answer_body(result, include_input)


def number_body(digits: list[NumberDigit], include_input: bool) -> dict:
    """The answer for a number: the digits read (non-digit marks left out), per line, and every mark with its box."""
    entries = []
    for item in digits:
        x, y, width, height = item.box
        entries.append({**answer_body(item.prediction, include_input), "read_in_line": item.read_in_line, "line": item.line,
                        "box": {"x": x, "y": y, "width": width, "height": height}})
    lines = [
        number_text([item for item in digits if item.line == line]) for line in range(max(item.line for item in digits) + 1)
    ]
    return {"number": "".join(lines), "lines": lines, "digits": entries}


def included_extras(incoming: Request) -> set[str]:
    """The extras asked for with ?include=... (comma-separated); only "input" exists."""
    extras = set(split_list(incoming.args.get("include", "")))
    if extras - INCLUDABLE:
        raise ApiError("bad_request", f"?include= takes {', '.join(sorted(INCLUDABLE))}, not {', '.join(sorted(extras - INCLUDABLE))}.")
    return extras


def error_response(status: int, code: str, message: str, headers: Mapping[str, str] | None = None):
    """Every error has the same JSON shape: {"error": {"code": ..., "message": ...}}."""
    response = jsonify(error_body(code, message))
    response.status_code = status
    response.headers.update(headers or {})
    return response


class UploadRequest(Request):
    """Flask's request, whose form parser keeps file parts in memory: the body is there already (at most
    MAX_UPLOAD_BYTES), and Werkzeug's default would spool parts over 500 kB to a temporary file, failing on a full disk."""

    def _get_file_stream(self, total_content_length, content_type, filename=None, content_length=None):
        return io.BytesIO()


def create_app(test_config: Mapping[str, Any] | None = None) -> Flask:
    """Application factory: settings, logging, Sentry, the classifier, then routes and error handlers."""
    app = Flask(__name__, template_folder="web/templates")
    app.request_class = UploadRequest
    app.config.from_mapping(read_settings(os.environ))
    if test_config is not None:
        app.config.from_mapping(test_config)
    app.json.sort_keys = False

    if not logging.getLogger().handlers:
        logging.basicConfig(stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        # no format here shows a thread: skip collecting it for every record (the logging HOWTO's advice); the
        # process id stays, since gunicorn's own format (its lines from the workers) shows it
        logging.logThreads = logging.logMultiprocessing = False
    logging.getLogger().setLevel(app.config["LOG_LEVEL"])
    init_sentry(app.config)

    # the network is loaded here, once per worker process, never in a master that forks
    classifier = app.config.get("CLASSIFIER") or Classifier.load(
        Path(app.config["MODEL_PATH"]),
        app.config["MODEL_RUNTIME"],
        max_batch=app.config["MICRO_BATCH_SIZE"],
        max_wait=app.config["MICRO_BATCH_WAIT_MS"] / 1000,
    )
    app.extensions["classifier"] = classifier
    metrics = Metrics({
        "model": classifier.card.get("name", "unknown"), "runtime": classifier.runtime_name, "sha256": classifier.model_sha256[:12],
    })
    classifier.on_inference = metrics.observe_inference
    app.extensions["metrics"] = metrics
    api_keys, cors_origins = app.config["API_KEYS"], app.config["CORS_ORIGINS"]
    waiting_now = app.config.get("WAITING_PER_WORKER", waiting_per_worker)  # tests may stand in for the queue
    api_document = openapi_document(app.config)
    # what decoding one request's images may cost (model/decoding.py), from the settings
    decode_limits = {"max_pixels": app.config["MAX_IMAGE_PIXELS"], "max_decoded_bytes": app.config["MAX_DECODED_BYTES"],
                     "max_request_pixels": app.config["MAX_REQUEST_PIXELS"]}
    # ... and reading numbers: a request's group reads and the pixels they work on (model/number_reader.py)
    number_limits = {**decode_limits, "max_groups": app.config["MAX_NUMBER_GROUPS"],
                     "max_read_pixels": app.config["MAX_NUMBER_READ_PIXELS"]}
    if app.config["SENTRY_DSN"]:
        import sentry_sdk
    else:
        sentry_sdk = None

    @app.before_request
    def start_request():
        """Start the clock, name the request (the client's X-Request-ID or a new one), count it in flight."""
        g.started = time.perf_counter()
        g.request_id = request_id(request.headers.get("X-Request-ID"))
        g.log_detail = ""
        metrics.in_flight.inc()
        g.in_flight = True
        if sentry_sdk is not None:
            sentry_sdk.set_tag("request_id", g.request_id)

    @app.before_request
    def require_api_key():
        """With API_KEYS set, every route but the open ones needs a valid bearer key (CORS preflights never carry one)."""
        if not api_keys or request.method == "OPTIONS" or request.endpoint in OPEN_ENDPOINTS:
            return
        if not key_is_valid(bearer_token(request.headers.get("Authorization")), api_keys):
            raise ApiError(
                "unauthorized", "A valid API key is required: send the header 'Authorization: Bearer <key>'.",
                {"WWW-Authenticate": 'Bearer realm="digit-recognition"'},
            )

    @app.before_request
    def shed_load():
        """Refuse recognition with 503 while the queue of waiting connections is full, so latency stays bounded."""
        if request.endpoint not in SHED_ENDPOINTS:
            return
        waiting = waiting_now()
        if waiting is not None and waiting > app.config["MAX_QUEUE_PER_WORKER"]:
            metrics.rejections.inc()
            raise ApiError(
                "overloaded", "The service is busy right now; try again in a moment.",
                {"Retry-After": str(RETRY_AFTER_SECONDS)},
            )

    @app.after_request
    def finish_request(response):
        """Echo the request id, add CORS headers for allowed origins, then count and log the request in one line."""
        response.headers["X-Request-ID"] = g.request_id
        if cors_origins:
            preflight = request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers
            response.headers.update(cors_headers(request.headers.get("Origin"), cors_origins, preflight))
            response.vary.add("Origin")
        seconds = time.perf_counter() - g.started
        route = request.url_rule.rule if request.url_rule else "unmatched"  # not the raw path: labels stay few
        metrics.observe_request(request.method, route, response.status_code, seconds)
        # one logfmt line per request, cheaper than gunicorn's access log (which builds every header into a
        # dict); the method is an HTTP token and the request id plain, so only the path may need quoting
        request_logger.info(
            "method=%s path=%s status=%s duration_ms=%.1f request_id=%s%s", request.method, log_value(request.path),
            response.status_code, seconds * 1000, g.request_id, g.log_detail,
        )
        return response

    @app.teardown_request
    def end_request(error):
        """No longer in flight, however the request ended."""
        if g.pop("in_flight", False):
            metrics.in_flight.dec()

    @app.post("/recognize.json")
    def recognize():
        """Read the digit in the uploaded image."""
        include_input = "input" in included_extras(request)
        upload = image_from_request(request, app.config["MAX_BATCH_IMAGES"], app.config["REQUEST_READ_TIMEOUT"])
        if isinstance(upload, list):
            results = classifier.recognize_batch(upload, **decode_limits)
            g.log_detail = f" images={len(results)}"
            return jsonify({"results": [result_body(result, include_input) for result in results]})
        prediction = classifier.recognize(upload, **decode_limits)
        g.log_detail = f" digit={prediction.digit}"
        return jsonify(answer_body(prediction, include_input))

    @app.post("/recognize/number.json")
    def recognize_number():
        """Read a number: every digit in the uploaded image, in reading order, with its box."""
        include_input = "input" in included_extras(request)
        upload = image_from_request(request, app.config["MAX_BATCH_IMAGES"], app.config["REQUEST_READ_TIMEOUT"])
        if isinstance(upload, list):
            results = classifier.recognize_numbers(upload, **number_limits)
            g.log_detail = f" images={len(results)}"
            return jsonify({"results": [result_body(result, include_input) for result in results]})
        digits = classifier.recognize_numbers([upload], **number_limits)[0]
        if isinstance(digits, RecognitionError):
            raise digits
        body = number_body(digits, include_input)
        g.log_detail = f" number={body['number'] or '-'}"
        return jsonify(body)

    @app.get("/")
    def index():
        """The drawing page: draw or drop a digit and see what the network saw and read."""
        return render_template("index.html")

    @app.get("/healthz")
    def healthz():
        """Ready: the model is loaded (it is, or the app would not exist)."""
        return jsonify({"status": "ok"})

    @app.get("/model.json")
    def model_card():
        """The model card and the model file's sha256."""
        return jsonify(classifier.describe())

    @app.get("/metrics")
    def prometheus_metrics():
        """Prometheus metrics of all the workers, in its text format; 503 saying why when they cannot be added up."""
        problem = metrics.unavailable()
        if problem:
            raise ApiError("metrics_unavailable", f"Metrics are unavailable: {problem}.", {"Retry-After": str(RETRY_AFTER_SECONDS)})
        body, content_type = metrics.exposition()
        return body, 200, {"Content-Type": content_type}

    @app.get("/openapi.json")
    def openapi():
        """The OpenAPI 3 description of this API, with this deployment's limits."""
        return jsonify(api_document)

    @app.get("/docs")
    def docs():
        """The API's documentation page, rendered here from the OpenAPI description (no CDN)."""
        return render_template("docs.html", api=api_document)

    if app.config["ENABLE_DEBUG_ROUTES"]:

        @app.route("/_debug/error", methods=["GET", "POST"])
        def debug_error():
            """Raise on purpose, so an operator can see an error arrive in Sentry; a POST first reads its upload as the
            recognition routes do, so that one can check that the upload does not go with the event."""
            if request.method == "POST":
                upload = image_from_request(request, app.config["MAX_BATCH_IMAGES"], app.config["REQUEST_READ_TIMEOUT"])
                g.log_detail = f" upload_bytes={len(upload) if isinstance(upload, bytes) else 0}"
            raise RuntimeError("Deliberate error from /_debug/error to check error reporting")

        # the longest /_debug/sleep may hold a worker, seconds (past gunicorn's --timeout, to see its 504)
        DEBUG_SLEEP_MAX_SECONDS = 120.0

        @app.get("/_debug/sleep")
        def debug_sleep():
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

    @app.errorhandler(RecognitionError)
    def handle_recognition_error(error: RecognitionError):
        return error_response(status_of(error.code), error.code, error.message)

    @app.errorhandler(ApiError)
    def handle_api_error(error: ApiError):
        return error_response(status_of(error.code), error.code, error.message, error.headers)

    @app.errorhandler(HTTPException)
    def handle_http_error(error: HTTPException):
        status = error.code or 500
        headers = {"Allow": error.get_response().headers["Allow"]} if status == 405 else None
        message = error.description or error.name
        if status == 413 and (request.content_length is None or request.content_length > app.config["MAX_CONTENT_LENGTH"]):
            message = f"The request is larger than the limit of {app.config['MAX_CONTENT_LENGTH']:,} bytes."
        elif status == 413:
            message = f"The form has too many parts (at most {request.max_form_parts:,}) or a field too large to read."
        return error_response(status, CODE_BY_STATUS.get(status, re.sub(r"\W+", "_", error.name.lower())), message, headers)

    @app.errorhandler(InternalServerError)
    def handle_internal_error(error: InternalServerError):
        # reached for unhandled exceptions, after Flask has signalled them to Sentry and logged their traceback
        logger.error("unhandled error on %s %s (request_id=%s): %s", request.method, log_value(request.path),
                     g.get("request_id", "-"), type(error.original_exception).__name__)
        return error_response(500, "internal", "Something went wrong on our side; it has been reported.")

    return app


if __name__ == "__main__":
    try:
        application = create_app()
    except SettingError as error:
        sys.exit(f"digit-recognition: {error}")
    application.run(host=application.config["HOST"], port=application.config["PORT"])
