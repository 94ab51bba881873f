"""Property-based tests (hypothesis): random and mutated bytes never crash the decoder or the API.

Derandomized, so that CI runs the same examples every time; a failure shrinks to a small input.
"""

import base64
import json
import struct
import zlib

import numpy as np
import pytest
from flask import Flask, got_request_exception
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from PIL import Image

from model.decoding import image_to_array, preprocess
from model.errors import RecognitionError
from server import create_app
from tests.drawing import draw_digit, encode
from web.errors import ERRORS

# Small valid files of a digit, one per format (and a few variants): what the mutations start from.
SEEDS = {
    "png": encode(draw_digit(3, size=(48, 48))),
    "png_transparent_palette": encode(draw_digit(5, size=(48, 48), background=None).quantize(8)),
    "png_16_bit": encode(Image.fromarray(np.asarray(draw_digit(2, size=(40, 40)).convert("L"), dtype=np.uint16) * 257)),
    "jpeg": encode(draw_digit(7, size=(48, 48)), "JPEG", quality=80),
    "jpeg_cmyk": encode(draw_digit(4, size=(40, 40)).convert("CMYK"), "JPEG", quality=80),
    "gif_animated": encode(
        draw_digit(8, size=(40, 40)).convert("P"),
        "GIF",
        save_all=True,
        append_images=[draw_digit(1, size=(40, 40)).convert("P")],
        duration=50,
    ),
    "tiff": encode(draw_digit(9, size=(40, 40)).convert("L"), "TIFF"),
    "webp": encode(draw_digit(6, size=(40, 40)), "WEBP", quality=70),
    "bmp": encode(draw_digit(0, size=(32, 32)), "BMP"),
}
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# Magic numbers Pillow sniffs formats by, to start random bytes as some parser's input.
MAGIC_PREFIXES = [
    PNG_SIGNATURE,
    b"\xff\xd8\xff\xe0",
    b"\xff\xd8\xff\xee",
    b"GIF89a",
    b"GIF87a",
    b"II*\x00",
    b"MM\x00*",
    b"BM",
    b"RIFF\x00\x00\x00\x00WEBPVP8 ",
    b"RIFF\x00\x00\x00\x00WEBPVP8L",
    b"%!PS-Adobe-3.0 EPSF-3.0\n",
    b"8BPS",
    b"\x00\x00\x01\x00",
    b"\x00\x00\x00\x0cjP  \r\n\x87\n",
    b"P5\n",
    b"%PDF-1.4\n",
    b"PK\x03\x04",
    b"<svg",
]
# Mutated headers may claim big pictures; this ceiling keeps each example's decode quick.
FUZZ_MAX_PIXELS = 2_000_000
# Byte values that parsers treat specially: zero, sign bits, all ones.
INTERESTING_BYTES = [0x00, 0x01, 0x7F, 0x80, 0xFE, 0xFF]
# Reproducible in CI: the same examples every run, nothing saved between runs, no per-example deadline.
FUZZ_SETTINGS = settings(deadline=None, derandomize=True, database=None, print_blob=False)
# Pillow warns about the corrupt metadata the mutations make (EXIF, TIFF tags): expected here. Fuzzing is slow.
pytestmark = [pytest.mark.filterwarnings("ignore::UserWarning:PIL"), pytest.mark.slow]


def with_fixed_png_crcs(data: bytes) -> bytes:
    """A (mutated) PNG with every complete chunk's CRC recomputed, so mutations get past the CRC checks."""
    if not data.startswith(PNG_SIGNATURE):
        return data
    fixed = bytearray(data)
    offset = len(PNG_SIGNATURE)
    while offset + 12 <= len(fixed):
        length = struct.unpack(">I", fixed[offset : offset + 4])[0]
        end = offset + 8 + length
        if end + 4 > len(fixed):
            break
        fixed[end : end + 4] = struct.pack(">I", zlib.crc32(bytes(fixed[offset + 4 : end])))
        offset = end + 4
    return bytes(fixed)


@st.composite
def mutated_images(draw: st.DrawFn) -> bytes:
    """A valid seed file with a few bytes flipped, set, inserted, deleted, duplicated, or cut off."""
    data = bytearray(SEEDS[draw(st.sampled_from(sorted(SEEDS)))])
    for _ in range(draw(st.integers(1, 6))):
        if not data:
            break
        # headers decide the most, so half the mutations land in the first 64 bytes
        position = draw(st.one_of(st.integers(0, min(63, len(data) - 1)), st.integers(0, len(data) - 1)))
        operation = draw(st.sampled_from(["flip", "set", "insert", "delete", "duplicate", "truncate"]))
        if operation == "flip":
            data[position] ^= 1 << draw(st.integers(0, 7))
        elif operation == "set":
            data[position] = draw(st.sampled_from(INTERESTING_BYTES))
        elif operation == "insert":
            data[position:position] = draw(st.binary(min_size=1, max_size=16))
        elif operation == "delete":
            del data[position : position + draw(st.integers(1, 16))]
        elif operation == "duplicate":
            data[position:position] = data[position : position + draw(st.integers(1, 64))]
        else:
            del data[position:]
    return with_fixed_png_crcs(bytes(data)) if draw(st.booleans()) else bytes(data)


