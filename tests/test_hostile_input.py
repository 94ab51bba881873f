"""Hostile and odd uploads through Flask's test client: each gets its 4xx JSON error, nothing crashes.

Every hostile request is followed by a valid upload that must still be read (the app survives),
and no request may signal an unhandled exception (what Sentry's Flask integration reports).
"""

import base64
import functools
import io
import struct
import zipfile
import zlib
from collections.abc import Callable, Iterator

import numpy as np
import pytest
from flask import Flask, got_request_exception
from PIL import EpsImagePlugin, Image, ImageCms, ImageFile

from server import create_app
from tests.drawing import draw_digit, encode
from tests.test_api import assert_answer, assert_error, data_url

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


# --- the app, and what Sentry would see -------------------------------------------------------


@pytest.fixture
def crashes(app: Flask) -> Iterator[list[BaseException]]:
    """Unhandled exceptions of `app`'s requests, as Flask signals them to Sentry's integration."""
    seen: list[BaseException] = []

    def record(sender: Flask, exception: BaseException, **extra) -> None:
        seen.append(exception)

    got_request_exception.connect(record, app)
    yield seen
    got_request_exception.disconnect(record, app)


def assert_survives(client, crashes: list[BaseException]) -> None:
    """The app still reads a valid upload, and no request so far crashed."""
    assert_answer(client.post("/recognize.json", data=SEVEN, content_type="image/png"), 7)
    assert crashes == []


