"""Uploads: the image (or a batch of images) out of a request, however the client sent it.

A form field `image` (a file, or text holding base64 or a data URL), a JSON body {"image": ...} or a batch
{"images": [...]}, or the image itself as the body. What is not an image is refused with the API's error codes.
"""

import base64
import binascii
import io
import re
from typing import Any

from flask import Request, current_app, request
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.http import parse_options_header

from model.errors import InvalidImageError, RecognitionError, UnsupportedImageTypeError
from web.errors import ApiError

# A data URL: its media type, parameters (";base64") and payload.
DATA_URL = re.compile(r"^data:(?P<media_type>[^;,]*)(?P<parameters>(;[^;,]*)*),(?P<payload>.*)$", re.DOTALL)
# The longest multipart boundary split here; a longer one is left to Werkzeug's parser.
MAX_BOUNDARY_BYTES = 200


class UploadRequest(Request):
    """Flask's request, whose form parser keeps file parts in memory: the body is there already (at most
    MAX_UPLOAD_BYTES), and Werkzeug's default would spool parts over 500 kB to a temporary file, failing on a full
    disk."""

    def _get_file_stream(self, total_content_length, content_type, filename=None, content_length=None):
        return io.BytesIO()


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


def batch_from_json(images: Any, limit: int) -> list[bytes | RecognitionError]:
    """The items of a JSON batch {"images": [...]}: image bytes, or the item's own RecognitionError."""
    if not isinstance(images, list):
        raise ApiError("invalid_json", '"images" must be a list of base64 strings or data URLs.')
    if not images:
        raise ApiError("missing_image", '"images" is empty.')
    if len(images) > limit:
        raise ApiError("too_large", f"A batch holds at most {limit} images; this one has {len(images)}.")
    uploads: list[bytes | RecognitionError] = []
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
    if not boundary or len(boundary) > MAX_BOUNDARY_BYTES:
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


def image_from_request(
    incoming: Request,
    batch_limit: int,
    read_timeout: float,
) -> bytes | list[bytes | RecognitionError]:
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


def request_upload() -> bytes | list[bytes | RecognitionError]:
    """This request's image (or batch of images), within the app's batch limit and read deadline."""
    config = current_app.config
    return image_from_request(request, config["MAX_BATCH_IMAGES"], config["REQUEST_READ_TIMEOUT"])