def random_bytes() -> st.SearchStrategy[bytes]:
    """Arbitrary bytes, some of them starting with an image format's magic number."""
    return st.one_of(
        st.binary(max_size=512),
        st.builds(lambda prefix, rest: prefix + rest, st.sampled_from(MAGIC_PREFIXES), st.binary(max_size=512)),
    )


def assert_array_or_recognition_error(data: bytes) -> None:
    """The decoder's contract: an MNIST-like 28x28 float32 array in 0..1, or one of the model package's errors."""
    try:
        array = preprocess(data, max_pixels=FUZZ_MAX_PIXELS)
    except RecognitionError:
        return
    assert isinstance(array, np.ndarray) and array.dtype == np.float32 and array.shape == (28, 28)
    assert np.isfinite(array).all() and array.min() >= 0.0 and array.max() <= 1.0


@st.composite
def decoded_pictures(draw: st.DrawFn) -> Image.Image:
    """A picture as some decoder plugin could hand it over: any of Pillow's colour modes, random pixels."""
    mode = draw(st.sampled_from(Image.MODES))
    size = (draw(st.integers(1, 40)), draw(st.integers(1, 40)))
    length = len(Image.new(mode, size).tobytes())
    image = Image.frombytes(mode, size, draw(st.binary(min_size=length, max_size=length)))
    if mode in ("P", "PA"):
        image.putpalette(draw(st.binary(min_size=768, max_size=768)))
        if draw(st.booleans()):
            image.info["transparency"] = draw(st.integers(0, 255))
    return image


def test_the_seeds_are_read_so_mutations_start_from_valid_files():
    for name, data in SEEDS.items():
        assert preprocess(data).shape == (28, 28), name


@settings(FUZZ_SETTINGS, max_examples=150)
@given(data=random_bytes())
def test_decoder_on_random_bytes(data):
    assert_array_or_recognition_error(data)


@settings(FUZZ_SETTINGS, max_examples=300)
@given(data=mutated_images())
def test_decoder_on_mutated_images(data):
    assert_array_or_recognition_error(data)


@settings(FUZZ_SETTINGS, max_examples=250)
@given(image=decoded_pictures())
def test_every_colour_mode_with_any_pixels_becomes_an_array_or_a_recognition_error(image):
    # float pictures (a float TIFF) may hold NaN and infinity; LAB and La convert to no grayscale directly
    try:
        array = image_to_array(image)
    except RecognitionError:
        return
    assert array.dtype == np.float32 and array.shape == (28, 28)
    assert np.isfinite(array).all() and array.min() >= 0.0 and array.max() <= 1.0


# --- the API -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fuzzed_app(classifier) -> Flask:
    """One app for all the examples, its unhandled exceptions recorded (what Sentry would get)."""
    app = create_app(
        {"TESTING": True, "PROPAGATE_EXCEPTIONS": False, "CLASSIFIER": classifier, "MAX_IMAGE_PIXELS": FUZZ_MAX_PIXELS}
    )
    app.extensions["crashes"] = crashes = []
    got_request_exception.connect(lambda sender, exception, **extra: crashes.append(exception), app, weak=False)
    return app


def data_url_of(data: bytes, media_type: str) -> str:
    """A base64 data URL."""
    return f"data:{media_type};base64," + base64.b64encode(data).decode()


def image_payloads() -> st.SearchStrategy[bytes]:
    """Bytes to upload: random, mutated images, or a valid seed image."""
    return st.one_of(random_bytes(), mutated_images(), st.sampled_from(list(SEEDS.values())))


def json_values() -> st.SearchStrategy:
    """Any JSON value, nested a little."""
    scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40)
    return st.recursive(
        scalars,
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
        max_leaves=12,
    )


def image_strings() -> st.SearchStrategy[str]:
    """What a client might put in "image": base64 (standard or URL-safe), a data URL of some type, or any text."""
    return st.one_of(
        image_payloads().map(lambda data: base64.b64encode(data).decode()),
        image_payloads().map(lambda data: base64.urlsafe_b64encode(data).decode().rstrip("=")),
        st.builds(
            data_url_of,
            image_payloads(),
            st.sampled_from(["image/png", "image/jpeg", "", "text/plain", "application/pdf", "image/svg+xml"]),
        ),
        st.text(max_size=80),
    )