HOSTILE = [
    # decompression bombs and lying headers: refused from the header, before any pixel is decoded
    pytest.param(raw(functools.partial(png_bomb, 20_000, 20_000)), 413, "too_large", id="png_bomb_20000x20000_raw"),
    pytest.param(multipart(functools.partial(png_bomb, 20_000, 20_000)), 413, "too_large", id="png_bomb_20000x20000_multipart"),
    pytest.param(json_data_url(functools.partial(png_bomb, 20_000, 20_000)), 413, "too_large", id="png_bomb_20000x20000_json"),
    pytest.param(raw(functools.partial(png_with_header, 100_000, 100_000)), 413, "too_large", id="png_header_claims_100000x100000"),
    pytest.param(raw(functools.partial(png_with_header, 8_000, 8_000)), 413, "too_large", id="png_header_claims_8000x8000_over_service_limit"),
    pytest.param(raw(functools.partial(jpeg_with_header, 65_000, 65_000), "image/jpeg"), 413, "too_large", id="jpeg_header_claims_65000x65000"),
    pytest.param(raw(functools.partial(gif_with_header, 65_535, 65_535), "image/gif"), 413, "too_large", id="gif_header_claims_65535x65535"),
    pytest.param(raw(functools.partial(bmp_with_header, 100_000, 100_000), "image/bmp"), 413, "too_large", id="bmp_header_claims_100000x100000"),
    pytest.param(raw(functools.partial(tiff_with_header, 100_000, 100_000), "image/tiff"), 413, "too_large", id="tiff_header_claims_100000x100000"),
    pytest.param(raw(functools.partial(png_with_header, 0, 10)), 400, "invalid_image", id="png_header_claims_zero_width"),
    pytest.param(raw(float_tiff_with_nan, "image/tiff"), 400, "invalid_image", id="float_tiff_with_a_nan_pixel"),
    # a 50 MB zTXt comment: Pillow refuses text chunks that inflate past its limit
    pytest.param(raw(png_with_text_bomb), 400, "invalid_image", id="png_text_chunk_bomb"),
    # 0-byte files
    pytest.param(raw(b"", "application/octet-stream"), 400, "missing_image", id="zero_bytes_octet_stream"),
    pytest.param(multipart(b"", "digit.jpg"), 400, "invalid_image", id="zero_byte_file_named_jpg"),
    pytest.param(json_image("data:image/png;base64,"), 400, "invalid_image", id="zero_byte_data_url"),
    # truncated files
    pytest.param(raw(lambda: truncated(encode(draw_digit(7), "JPEG", quality=90)), "image/jpeg"), 400, "invalid_image", id="truncated_jpeg_raw"),
    pytest.param(multipart(lambda: truncated(encode(draw_digit(7), "JPEG", quality=90)), "digit.jpg"), 400, "invalid_image", id="truncated_jpeg_multipart"),
    pytest.param(json_data_url(truncated(SEVEN)), 400, "invalid_image", id="truncated_png_json"),
    pytest.param(raw(lambda: truncated(encode(draw_digit(7).convert("P"), "GIF")), "image/gif"), 400, "invalid_image", id="truncated_gif"),
    pytest.param(raw(lambda: encode(draw_digit(7), "TIFF")[:5000], "image/tiff"), 400, "invalid_image", id="truncated_tiff"),
    pytest.param(raw(lambda: encode(draw_digit(7), "WEBP")[:300], "image/webp"), 400, "invalid_image", id="truncated_webp"),
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
    pytest.param(raw(lambda: encode(draw_digit(7), "TGA"), "image/x-tga"), 400, "invalid_image", id="tga_is_not_a_served_format"),
    pytest.param(raw(lambda: encode(draw_digit(7), "ICO"), "image/x-icon"), 400, "invalid_image", id="ico_is_not_a_served_format"),
    pytest.param(raw(lambda: encode(draw_digit(7), "JPEG2000"), "image/jp2"), 400, "invalid_image", id="jpeg2000_is_not_a_served_format"),
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
    pytest.param(json_image("data:image/png" + ";x" * 100_000 + ",@@"), 400, "invalid_image", id="data_url_with_100000_parameters"),
    pytest.param(json_image("data:image/png" + ";x" * 100_000), 400, "invalid_image", id="data_url_without_comma"),
    # invalid UTF-8 and lone surrogates
    pytest.param(json_text(b'{"image": "\xff\xfe\xfd"}'), 400, "invalid_json", id="invalid_utf8_in_json_body"),
    pytest.param(json_text('{"image": "\\ud800\\udfff\\ud800"}'), 400, "invalid_image", id="lone_surrogate_in_json_string"),
    pytest.param(multipart_text_field(b"\xff\xfe\xfd\x80"), 400, "invalid_image", id="invalid_utf8_in_multipart_text_field"),
    pytest.param(raw(b"image=%FF%FE%FD", "application/x-www-form-urlencoded"), 400, "invalid_image", id="invalid_utf8_in_urlencoded_field"),
    # data URLs of another type
    pytest.param(json_data_url(MINIMAL_PDF, "application/pdf"), 415, "unsupported_media_type", id="data_url_of_pdf"),
    pytest.param(json_data_url(b"<html></html>", "text/html"), 415, "unsupported_media_type", id="data_url_of_html"),
    pytest.param(json_data_url(SEVEN, "application/octet-stream"), 415, "unsupported_media_type", id="data_url_of_octet_stream"),
    pytest.param(multipart_text_field(data_url(MINIMAL_PDF, "application/pdf").encode()), 415, "unsupported_media_type", id="data_url_of_pdf_in_form_field"),
    # no or odd Content-Type
    pytest.param(lambda: {"data": SEVEN}, 415, "unsupported_media_type", id="no_content_type_with_a_png_body"),
    pytest.param(raw(SEVEN, "multipart/form-data"), 400, "missing_image", id="multipart_without_boundary"),
    pytest.param(raw(SEVEN, "multipart/form-data; boundary=\u00e9\u00e9"), 400, "missing_image", id="multipart_non_ascii_boundary"),
    pytest.param(raw(SEVEN, "nonsense"), 415, "unsupported_media_type", id="content_type_not_a_media_type"),
]


@pytest.mark.parametrize("make_request, status, code", HOSTILE)
def test_hostile_request_gets_its_json_error_and_the_app_survives(client, crashes, make_request, status, code):
    assert_error(client.post("/recognize.json", **make_request()), status, code)
    assert_survives(client, crashes)


def test_bomb_is_refused_by_the_pixel_limit_before_any_pixel_is_decoded(classifier, monkeypatch):
    app = create_app({"TESTING": True, "PROPAGATE_EXCEPTIONS": False, "CLASSIFIER": classifier, "MAX_IMAGE_PIXELS": 1_000_000})
    client = app.test_client()
    decoded: list[tuple[int, int]] = []
    original_load = ImageFile.ImageFile.load

    def spying_load(image: ImageFile.ImageFile):
        decoded.append(image.size)
        return original_load(image)

    monkeypatch.setattr(ImageFile.ImageFile, "load", spying_load)
    bomb = png_bomb(4_000, 4_000)  # 16 megapixels in a few kB, over the configured limit
    assert len(bomb) < 10_000
    response = client.post("/recognize.json", data=bomb, content_type="image/png")
    body = assert_error(response, 413, "too_large")
    assert "more than 1,000,000 pixels" in body["error"]["message"]  # Pillow's own check, at the configured limit
    assert decoded == []
    # the spy does see a decode: a valid image under the limit is loaded, and read
    assert_answer(client.post("/recognize.json", data=SEVEN, content_type="image/png"), 7)
    assert decoded and set(decoded) == {(280, 280)}


