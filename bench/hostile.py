"""Hostile but valid requests: small files, made in memory, that cost the service much to read.

Each `Case` names one input, the routes it is posted to, and how to make its body; `Bodies`
makes each body once and keeps it as a file in a folder for the run (some encoders take a
second or more at the pixel limit). The families:

- pages for /recognize/number.json: solid black, blocks, a checkerboard, hundreds to thousands
  of random strokes, graph paper, specks, a page of tiny printed digits, very wide and very tall
  lines of scribbles or digits;
- every format and mode the service reads, at the pixel limit (`DEFAULT_MAX_PIXELS`, a square of
  its integer square root on a side): 16-bit, 32-bit, float, L, 1-bit, LA, PA, P with tRNS, RGB,
  RGBA, CMYK, YCbCr, LAB, JPEG, lossless WebP, GIF, TIFF pages, animated WebP, APNG, plus files
  written by hand: interlaced PNG, 16-bit RGBA PNG (the most bytes PNG can inflate to per pixel),
  a GIF whose screen is at the limit around an 8x8 frame, BMPs whose RLE Pillow decodes in Python;
- the kinds that take more than a byte a pixel to decode, also at the largest size the service
  still decodes: just under its decode-memory limit, by its own accounting (`fit-*`; the same as
  the pixel limit where the service has no such limit);
- full batches (the server's MAX_BATCH_IMAGES) of the worst items small enough to fit the upload limit.

    python -m bench.hostile [--only PATTERN]     (makes every body once; lists sizes, seconds, pictures, routes)
"""

import argparse
import base64
import functools
import io
import json
import math
import re
import struct
import sys
import tempfile
import time
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from model.decoding import DEFAULT_MAX_PIXELS
from tests.drawing import STROKES
from web.settings import read_settings

DIGIT_ROUTE = "/recognize.json"
NUMBER_ROUTE = "/recognize/number.json"
BOTH_ROUTES = (DIGIT_ROUTE, NUMBER_ROUTE)
# The service's defaults (its settings with nothing set), from where the code defines them.
MAX_BATCH_IMAGES = read_settings({})["MAX_BATCH_IMAGES"]
MAX_UPLOAD_BYTES = read_settings({})["MAX_CONTENT_LENGTH"]
# A square picture at the pixel limit: 7071 x 7071 for 50,000,000.
LIMIT_SIDE = math.isqrt(DEFAULT_MAX_PIXELS)
# A page as the drawing page and a phone photo of a number would make it.
PAGE_SIDE = 960
# Very wide and very tall pages: their long and short sides.
LONG_SIDE = 20_000
SHORT_SIDE = 300
# Pictures at the limit are drawn this many times smaller and enlarged (fast, and they stay tiny once compressed).
LIMIT_DRAWING_SCALE = 8
# The digit drawn on pictures at the limit.
LIMIT_DIGIT = 7
SEED = 0
WHITE = 255
BLACK = 0
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# EXIF's orientation tag; 6 = stored rotated, shown turned 90 degrees clockwise.
ORIENTATION_TAG = 0x0112
ROTATED = 6
# The "largest the service decodes" pictures are sized from the decode cost of one this many pixels on a side ...
PROBE_SIDE = 256
# ... to this share of the decode-memory limit (a little under it: the cost of a big one is not quite proportional).
FIT_SHARE = 0.97

# The service's limit on the memory decoding one upload may take, and its own accounting of that memory (where the
# service has them: both came with the decode-memory fix; without them the pixel limit alone bounds a picture).
try:
    from model.decoding import decoded_bytes
    from model.limits import DEFAULT_MAX_DECODED_BYTES as MAX_DECODED_BYTES
except ImportError:
    MAX_DECODED_BYTES, decoded_bytes = None, None


