"""Hostile requests, for the in-process tests (test_hostile_input.py) and the gunicorn ones (test_hostile_e2e.py).

Each case of HOSTILE is a request (the keyword arguments of the test client's post()), the status and the error code
it must get; the files are built when a test runs, not when a module is collected.
"""

import base64
import functools
import io
import struct
import zipfile
import zlib
from collections.abc import Callable

import numpy as np
import pytest
from PIL import Image

from tests.drawing import draw_digit, encode
from tests.helpers import data_url

SEVEN = encode(draw_digit(7, background=None))
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# A request for each of the hostile cases: the keyword arguments of the test client's post().
RequestFactory = Callable[[], dict]
# File bytes, or a function that builds them when the test runs (not when the module is collected).
Source = bytes | Callable[[], bytes]


# --- hostile files, built here ----------------------------------------------------------------


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    """One PNG chunk: length, type, payload and the CRC PNG readers check."""
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def png_with_header(width: int, height: int, idat: bytes = b"", bit_depth: int = 8) -> bytes:
    """A grayscale PNG whose IHDR claims `width` x `height`, with the given compressed pixel data (or none)."""
    header = png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, bit_depth, 0, 0, 0, 0))
    return PNG_SIGNATURE + header + (png_chunk(b"IDAT", idat) if idat else b"") + png_chunk(b"IEND", b"")


