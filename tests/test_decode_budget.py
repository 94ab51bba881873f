"""What decoding an upload may cost: memory decided from its header, big pictures reduced in strips, a request's budget.

The memory tests decode each upload in a fresh process (forked from one that imported the decoder) and read its peak
resident size (VmHWM): Pillow and its codecs allocate outside Python's allocator, so tracemalloc would not see them.
"""

import io
import json
import math
import struct
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

import model.decoding as preprocessing
from model.classifier import Prediction
from model.decoding import PixelBudget, decode_cost, preprocess, reduce_large, to_grayscale
from model.errors import ImageTooLargeError, InvalidImageError
from model.limits import (
    DEFAULT_MAX_DECODED_BYTES,
    DEFAULT_MAX_PIXELS,
    DEFAULT_MAX_REQUEST_PIXELS,
    DecodeLimits,
    NumberLimits,
)
from tests.drawing import draw_digit, encode, photo_of_digit

MiB = 2**20
PROJECT_ROOT = Path(__file__).resolve().parent.parent
# The square at the pixel limit (50 MP): 7071 x 7071.
SIDE = int(DEFAULT_MAX_PIXELS**0.5)
# What the service's own work may add to the decoder's memory (decode_cost): strips, the reduced picture, its float
# arrays and the digit's (14-18 MB measured at 4096 pixels a side, reduced by 3; 25 MB at 3547, reduced by 2 only). A
# conversion of a whole picture below to RGBA or float (48 MB and more) does not fit in it.
PIPELINE_ALLOWANCE = 32 * MiB
# A refused upload is refused from its header: nothing is decoded, so a process grows by little more than the file.
REFUSAL_ALLOWANCE = 8 * MiB
# The cheaper cases: every mode at 2600 x 2600 (reduced by 2 before anything else), under a limit scaled down to them.
SMALL_SIDE = 2600
SMALL_LIMIT = 32 * MiB

# The memory tests read and reset a process's peak resident size in Linux's /proc.
needs_proc = pytest.mark.skipif(
    not Path("/proc/self/clear_refs").exists(), reason="needs Linux's /proc to read peak RSS"
)

# A process that imports the decoder once, then forks a fresh child per upload: the child decodes the file as `kind`
# ("preprocess": the service's path, within the given limits; "decode": decode_image only, beside decode_cost's
# prediction) and answers its outcome and the growth of its peak resident size (VmHWM, reset before decoding).
MEASURER = r"""
import json, os, sys
from pathlib import Path
import model.decoding as preprocessing
from model.errors import ImageTooLargeError, RecognitionError


def status():
    fields = dict(line.split(":", 1) for line in open("/proc/self/status"))
    return int(fields["VmRSS"].split()[0]) * 1024, int(fields["VmHWM"].split()[0]) * 1024


def measure(path, kind, max_pixels, max_decoded_bytes):
    data = Path(path).read_bytes()
    try:
        predicted = preprocessing.decode_cost(data, max_pixels)[0]
    except RecognitionError:
        predicted = 0
    with open("/proc/self/clear_refs", "w") as peak:
        peak.write("5")  # the peak resident size starts again from here
    rest, _ = status()
    outcome = "read"
    try:
        if kind == "decode":
            preprocessing.decode_image(data, max_pixels, sys.maxsize)
        else:
            preprocessing.preprocess(data, max_pixels, max_decoded_bytes)
    except ImageTooLargeError:
        outcome = "too_large"
    except RecognitionError as error:
        outcome = "read" if error.code == "no_digit" else error.code
    return {"outcome": outcome, "growth": status()[1] - rest, "predicted": predicted}


for line in sys.stdin:
    path, kind, max_pixels, max_decoded_bytes = line.split()
    answer, question = os.pipe()
    child = os.fork()
    if child == 0:
        os.close(answer)
        try:
            result = measure(path, kind, int(max_pixels), int(max_decoded_bytes))
        except BaseException as error:
            result = {"error": repr(error)}
        os.write(question, json.dumps(result).encode())
        os._exit(0)
    os.close(question)
    with os.fdopen(answer) as pipe:
        reply = pipe.read()
    os.waitpid(child, 0)
    print(reply, flush=True)
"""


