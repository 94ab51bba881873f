"""The API's OpenAPI 3.1 description, kept in this one place and built with the deployment's limits.

`GET /openapi.json` serves it and `GET /docs` renders it (its descriptions are CommonMark: `markdown_html` renders
the small part of it they use). tests/test_openapi.py checks it against the real app: every route is described, and
real answers match the described schemas; tests/test_generated_client_e2e.py generates a Python client from it and
reads digits and numbers with that client from the Procfile's gunicorn.
"""

import re
from collections.abc import Mapping
from typing import Any

from flask import Flask
from markupsafe import Markup, escape

from web.errors import ERRORS
from web.version import VERSION
from web.worker import REFUSALS

# The document's title, version, licence and what the API does.
API_INFO = {
    "title": "digit-recognition",
    "version": VERSION,
    "summary": "Reads handwritten digits and numbers from images.",
    "description": "Reads handwritten digits from images: the digit, a calibrated confidence, ten probabilities and "
    "whether the picture looks like a digit at all; or a whole number, digit by digit, with boxes.\n\n"
    "Every error has the same JSON shape, and every answer carries an `X-Request-ID` header.",
    "license": {"name": "MIT", "identifier": "MIT"},
}
# Where the API is: relative to this document (the deployment that serves it), or `python server.py` locally.
SERVERS = [
    {"url": "/", "description": "This deployment: the host that serves this document."},
    {"url": "http://127.0.0.1:5000", "description": "`python server.py` on your own machine."},
]
# The operations' groups, in the order /docs shows them; a generated client has one module per tag.
TAGS = [
    {"name": "recognition", "description": "Read a digit, or a number, from an uploaded image."},
    {"name": "service", "description": "The served model, health, metrics and this description."},
    {"name": "pages", "description": "The pages for people: the drawing page and this documentation."},
    {"name": "debug", "description": "Only with `ENABLE_DEBUG_ROUTES=1`: errors and slow answers on purpose."},
]
# The image file itself: what a file part of a form, or a raw body, carries.
IMAGE_FILE_SCHEMA = {
    "type": "string",
    "format": "binary",
    "contentMediaType": "application/octet-stream",
    "description": "The image file's bytes: PNG, JPEG, GIF, WebP, BMP or TIFF (the bytes say which, not a name or type).",
}
# The image as text: a JSON string or a form's text field.
IMAGE_STRING_SCHEMA = {
    "type": "string",
    "description": "The image file as base64 (standard or URL-safe, padding optional) or as a data URL such as a "
    "canvas's `toDataURL()`: `data:image/png;base64,...`",
}
# One digit's answer (POST /recognize.json).
PREDICTION_SCHEMA = {
    "type": "object",
    "required": ["digit", "confidence", "is_digit", "probabilities"],
    "description": "One image's reading: the digit, how sure the service is, and whether it looks like a digit.",
    "properties": {
        "digit": {"type": "integer", "minimum": 0, "maximum": 9, "description": "The digit read, 0-9."},
        "confidence": {
            "type": "number",
            "minimum": 0,
            "maximum": 1,
            "description": "The calibrated probability of `digit`: of answers given with 0.9, about 90 % are right.",
        },
        "is_digit": {
            "type": "boolean",
            "description": "False when the picture does not look like any digit (a letter, "
            "a shape, a scribble); `digit` is then only the best guess.",
        },
        "probabilities": {
            "type": "array",
            "items": {"type": "number", "minimum": 0, "maximum": 1},
            "minItems": 10,
            "maxItems": 10,
            "description": "The probability of each digit 0-9; they add up to 1.",
        },
        "input": {
            "type": "string",
            "pattern": "^data:image/png;base64,",
            "description": "Only with `?include=input`: the 28x28 image the network read, as a PNG data URL.",
        },
    },
}
# One number's answer (POST /recognize/number.json): the number, its lines, and every mark with its box.
NUMBER_SCHEMA = {
    "type": "object",
    "required": ["number", "lines", "digits"],
    "description": "One image's number: its digits as a string, per line, and every mark read with its box.",
    "properties": {
        "number": {
            "type": "string",
            "pattern": "^[0-9]*$",
            "description": "The digits read, in reading order; marks that are not digits left out.",
        },
        "lines": {
            "type": "array",
            "items": {"type": "string", "pattern": "^[0-9]*$"},
            "description": "The same, one string per line of writing, top to bottom.",
        },
        "digits": {
            "type": "array",
            "items": {
                "allOf": [
                    {"$ref": "#/components/schemas/Prediction"},
                    {
                        "type": "object",
                        "required": ["read_in_line", "line", "box"],
                        "properties": {
                            "read_in_line": {
                                "type": "boolean",
                                "description": "True where `digit` was read in its line (the line "
                                "reader's reading), not the best of the mark's own `probabilities`; "
                                "`confidence` is still the mark's own probability of `digit`.",
                            },
                            "line": {"type": "integer", "minimum": 0},
                            "box": {
                                "type": "object",
                                "required": ["x", "y", "width", "height"],
                                "properties": {
                                    name: {"type": "integer", "minimum": 0} for name in ("x", "y", "width", "height")
                                },
                                "description": "Where the mark is, in the uploaded image's pixels (EXIF rotation applied).",
                            },
                        },
                    },
                ]
            },
            "description": "Every mark read, in reading order.",
        },
    },
}
# Every error's shape, its code one of web/errors.py's.
ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "description": "Every error's one shape, whatever answers it (the app, the gunicorn worker, its time limit).",
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "description": "What went wrong.",
            "properties": {
                "code": {
                    "type": "string",
                    "enum": list(ERRORS),
                    "description": "What kind of error, for programs: each operation lists the codes of its statuses.",
                },
                "message": {"type": "string", "description": "What went wrong and how to fix it, for people."},
            },
        }
    },
}
# What GET /model.json always holds, besides the card's own fields.
MODEL_CARD_SCHEMA = {
    "type": "object",
    "required": ["runtime", "sha256", "service_version"],
    "properties": {
        "runtime": {"enum": ["litert", "keras"], "description": "What runs the networks."},
        "sha256": {"type": "string", "pattern": "^[0-9a-f]{64}$", "description": "The served network file's sha256."},
        "service_version": {
            "type": "string",
            "description": "The service's version (this document's `info.version`), not the model's.",
        },
    },
    "description": "The reader's card (architecture, parameters, data checksum, seed, training, accuracy, "
    "calibration), the runtime, the served file's sha256, the other networks' cards and the service's version.",
}
# The query parameter of the recognition routes.
INCLUDE_PARAMETER = {
    "name": "include",
    "in": "query",
    "required": False,
    "description": "`input`: also answer the 28x28 image the network read, as a PNG data URL (white digit on "
    "black, as MNIST), so that a wrong answer explains itself.",
    "schema": {"type": "string", "enum": ["input"]},
}
# The Retry-After header of a 503.
RETRY_AFTER_HEADER = {"description": "Seconds to wait before trying again.", "schema": {"type": "integer"}}
# The WWW-Authenticate header of a 401.
WWW_AUTHENTICATE_HEADER = {
    "description": "How to authenticate: the `Bearer` scheme, with the service's realm.",
    "schema": {"type": "string"},
}
# The headers an error answer carries besides X-Request-ID, by its code.
ERROR_HEADERS = {
    "unauthorized": {"WWW-Authenticate": WWW_AUTHENTICATE_HEADER},
    "overloaded": {"Retry-After": RETRY_AFTER_HEADER},
    "metrics_unavailable": {"Retry-After": RETRY_AFTER_HEADER},
}
# What the gunicorn worker answers itself, before or around the app, on any route: gunicorn's refusals of a
# malformed request (REFUSALS), a chunked body cut short (408), a failure outside the app (500), a restart (503)
# and the hard time limit (504). tests/test_openapi.py checks this against the codes web/worker.py names.
WORKER_CODES = (
    *dict.fromkeys(code for _, code, _ in REFUSALS),
    "request_timeout",
    "internal",
    "overloaded",
    "worker_timeout",
)
# What Flask's routing answers on any route.
ROUTING_CODES = ("not_found", "method_not_allowed")
# Inline CommonMark that markdown_html renders: `code` and **strong**.
MARKDOWN_INLINE = re.compile(r"`([^`]+)`|\*\*([^*]+)\*\*")


