"""The API's OpenAPI 3.1 description, kept in this one place and built with the deployment's limits.

`GET /openapi.json` serves it and `GET /docs` renders it; tests/test_openapi.py checks it against
the real app: every route is described, and real answers match the described schemas.
"""

from collections.abc import Mapping
from typing import Any

from flask import Flask

from web.errors import ERRORS

IMAGE_STRING = {
    "type": "string",
    "description": "The image file as base64 (standard or URL-safe, padding optional) or as a data URL "
    "such as a canvas's toDataURL(): data:image/png;base64,...",
}


# The document's title and what the API does.
API_INFO = {
    "title": "digit-recognition",
    "version": "1",
    "description": "Reads handwritten digits from images: the digit, a confidence and ten probabilities. "
    "Every error has the same JSON shape, and every answer carries an X-Request-ID header.",
}
# One digit's answer (POST /recognize.json).
PREDICTION_SCHEMA = {
    "type": "object",
    "required": ["digit", "confidence", "is_digit", "probabilities"],
    "properties": {
        "digit": {"type": "integer", "minimum": 0, "maximum": 9},
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
            "description": "Only with ?include=input: the 28x28 image the network read.",
        },
    },
}
# One number's answer (POST /recognize/number.json): the number, its lines, and every mark with its box.
NUMBER_SCHEMA = {
    "type": "object",
    "required": ["number", "lines", "digits"],
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
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {"type": "string", "enum": list(ERRORS)},
                "message": {"type": "string", "description": "What went wrong and how to fix it, for people."},
            },
        }
    },
}
# What GET /model.json always holds, besides the card's own fields.
MODEL_CARD_SCHEMA = {
    "type": "object",
    "required": ["runtime", "sha256"],
    "properties": {
        "runtime": {"enum": ["litert", "keras"]},
        "sha256": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
    },
}


def error_response(status: str) -> dict:
    """A response of the shared error shape, listing the codes this status carries."""
    codes = [code for code, error in ERRORS.items() if error.status == int(status)]
    return {
        "description": "; ".join(f"`{code}`: {ERRORS[code].meaning}" for code in codes),
        "headers": {"X-Request-ID": {"$ref": "#/components/headers/RequestId"}},
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


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


INCLUDE_PARAMETER = {
    "name": "include",
    "in": "query",
    "required": False,
    "description": "`input`: also answer the 28x28 image the network read, as a PNG data URL "
    "(`input`, white digit on black, as MNIST), so a wrong answer explains itself.",
    "schema": {"type": "string", "enum": ["input"]},
}


def upload_body(max_batch: int) -> dict:
    """The request body of the recognition routes: one image as a form field, JSON or the raw body, or a JSON batch."""
    return {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["image"],
                    "properties": {
                        "image": {
                            "description": "The image file (curl -F image=@digit.png), or a text field with base64 or a data URL.",
                            "oneOf": [{"type": "string", "contentMediaType": "application/octet-stream"}, IMAGE_STRING],
                        }
                    },
                }
            },
            "application/x-www-form-urlencoded": {
                "schema": {
                    "type": "object",
                    "required": ["image"],
                    "properties": {"image": IMAGE_STRING},
                }
            },
            "application/json": {
                "schema": {
                    "oneOf": [
                        {"type": "object", "required": ["image"], "properties": {"image": IMAGE_STRING}},
                        {
                            "type": "object",
                            "required": ["images"],
                            "properties": {
                                "images": {
                                    "type": "array",
                                    "items": IMAGE_STRING,
                                    "minItems": 1,
                                    "maxItems": max_batch,
                                }
                            },
                        },
                    ]
                }
            },
            "image/*": {"schema": {"type": "string", "contentMediaType": "image/*"}},
            "application/octet-stream": {"schema": {"type": "string", "contentMediaType": "application/octet-stream"}},
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
                "items": {
                    "oneOf": [
                        {"$ref": f"#/components/schemas/{schema}"},
                        {"$ref": "#/components/schemas/Error"},
                    ]
                },
            }
        },
    }


def operation(
    summary: str,
    description: str,
    responses: dict,
    protected: bool,
    keys_required: bool,
    extra_parameters: list[dict] | None = None,
    **extra: Any,
) -> dict:
    """One operation, with the request id parameter, its errors and, when keys are required, the bearer scheme."""
    errors = ["401", "404", "405", "500"] if protected and keys_required else ["404", "405", "500"]
    described = {
        "summary": summary,
        "description": description,
        "parameters": [{"$ref": "#/components/parameters/RequestId"}, *(extra_parameters or [])],
        "responses": {**responses, **{status: error_response(status) for status in errors}},
        **extra,
    }
    if protected and keys_required:
        described["security"] = [{"apiKey": []}]
    return described


def init_app(app: Flask) -> None:
    """Describe the app once, with its settings, for GET /openapi.json and GET /docs."""
    app.extensions["openapi"] = openapi_document(app.config)


def openapi_document(settings: Mapping[str, Any]) -> dict:
    """The OpenAPI 3.1 document for an app with these settings (limits, API keys, debug routes)."""
    keys_required = bool(settings.get("API_KEYS"))
    paths = {**recognition_paths(settings, keys_required), **service_paths(keys_required)}
    if settings.get("ENABLE_DEBUG_ROUTES"):
        paths.update(debug_paths(keys_required))
    return {"openapi": "3.1.0", "info": API_INFO, "paths": paths, "components": components(keys_required)}