@pytest.fixture(scope="module")
def measurer():
    """The measuring process, started once for the module."""
    process = subprocess.Popen(
        [sys.executable, "-c", MEASURER],
        cwd=PROJECT_ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    yield process
    process.stdin.close()
    process.wait(timeout=30)


@pytest.fixture
def peak_growth(measurer, tmp_path) -> Callable[..., dict]:
    """Decode an upload in a fresh process: its outcome, its peak RSS growth and (for "decode") the predicted bytes."""

    def measure(data: bytes, kind: str = "preprocess", max_decoded_bytes: int = DEFAULT_MAX_DECODED_BYTES) -> dict:
        upload = tmp_path / "upload.bin"
        upload.write_bytes(data)
        measurer.stdin.write(f"{upload} {kind} {DEFAULT_MAX_PIXELS} {max_decoded_bytes}\n")
        measurer.stdin.flush()
        result = json.loads(measurer.stdout.readline())
        assert "error" not in result, result
        return result

    return measure


# --- files: big in pixels, small in bytes ------------------------------------------------------


def with_stroke(mode: str, size: tuple[int, int]) -> Image.Image:
    """A picture of `mode`: white, with a dark bar (so that there is some ink), made at 8 bits and converted."""
    picture = Image.new("L", size, 255)
    width, height = size
    ImageDraw.Draw(picture).rectangle(
        (width // 3, height // 4, width // 3 + max(width // 20, 1), 3 * height // 4), fill=0
    )
    return picture if mode == "L" else picture.convert(mode)


def transparent_stroke(mode: str, size: tuple[int, int]) -> Image.Image:
    """A dark bar on a transparent canvas, as LA, RGBA or PA."""
    bar = with_stroke("L", size)
    alpha = bar.point(lambda level: 255 - level)
    if mode == "LA":
        return Image.merge("LA", (bar, alpha))
    rgba = Image.merge("RGBA", (bar, bar, bar, alpha))
    return rgba if mode == "RGBA" else rgba.convert(mode)


def sixteen_bit(size: tuple[int, int], mode: str = "I;16") -> Image.Image:
    """A 16-bit grayscale picture (I;16 little-endian or I;16B big-endian)."""
    levels = np.asarray(with_stroke("L", size), dtype=np.uint16) * 257
    return Image.frombytes(mode, size, levels.astype(">u2" if mode == "I;16B" else "<u2").tobytes())


def float_picture(size: tuple[int, int], mode: str = "F") -> Image.Image:
    """A 32-bit float (F) or integer (I) grayscale picture."""
    levels = np.asarray(with_stroke("L", size))
    return Image.fromarray(levels.astype(np.float32) / 255 if mode == "F" else levels.astype(np.int32) * 256)


def colour_palette(size: tuple[int, int]) -> Image.Image:
    """A palette picture whose palette is not grayscale (Pillow keeps it as P, not L): a blue bar on yellow."""
    picture = with_stroke("L", size).point(lambda level: 1 if level > 128 else 0).convert("P")
    picture.putpalette([0, 0, 200, 250, 230, 90])
    return picture


def tiff(image: Image.Image, **options) -> bytes:
    """A deflate-compressed TIFF (libtiff decodes it, strip by strip)."""
    return encode(image, "TIFF", compression="tiff_deflate", **options)


def premultiplied_tiff(size: tuple[int, int]) -> bytes:
    """A grayscale+alpha TIFF whose ExtraSamples says premultiplied: Pillow's mode La."""
    data = tiff(transparent_stroke("LA", size))
    unassociated = struct.pack("<HHII", 338, 3, 1, 2)
    assert data.count(unassociated) == 1
    return data.replace(unassociated, struct.pack("<HHII", 338, 3, 1, 1))


def animation(first: Image.Image, image_format: str, **options) -> bytes:
    """Two frames (or pages), the second blank: only the first is decoded."""
    second = Image.new(first.mode, first.size, 255 if first.mode in ("L", "P") else 0)
    return encode(first, image_format, save_all=True, append_images=[second], **options)


def rle_bmp(width: int, height: int) -> bytes:
    """An RLE8 BMP whose every row is one pixel and an end of line: Pillow's Python decoder pads the rest byte by byte."""
    palette = b"".join(bytes((level, level, level, 0)) for level in range(256))
    pixels = b"\x01\x00\x00\x00" * height + b"\x00\x01"
    info = struct.pack("<IiiHHIIiiII", 40, width, height, 1, 8, 1, len(pixels), 2835, 2835, 256, 0)
    offset = 14 + len(info) + len(palette)
    return b"BM" + struct.pack("<IHHI", offset + len(pixels), 0, 0, offset) + info + palette + pixels


def one_strip_tiff(size: tuple[int, int]) -> bytes:
    """A compressed grayscale TIFF stored as one strip: libtiff's strip buffer is the whole picture again."""
    return tiff(with_stroke("L", size), tiffinfo={278: size[1]})


def sideways_tiff(size: tuple[int, int]) -> bytes:
    """A TIFF with EXIF orientation 6: Pillow turns it upright while loading it, a second full-size copy."""
    return tiff(with_stroke("L", size), tiffinfo={274: 6})


# --- every format and mode at the limits: refused from the header, or decoded in bounded memory ---------------------

# The sides of the largest square pictures the default decoded-bytes limit lets through: 4 bytes a pixel in Pillow's
# storage (RGBA, float), and 16 for a WebP (its decoder's canvases beside the picture).
FOUR_BYTE_SIDE = math.isqrt(DEFAULT_MAX_DECODED_BYTES // 4)
WEBP_SIDE = math.isqrt(DEFAULT_MAX_DECODED_BYTES // (4 + preprocessing.WEBP_DECODER_BYTES_PER_PIXEL))

# name, the file, and what must happen at the default limits: "too_large" (refused) or "read" (decoded)
BIG: list[tuple[str, Callable[[], bytes], str]] = [
    # the hostile tester's files: refused from the header
    (
        "webp_lossless_rgba_at_pixel_limit",
        lambda: encode(transparent_stroke("RGBA", (SIDE, SIDE)), "WEBP", lossless=True),
        "too_large",
    ),
    ("png_la_at_pixel_limit", lambda: encode(transparent_stroke("LA", (SIDE, SIDE))), "too_large"),
    ("png_16_bit_at_pixel_limit", lambda: encode(sixteen_bit((SIDE, SIDE))), "too_large"),
    (
        "jpeg_progressive_at_pixel_limit",
        lambda: encode(with_stroke("RGB", (SIDE, SIDE)), "JPEG", progressive=True),
        "too_large",
    ),
    # at the pixel limit and read: one byte a pixel, or a JPEG decoded at 1/8 scale
    (
        "png_palette_transparent_at_pixel_limit",
        lambda: encode(with_stroke("P", (SIDE, SIDE)), transparency=255),
        "read",
    ),
    ("png_colour_palette_at_pixel_limit", lambda: encode(colour_palette((SIDE, SIDE))), "read"),
    ("gif_two_frames_at_pixel_limit", lambda: animation(with_stroke("P", (SIDE, SIDE)), "GIF"), "read"),
    ("jpeg_cmyk_at_pixel_limit", lambda: encode(with_stroke("CMYK", (SIDE, SIDE)), "JPEG"), "read"),
    # at the decoded-bytes limit and read
    ("png_rgba_at_byte_limit", lambda: encode(transparent_stroke("RGBA", (FOUR_BYTE_SIDE, FOUR_BYTE_SIDE))), "read"),
    # a TIFF's strip buffer beside the picture: a little less
    ("tiff_float_at_byte_limit", lambda: tiff(float_picture((FOUR_BYTE_SIDE - 20, FOUR_BYTE_SIDE - 20))), "read"),
    (
        "webp_rgba_at_byte_limit",
        lambda: encode(transparent_stroke("RGBA", (WEBP_SIDE, WEBP_SIDE)), "WEBP", lossless=True),
        "read",
    ),
]

# the same, for every mode the service's formats produce, at SMALL_SIDE under SMALL_LIMIT
S = (SMALL_SIDE, SMALL_SIDE)
SMALL: list[tuple[str, Callable[[], bytes], str]] = [
    ("png_1_bit", lambda: encode(with_stroke("1", S)), "read"),
    ("png_grayscale", lambda: encode(with_stroke("L", S)), "read"),
    ("png_palette", lambda: encode(with_stroke("P", S)), "read"),
    ("png_palette_transparent", lambda: encode(with_stroke("P", S), transparency=255), "read"),
    ("png_grayscale_alpha", lambda: encode(transparent_stroke("LA", S)), "read"),
    ("png_rgb", lambda: encode(with_stroke("RGB", S)), "read"),
    ("png_rgba", lambda: encode(transparent_stroke("RGBA", S)), "read"),
    ("png_16_bit", lambda: encode(sixteen_bit(S)), "read"),
    ("apng_two_frames", lambda: animation(transparent_stroke("RGBA", S), "PNG", duration=100), "read"),
    ("gif_two_frames", lambda: animation(with_stroke("P", S), "GIF", duration=100), "read"),
    ("webp_too_big_for_the_limit", lambda: encode(with_stroke("RGB", S), "WEBP", lossless=True), "too_large"),
    ("webp_two_frames", lambda: animation(with_stroke("RGB", (1400, 1400)), "WEBP", lossless=True), "read"),
    ("jpeg_grayscale", lambda: encode(with_stroke("L", S), "JPEG"), "read"),
    ("jpeg_cmyk", lambda: encode(with_stroke("CMYK", S), "JPEG"), "read"),
    ("jpeg_progressive", lambda: encode(with_stroke("RGB", (2000, 2000)), "JPEG", progressive=True), "read"),
    (
        "jpeg_progressive_too_big_for_the_limit",
        lambda: encode(with_stroke("RGB", S), "JPEG", progressive=True, subsampling=0),
        "too_large",
    ),
    ("bmp_rgb", lambda: encode(with_stroke("RGB", (1600, 1600)), "BMP"), "read"),
    ("bmp_rle", lambda: rle_bmp(*S), "read"),
    ("tiff_1_bit", lambda: encode(with_stroke("1", S), "TIFF", compression="group4"), "read"),
    ("tiff_palette", lambda: tiff(with_stroke("P", S)), "read"),
    ("tiff_palette_alpha", lambda: tiff(transparent_stroke("PA", S)), "read"),
    ("tiff_grayscale_alpha", lambda: tiff(transparent_stroke("LA", S)), "read"),
    ("tiff_premultiplied_alpha", lambda: premultiplied_tiff(S), "read"),
    ("tiff_rgba", lambda: tiff(transparent_stroke("RGBA", S)), "read"),
    ("tiff_cmyk", lambda: tiff(with_stroke("CMYK", S)), "read"),
    ("tiff_ycbcr", lambda: tiff(with_stroke("YCbCr", S)), "read"),
    (
        "tiff_cielab",
        lambda: tiff(Image.merge("LAB", (with_stroke("L", S), Image.new("L", S, 128), Image.new("L", S, 128)))),
        "read",
    ),
    ("tiff_16_bit_big_endian", lambda: tiff(sixteen_bit(S, "I;16B")), "read"),
    ("tiff_32_bit_integer", lambda: tiff(float_picture(S, "I")), "read"),
    ("tiff_float", lambda: tiff(float_picture(S)), "read"),
    ("tiff_two_pages", lambda: animation(with_stroke("L", S), "TIFF", compression="tiff_deflate"), "read"),
    ("tiff_one_strip", lambda: one_strip_tiff(S), "read"),
    ("tiff_sideways", lambda: sideways_tiff(S), "read"),
]


def assert_bounded(result: dict) -> None:
    """A refused upload grew the process by little; a decoded one by what its header said and the pipeline's share."""
    bound = REFUSAL_ALLOWANCE if result["outcome"] == "too_large" else result["predicted"] + PIPELINE_ALLOWANCE
    assert result["growth"] <= bound, f"grew by {result['growth'] / MiB:.1f} MiB, more than {bound / MiB:.1f}"


@needs_proc
@pytest.mark.parametrize("make_file, expected", [pytest.param(make, expected, id=name) for name, make, expected in BIG])
def test_at_the_limits_an_upload_is_refused_from_its_header_or_decoded_in_bounded_memory(
    peak_growth, make_file, expected
):
    data = make_file()
    assert len(data) < 3_000_000  # big in pixels, small in bytes
    result = peak_growth(data)
    assert result["outcome"] == expected
    assert_bounded(result)


@needs_proc
@pytest.mark.parametrize(
    "make_file, expected", [pytest.param(make, expected, id=name) for name, make, expected in SMALL]
)
def test_every_mode_is_refused_from_its_header_or_decoded_in_bounded_memory(peak_growth, make_file, expected):
    result = peak_growth(make_file(), max_decoded_bytes=SMALL_LIMIT)
    assert result["outcome"] == expected
    assert_bounded(result)


DECODERS: list[tuple[str, Callable[[], bytes]]] = [
    ("png_rgba", lambda: encode(transparent_stroke("RGBA", (2000, 2000)))),
    ("gif", lambda: animation(with_stroke("P", (3000, 3000)), "GIF", disposal=2)),
    ("webp", lambda: encode(with_stroke("RGB", (1500, 1500)), "WEBP", lossless=True)),
    ("webp_animated", lambda: animation(with_stroke("RGB", (1500, 1500)), "WEBP", quality=50)),
    ("jpeg_progressive_grayscale", lambda: encode(with_stroke("L", (4000, 4000)), "JPEG", progressive=True)),
    ("jpeg_progressive_cmyk", lambda: encode(with_stroke("CMYK", (2000, 2000)), "JPEG", progressive=True)),
    ("tiff_one_strip", lambda: one_strip_tiff((3000, 3000))),
    ("tiff_ycbcr", lambda: tiff(with_stroke("YCbCr", (2000, 2000)))),
    ("tiff_sideways", lambda: sideways_tiff((3000, 3000))),
    ("bmp_rle", lambda: rle_bmp(2000, 2000)),
]


@needs_proc
@pytest.mark.parametrize("make_file", [pytest.param(make, id=name) for name, make in DECODERS])
def test_the_header_tells_what_decoding_takes(peak_growth, make_file):
    # each decoder's own buffers are counted: libwebp's canvases, a progressive JPEG's coefficients, libtiff's strip,
    # a TIFF turned upright while loading, the Python RLE decoder's copies
    result = peak_growth(make_file(), kind="decode")
    assert result["outcome"] == "read"
    assert result["growth"] <= result["predicted"] + 6 * MiB, (
        f"decoding took {result['growth'] / MiB:.1f} MiB, the header said {result['predicted'] / MiB:.1f}"
    )
    assert result["growth"] >= 0.8 * result["predicted"]  # and not much less: the limit refuses nothing needlessly


def test_refused_from_the_header_before_any_pixel_is_decoded(monkeypatch):
    from PIL import ImageFile

    loads: list[str] = []
    original = ImageFile.ImageFile.load
    monkeypatch.setattr(ImageFile.ImageFile, "load", lambda image: loads.append(image.format) or original(image))
    side = FOUR_BYTE_SIDE + 2  # just past the limit
    rgba = encode(transparent_stroke("RGBA", (side, side)))
    with pytest.raises(
        ImageTooLargeError, match=f"{4 * side * side:,} bytes of memory; the limit is {DEFAULT_MAX_DECODED_BYTES:,}"
    ):
        preprocess(rgba)
    assert loads == []
    opened: list[bytes] = []
    monkeypatch.setattr(Image, "open", lambda *args, **kwargs: opened.append(b"") or None)
    with pytest.raises(ImageTooLargeError, match="WEBP, 2100x2100"):  # libwebp would allocate its canvases on opening
        preprocess(encode(with_stroke("RGB", (2100, 2100)), "WEBP", lossless=True))
    assert opened == []


def test_the_decoded_bytes_limit_is_a_parameter():
    grayscale = encode(with_stroke("L", (3000, 2000)))  # 6 MB decoded
    with pytest.raises(ImageTooLargeError, match="6,000,000 bytes"):
        preprocess(grayscale, max_decoded_bytes=5_000_000)
    assert preprocess(grayscale, max_decoded_bytes=6_000_000).shape == (28, 28)  # within it: decoded


def test_decode_cost_counts_the_decoders_buffers():
    width, height = 300, 200
    assert decode_cost(encode(with_stroke("L", (width, height)))) == (width * height, width * height)
    assert decode_cost(encode(with_stroke("RGB", (width, height)), "WEBP")) == (16 * width * height, width * height)
    assert decode_cost(encode(sixteen_bit((width, height)))) == (2 * width * height, width * height)
    # a progressive JPEG keeps 2 bytes per coefficient of each component (4:2:0: one and a half samples a pixel)
    progressive, _ = decode_cost(encode(with_stroke("RGB", (1600, 1600)), "JPEG", progressive=True))
    baseline, _ = decode_cost(encode(with_stroke("RGB", (1600, 1600)), "JPEG"))
    assert baseline == 4 * 800 * 800  # decoded at 1/2 scale
    assert progressive == baseline + 1600 * 1600 * 3
    # Pillow's RLE BMP decoder is Python: its pixels count 6 times in a request's budget
    assert decode_cost(rle_bmp(width, height))[1] == preprocessing.DECODE_WORK_PER_PIXEL["bmp_rle"] * width * height


# --- reduced in strips: the same values as converting the whole picture ---------------------------------------------


def reference_reduced(image: Image.Image) -> Image.Image:
    """The whole picture converted, then reduced by the whole factor (what the strips must equal)."""
    factor = max(image.size) // (2 * preprocessing.WORKING_SIZE)
    if image.mode in ("L", "RGB", "CMYK", "YCbCr"):
        return image.reduce(factor)
    if preprocessing._has_alpha(image):
        whole = image.convert("LA") if image.mode == "La" else image
        return whole.convert("RGBA").convert("RGBa").reduce(factor).convert("RGBA")
    return image.getchannel("L").reduce(factor) if image.mode == "LAB" else image.convert("L").reduce(factor)


def odd_picture(mode: str, size: tuple[int, int]) -> Image.Image:
    """A picture of `mode` with noise, strokes and partial transparency, so that every step shows."""
    rng = np.random.default_rng(len(mode) + size[0])
    levels = np.clip(200 + rng.normal(0, 30, (size[1], size[0])), 0, 255).astype(np.uint8)
    levels[size[1] // 4 : size[1] // 2, size[0] // 3 : size[0] // 2] = 10
    gray = Image.fromarray(levels)
    alpha = Image.fromarray(np.where(levels < 100, 255, rng.integers(0, 256, levels.shape)).astype(np.uint8))
    if mode in ("LA", "La"):
        return Image.merge("LA", (gray, alpha)).convert(mode)
    if mode in ("RGBA", "RGBa", "PA"):
        return Image.merge("RGBA", (gray, gray.transpose(Image.Transpose.FLIP_LEFT_RIGHT), gray, alpha)).convert(mode)
    if mode == "P_transparent":
        picture = gray.convert("P")
        picture.info["transparency"] = int(np.asarray(picture)[0, 0])
        return picture
    if mode == "LAB":
        return Image.merge("LAB", (gray, alpha, gray))
    return gray.convert(mode)


EIGHT_BIT_MODES = ["1", "L", "P", "P_transparent", "LA", "La", "PA", "RGB", "RGBA", "RGBa", "CMYK", "YCbCr", "LAB"]


@pytest.mark.parametrize("mode", EIGHT_BIT_MODES)
def test_reducing_in_strips_equals_converting_the_whole_picture(monkeypatch, mode):
    monkeypatch.setattr(preprocessing, "STRIP_BYTES", 50_000)  # many strips, the last one partial
    picture = odd_picture(mode, (2600, 1933))  # factor 2, an odd number of rows
    reduced = reduce_large(picture)
    expected = reference_reduced(picture)
    assert reduced.mode == expected.mode and reduced.size == expected.size == (1300, 967)
    assert np.array_equal(np.asarray(reduced), np.asarray(expected))


def reference_grayscale(image: Image.Image) -> np.ndarray:
    """to_grayscale on a picture that needs no reduction, computed on the whole picture at once (as it used to be)."""
    if image.mode in preprocessing.HIGH_DEPTH_MODES:
        values = np.asarray(image, dtype=np.float32)
        top = 65535.0 if values.max(initial=0) > 255 or image.mode.startswith("I;16") else 255.0
        if image.mode == "F":
            top = max(float(values.max(initial=0)), 1.0)
        return np.clip(values / top, 0.0, 1.0)
    if image.mode == "LAB":
        image = image.getchannel("L")
    if not preprocessing._has_alpha(image):
        return np.asarray(image.convert("L"), dtype=np.float32) / 255.0
    rgba = (image.convert("LA") if image.mode == "La" else image).convert("RGBA")
    luminance = np.asarray(rgba.convert("L"), dtype=np.float32) / 255.0
    alpha_levels = np.asarray(rgba.getchannel("A"))
    opaque = alpha_levels >= 128
    alpha = alpha_levels.astype(np.float32) / 255.0
    if 2 * np.count_nonzero(opaque) < opaque.size:
        fill = 1.0 if float(luminance.ravel() @ alpha.ravel()) / float(alpha.sum()) < 0.5 else 0.0
    else:
        ordered = np.sort(luminance[opaque])
        fill = float(ordered[(ordered.size - 1) // 2] + ordered[ordered.size // 2]) / 2.0
    return luminance * alpha + fill * (1.0 - alpha)


@pytest.mark.parametrize("mode", [*EIGHT_BIT_MODES, "canvas_LA", "canvas_RGBA", "I;16", "I;16B", "I", "F"])
def test_grayscale_in_strips_equals_the_whole_picture_at_once(monkeypatch, mode):
    monkeypatch.setattr(preprocessing, "STRIP_BYTES", 50_000)
    if mode.startswith("canvas_"):
        picture = transparent_stroke(mode.removeprefix("canvas_"), (900, 700))  # few opaque pixels: the strokes
    elif mode in ("I;16", "I;16B"):
        picture = sixteen_bit((900, 700), mode)
    elif mode in ("I", "F"):
        picture = float_picture((900, 700), mode)
    else:
        picture = odd_picture(mode, (900, 700))
    assert np.array_equal(to_grayscale(picture), reference_grayscale(picture))


@pytest.mark.parametrize("shape", [(2559, 1000), (1000, 2559), (700, 701), (1300, 2000), (3, 2000)])
def test_shrinking_in_strips_equals_pillows_whole_resize(monkeypatch, shape):
    monkeypatch.setattr(preprocessing, "STRIP_BYTES", 50_000)
    gray = np.random.default_rng(0).random(shape, dtype=np.float32)
    height, width = shape
    factor = preprocessing.WORKING_SIZE / max(shape)
    size = (max(1, round(width * factor)), max(1, round(height * factor)))
    expected = np.asarray(Image.fromarray(gray).resize(size, Image.BOX))
    assert np.array_equal(preprocessing.shrink(gray, preprocessing.WORKING_SIZE), expected)


def test_a_big_sideways_picture_is_reduced_then_turned_upright(classifier):
    stored = draw_digit(7, size=(2000, 3000)).rotate(90, expand=True)  # 3000 x 2000, EXIF says: turn 90 degrees
    exif = Image.Exif()
    exif[preprocessing.ORIENTATION_TAG] = 6
    data = encode(stored, "PNG", exif=exif.tobytes())
    picture, full_size = preprocessing.decode_picture(data)
    assert full_size == (2000, 3000) and picture.size == (1000, 1500)  # reduced by 2, then turned
    assert classifier.read_digit(data).digit == 7


def test_a_float_picture_with_nan_is_refused_also_when_big():
    values = np.asarray(with_stroke("L", (3000, 2600)), dtype=np.float32) / 255
    values[2500, 10] = np.nan  # in the last strip
    with pytest.raises(InvalidImageError, match="not numbers"):
        preprocess(tiff(Image.fromarray(values)))


# --- a request's budget of decoding ---------------------------------------------------------------------------------


def test_the_budget_is_shared_in_order_and_spent_for_good():
    budget = PixelBudget(1000)
    budget.charge(600, "the first")
    budget.charge(400, "the second")  # exactly the rest
    with pytest.raises(ImageTooLargeError, match="limit of 1,000 pixels"):
        budget.charge(1, "the third")
    with pytest.raises(ImageTooLargeError):
        budget.charge(0, "the fourth")  # once refused, every later image is


CANVAS_SEVEN = encode(draw_digit(7, background=None))  # 280 x 280


def test_batch_images_past_the_budget_are_refused_and_those_before_answered(classifier):
    photo_two = encode(photo_of_digit(2, size=(1000, 800)), "JPEG", quality=90)  # 800,000 pixels
    canvas = 280 * 280
    uploads = [CANVAS_SEVEN, b"not an image", photo_two, InvalidImageError("bad base64"), CANVAS_SEVEN, CANVAS_SEVEN]
    results = classifier.read_digits(uploads, DecodeLimits(max_request_pixels=2 * canvas + 800_000 + canvas // 2))
    assert isinstance(results[0], Prediction) and results[0].digit == 7
    assert isinstance(results[1], InvalidImageError)  # costs nothing
    assert isinstance(results[2], Prediction) and results[2].digit == 2
    assert results[3] is uploads[3]
    assert isinstance(results[4], Prediction) and results[4].digit == 7  # the budget's last whole canvas
    assert isinstance(results[5], ImageTooLargeError) and "MAX_REQUEST_PIXELS" in results[5].message


def test_ordinary_batches_fit_the_default_budget(classifier):
    canvases = [encode(draw_digit(digit, background=None)) for digit in range(10)] * 7
    photos = [encode(photo_of_digit(digit, seed=digit, size=(1200, 900)), "JPEG", quality=80) for digit in range(8)] * 8
    canvases, photos = canvases[:64], photos[:64]
    assert sum(len(photo) for photo in photos) < 0.75 * 10 * MiB  # base64 in one request's body of 10 MB
    for batch in (canvases, photos):
        results = classifier.read_digits(batch)
        assert not any(isinstance(result, ImageTooLargeError) for result in results)
        assert sum(isinstance(result, Prediction) for result in results) >= 60


def test_a_single_image_past_the_request_budget_is_too_large(classifier):
    assert classifier.read_digit(CANVAS_SEVEN, DecodeLimits(max_request_pixels=280 * 280)).digit == 7
    with pytest.raises(ImageTooLargeError, match="MAX_REQUEST_PIXELS"):
        classifier.read_digit(CANVAS_SEVEN, DecodeLimits(max_request_pixels=280 * 280 - 1))


def test_any_single_image_within_the_other_limits_fits_the_default_budget():
    # a pixel counts once in every format but RLE BMP, which Pillow decodes in Python at a sixth of the speed: one of up
    # to 16 megapixels still fits (an RLE BMP that large is no picture of a digit; past it, 413 naming MAX_REQUEST_PIXELS)
    assert DEFAULT_MAX_PIXELS <= DEFAULT_MAX_REQUEST_PIXELS
    assert DEFAULT_MAX_REQUEST_PIXELS / max(preprocessing.DECODE_WORK_PER_PIXEL.values()) >= 16_000_000


def test_numbers_of_a_request_share_the_budget(classifier):
    results = classifier.read_numbers([CANVAS_SEVEN, CANVAS_SEVEN], NumberLimits(max_request_pixels=280 * 280 + 1))
    assert not isinstance(results[0], ImageTooLargeError)
    assert isinstance(results[1], ImageTooLargeError) and "MAX_REQUEST_PIXELS" in results[1].message


@needs_proc
def test_a_png_whose_text_chunks_unpack_to_megabytes_is_refused_without_holding_them(peak_growth):
    from PIL import PngImagePlugin

    text = PngImagePlugin.PngInfo()
    for index in range(60):  # 60 MB of text in a 60 kB file; Pillow's own limit would hold 64 MB of it
        text.add_text(f"note{index}", "A" * 1_000_000, zip=True)
    stream = io.BytesIO()
    draw_digit(7, background=None).save(stream, "PNG", pnginfo=text)
    assert len(stream.getvalue()) < 100_000
    result = peak_growth(stream.getvalue())
    assert result["outcome"] == "invalid_image"
    assert result["growth"] <= 4 * MiB