@pytest.mark.parametrize("body", ["[" * 100_000 + "]" * 100_000, '{"image": ' + "[" * 100_000 + "]" * 100_000 + "}"], ids=["array", "in_image"])
def test_deeply_nested_json_is_invalid_json(client, crashes, body):
    assert_error(client.post("/recognize.json", data=body, content_type="application/json"), 400, "invalid_json")
    assert_survives(client, crashes)


@pytest.mark.parametrize("media_type", ["image/png", "application/json"])
def test_chunked_body_over_the_upload_limit_is_too_large(classifier, media_type):
    app = create_app({"TESTING": True, "PROPAGATE_EXCEPTIONS": False, "CLASSIFIER": classifier, "MAX_CONTENT_LENGTH": 50_000})
    big = encode(draw_digit(7, size=(1000, 1000)), "PNG", compress_level=0)
    assert len(big) > 100_000
    body = big if media_type == "image/png" else b'{"image": "' + base64.b64encode(big) + b'"}'
    response = app.test_client().post(
        "/recognize.json", input_stream=io.BytesIO(body), content_type=media_type,
        headers={"Transfer-Encoding": "chunked"}, environ_overrides={"wsgi.input_terminated": True},
    )
    assert_error(response, 413, "too_large")


def test_eps_never_reaches_ghostscript(client, crashes, monkeypatch):
    rendered: list[tuple] = []

    def ghostscript_stand_in(*args, **kwargs):
        rendered.append(args)
        raise OSError("Ghostscript would have interpreted the upload here")

    monkeypatch.setattr(EpsImagePlugin, "Ghostscript", ghostscript_stand_in)
    eps = encode(draw_digit(7).convert("L"), "EPS")
    assert eps.startswith(b"%!PS")
    assert_error(client.post("/recognize.json", data=eps, content_type="application/octet-stream"), 400, "invalid_image")
    assert rendered == []
    assert_survives(client, crashes)


def test_a_filename_that_is_not_utf8_does_not_matter(client, crashes):
    boundary = "b0undary"
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="'.encode()
        + b"\xff\xfe\x80.png"
        + b'"\r\nContent-Type: image/png\r\n\r\n'
        + SEVEN
        + f"\r\n--{boundary}--\r\n".encode()
    )
    assert_answer(client.post("/recognize.json", data=body, content_type=f"multipart/form-data; boundary={boundary}"), 7)
    assert crashes == []


# --- odd but valid images are read right -------------------------------------------------------


def sixteen_bit(image: Image.Image) -> Image.Image:
    """A 16-bit grayscale copy (0..65535)."""
    return Image.fromarray(np.asarray(image.convert("L"), dtype=np.uint16) * 257)


def two_frames(first: Image.Image, second: Image.Image, image_format: str, **options) -> bytes:
    """An animation or multi-page file whose first frame is `first`."""
    return encode(first, image_format, save_all=True, append_images=[second], **options)


def cielab_tiff(image: Image.Image) -> bytes:
    """A TIFF in the CIELAB colour space (as scanners and Photoshop write), converted colorimetrically."""
    to_lab = ImageCms.buildTransform(ImageCms.createProfile("sRGB"), ImageCms.createProfile("LAB"), "RGB", "LAB")
    return encode(ImageCms.applyTransform(image.convert("RGB"), to_lab), "TIFF")


def premultiplied_alpha_tiff(image: Image.Image) -> bytes:
    """A grayscale+alpha TIFF marked as premultiplied (ExtraSamples = 1, associated alpha): Pillow's mode "La"."""
    tiff = encode(image.convert("LA"), "TIFF")
    unassociated = struct.pack("<HHII", 338, 3, 1, 2)
    assert tiff.count(unassociated) == 1
    return tiff.replace(unassociated, struct.pack("<HHII", 338, 3, 1, 1))


def exif_rotated_jpeg(image: Image.Image, orientation: int, with_exif: bool = True) -> bytes:
    """A JPEG whose pixels are stored sideways; EXIF orientation 6 or 8 says how to turn them upright."""
    stored = image.rotate(90 if orientation == 6 else -90, expand=True)
    exif = Image.Exif()
    exif[0x0112] = orientation
    return encode(stored, "JPEG", quality=92, **({"exif": exif.tobytes()} if with_exif else {}))