def json_bodies() -> st.SearchStrategy[bytes]:
    """JSON bodies: {"image": ...}, {"images": [...]}, any JSON value, or JSON text with bytes broken."""
    objects = st.one_of(
        st.fixed_dictionaries({"image": st.one_of(image_strings(), json_values())}),
        st.fixed_dictionaries(
            {"images": st.one_of(st.lists(st.one_of(image_strings(), json_values()), max_size=4), json_values())}
        ),
        json_values(),
    )
    encoded = objects.map(lambda value: json.dumps(value).encode())
    broken = st.builds(lambda text, cut: text[:cut], encoded, st.integers(0, 200))
    return st.one_of(encoded, broken, st.binary(max_size=200))


@st.composite
def multipart_bodies(draw: st.DrawFn) -> tuple[bytes, str]:
    """A multipart/form-data body (well-formed or not) and its Content-Type with the boundary or a wrong one."""
    boundary = draw(st.sampled_from(["fuzz-boundary", "----WebKitFormBoundaryA1b2C3", "x"]))
    parts = []
    for _ in range(draw(st.integers(0, 3))):
        name = draw(st.sampled_from(["image", "picture", "", 'ima"ge']))
        filename = draw(st.sampled_from([None, "digit.png", "", "\u00e9.jpg"]))
        disposition = f'form-data; name="{name}"' + ("" if filename is None else f'; filename="{filename}"')
        content = draw(st.one_of(image_payloads(), image_strings().map(str.encode)))
        parts.append(f"--{boundary}\r\nContent-Disposition: {disposition}\r\n\r\n".encode() + content + b"\r\n")
    body = b"".join(parts) + f"--{boundary}--\r\n".encode()
    body = draw(st.one_of(st.just(body), st.builds(lambda cut: body[:cut], st.integers(0, len(body)))))
    header_boundary = draw(st.sampled_from([boundary, boundary, "other", ""]))
    return body, "multipart/form-data" + (f"; boundary={header_boundary}" if header_boundary else "")


@st.composite
def requests(draw: st.DrawFn) -> dict:
    """Keyword arguments of the test client's post(): a random body with a random Content-Type (or none)."""
    kind = draw(
        st.sampled_from(["multipart", "json", "image/png", "application/octet-stream", "none", "form", "other"])
    )
    if kind == "multipart":
        body, content_type = draw(multipart_bodies())
        return {"data": body, "content_type": content_type}
    if kind == "json":
        return {
            "data": draw(json_bodies()),
            "content_type": draw(st.sampled_from(["application/json", "application/vnd.api+json; charset=utf-8"])),
        }
    if kind in ("image/png", "application/octet-stream"):
        return {"data": draw(image_payloads()), "content_type": kind}
    if kind == "form":
        field = draw(image_strings()).encode("utf-8", "surrogatepass")
        return {"data": b"image=" + field, "content_type": "application/x-www-form-urlencoded"}
    if kind == "other":
        return {
            "data": draw(image_payloads()),
            "content_type": draw(st.sampled_from(["text/plain", "image/svg+xml", "application/pdf", "image/", "*/*"])),
        }
    return {"data": draw(st.one_of(st.just(b""), image_payloads()))}


def assert_well_formed_answer(response) -> None:
    """Never a 5xx; a 200 names a digit (or a batch of results); anything else is the one error shape."""
    assert response.status_code < 500, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    body = response.get_json()
    if response.status_code == 200:
        results = body["results"] if "results" in body else [body]
        for result in results:
            if "error" in result:
                assert set(result) == {"error"} and set(result["error"]) == {"code", "message"}
                assert ERRORS[result["error"]["code"]].status in (400, 413, 415, 422)
            else:
                assert result["digit"] in range(10) and len(result["probabilities"]) == 10
        return
    assert list(body) == ["error"] and set(body["error"]) == {"code", "message"}
    code, message = body["error"]["code"], body["error"]["message"]
    assert isinstance(message, str) and message
    assert ERRORS[code].status == response.status_code


@settings(FUZZ_SETTINGS, max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(request=requests())
def test_api_on_random_requests(fuzzed_app, request):
    response = fuzzed_app.test_client().post("/recognize.json", **request)
    event(
        f"{response.status_code} {(response.get_json() or {}).get('error', {}).get('code', 'read')}"
    )  # --hypothesis-show-statistics
    assert_well_formed_answer(response)
    assert fuzzed_app.extensions["crashes"] == []