@dataclass(frozen=True)
class Case:
    """One hostile input: its name, the routes it goes to, its content type, what it is, and how it is made."""

    name: str
    routes: tuple[str, ...]
    content_type: str
    about: str
    make: Callable[[], bytes] | None = None
    batch_of: str | None = None  # a batch: MAX_BATCH_IMAGES copies of that case's body, as JSON


class Bodies:
    """The request bodies of cases, each made once and kept as a file in `folder`, with how long it took."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.seconds: dict[str, float] = {}

    def path(self, case: Case) -> Path:
        """Where the body of `case` is kept (made now if it is not there yet)."""
        path = self.folder / re.sub(r"[^\w.-]", "_", case.name)
        if not path.exists():
            started = time.perf_counter()
            body = batch_body(self.body(CASES_BY_NAME[case.batch_of])) if case.batch_of else case.make()
            path.write_bytes(body)
            self.seconds[case.name] = time.perf_counter() - started
        return path

    def body(self, case: Case) -> bytes:
        """The request body of `case`."""
        return self.path(case).read_bytes()


def batch_body(item: bytes, count: int = MAX_BATCH_IMAGES) -> bytes:
    """A JSON batch of `count` copies of one image, base64, within the upload limit."""
    body = json.dumps({"images": [base64.b64encode(item).decode()] * count}).encode()
    if len(body) > MAX_UPLOAD_BYTES:
        raise ValueError(f"a batch of {count} is {len(body):,} bytes, over the upload limit of {MAX_UPLOAD_BYTES:,}")
    return body


def encoded(image: Image.Image, format: str, **options) -> bytes:
    """An image encoded by Pillow."""
    output = io.BytesIO()
    image.save(output, format, **options)
    return output.getvalue()


def png(image: Image.Image, **options) -> bytes:
    """PNG at the strongest compression."""
    return encoded(image, "PNG", compress_level=9, **options)


def tiff(image: Image.Image, compression: str = "tiff_deflate", **options) -> bytes:
    """TIFF, deflated by libtiff unless told otherwise."""
    return encoded(image, "TIFF", compression=compression, **options)


# --- pages for the number route -----------------------------------------------------------------


def blank(size: tuple[int, int], fill: int = WHITE) -> tuple[Image.Image, ImageDraw.ImageDraw]:
    """A grayscale page and a pen on it."""
    page = Image.new("L", size, fill)
    return page, ImageDraw.Draw(page)


def black_block(page_side: int, block_side: int) -> bytes:
    """A solid black square on a white page (the whole page when the sides are equal)."""
    page, pen = blank((page_side, page_side))
    margin = (page_side - block_side) // 2
    pen.rectangle([margin, margin, margin + block_side - 1, margin + block_side - 1], fill=BLACK)
    return png(page)


def blocks(side: int = PAGE_SIDE, count: int = 4) -> bytes:
    """A count x count grid of black squares, each the size of a written digit, with white gaps."""
    page, pen = blank((side, side))
    cell = side // count
    for row in range(count):
        for column in range(count):
            pen.rectangle(
                [
                    column * cell + cell // 6,
                    row * cell + cell // 6,
                    (column + 1) * cell - cell // 6,
                    (row + 1) * cell - cell // 6,
                ],
                fill=BLACK,
            )
    return png(page)


def checkerboard(side: int = PAGE_SIDE, count: int = 16) -> bytes:
    """A checkerboard: squares that touch at their corners, one connected mark over the whole page."""
    cell = side // count
    board = (np.add.outer(np.arange(side) // cell, np.arange(side) // cell) % 2).astype(np.uint8) * WHITE
    return png(Image.fromarray(board, "L"))


def scribbles(size: tuple[int, int], count: int, length: float = 60.0, width: int = 6) -> bytes:
    """`count` random pen strokes, seeded."""
    rng = np.random.default_rng(SEED)
    page, pen = blank(size)
    for _ in range(count):
        x, y = rng.uniform(0, size[0]), rng.uniform(0, size[1])
        pen.line(
            [(x, y), (x + rng.uniform(-length, length), y + rng.uniform(-length, length))], fill=BLACK, width=width
        )
    return png(page)


def graph_paper(side: int, spacing: int, width: int = 2) -> Image.Image:
    """Grid lines every `spacing` pixels both ways, as on graph paper."""
    page, pen = blank((side, side))
    for position in range(spacing // 2, side, spacing):
        pen.line([(position, 0), (position, side)], fill=BLACK, width=width)
        pen.line([(0, position), (side, position)], fill=BLACK, width=width)
    return page


def specks(side: int = PAGE_SIDE, count: int = 20_000) -> bytes:
    """Thousands of 3x3 specks of ink, seeded, as a 1-bit PNG."""
    rng = np.random.default_rng(SEED)
    page = np.full((side, side), True)
    for y, x in rng.integers(0, side - 3, (count, 2)):
        page[y : y + 3, x : x + 3] = False
    return png(Image.fromarray(page))


def printed_digits(size: tuple[int, int], font_size: int) -> bytes:
    """The page filled with lines of printed digits in the given font size."""
    page, pen = blank(size)
    font = ImageFont.load_default(size=font_size)
    line = "0123456789" * (size[0] // font_size + 1)
    for top in range(0, size[1] - font_size, int(font_size * 1.3)):
        pen.text((2, top), line, fill=BLACK, font=font)
    return png(page)


# --- pictures of a given size: at the pixel limit, or the largest the service still decodes ------------


@functools.lru_cache(maxsize=2)
def digit_page(width: int, height: int) -> Image.Image:
    """A white L picture of width x height with one big dark digit on it (drawn small and enlarged: fast, and tiny once compressed)."""
    small = (max(1, width // LIMIT_DRAWING_SCALE), max(1, height // LIMIT_DRAWING_SCALE))
    page, pen = blank(small)
    side = min(small)
    left, top = (small[0] - side * 0.5) / 2, side * 0.15
    for stroke in STROKES[LIMIT_DIGIT]:
        points = [(left + x * side * 0.5, top + y * side * 0.7) for x, y in stroke]
        pen.line(points, fill=BLACK, width=max(1, side // 12), joint="curve")
    return page.resize((width, height), Image.NEAREST)


def square(side: int) -> Image.Image:
    """The digit on a square L picture."""
    return digit_page(side, side)


def ink(side: int) -> np.ndarray:
    """Where the digit of `square(side)` is: True on its ink."""
    return np.asarray(square(side)) < 128


def transparent(side: int, mode: str) -> Image.Image:
    """The digit as a canvas exports it: black strokes on a transparent background, in LA or RGBA."""
    alpha = Image.fromarray(ink(side).astype(np.uint8) * 255, "L")
    black = Image.new("L", alpha.size, BLACK)
    return Image.merge("LA", (black, alpha)) if mode == "LA" else Image.merge("RGBA", (black, black, black, alpha))


def gray_16_bit(side: int, dtype: str = "<u2") -> Image.Image:
    """The digit as a 16-bit grayscale picture, white = 65535 (I;16, or I;16B for dtype '>u2')."""
    return Image.fromarray(np.asarray(square(side)).astype(dtype) * 257)


def gray_32_bit(side: int) -> Image.Image:
    """The digit as a 32-bit integer picture (white = 65535)."""
    return Image.fromarray(np.asarray(square(side)).astype(np.int32) * 257, "I")


def gray_float(side: int) -> Image.Image:
    """The digit as a float picture (white = 1.0)."""
    return Image.fromarray(np.asarray(square(side)).astype(np.float32) / 255.0, "F")


def webp_rgba(side: int) -> bytes:
    """The digit on transparency as a lossless WebP (a few kB at the limit)."""
    return encoded(transparent(side, "RGBA"), "WEBP", lossless=True, method=1, quality=0)


def palette_with_transparency(side: int) -> bytes:
    """A palette PNG (tRNS): entry 0 transparent white, entry 1 black ink."""
    image = Image.fromarray(ink(side).astype(np.uint8), "P")
    image.putpalette([255, 255, 255, 0, 0, 0])
    return png(image, transparency=0)


def palette_alpha(side: int) -> bytes:
    """A PA TIFF: palette colour and an alpha channel."""
    marks = ink(side).astype(np.uint8)
    image = Image.merge("PA", (Image.fromarray(marks, "P"), Image.fromarray(marks * 255, "L")))
    image.putpalette([255, 255, 255, 0, 0, 0])
    return tiff(image)


def with_orientation(image: Image.Image, format: str, **options) -> bytes:
    """The picture saved with EXIF orientation 6 (shown turned a quarter)."""
    exif = Image.Exif()
    exif[ORIENTATION_TAG] = ROTATED
    return encoded(image, format, exif=exif, **options)


def frames(image: Image.Image, format: str, count: int = 3, **options) -> bytes:
    """An animation or a multi-page file of `count` frames, the digit shifted a little in each."""
    shifted = [
        image.transform(image.size, Image.AFFINE, (1, 0, -16 * index, 0, 1, 0), fillcolor=image.getpixel((0, 0)))
        for index in range(1, count)
    ]
    return encoded(image, format, save_all=True, append_images=shifted, **options)


def png_chunk(kind: bytes, data: bytes) -> bytes:
    """One PNG chunk: length, type, data, CRC."""
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_from_scanlines(
    width: int, height: int, bit_depth: int, colour_type: int, scanlines: Iterable[bytes], interlace: int = 0
) -> bytes:
    """A PNG written by hand: its header, the filtered scanlines deflated at level 9 into one IDAT, the end."""
    compressor = zlib.compressobj(9)
    data = b"".join(compressor.compress(line) for line in scanlines) + compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, interlace)
    return PNG_SIGNATURE + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", data) + png_chunk(b"IEND", b"")


def bar_rows(side: int, plain: bytes, barred: bytes) -> Iterable[bytes]:
    """`side` rows: `barred` in the middle three fifths (a stroke down the picture), `plain` above and below."""
    return (barred if side // 5 <= y < side * 4 // 5 else plain for y in range(side))


def rgba_16_bit_png(side: int) -> bytes:
    """RGBA at 16 bits a channel, opaque white with a black bar: 8 bytes a pixel to inflate (400 MB at the limit)."""
    white = b"\xff" * 8
    bar_left, bar_right = side * 9 // 20, side * 11 // 20
    barred = b"\0" + white * bar_left + b"\0\0\0\0\0\0\xff\xff" * (bar_right - bar_left) + white * (side - bar_right)
    return png_from_scanlines(side, side, 16, 6, bar_rows(side, b"\0" + white * side, barred))


# Adam7's passes: (first row, first column, row step, column step).
ADAM7 = ((0, 0, 8, 8), (0, 4, 8, 8), (4, 0, 8, 4), (0, 2, 4, 4), (2, 0, 4, 2), (0, 1, 2, 2), (1, 0, 2, 1))


def interlaced_png(side: int) -> bytes:
    """The grayscale digit as an Adam7-interlaced PNG (Pillow writes none, so it is written here)."""
    pixels = np.asarray(square(side))

    def scanlines() -> Iterable[bytes]:
        for first_row, first_column, row_step, column_step in ADAM7:
            part = pixels[first_row::row_step, first_column::column_step]
            if part.size:
                yield np.hstack([np.zeros((part.shape[0], 1), np.uint8), part]).tobytes()

    return png_from_scanlines(side, side, 8, 0, scanlines(), interlace=1)


def gif_with_huge_screen(side: int) -> bytes:
    """An 8x8 GIF frame of ink on a logical screen of side x side: Pillow makes the whole screen."""
    data = bytearray(encoded(Image.new("L", (8, 8), BLACK), "GIF"))
    data[6:10] = struct.pack("<HH", side, side)
    return bytes(data)


def bmp_rle(bits: int, rows: Iterable[bytes], width: int, height: int) -> bytes:
    """A BMP compressed with RLE8 (bits=8) or RLE4 (bits=4), palette 0 white and 1 black, from encoded rows (bottom up)."""
    data = b"".join(rows) + b"\0\1"
    colours = 1 << bits
    palette = b"\xff\xff\xff\0" + b"\0\0\0\0" * (colours - 1)
    offset = 14 + 40 + len(palette)
    info = struct.pack(
        "<IiiHHIIiiII", 40, width, height, 1, bits, 1 if bits == 8 else 2, len(data), 2835, 2835, colours, 0
    )
    return b"BM" + struct.pack("<IHHI", offset + len(data), 0, 0, offset) + info + palette + data


def runs(count: int, colour: int) -> bytes:
    """RLE runs of `count` pixels of one colour (at most 255 a run)."""
    full, rest = divmod(count, 255)
    return bytes([255, colour]) * full + (bytes([rest, colour]) if rest else b"")


def bmp_rle8_padding(side: int) -> bytes:
    """RLE8 where each row ends early: Pillow pads the rest of every row one byte at a time, in Python."""
    barred = runs(side // 10, 0) + runs(side // 10, 1) + b"\0\0"  # a bar at the left, then the row padded
    plain = bytes([1, 0]) + b"\0\0"  # one pixel, then the row padded
    return bmp_rle(8, bar_rows(side, plain, barred), side, side)


def bmp_rle4_runs(side: int) -> bytes:
    """RLE4 in runs of 255 pixels: Pillow expands every pixel of a run in Python."""
    white_twice, black_twice = 0x00, 0x11
    bar_left, bar_width = side * 9 // 20, side // 10
    barred = (
        runs(bar_left, white_twice)
        + runs(bar_width, black_twice)
        + runs(side - bar_left - bar_width, white_twice)
        + b"\0\0"
    )
    return bmp_rle(4, bar_rows(side, runs(side, white_twice) + b"\0\0", barred), side, side)


def wide_limit_page() -> Image.Image:
    """A picture at the limit 1,000 pixels tall and as wide as the limit allows (PNG's limit is 2**31)."""
    height = 1000
    return digit_page(DEFAULT_MAX_PIXELS // height, height)


def fitting_side(make: Callable[[int], bytes]) -> int:
    """The side of the largest square picture of this kind that the service still decodes, by its own accounting.

    The service's decode-memory cost (model.decoding.decoded_bytes) of a small one, per pixel, scaled to just
    under its limit (MAX_DECODED_BYTES); at most the pixel limit. Where the service has no such limit, the pixel limit.
    """
    if decoded_bytes is None or MAX_DECODED_BYTES is None:
        return LIMIT_SIDE
    data = make(PROBE_SIDE)
    per_pixel = decoded_bytes(Image.open(io.BytesIO(data)), data) / PROBE_SIDE**2
    return min(LIMIT_SIDE, math.isqrt(int(MAX_DECODED_BYTES * FIT_SHARE / per_pixel)))


def fitting(make: Callable[[int], bytes]) -> Callable[[], bytes]:
    """A body maker: the largest picture of this kind the service still decodes (sized when made)."""
    return lambda: make(fitting_side(make))


# --- the cases ------------------------------------------------------------------------------------

PNG = "image/png"
TIFF = "image/tiff"
JPEG = "image/jpeg"
WEBP = "image/webp"
GIF = "image/gif"
BMP = "image/bmp"
JSON = "application/json"
LIMIT = f"{LIMIT_SIDE}x{LIMIT_SIDE}"

# Pictures made at any size: kind -> (content type, what it is, maker of its body for a square of that side).
PICTURES: dict[str, tuple[str, str, Callable[[int], bytes]]] = {
    "L-png": (PNG, "L", lambda side: png(square(side))),
    "1-png": (PNG, "1-bit", lambda side: png(square(side).convert("1"))),
    "1-tiff-g4": (TIFF, "1-bit, CCITT group 4", lambda side: tiff(square(side).convert("1"), "group4")),
    "LA-png": (PNG, "LA, strokes on transparency", lambda side: png(transparent(side, "LA"))),
    "PA-tiff": (TIFF, "PA", palette_alpha),
    "P-trns-png": (PNG, "P with a transparent entry (tRNS)", palette_with_transparency),
    "RGB-png": (PNG, "RGB", lambda side: png(square(side).convert("RGB"))),
    "RGBA-png": (PNG, "RGBA, strokes on transparency", lambda side: png(transparent(side, "RGBA"))),
    "RGBA-webp": (WEBP, "RGBA, lossless WebP", webp_rgba),
    "I16-png": (PNG, "I;16 (16-bit grayscale)", lambda side: png(gray_16_bit(side))),
    "I16-tiff": (TIFF, "I;16", lambda side: tiff(gray_16_bit(side))),
    "I16B-tiff": (TIFF, "I;16B (big-endian)", lambda side: tiff(gray_16_bit(side, ">u2"))),
    "I-tiff": (TIFF, "I (32-bit integers)", lambda side: tiff(gray_32_bit(side))),
    "F-tiff": (TIFF, "F (32-bit floats)", lambda side: tiff(gray_float(side))),
    "CMYK-tiff": (TIFF, "CMYK", lambda side: tiff(square(side).convert("CMYK"))),
    "CMYK-jpeg": (JPEG, "CMYK JPEG", lambda side: encoded(square(side).convert("CMYK"), "JPEG", quality=10)),
    "YCbCr-tiff": (TIFF, "YCbCr", lambda side: tiff(square(side).convert("YCbCr"))),
    "LAB-tiff": (TIFF, "LAB", lambda side: tiff(square(side).convert("RGB").convert("LAB"))),
    "RGB-jpeg": (JPEG, "RGB JPEG", lambda side: encoded(square(side).convert("RGB"), "JPEG", quality=10)),
    "L-jpeg-progressive": (
        JPEG,
        "L progressive JPEG",
        lambda side: encoded(square(side), "JPEG", quality=10, progressive=True),
    ),
    "interlaced-png": (PNG, "L, Adam7-interlaced", interlaced_png),
    "RGBA16-png": (PNG, "RGBA, 16 bits a channel (8 bytes a pixel inflated)", rgba_16_bit_png),
    "exif-rotated-png": (
        PNG,
        "RGB, EXIF orientation 6",
        lambda side: with_orientation(square(side).convert("RGB"), "PNG", compress_level=9),
    ),
    "exif-rotated-tiff": (
        TIFF,
        "F, EXIF orientation 6",
        lambda side: with_orientation(gray_float(side), "TIFF", compression="tiff_deflate"),
    ),
    "gif-frames": (GIF, "GIF of 3 frames", lambda side: frames(square(side), "GIF")),
    "tiff-pages": (
        TIFF,
        "F TIFF of 3 pages",
        lambda side: frames(gray_float(side), "TIFF", compression="tiff_deflate"),
    ),
    "webp-animated": (
        WEBP,
        "animated lossless WebP, 2 frames",
        lambda side: frames(transparent(side, "RGBA"), "WEBP", 2, lossless=True, method=0, quality=0),
    ),
    "apng": (PNG, "APNG RGBA, 2 frames", lambda side: frames(transparent(side, "RGBA"), "PNG", 2, compress_level=9)),
    "gif-screen": (GIF, "GIF screen around an 8x8 frame", gif_with_huge_screen),
    "bmp-rle8": (BMP, "RLE8 BMP, rows ended early (padded in Python)", bmp_rle8_padding),
    "bmp-rle4": (BMP, "RLE4 BMP, runs of 255 (expanded in Python)", bmp_rle4_runs),
    "graph-paper-png": (PNG, "grid lines every 40 pixels", lambda side: png(graph_paper(side, 40, 3))),
}
# The kinds at the pixel limit also read as numbers (the costliest ones).
LIMIT_ON_NUMBERS = (
    "RGBA-png",
    "RGBA-webp",
    "I16-png",
    "F-tiff",
    "RGBA16-png",
    "exif-rotated-png",
    "gif-screen",
    "bmp-rle8",
    "graph-paper-png",
)
# The kinds that take more than a byte a pixel to decode, also made at the largest size the service still decodes ...
FITTED = (
    "LA-png",
    "PA-tiff",
    "RGB-png",
    "RGBA-png",
    "RGBA-webp",
    "I16-png",
    "I-tiff",
    "F-tiff",
    "CMYK-tiff",
    "L-jpeg-progressive",
    "RGBA16-png",
    "exif-rotated-png",
    "tiff-pages",
    "webp-animated",
    "apng",
    "bmp-rle8",
    "bmp-rle4",
)
# ... and of those, the ones also read as numbers.
FITTED_ON_NUMBERS = ("RGBA-webp", "I16-png", "F-tiff", "RGBA16-png", "exif-rotated-png", "bmp-rle8")

CASES: tuple[Case, ...] = (
    # pages read as numbers
    Case("black-960", (NUMBER_ROUTE,), PNG, "960x960 all black", lambda: black_block(PAGE_SIDE, PAGE_SIDE)),
    Case(
        "black-block-960",
        (NUMBER_ROUTE,),
        PNG,
        "960x960 black square on a 1100x1100 white page",
        lambda: black_block(1100, PAGE_SIDE),
    ),
    Case("blocks-4x4", (NUMBER_ROUTE,), PNG, "16 black squares the size of digits on 960x960", blocks),
    Case("checkerboard", (NUMBER_ROUTE,), PNG, "960x960 checkerboard of 60-pixel squares", checkerboard),
    Case(
        "scribbles-300",
        (NUMBER_ROUTE,),
        PNG,
        "300 random strokes on 960x960",
        lambda: scribbles((PAGE_SIDE, PAGE_SIDE), 300),
    ),
    Case(
        "scribbles-1000",
        (NUMBER_ROUTE,),
        PNG,
        "1,000 random strokes on 960x960",
        lambda: scribbles((PAGE_SIDE, PAGE_SIDE), 1000),
    ),
    Case(
        "scribbles-3000",
        (NUMBER_ROUTE,),
        PNG,
        "3,000 random strokes on 960x960",
        lambda: scribbles((PAGE_SIDE, PAGE_SIDE), 3000, 30, 3),
    ),
    Case(
        "graph-paper-960",
        (NUMBER_ROUTE,),
        PNG,
        "960x960 grid lines every 24 pixels",
        lambda: png(graph_paper(PAGE_SIDE, 24)),
    ),
    Case("specks-960", (NUMBER_ROUTE,), PNG, "20,000 3x3 specks on 960x960, 1-bit", specks),
    Case(
        "tiny-digits-960",
        (NUMBER_ROUTE,),
        PNG,
        "960x960 full of printed digits 10 pixels tall",
        lambda: printed_digits((PAGE_SIDE, PAGE_SIDE), 10),
    ),
    Case(
        "wide-scribbles",
        (NUMBER_ROUTE,),
        PNG,
        f"{LONG_SIDE}x{SHORT_SIDE}, 2,000 strokes",
        lambda: scribbles((LONG_SIDE, SHORT_SIDE), 2000, 80, 8),
    ),
    Case(
        "wide-digits",
        (NUMBER_ROUTE,),
        PNG,
        f"{LONG_SIDE}x{SHORT_SIDE}, a line of ~170 printed digits",
        lambda: printed_digits((LONG_SIDE, SHORT_SIDE), 200),
    ),
    Case(
        "tall-scribbles",
        (NUMBER_ROUTE,),
        PNG,
        f"{SHORT_SIDE}x{LONG_SIDE}, 2,000 strokes",
        lambda: scribbles((SHORT_SIDE, LONG_SIDE), 2000, 80, 8),
    ),
    Case(
        "tall-digits",
        (NUMBER_ROUTE,),
        PNG,
        f"{SHORT_SIDE}x{LONG_SIDE}, lines of printed digits 40 pixels tall",
        lambda: printed_digits((SHORT_SIDE, LONG_SIDE), 40),
    ),
    # every format and mode at the pixel limit, then the costliest ones at the largest size the service decodes
    *(
        Case(
            f"limit-{kind}",
            BOTH_ROUTES if kind in LIMIT_ON_NUMBERS else (DIGIT_ROUTE,),
            content_type,
            f"{LIMIT} {what}",
            functools.partial(make, LIMIT_SIDE),
        )
        for kind, (content_type, what, make) in PICTURES.items()
    ),
    Case("limit-wide-png", BOTH_ROUTES, PNG, f"{DEFAULT_MAX_PIXELS // 1000}x1000 L", lambda: png(wide_limit_page())),
    *(
        Case(
            f"fit-{kind}",
            BOTH_ROUTES if kind in FITTED_ON_NUMBERS else (DIGIT_ROUTE,),
            PICTURES[kind][0],
            f"the largest {PICTURES[kind][1]} the service decodes",
            fitting(PICTURES[kind][2]),
        )
        for kind in FITTED
    ),
    # full batches of the worst items small enough to fit the upload limit
    *(
        Case(f"batch{MAX_BATCH_IMAGES}-{item}", routes, JSON, f"{MAX_BATCH_IMAGES} x {item}", batch_of=item)
        for item, routes in (
            ("limit-RGBA-webp", BOTH_ROUTES),
            ("limit-gif-screen", BOTH_ROUTES),
            ("limit-bmp-rle8", (DIGIT_ROUTE,)),
            ("limit-1-tiff-g4", (DIGIT_ROUTE,)),
            ("fit-RGBA-webp", BOTH_ROUTES),
            ("fit-I16-png", (DIGIT_ROUTE,)),
            ("fit-bmp-rle8", (DIGIT_ROUTE,)),
            ("black-block-960", (NUMBER_ROUTE,)),
            ("scribbles-300", (NUMBER_ROUTE,)),
        )
    ),
)
CASES_BY_NAME = {case.name: case for case in CASES}


def select(pattern: str | None) -> list[Case]:
    """The cases whose name matches the regular expression `pattern` (all when None)."""
    return [case for case in CASES if pattern is None or re.search(pattern, case.name)]


def main(argv: list[str] | None = None) -> int:
    """Command line entry point: make the bodies and list them."""
    parser = argparse.ArgumentParser(prog="python -m bench.hostile", description=__doc__.split("\n")[0])
    parser.add_argument("--only", help="regular expression: only the cases whose name it matches")
    arguments = parser.parse_args(argv)
    print(f"{'case':<28}  {'bytes':>10}  {'made in':>7}  {'picture':>11}  routes: what")
    with tempfile.TemporaryDirectory(prefix="hostile-") as folder:
        bodies = Bodies(Path(folder))
        for case in select(arguments.only):
            path = bodies.path(case)
            picture = "batch" if case.batch_of else "x".join(map(str, Image.open(path).size))
            routes = " ".join("number" if route == NUMBER_ROUTE else "digit" for route in case.routes)
            print(
                f"{case.name:<28}  {path.stat().st_size:>10,}  {bodies.seconds.get(case.name, 0.0):>6.2f}s  {picture:>11}  {routes}: {case.about}",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