def error_list(codes: list[str]) -> str:
    """The codes and their meanings as a CommonMark list (one code: one line), for a response's description."""
    lines = [f"`{code}`: {ERRORS[code].meaning}" for code in codes]
    return lines[0] if len(lines) == 1 else "\n".join(f"- {line}" for line in lines)


def error_response(codes: list[str]) -> dict:
    """A response of the shared error shape listing the codes it carries (of one status), with their headers."""
    headers: dict[str, dict] = {"X-Request-ID": {"$ref": "#/components/headers/RequestId"}}
    for code in codes:
        headers.update(ERROR_HEADERS.get(code, {}))
    return {
        "description": error_list(codes),
        "headers": headers,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


def error_responses(codes: set[str]) -> dict[str, dict]:
    """{status: response} for these codes, by status and in the table's order, each listing its codes."""
    by_status: dict[int, list[str]] = {}
    for code, error in ERRORS.items():
        if code in codes:
            by_status.setdefault(error.status, []).append(code)
    return {str(status): error_response(by_status[status]) for status in sorted(by_status)}


def codes_of(*statuses: int) -> set[str]:
    """Every code of these statuses (for a route that can give each of them)."""
    return {code for code, error in ERRORS.items() if error.status in statuses}


def json_response(description: str, schema: dict) -> dict:
    """A 200 answer in JSON with the request id header."""
    return {
        "description": description,
        "headers": {"X-Request-ID": {"$ref": "#/components/headers/RequestId"}},
        "content": {"application/json": {"schema": schema}},
    }


def html_response(description: str) -> dict:
    """A 200 answer that is an HTML page, with the request id header."""
    return {
        "description": description,
        "headers": {"X-Request-ID": {"$ref": "#/components/headers/RequestId"}},
        "content": {"text/html": {"schema": {"type": "string"}}},
    }


def schema_ref(name: str) -> dict:
    """A reference to one of the component schemas."""
    return {"$ref": f"#/components/schemas/{name}"}


def upload_body() -> dict:
    """The request body of the recognition routes: one image as a form field, JSON or the raw body, or a JSON batch.

    Each body type is a named schema (components), so that generated clients get named types. A raw body is
    described as application/octet-stream only: the service reads any image/* type the same way, but client
    generators do not handle a media type range (openapi-python-client drops it with a warning).
    """
    return {
        "required": True,
        "description": "The image, in whichever way suits the client:\n\n"
        "- `multipart/form-data`: the field `image`, a file (`curl -F image=@examples/three.png`) or a text "
        "field with base64 or a data URL;\n"
        "- `application/x-www-form-urlencoded`: the field `image`, base64 or a data URL;\n"
        '- `application/json` (or any `+json` type): `{"image": "<base64 or data URL>"}`, or a batch '
        '`{"images": [...]}`;\n'
        "- the raw image as the body: `application/octet-stream`, or the image's own type (`image/png`, "
        "`image/jpeg`, any `image/*` type is read the same way).",
        "content": {
            "multipart/form-data": {"schema": schema_ref("ImageFileForm")},
            "application/x-www-form-urlencoded": {"schema": schema_ref("ImageTextForm")},
            "application/json": {"schema": {"oneOf": [schema_ref("ImageJson"), schema_ref("ImageBatchJson")]}},
            "application/octet-stream": {"schema": schema_ref("ImageFile")},
        },
    }


def upload_schemas(max_batch: int) -> dict[str, dict]:
    """The named schemas of the upload bodies (upload_body), with this deployment's batch limit."""
    return {
        "ImageFile": IMAGE_FILE_SCHEMA,
        "ImageString": IMAGE_STRING_SCHEMA,
        "ImageFileForm": {
            "type": "object",
            "required": ["image"],
            "properties": {
                "image": {
                    # anyOf, not oneOf: both are strings (format and contentMediaType only annotate), so every value
                    # is valid under both, and oneOf would refuse them all
                    "anyOf": [schema_ref("ImageFile"), schema_ref("ImageString")],
                    "description": "The image file, or a text field with base64 or a data URL.",
                }
            },
            "description": "A `multipart/form-data` upload: the image in the field `image`.",
        },
        "ImageTextForm": {
            "type": "object",
            "required": ["image"],
            "properties": {"image": schema_ref("ImageString")},
            "description": "An `application/x-www-form-urlencoded` upload: the image as base64 or a data URL.",
        },
        "ImageJson": {
            "type": "object",
            "required": ["image"],
            "properties": {"image": schema_ref("ImageString")},
            "description": "One image in JSON.",
        },
        "ImageBatchJson": {
            "type": "object",
            "required": ["images"],
            "properties": {
                "images": {"type": "array", "items": schema_ref("ImageString"), "minItems": 1, "maxItems": max_batch}
            },
            "description": f"A batch of at most {max_batch} images in JSON, answered in order; one bad image does "
            "not fail the batch.",
        },
    }


def batch_result(schema: str) -> dict:
    """A batch's answer: one `schema` answer or one error per image, in order."""
    return {
        "type": "object",
        "required": ["results"],
        "properties": {
            "results": {
                "type": "array",
                "items": {"oneOf": [schema_ref(schema), schema_ref("Error")]},
            }
        },
        "description": f"A batch's answer: for each image, in order, its `{schema}` or its own `Error`.",
    }


def operation(
    operation_id: str,
    tag: str,
    summary: str,
    description: str,
    responses: dict,
    protected: bool,
    keys_required: bool,
    errors: set[str] | None = None,
    extra_parameters: list[dict] | None = None,
    **extra: Any,
) -> dict:
    """One operation, named for generated clients, with the request id parameter and, when keys are required, the
    bearer scheme; its errors are the route's own (`errors`), routing's, 401 when it needs a key, and the worker's."""
    codes = {*(errors or ()), *ROUTING_CODES, *WORKER_CODES}
    if protected and keys_required:
        codes.add("unauthorized")
    described = {
        "operationId": operation_id,
        "tags": [tag],
        "summary": summary,
        "description": description,
        "parameters": [{"$ref": "#/components/parameters/RequestId"}, *(extra_parameters or [])],
        "responses": {**responses, **error_responses(codes)},
        **extra,
    }
    if protected and keys_required:
        described["security"] = [{"apiKey": []}]
    return described


def init_app(app: Flask) -> None:
    """Describe the app once, with its settings, for GET /openapi.json; and let GET /docs render its descriptions."""
    app.extensions["openapi"] = openapi_document(app.config)
    app.add_template_filter(markdown_html, "markdown")


def openapi_document(settings: Mapping[str, Any]) -> dict:
    """The OpenAPI 3.1 document for an app with these settings (limits, API keys, debug routes)."""
    keys_required = bool(settings.get("API_KEYS"))
    paths = {**recognition_paths(settings, keys_required), **service_paths(keys_required)}
    tags = TAGS
    if settings.get("ENABLE_DEBUG_ROUTES"):
        paths.update(debug_paths(keys_required))
    else:
        tags = [tag for tag in TAGS if tag["name"] != "debug"]
    return {
        "openapi": "3.1.0",
        "info": API_INFO,
        "servers": SERVERS,
        "tags": tags,
        "paths": paths,
        "components": components(settings, keys_required),
    }


def recognition_paths(settings: Mapping[str, Any], keys_required: bool) -> dict[str, dict]:
    """The two recognition routes, their uploads and limits as these settings set them."""
    max_bytes, max_batch = settings["MAX_CONTENT_LENGTH"], settings["MAX_BATCH_IMAGES"]
    max_pixels, max_decoded, max_request_pixels = (
        settings["MAX_IMAGE_PIXELS"],
        settings["MAX_DECODED_BYTES"],
        settings["MAX_REQUEST_PIXELS"],
    )
    digit_errors = codes_of(400, 408, 413, 415) | {"no_digit", "overloaded"}
    number_errors = digit_errors | {"too_many_marks"}
    return {
        "/recognize.json": {
            "post": operation(
                "recognizeDigit",
                "recognition",
                "Read the handwritten digit in an image",
                "Upload one image (PNG, JPEG, GIF, WebP, BMP, TIFF: a drawing, a canvas export, a photo of paper) "
                "and get the digit, the network's confidence and all ten probabilities.\n\n"
                f"Limits: {max_bytes:,} bytes per request; {max_pixels:,} pixels and {max_decoded:,} bytes decoded "
                f"per image; {max_request_pixels:,} pixels decoded per request, told from each image's header before "
                f'decoding (413 past them). A JSON body `{{"images": [...]}}` is a batch of at most {max_batch} '
                "images, answered in order; one bad image does not fail the batch.",
                {
                    "200": json_response(
                        "The reading (or, for a batch, one reading or error per image, in order).",
                        {"oneOf": [schema_ref("Prediction"), schema_ref("BatchResult")]},
                    ),
                },
                protected=True,
                keys_required=keys_required,
                errors=digit_errors,
                extra_parameters=[INCLUDE_PARAMETER],
                requestBody=upload_body(),
            ),
        },
        "/recognize/number.json": {
            "post": operation(
                "recognizeNumber",
                "recognition",
                "Read a handwritten number in an image",
                "Upload one image of a number (a house number, an amount, a year; several lines are read top "
                "to bottom) and get every digit in reading order with its box in the image's pixels, its "
                "confidence and whether it looks like a digit at all. Marks that are not digits (a letter, "
                "a shape) are listed with `is_digit: false` and left out of `number`.\n\n"
                "The same uploads, limits, batches and errors as `/recognize.json`; 422 when there is no ink at all.",
                {
                    "200": json_response(
                        "The number (or, for a batch, one number or error per image, in order).",
                        {"oneOf": [schema_ref("Number"), schema_ref("NumberBatchResult")]},
                    ),
                },
                protected=True,
                keys_required=keys_required,
                errors=number_errors,
                extra_parameters=[INCLUDE_PARAMETER],
                requestBody=upload_body(),
            ),
        },
    }


def service_paths(keys_required: bool) -> dict[str, dict]:
    """The other routes: the model card and metrics (behind the keys), the pages, health and this description (open)."""
    return {
        "/model.json": {
            "get": operation(
                "getModelCard",
                "service",
                "The served model's card",
                "Architecture, parameters, training data checksum, seed and test accuracy of the served model, "
                "with the runtime, the served file's sha256 and the service's version.",
                {"200": json_response("The model card.", schema_ref("ModelCard"))},
                protected=True,
                keys_required=keys_required,
            )
        },
        "/metrics": {
            "get": operation(
                "getMetrics",
                "service",
                "Prometheus metrics",
                "Requests by route and status, latency, network call time, images per call, requests in "
                "flight and the served model, summed over all the workers.",
                {
                    "200": {
                        "description": "Prometheus text exposition format.",
                        "headers": {"X-Request-ID": {"$ref": "#/components/headers/RequestId"}},
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    },
                },
                protected=True,
                keys_required=keys_required,
                errors={"metrics_unavailable"},
            )
        },
        "/": {
            "get": operation(
                "getDrawingPage",
                "pages",
                "The drawing page",
                "Draw a digit (mouse, finger or pen) or drop a picture, and see the digit, its confidence, all "
                "ten probabilities and the 28x28 image the network read; or, in number mode, draw a number and "
                "see each digit boxed with its reading. It uses this API only. Always open.",
                {"200": html_response("An HTML page, with its script and styles inline (no CDN).")},
                protected=False,
                keys_required=keys_required,
            )
        },
        "/healthz": {
            "get": operation(
                "getHealth",
                "service",
                "Health check",
                "200 once the worker has loaded the model. Always open, even with API keys.",
                {
                    "200": json_response(
                        "Ready.",
                        {
                            "type": "object",
                            "required": ["status"],
                            "properties": {"status": {"const": "ok"}},
                        },
                    )
                },
                protected=False,
                keys_required=keys_required,
            )
        },
        "/openapi.json": {
            "get": operation(
                "getOpenApiDocument",
                "service",
                "This description",
                "The OpenAPI 3.1 document of this deployment, with its limits. Always open.",
                {"200": json_response("The document.", {"type": "object"})},
                protected=False,
                keys_required=keys_required,
            )
        },
        "/docs": {
            "get": operation(
                "getDocsPage",
                "pages",
                "API documentation page",
                "This description rendered as a web page, served by the service itself. Always open.",
                {"200": html_response("An HTML page.")},
                protected=False,
                keys_required=keys_required,
            )
        },
    }


def debug_paths(keys_required: bool) -> dict[str, dict]:
    """The /_debug/ routes, which exist only with ENABLE_DEBUG_ROUTES."""
    error_description = (
        "Only with `ENABLE_DEBUG_ROUTES`: fails with 500, so an operator can see the error arrive in Sentry "
        "(a POST reads its upload first, as `/recognize.json` does: the upload never goes with the event)."
    )
    return {
        "/_debug/error": {
            method: operation(
                operation_id,
                "debug",
                "Raise an error on purpose",
                error_description,
                {},
                protected=True,
                keys_required=keys_required,
                errors=upload_errors,
            )
            for method, operation_id, upload_errors in (
                ("get", "raiseDebugError", set()),
                ("post", "raiseDebugErrorAfterUpload", codes_of(400, 408, 413, 415)),  # reading the upload can fail
            )
        },
        "/_debug/sleep": {
            "get": operation(
                "holdDebugWorker",
                "debug",
                "Hold a worker on purpose",
                "Only with `ENABLE_DEBUG_ROUTES`: sleeps `?seconds=` (0 to 120, default 1), then answers, so an "
                "operator can see gunicorn's hard time limit (`--timeout`) answer 504, or a restart finish the "
                "request in flight.",
                {
                    "200": json_response(
                        "Slept.",
                        {
                            "type": "object",
                            "required": ["slept"],
                            "properties": {"slept": {"type": "number"}},
                        },
                    ),
                },
                protected=True,
                keys_required=keys_required,
                errors={"bad_request", "worker_timeout"},
                extra_parameters=[
                    {
                        "name": "seconds",
                        "in": "query",
                        "required": False,
                        "description": "How long to sleep.",
                        "schema": {"type": "number", "minimum": 0, "maximum": 120, "default": 1},
                    }
                ],
            )
        },
    }


def components(settings: Mapping[str, Any], keys_required: bool) -> dict:
    """The schemas, parameters and headers the operations refer to, and the bearer scheme when keys are required."""
    described: dict[str, Any] = {
        "schemas": {
            **upload_schemas(settings["MAX_BATCH_IMAGES"]),
            "Prediction": PREDICTION_SCHEMA,
            "BatchResult": batch_result("Prediction"),
            "Number": NUMBER_SCHEMA,
            "NumberBatchResult": batch_result("Number"),
            "Error": ERROR_SCHEMA,
            "ModelCard": MODEL_CARD_SCHEMA,
        },
        "parameters": {
            "RequestId": {
                "name": "X-Request-ID",
                "in": "header",
                "required": False,
                "description": "Your id for this request (letters, digits and `._:-`, at most 128); a new one is made "
                "otherwise.",
                "schema": {"type": "string", "pattern": "^[A-Za-z0-9._:-]{1,128}$"},
            }
        },
        "headers": {
            "RequestId": {
                "description": "The request's id: yours, or the one made for it. It is in the service's log line.",
                "schema": {"type": "string"},
            }
        },
    }
    if keys_required:
        described["securitySchemes"] = {
            "apiKey": {
                "type": "http",
                "scheme": "bearer",
                "description": "One of the keys in the service's `API_KEYS`.",
            }
        }
    return described


def markdown_inline(text: str) -> Markup:
    """One line of CommonMark's `code` and **strong**, as HTML; everything else escaped, so no text becomes markup."""
    parts, position = [], 0
    for match in MARKDOWN_INLINE.finditer(text):
        parts.append(escape(text[position : match.start()]))
        code, strong = match.groups()
        parts.append(Markup("<code>%s</code>") % code if code is not None else Markup("<strong>%s</strong>") % strong)
        position = match.end()
    parts.append(escape(text[position:]))
    return Markup("").join(parts)


def markdown_html(text: str) -> Markup:
    """The part of CommonMark the descriptions use, as HTML for /docs: paragraphs, `- ` lists, `code`, **strong**.

    Every character of the text is escaped except the markup this makes, so a description cannot inject HTML."""
    blocks = []
    for block in re.split(r"\n\s*\n", text.strip()):
        lines = block.splitlines()
        if lines and all(line.startswith("- ") for line in lines):
            items = Markup("").join(Markup("<li>%s</li>") % markdown_inline(line[2:]) for line in lines)
            blocks.append(Markup("<ul>%s</ul>") % items)
        elif lines:
            blocks.append(Markup("<p>%s</p>") % markdown_inline(" ".join(line.strip() for line in lines)))
    return Markup("\n").join(blocks)