@functools.cache
def png_bomb(width: int, height: int) -> bytes:
    """A decompression bomb: a 1-bit PNG of `width` x `height` black pixels, compressed to a few kB."""
    row = b"\0" * (1 + (width + 7) // 8)  # filter byte, then the packed bits
    compressor = zlib.compressobj(9)
    rows_at_once = 1000
    pieces = [compressor.compress(row * rows_at_once) for _ in range(height // rows_at_once)]
    pieces += [compressor.compress(row * (height % rows_at_once)), compressor.flush()]
    return png_with_header(width, height, b"".join(pieces), bit_depth=1)


def jpeg_with_header(width: int, height: int) -> bytes:
    """A real JPEG whose frame header (SOF0) is rewritten to claim `width` x `height`."""
    jpeg = encode(draw_digit(7), "JPEG", quality=90)
    start = jpeg.index(b"\xff\xc0") + 5  # marker, segment length, sample precision
    return jpeg[:start] + struct.pack(">HH", height, width) + jpeg[start + 4 :]


def gif_with_header(width: int, height: int) -> bytes:
    """A real GIF whose logical screen is rewritten to claim `width` x `height`."""
    gif = encode(draw_digit(7).convert("P"), "GIF")
    return gif[:6] + struct.pack("<HH", width, height) + gif[10:]


def bmp_with_header(width: int, height: int) -> bytes:
    """A real BMP whose info header is rewritten to claim `width` x `height`."""
    bmp = encode(draw_digit(7, size=(28, 28)), "BMP")
    return bmp[:18] + struct.pack("<ii", width, height) + bmp[26:]


def tiff_with_header(width: int, height: int) -> bytes:
    """A real TIFF whose ImageWidth and ImageLength tags are rewritten to claim `width` x `height`."""
    tiff = encode(draw_digit(7, size=(28, 28)).convert("L"), "TIFF")
    for tag, value in ((256, width), (257, height)):
        entry = struct.pack("<HHII", tag, 4, 1, 28)  # one LONG, as Pillow writes it
        assert tiff.count(entry) == 1
        tiff = tiff.replace(entry, struct.pack("<HHII", tag, 4, 1, value))
    return tiff


def truncated(data: bytes) -> bytes:
    """The first half of a file."""
    return data[: len(data) // 2]


@functools.cache
def png_with_text_bomb() -> bytes:
    """A valid PNG of a digit carrying a zTXt comment that inflates to 50 MB."""
    png = encode(draw_digit(7))
    comment = png_chunk(b"zTXt", b"comment\0\0" + zlib.compress(b"A" * 50_000_000))
    return png[:33] + comment + png[33:]  # after the signature and IHDR


def float_tiff_with_nan() -> bytes:
    """A 32-bit float TIFF of a digit with one pixel of its stroke NaN (the decoder once crashed on it)."""
    values = np.asarray(draw_digit(7).convert("L"), dtype=np.float32) / 255
    rows, cols = np.nonzero(values < 0.2)
    values[rows[len(rows) // 2], cols[len(cols) // 2]] = np.nan
    return encode(Image.fromarray(values, "F"), "TIFF")


def zip_archive() -> bytes:
    """A zip holding a PNG of a digit (what a user might post by mistake)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("seven.png", SEVEN)
    return buffer.getvalue()


MINIMAL_PDF = (
    b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n"
    b"3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 28 28]>>endobj\n"
    b"trailer<</Root 1 0 R>>\n%%EOF\n"
)
SVG_DIGIT = (
    b'<svg xmlns="http://www.w3.org/2000/svg" width="280" height="280">'
    b'<rect width="280" height="280" fill="white"/>'
    b'<path d="M 80 40 L 200 40 L 120 240" stroke="black" stroke-width="24" fill="none"/></svg>'
)


def content(source: Source) -> bytes:
    """The bytes of a source, built now if it is a function."""
    return source() if callable(source) else source


def raw(source: Source, media_type: str = "image/png") -> RequestFactory:
    """A request whose body is the file itself."""
    return lambda: {"data": content(source), "content_type": media_type}


def multipart(source: Source, filename: str = "digit.png") -> RequestFactory:
    """A request uploading the file in the form field 'image', as curl -F does."""
    return lambda: {"data": {"image": (io.BytesIO(content(source)), filename)}}


def json_image(value: object) -> RequestFactory:
    """A JSON request {"image": value}."""
    return lambda: {"json": {"image": value}}


def json_data_url(source: Source, media_type: str = "image/png") -> RequestFactory:
    """A JSON request {"image": "data:<media_type>;base64,..."}."""
    return lambda: {"json": {"image": data_url(content(source), media_type)}}


def json_text(body: bytes | str, media_type: str = "application/json") -> RequestFactory:
    """A request whose body is the given JSON text, exactly as written."""
    return lambda: {"data": body, "content_type": media_type}


def multipart_text_field(content: bytes) -> RequestFactory:
    """A multipart request whose 'image' field is text (no filename) holding exactly these bytes."""
    boundary = "hostile-boundary-1"
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="image"\r\n\r\n'.encode()
        + content
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return lambda: {"data": body, "content_type": f"multipart/form-data; boundary={boundary}"}


HOSTILE = [
    # decompression bombs and lying headers: refused from the header, before any pixel is decoded
    pytest.param(raw(functools.partial(png_bomb, 20_000, 20_000)), 413, "too_large", id="png_bomb_20000x20000_raw"),
    pytest.param(
        multipart(functools.partial(png_bomb, 20_000, 20_000)), 413, "too_large", id="png_bomb_20000x20000_multipart"
    ),
    pytest.param(
        json_data_url(functools.partial(png_bomb, 20_000, 20_000)), 413, "too_large", id="png_bomb_20000x20000_json"
    ),
    pytest.param(
        raw(functools.partial(png_with_header, 100_000, 100_000)),
        413,
        "too_large",
        id="png_header_claims_100000x100000",
    ),
    pytest.param(
        raw(functools.partial(png_with_header, 8_000, 8_000)),
        413,
        "too_large",
        id="png_header_claims_8000x8000_over_service_limit",
    ),
    pytest.param(
        raw(functools.partial(jpeg_with_header, 65_000, 65_000), "image/jpeg"),
        413,
        "too_large",
        id="jpeg_header_claims_65000x65000",
    ),
    pytest.param(
        raw(functools.partial(gif_with_header, 65_535, 65_535), "image/gif"),
        413,
        "too_large",
        id="gif_header_claims_65535x65535",
    ),
    pytest.param(
        raw(functools.partial(bmp_with_header, 100_000, 100_000), "image/bmp"),
        413,
        "too_large",
        id="bmp_header_claims_100000x100000",
    ),
    pytest.param(
        raw(functools.partial(tiff_with_header, 100_000, 100_000), "image/tiff"),
        413,
        "too_large",
        id="tiff_header_claims_100000x100000",
    ),
    pytest.param(
        raw(functools.partial(png_with_header, 0, 10)), 400, "invalid_image", id="png_header_claims_zero_width"
    ),
    pytest.param(raw(float_tiff_with_nan, "image/tiff"), 400, "invalid_image", id="float_tiff_with_a_nan_pixel"),
    # a 50 MB zTXt comment: Pillow refuses text chunks that inflate past its limit
    pytest.param(raw(png_with_text_bomb), 400, "invalid_image", id="png_text_chunk_bomb"),
    # 0-byte files
    pytest.param(raw(b"", "application/octet-stream"), 400, "missing_image", id="zero_bytes_octet_stream"),
    pytest.param(multipart(b"", "digit.jpg"), 400, "invalid_image", id="zero_byte_file_named_jpg"),
    pytest.param(json_image("data:image/png;base64,"), 400, "invalid_image", id="zero_byte_data_url"),
    # truncated files
    pytest.param(
        raw(lambda: truncated(encode(draw_digit(7), "JPEG", quality=90)), "image/jpeg"),
        400,
        "invalid_image",
        id="truncated_jpeg_raw",
    ),
    pytest.param(
        multipart(lambda: truncated(encode(draw_digit(7), "JPEG", quality=90)), "digit.jpg"),
        400,
        "invalid_image",
        id="truncated_jpeg_multipart",
    ),
    pytest.param(json_data_url(truncated(SEVEN)), 400, "invalid_image", id="truncated_png_json"),
    pytest.param(
        raw(lambda: truncated(encode(draw_digit(7).convert("P"), "GIF")), "image/gif"),
        400,
        "invalid_image",
        id="truncated_gif",
    ),
    pytest.param(
        raw(lambda: encode(draw_digit(7), "TIFF")[:5000], "image/tiff"), 400, "invalid_image", id="truncated_tiff"
    ),
    pytest.param(
        raw(lambda: encode(draw_digit(7), "WEBP")[:300], "image/webp"), 400, "invalid_image", id="truncated_webp"
    ),
    # other files posted as an image
    pytest.param(raw(zip_archive), 400, "invalid_image", id="zip_as_image_png"),
    pytest.param(multipart(zip_archive, "digit.zip"), 400, "invalid_image", id="zip_as_multipart_file"),
    pytest.param(raw(zip_archive, "application/zip"), 415, "unsupported_media_type", id="zip_as_application_zip"),
    pytest.param(raw(MINIMAL_PDF), 400, "invalid_image", id="pdf_as_image_png"),
    pytest.param(multipart(MINIMAL_PDF, "digit.pdf"), 400, "invalid_image", id="pdf_as_multipart_file"),
    pytest.param(raw(SVG_DIGIT, "image/svg+xml"), 400, "invalid_image", id="svg_as_image_svg_xml"),
    pytest.param(multipart(SVG_DIGIT, "digit.svg"), 400, "invalid_image", id="svg_as_multipart_file"),
    pytest.param(json_data_url(SVG_DIGIT, "image/svg+xml"), 400, "invalid_image", id="svg_as_data_url"),
    # formats Pillow knows but the service does not read (fewer parsers exposed to uploads)
    pytest.param(
        raw(lambda: encode(draw_digit(7), "TGA"), "image/x-tga"), 400, "invalid_image", id="tga_is_not_a_served_format"
    ),
    pytest.param(
        raw(lambda: encode(draw_digit(7), "ICO"), "image/x-icon"), 400, "invalid_image", id="ico_is_not_a_served_format"
    ),
    pytest.param(
        raw(lambda: encode(draw_digit(7), "JPEG2000"), "image/jp2"),
        400,
        "invalid_image",
        id="jpeg2000_is_not_a_served_format",
    ),
    # JSON that is not an object
    pytest.param(json_text("42"), 400, "invalid_json", id="json_number"),
    pytest.param(json_text("true"), 400, "invalid_json", id="json_boolean"),
    pytest.param(json_text(""), 400, "invalid_json", id="json_empty_body"),
    pytest.param(json_text("[]", "application/vnd.api+json"), 400, "invalid_json", id="json_array_with_plus_json_type"),
    pytest.param(json_text('{"image": ' + "9" * 5000 + "}"), 400, "invalid_json", id="json_integer_too_long_to_parse"),
    # an image that is not a string
    pytest.param(json_image(None), 400, "invalid_image", id="image_null"),
    pytest.param(json_image(True), 400, "invalid_image", id="image_boolean"),
    pytest.param(json_image(3.5), 400, "invalid_image", id="image_float"),
    pytest.param(json_image([base64.b64encode(SEVEN).decode()]), 400, "invalid_image", id="image_list_of_base64"),
    pytest.param(json_image({"data": base64.b64encode(SEVEN).decode()}), 400, "invalid_image", id="image_object"),
    pytest.param(json_text('{"image": NaN}'), 400, "invalid_image", id="image_nan"),
    # base64 that is not
    pytest.param(json_image("abcde"), 400, "invalid_image", id="base64_impossible_length"),
    pytest.param(json_image("ÿÿÿÿ"), 400, "invalid_image", id="base64_non_ascii"),
    pytest.param(json_image("ab+_cd=="), 400, "invalid_image", id="base64_mixed_alphabets"),
    pytest.param(json_image(" \n\t "), 400, "invalid_image", id="base64_only_whitespace"),
    pytest.param(json_image(base64.b64encode(b"hello, world").decode()), 400, "invalid_image", id="base64_of_text"),
    pytest.param(
        json_image("data:image/png" + ";x" * 100_000 + ",@@"),
        400,
        "invalid_image",
        id="data_url_with_100000_parameters",
    ),
    pytest.param(json_image("data:image/png" + ";x" * 100_000), 400, "invalid_image", id="data_url_without_comma"),
    # invalid UTF-8 and lone surrogates
    pytest.param(json_text(b'{"image": "\xff\xfe\xfd"}'), 400, "invalid_json", id="invalid_utf8_in_json_body"),
    pytest.param(
        json_text('{"image": "\\ud800\\udfff\\ud800"}'), 400, "invalid_image", id="lone_surrogate_in_json_string"
    ),
    pytest.param(
        multipart_text_field(b"\xff\xfe\xfd\x80"), 400, "invalid_image", id="invalid_utf8_in_multipart_text_field"
    ),
    pytest.param(
        raw(b"image=%FF%FE%FD", "application/x-www-form-urlencoded"),
        400,
        "invalid_image",
        id="invalid_utf8_in_urlencoded_field",
    ),
    # data URLs of another type
    pytest.param(json_data_url(MINIMAL_PDF, "application/pdf"), 415, "unsupported_media_type", id="data_url_of_pdf"),
    pytest.param(json_data_url(b"<html></html>", "text/html"), 415, "unsupported_media_type", id="data_url_of_html"),
    pytest.param(
        json_data_url(SEVEN, "application/octet-stream"), 415, "unsupported_media_type", id="data_url_of_octet_stream"
    ),
    pytest.param(
        multipart_text_field(data_url(MINIMAL_PDF, "application/pdf").encode()),
        415,
        "unsupported_media_type",
        id="data_url_of_pdf_in_form_field",
    ),
    # no or odd Content-Type
    pytest.param(lambda: {"data": SEVEN}, 415, "unsupported_media_type", id="no_content_type_with_a_png_body"),
    pytest.param(raw(SEVEN, "multipart/form-data"), 400, "missing_image", id="multipart_without_boundary"),
    pytest.param(
        raw(SEVEN, "multipart/form-data; boundary=\u00e9\u00e9"),
        400,
        "missing_image",
        id="multipart_non_ascii_boundary",
    ),
    pytest.param(raw(SEVEN, "nonsense"), 415, "unsupported_media_type", id="content_type_not_a_media_type"),
]