ODD_IMAGES = [
    # digit, file bytes, media type, and what Pillow sees in the file (so each case is what it claims):
    # format, mode, frames, whether a palette has transparency (tRNS)
    pytest.param(2, lambda: encode(draw_digit(2).convert("CMYK"), "JPEG", quality=90), "image/jpeg", ("JPEG", "CMYK", 1, False), id="cmyk_jpeg"),
    pytest.param(3, lambda: encode(sixteen_bit(draw_digit(3))), "image/png", ("PNG", "I;16", 1, False), id="png_16_bit"),
    pytest.param(4, lambda: encode(draw_digit(4).convert("P", palette=Image.Palette.ADAPTIVE, colors=16)), "image/png", ("PNG", "P", 1, False), id="png_palette"),
    pytest.param(5, lambda: encode(draw_digit(5, background=None).quantize(16)), "image/png", ("PNG", "P", 1, True), id="png_palette_transparent"),
    pytest.param(6, lambda: encode(draw_digit(6, background=None).convert("LA")), "image/png", ("PNG", "LA", 1, False), id="png_grayscale_alpha"),
    pytest.param(
        8, lambda: two_frames(draw_digit(8).convert("P"), draw_digit(1).convert("P"), "GIF", duration=100, loop=0),
        "image/gif", ("GIF", "P", 2, False), id="gif_animated_first_frame",
    ),
    pytest.param(
        2, lambda: two_frames(draw_digit(2, background=None), draw_digit(1, background=None), "PNG", duration=100),
        "image/png", ("PNG", "RGBA", 2, False), id="apng_first_frame",
    ),
    pytest.param(9, lambda: two_frames(draw_digit(9), draw_digit(1), "TIFF"), "image/tiff", ("TIFF", "RGB", 2, False), id="tiff_multipage_first_page"),
    pytest.param(0, lambda: encode(draw_digit(0), "BMP"), "image/bmp", ("BMP", "RGB", 1, False), id="bmp"),
    pytest.param(5, lambda: encode(draw_digit(5), "WEBP", quality=80), "image/webp", ("WEBP", "RGB", 1, False), id="webp_lossy"),
    pytest.param(3, lambda: encode(draw_digit(3, background=None), "WEBP", quality=80), "image/webp", ("WEBP", "RGBA", 1, False), id="webp_transparent_canvas"),
    pytest.param(3, lambda: cielab_tiff(draw_digit(3)), "image/tiff", ("TIFF", "LAB", 1, False), id="tiff_cielab"),
    pytest.param(6, lambda: premultiplied_alpha_tiff(draw_digit(6, background=None)), "image/tiff", ("TIFF", "La", 1, False), id="tiff_premultiplied_alpha"),
]


@pytest.mark.parametrize("digit, make_file, media_type, expected", ODD_IMAGES)
def test_odd_but_valid_image_is_read_right(client, crashes, digit, make_file, media_type, expected):
    data = make_file()
    with Image.open(io.BytesIO(data)) as image:
        assert (image.format, image.mode, getattr(image, "n_frames", 1), "transparency" in image.info) == expected
    assert_answer(client.post("/recognize.json", data=data, content_type=media_type), digit)
    assert_answer(client.post("/recognize.json", data={"image": (io.BytesIO(data), "upload")}), digit)
    assert crashes == []


@pytest.mark.parametrize("orientation, digit", [(6, 7), (8, 3)], ids=["orientation_6", "orientation_8"])
def test_exif_rotated_jpeg_is_turned_upright(client, crashes, orientation, digit):
    portrait = draw_digit(digit, size=(240, 320))
    upright = exif_rotated_jpeg(portrait, orientation)
    with Image.open(io.BytesIO(upright)) as image:
        assert image.getexif()[0x0112] == orientation and image.size == (320, 240)  # stored sideways
    assert_answer(client.post("/recognize.json", data=upright, content_type="image/jpeg"), digit)
    # the same pixels without the EXIF tag read as another digit: only applying EXIF makes them upright
    sideways = client.post("/recognize.json", data=exif_rotated_jpeg(portrait, orientation, with_exif=False), content_type="image/jpeg")
    assert sideways.status_code == 200 and sideways.get_json()["digit"] != digit
    assert crashes == []