def recognition_paths(settings: Mapping[str, Any], keys_required: bool) -> dict[str, dict]:
    """The two recognition routes, their uploads and limits as these settings set them."""
    max_bytes, max_batch = settings["MAX_CONTENT_LENGTH"], settings["MAX_BATCH_IMAGES"]
    max_pixels, max_decoded, max_request_pixels = (
        settings["MAX_IMAGE_PIXELS"],
        settings["MAX_DECODED_BYTES"],
        settings["MAX_REQUEST_PIXELS"],
    )
    recognize_errors = {status: error_response(status) for status in ("400", "408", "413", "415", "422", "503")}
    recognize_errors["503"]["headers"]["Retry-After"] = {
        "description": "Seconds to wait before trying again.",
        "schema": {"type": "integer"},
    }
    return {
        "/recognize.json": {
            "post": operation(
                "Read the handwritten digit in an image",
                "Upload one image (PNG, JPEG, GIF, WebP, BMP, TIFF, ...: a drawing, a canvas export, a photo "
                "of paper) and get the digit, the network's confidence and all ten probabilities. Send the "
                f"file as a form field `image`, as JSON, or as the raw body. Limits: {max_bytes:,} bytes per "
                f"request, {max_pixels:,} pixels and {max_decoded:,} bytes decoded per image, {max_request_pixels:,} "
                "pixels decoded per request, told from each image's header before decoding (413 past them). A JSON "
                f'body `{{"images": [...]}}` is a batch of at most {max_batch} images, answered in order; one bad '
                "image does not fail the batch.",
                {
                    "200": json_response(
                        "The reading (or, for a batch, one reading or error per image, in order).",
                        {
                            "oneOf": [
                                {"$ref": "#/components/schemas/Prediction"},
                                {"$ref": "#/components/schemas/BatchResult"},
                            ]
                        },
                    ),
                    **recognize_errors,
                },
                protected=True,
                keys_required=keys_required,
                extra_parameters=[INCLUDE_PARAMETER],
                requestBody=upload_body(max_batch),
            ),
        },
        "/recognize/number.json": {
            "post": operation(
                "Read a handwritten number in an image",
                "Upload one image of a number (a house number, an amount, a year; several lines are read top "
                "to bottom) and get every digit in reading order with its box in the image's pixels, its "
                "confidence and whether it looks like a digit at all. Marks that are not digits (a letter, "
                "a shape) are listed with `is_digit: false` and left out of `number`. The same uploads, "
                "limits, batches and errors as /recognize.json; 422 when there is no ink at all.",
                {
                    "200": json_response(
                        "The number (or, for a batch, one number or error per image, in order).",
                        {
                            "oneOf": [
                                {"$ref": "#/components/schemas/Number"},
                                {"$ref": "#/components/schemas/NumberBatchResult"},
                            ]
                        },
                    ),
                    **recognize_errors,
                },
                protected=True,
                keys_required=keys_required,
                extra_parameters=[INCLUDE_PARAMETER],
                requestBody=upload_body(max_batch),
            ),
        },
    }


def service_paths(keys_required: bool) -> dict[str, dict]:
    """The other routes: the model card and metrics (behind the keys), the pages, health and this description (open)."""
    return {
        "/model.json": {
            "get": operation(
                "The served model's card",
                "Architecture, parameters, training data checksum, seed and test accuracy of the served model, "
                "with the runtime and the served file's sha256.",
                {"200": json_response("The model card.", {"$ref": "#/components/schemas/ModelCard"})},
                protected=True,
                keys_required=keys_required,
            )
        },
        "/metrics": {
            "get": operation(
                "Prometheus metrics",
                "Requests by route and status, latency, network call time, images per call, requests in "
                "flight and the served model, summed over all the workers.",
                {
                    "200": {
                        "description": "Prometheus text exposition format.",
                        "headers": {"X-Request-ID": {"$ref": "#/components/headers/RequestId"}},
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    }
                },
                protected=True,
                keys_required=keys_required,
            )
        },
        "/": {
            "get": operation(
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
                "This description",
                "The OpenAPI 3.1 document of this deployment. Always open.",
                {"200": json_response("The document.", {"type": "object"})},
                protected=False,
                keys_required=keys_required,
            )
        },
        "/docs": {
            "get": operation(
                "API documentation page",
                "This description rendered as a web page. Always open.",
                {"200": html_response("An HTML page.")},
                protected=False,
                keys_required=keys_required,
            )
        },
    }


def debug_paths(keys_required: bool) -> dict[str, dict]:
    """The /_debug/ routes, which exist only with ENABLE_DEBUG_ROUTES."""
    return {
        "/_debug/error": {
            method: operation(
                "Raise an error on purpose",
                "Only with ENABLE_DEBUG_ROUTES: fails with 500, so an operator can see the error arrive in Sentry "
                "(a POST reads its upload first, as /recognize.json does: the upload never goes with the event).",
                {},
                protected=True,
                keys_required=keys_required,
            )
            for method in ("get", "post")
        },
        "/_debug/sleep": {
            "get": operation(
                "Hold a worker on purpose",
                "Only with ENABLE_DEBUG_ROUTES: sleeps `?seconds=` (0 to 120, default 1), then answers, so an operator "
                "can see gunicorn's hard time limit (`--timeout`) answer 504, or a restart finish the request in flight.",
                {
                    "200": json_response(
                        "Slept.",
                        {
                            "type": "object",
                            "required": ["slept"],
                            "properties": {"slept": {"type": "number"}},
                        },
                    ),
                    **{status: error_response(status) for status in ("400", "504")},
                },
                protected=True,
                keys_required=keys_required,
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


def components(keys_required: bool) -> dict:
    """The schemas, parameters and headers the operations refer to, and the bearer scheme when keys are required."""
    described: dict[str, Any] = {
        "schemas": {
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
                "description": "Your id for this request (letters, digits and . _ : -, at most 128); a new one is made "
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
                "description": "One of the keys in the service's API_KEYS.",
            }
        }
    return described
