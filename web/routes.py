"""The API's routes: read a digit or a number; the drawing page, health, the model card, metrics, the API's description.

Each route checks what it was sent, calls one function and answers JSON (or a page); errors go to web/error_handlers.py.
"""

from flask import Blueprint, current_app, g, jsonify, render_template, request
from flask.typing import ResponseReturnValue

from web.answers import answer_body, batch_body, included_extras, number_body
from web.errors import RETRY_AFTER_SECONDS, ApiError
from web.uploads import request_upload
from web.version import VERSION

bp = Blueprint("api", __name__)


@bp.post("/recognize.json")
def recognize() -> ResponseReturnValue:
    """Read the digit in the uploaded image (or in each image of a batch)."""
    include_input = "input" in included_extras(request)
    upload = request_upload()
    classifier, limits = current_app.extensions["classifier"], current_app.extensions["limits"]
    if isinstance(upload, list):
        results = classifier.read_digits(upload, limits)
        g.log_detail = f" images={len(results)}"
        return jsonify(batch_body(results, include_input))
    prediction = classifier.read_digit(upload, limits)
    g.log_detail = f" digit={prediction.digit}"
    return jsonify(answer_body(prediction, include_input))


@bp.post("/recognize/number.json")
def recognize_number() -> ResponseReturnValue:
    """Read a number: every digit in the uploaded image (or in each of a batch's), in reading order, with its box."""
    include_input = "input" in included_extras(request)
    upload = request_upload()
    classifier, limits = current_app.extensions["classifier"], current_app.extensions["limits"]
    if isinstance(upload, list):
        results = classifier.read_numbers(upload, limits)
        g.log_detail = f" images={len(results)}"
        return jsonify(batch_body(results, include_input))
    body = number_body(classifier.read_number(upload, limits), include_input)
    g.log_detail = f" number={body['number'] or '-'}"
    return jsonify(body)


@bp.get("/")
def index() -> ResponseReturnValue:
    """The drawing page: draw or drop a digit and see what the network saw and read."""
    return render_template("index.html")


@bp.get("/healthz")
def healthz() -> ResponseReturnValue:
    """Ready: the model is loaded (it is, or the app would not exist)."""
    return jsonify({"status": "ok"})


@bp.get("/model.json")
def model_card() -> ResponseReturnValue:
    """The model card, the model file's sha256, and the service's version (the web layer's, not the model's)."""
    return jsonify({**current_app.extensions["classifier"].describe(), "service_version": VERSION})


@bp.get("/metrics")
def prometheus_metrics() -> ResponseReturnValue:
    """Prometheus metrics of all the workers, in its text format; 503 saying why when they cannot be added up."""
    metrics = current_app.extensions["metrics"]
    problem = metrics.unavailable()
    if problem:
        raise ApiError(
            "metrics_unavailable", f"Metrics are unavailable: {problem}.", {"Retry-After": str(RETRY_AFTER_SECONDS)}
        )
    body, content_type = metrics.exposition()
    return body, 200, {"Content-Type": content_type}


@bp.get("/openapi.json")
def openapi() -> ResponseReturnValue:
    """The OpenAPI 3 description of this API, with this deployment's limits."""
    return jsonify(current_app.extensions["openapi"])


@bp.get("/docs")
def docs() -> ResponseReturnValue:
    """The API's documentation page, rendered here from the OpenAPI description (no CDN)."""
    return render_template("docs.html", api=current_app.extensions["openapi"])
