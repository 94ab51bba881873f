"""Hostile and odd uploads through Flask's test client: each gets its 4xx JSON error, nothing crashes.

Every hostile request is followed by a valid upload that must still be read (the app survives),
and no request may signal an unhandled exception (what Sentry's Flask integration reports).
"""

import base64
import io
import struct
from collections.abc import Iterator

import numpy as np
import pytest
from flask import Flask, got_request_exception
from PIL import EpsImagePlugin, Image, ImageCms, ImageFile

from server import create_app
from tests.drawing import draw_digit, encode
from tests.helpers import assert_answer, assert_error
from tests.hostile_requests import HOSTILE, SEVEN, png_bomb

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


@pytest.mark.parametrize("make_request, status, code", HOSTILE)
def test_hostile_request_gets_its_json_error_and_the_app_survives(client, crashes, make_request, status, code):
    assert_error(client.post("/recognize.json", **make_request()), status, code)
    assert_survives(client, crashes)


def test_bomb_is_refused_by_the_pixel_limit_before_any_pixel_is_decoded(classifier, monkeypatch):
    app = create_app(
        {"TESTING": True, "PROPAGATE_EXCEPTIONS": False, "CLASSIFIER": classifier, "MAX_IMAGE_PIXELS": 1_000_000}
    )
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


@pytest.mark.parametrize(
    "body",
    ["[" * 100_000 + "]" * 100_000, '{"image": ' + "[" * 100_000 + "]" * 100_000 + "}"],
    ids=["array", "in_image"],
)
def test_deeply_nested_json_is_invalid_json(client, crashes, body):
    assert_error(client.post("/recognize.json", data=body, content_type="application/json"), 400, "invalid_json")
    assert_survives(client, crashes)


@pytest.mark.parametrize("media_type", ["image/png", "application/json"])
def test_chunked_body_over_the_upload_limit_is_too_large(classifier, media_type):
    app = create_app(
        {"TESTING": True, "PROPAGATE_EXCEPTIONS": False, "CLASSIFIER": classifier, "MAX_CONTENT_LENGTH": 50_000}
    )
    big = encode(draw_digit(7, size=(1000, 1000)), "PNG", compress_level=0)
    assert len(big) > 100_000
    body = big if media_type == "image/png" else b'{"image": "' + base64.b64encode(big) + b'"}'
    response = app.test_client().post(
        "/recognize.json",
        input_stream=io.BytesIO(body),
        content_type=media_type,
        headers={"Transfer-Encoding": "chunked"},
        environ_overrides={"wsgi.input_terminated": True},
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
    assert_error(
        client.post("/recognize.json", data=eps, content_type="application/octet-stream"), 400, "invalid_image"
    )
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
    assert_answer(
        client.post("/recognize.json", data=body, content_type=f"multipart/form-data; boundary={boundary}"), 7
    )
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
    pytest.param(
        2,
        lambda: encode(draw_digit(2).convert("CMYK"), "JPEG", quality=90),
        "image/jpeg",
        ("JPEG", "CMYK", 1, False),
        id="cmyk_jpeg",
    ),
    pytest.param(
        3, lambda: encode(sixteen_bit(draw_digit(3))), "image/png", ("PNG", "I;16", 1, False), id="png_16_bit"
    ),
    pytest.param(
        4,
        lambda: encode(draw_digit(4).convert("P", palette=Image.Palette.ADAPTIVE, colors=16)),
        "image/png",
        ("PNG", "P", 1, False),
        id="png_palette",
    ),
    pytest.param(
        5,
        lambda: encode(draw_digit(5, background=None).quantize(16)),
        "image/png",
        ("PNG", "P", 1, True),
        id="png_palette_transparent",
    ),
    pytest.param(
        6,
        lambda: encode(draw_digit(6, background=None).convert("LA")),
        "image/png",
        ("PNG", "LA", 1, False),
        id="png_grayscale_alpha",
    ),
    pytest.param(
        8,
        lambda: two_frames(draw_digit(8).convert("P"), draw_digit(1).convert("P"), "GIF", duration=100, loop=0),
        "image/gif",
        ("GIF", "P", 2, False),
        id="gif_animated_first_frame",
    ),
    pytest.param(
        2,
        lambda: two_frames(draw_digit(2, background=None), draw_digit(1, background=None), "PNG", duration=100),
        "image/png",
        ("PNG", "RGBA", 2, False),
        id="apng_first_frame",
    ),
    pytest.param(
        9,
        lambda: two_frames(draw_digit(9), draw_digit(1), "TIFF"),
        "image/tiff",
        ("TIFF", "RGB", 2, False),
        id="tiff_multipage_first_page",
    ),
    pytest.param(0, lambda: encode(draw_digit(0), "BMP"), "image/bmp", ("BMP", "RGB", 1, False), id="bmp"),
    pytest.param(
        5, lambda: encode(draw_digit(5), "WEBP", quality=80), "image/webp", ("WEBP", "RGB", 1, False), id="webp_lossy"
    ),
    pytest.param(
        3,
        lambda: encode(draw_digit(3, background=None), "WEBP", quality=80),
        "image/webp",
        ("WEBP", "RGBA", 1, False),
        id="webp_transparent_canvas",
    ),
    pytest.param(3, lambda: cielab_tiff(draw_digit(3)), "image/tiff", ("TIFF", "LAB", 1, False), id="tiff_cielab"),
    pytest.param(
        6,
        lambda: premultiplied_alpha_tiff(draw_digit(6, background=None)),
        "image/tiff",
        ("TIFF", "La", 1, False),
        id="tiff_premultiplied_alpha",
    ),
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
    sideways = client.post(
        "/recognize.json", data=exif_rotated_jpeg(portrait, orientation, with_exif=False), content_type="image/jpeg"
    )
    assert sideways.status_code == 200 and sideways.get_json()["digit"] != digit
    assert crashes == []
