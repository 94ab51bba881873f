"""From uploaded image bytes to the 28x28 array the network reads, normalised the way MNIST was made.

Bytes in, array out, no web framework: decode the upload (PNG, JPEG, GIF, WebP, BMP or TIFF),
find the ink whatever the background, pick the digit, fit it into a 20x20 box keeping its
aspect ratio and centre it by its centre of mass in a 28x28 frame, bright ink on black, values 0..1.

Every upload's cost is decided from its header before any pixel is decoded: its pixels
(`max_pixels`), the memory the decoder will take for its first frame (`max_decoded_bytes`) and
its share of a request's decoding work (`PixelBudget`). Past a limit it is refused with
ImageTooLargeError. A big picture is then reduced at 8 bits in strips of rows, so that no
conversion or float array of it is ever made at full size.
"""

import collections
import io
import logging
import math
import sys
import threading
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
from PIL import Image, PngImagePlugin
from scipy import ndimage

from model.errors import ImageTooLargeError, InvalidImageError, NoDigitError
from model.limits import DEFAULT_MAX_DECODED_BYTES, DEFAULT_MAX_PIXELS, DEFAULT_MAX_REQUEST_PIXELS

logger = logging.getLogger(__name__)

# MNIST's geometry: the digit fits a 20x20 box whose centre of mass sits at (14, 14) of 28x28 (how MNIST was made; the
# networks read nothing else).
FRAME_SIZE = 28
BOX_SIZE = 20
# The digit is found on a copy at most this many pixels on its longer side. No trial of another value is recorded.
WORKING_SIZE = 640
# Stroke widths are measured and adjusted with the digit's longer side at this many pixels. No trial of another value is
# recorded.
STROKE_SCALE = 80
# MNIST's typical stroke is about 2.6 pixels wide in the 20-pixel box (13 % of the box), measured on MNIST's digits.
TYPICAL_STROKE_WIDTH = 0.13 * STROKE_SCALE
# A picture whose border is clean paper (at least this share of its edge pixels within this many levels, 0..1, of
# the edge's median) shows its background there: heavy strokes may cover most of the rest (a tightly cut scan of a
# thick digit) without being taken for the paper. Photos with shading or a table along an edge fail this and keep the
# older reading, where the picture's median is the background.
CLEAN_BORDER_SHARE = 0.8
CLEAN_BORDER_TOLERANCE = 0.1
# A picture enlarged with hard pixel edges (a nearest-neighbour scan, a pixel-art canvas) changes only every few rows
# and columns: when its block (the shortest run of identical lines, runs under half the median aside) is this long or
# longer, each way, it is smoothed back into a drawing (its grid of pixels enlarged smoothly) before the digit is
# looked for. Real photos and drawings have no two identical rows across their ink.
MIN_PIXEL_BLOCK = 2.5
# ... and at least this share of the runs is a whole number of blocks, give or take a line a block (a lattice, not a
# few flat bands; an enlargement by 9.4 has runs of 9 and 10).
PIXEL_BLOCK_REGULARITY = 0.8
# A mark along an edge of the picture for at least this share of that edge is a band (a table beyond the paper,
# the paper's edge, a shadow), not the digit, when another mark of at least this share of the picture's pixels
# (a digit, not a speck) lies elsewhere.
BAND_SPAN = 0.5
BAND_RIVAL_SHARE = 0.001
# A clean border at one exact level is a flat background (a canvas, a screenshot, a render) when that level also
# covers at least this share of the whole picture.
FLAT_BACKGROUND_SHARE = 0.25
# EXIF's orientation tag: 1 is upright, 2-8 are mirrored or rotated.
ORIENTATION_TAG = 0x0112
# The turn that makes a picture upright, by EXIF orientation (as ImageOps.exif_transpose does).
UPRIGHT_TURNS = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
# The formats the service reads (JPEG includes phones' MPO). Pillow knows 40 more; each is more
# parser exposed to uploads, and EPS runs Ghostscript, a PostScript interpreter, on the file.
READABLE_FORMATS = ("PNG", "JPEG", "GIF", "WEBP", "BMP", "TIFF")
# Strokes connect through edges and corners.
EIGHT_NEIGHBOURS = np.ones((3, 3), dtype=bool)
# Bytes a pixel takes in Pillow's storage: these modes 1 or 2, every other mode 4 (RGB is stored as RGBX).
PILLOW_BYTES_PER_PIXEL = {"1": 1, "L": 1, "P": 1, "I;16": 2, "I;16B": 2, "I;16L": 2, "I;16N": 2}
# Modes of more than 8 bits a channel: scaled by their type's range, not clipped at 255.
HIGH_DEPTH_MODES = ("I", "I;16", "I;16B", "I;16L", "I;16N", "F")
# Modes Pillow reduces as they are, without a converted copy.
DIRECTLY_REDUCIBLE_MODES = ("L", "RGB", "CMYK", "YCbCr")
# Decoders' buffers beside the picture, in bytes a pixel: libwebp's animation decoder (Pillow's only WebP decoder)
# keeps two RGBA canvases and hands the frame over as a bytes copy; Pillow's RLE BMP decoder (Python) builds the
# frame in a bytearray (grown by up to an eighth) and copies it to bytes.
WEBP_DECODER_BYTES_PER_PIXEL = 12
BMP_RLE_DECODER_BYTES_PER_PIXEL = 2.25
# A JPEG decoded in several scans (progressive) keeps every DCT coefficient at full size: 64 of 2 bytes per block.
JPEG_COEFFICIENT_BYTES_PER_BLOCK = 128
# Decoding work a pixel counts for in a request's budget (`PixelBudget`), by Pillow decoder: its RLE BMP decoder runs
# in Python, 9-16 megapixels a second at worst (a row ended after one pixel is padded a byte at a time) against 55-60
# for the slowest C ones (RGBA PNG, TIFF, WebP) and 100-2,000 for the others.
DECODE_WORK_PER_PIXEL = {"bmp_rle": 6}
# Big pictures are converted and reduced in strips of rows of about this many bytes (in their widest 8-bit form).
STRIP_BYTES = 2 * 2**20
# Text a PNG's chunks may unpack to while it is opened, in all (Pillow's default is 64 MB, from a few kB of zTXt chunks);
# past it the upload is refused as not readable. No digit needs its text.
PNG_TEXT_BYTES = 256 * 1024
PngImagePlugin.MAX_TEXT_MEMORY = PNG_TEXT_BYTES
PngImagePlugin.MAX_TEXT_CHUNK = min(PngImagePlugin.MAX_TEXT_CHUNK, PNG_TEXT_BYTES)


@dataclass(frozen=True)
class Ink:
    """Where the ink is: bright-on-black strengths and the bounding box of the chosen digit."""

    strength: np.ndarray  # float32, the digit's neighbourhood: 0 = background, 1 = full ink
    box: tuple[int, int, int, int]  # top, left, bottom, right (exclusive) in `strength`


@dataclass(frozen=True)
class _Cost:
    """What decoding an opened upload's first frame will take: memory, and work for the request's budget."""

    bytes: int
    work: int
    upright_copy_counted: bool


class PixelBudget:
    """The decoding work (in pixels) a request may still do: its images share it, in order, each charged from its
    header before it is decoded; once an image does not fit, it and every later one are refused."""

    def __init__(self, pixels: int = DEFAULT_MAX_REQUEST_PIXELS) -> None:
        self.limit = pixels
        self.left = pixels
        self.spent = False

    def charge(self, work: int, description: str) -> None:
        """Take `work` pixels for an image, or raise ImageTooLargeError (for it and, from then on, every other)."""
        if self.spent or work > self.left:
            self.spent = True
            raise ImageTooLargeError(
                f"The request's images would take more decoding than its limit of {self.limit:,} pixels "
                f"(MAX_REQUEST_PIXELS): {description} and any image after it are not read. "
                "Send fewer or smaller images per request."
            )
        self.left -= work


def bytes_per_pixel(mode: str) -> int:
    """Bytes Pillow's storage takes for one pixel of `mode`."""
    return PILLOW_BYTES_PER_PIXEL.get(mode, 4)


def decode_image(
    data: bytes,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_decoded_bytes: int = DEFAULT_MAX_DECODED_BYTES,
    budget: PixelBudget | None = None,
) -> Image.Image:
    """Open image bytes with Pillow: first frame, EXIF orientation applied, fully loaded, at full size.

    Turning the picture upright copies it: that copy counts towards `max_decoded_bytes` too. Reading a
    digit needs no full-size picture: `decode_grayscale` is lighter.
    """
    image, cost = _opened(data, max_pixels, max_decoded_bytes, budget, upright_copy=True)
    orientation = _load(image, max_pixels)
    image = _detached(image)
    if orientation in UPRIGHT_TURNS and not cost.upright_copy_counted:
        copy_bytes = image.width * image.height * bytes_per_pixel(image.mode)
        if cost.bytes + copy_bytes > max_decoded_bytes:
            raise ImageTooLargeError(
                f"Turning the {image.width}x{image.height} image upright would take {cost.bytes + copy_bytes:,} bytes "
                f"of memory; the limit is {max_decoded_bytes:,}."
            )
    return _upright(image, orientation)


def decode_picture(
    data: bytes,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_decoded_bytes: int = DEFAULT_MAX_DECODED_BYTES,
    budget: PixelBudget | None = None,
) -> tuple[Image.Image, tuple[int, int]]:
    """The upload's first frame upright, reduced at 8 bits when big (`reduce_large`), and its full upright size.

    The full-size picture is let go as soon as it is reduced, and turned upright only once small.
    """
    image, _ = _opened(data, max_pixels, max_decoded_bytes, budget, upright_copy=False)
    orientation = _load(image, max_pixels)
    image = _detached(image)  # the decoder's buffers (WebP's canvases) and the file go now
    width, height = image.size
    full_size = (height, width) if orientation in (5, 6, 7, 8) else (width, height)
    image = reduce_large(image)
    return _upright(image, orientation), full_size


def decode_grayscale(
    data: bytes,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_decoded_bytes: int = DEFAULT_MAX_DECODED_BYTES,
    budget: PixelBudget | None = None,
) -> tuple[np.ndarray, tuple[int, int]]:
    """The upload's first frame as grayscale 0..1 float32 (reduced at 8 bits when big), and its full upright size."""
    picture, full_size = decode_picture(data, max_pixels, max_decoded_bytes, budget)
    return to_grayscale(picture), full_size


def decode_cost(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS) -> tuple[int, int]:
    """The memory in bytes and the work in pixels that decoding an upload's first frame takes, told from its header."""
    _, cost = _opened(data, max_pixels, sys.maxsize, None, upright_copy=False)
    return cost.bytes, cost.work


def decoded_bytes(image: Image.Image, data: bytes, header_size: tuple[int, int] | None = None) -> int:
    """Bytes decoding an opened (not loaded) image's first frame takes, at the size it is set to decode to."""
    return _decode_cost(image, data, header_size or image.size, upright_copy=False).bytes


def _opened(
    data: bytes,
    max_pixels: int,
    max_decoded_bytes: int,
    budget: PixelBudget | None,
    upright_copy: bool,
) -> tuple[Image.Image, _Cost]:
    """The upload opened (header read, JPEG draft set, nothing decoded) once it is within every limit."""
    if not data:
        raise InvalidImageError("The uploaded file is empty.")
    _check_webp_header(data, max_pixels, max_decoded_bytes)  # libwebp allocates its canvases when Pillow opens one
    pillows_limit = Image.MAX_IMAGE_PIXELS
    try:
        with warnings.catch_warnings():
            # Pillow's own checks, from headers, at the configured limit while opening (its default is 89 MP): it
            # raises past twice this value, so past `max_pixels`, also for the buffers some plugins make when opening
            # (a GIF's first frame's disposal area). The check below names the size of a picture past the limit.
            Image.MAX_IMAGE_PIXELS = max_pixels / 2
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=READABLE_FORMATS)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageTooLargeError(f"The image has more than {max_pixels:,} pixels.") from None
    except Exception:  # Pillow raises many kinds for bytes that are not an image
        raise InvalidImageError("The upload is not an image in a format this service reads.") from None
    finally:
        Image.MAX_IMAGE_PIXELS = pillows_limit  # nothing else in the process sees this upload's limit
    width, height = image.size
    if width * height > max_pixels:
        raise ImageTooLargeError(
            f"The image has {width * height:,} pixels ({width}x{height}); the limit is {max_pixels:,}."
        )
    if width < 1 or height < 1:
        raise InvalidImageError("The image has no pixels.")
    try:
        image.seek(0)  # animated GIF/WebP/PNG, multi-page TIFF: the first frame only is decoded
        # JPEG can decode at 1/2, 1/4 or 1/8 scale, which saves time and memory on big photos
        if image.format in ("JPEG", "MPO"):
            image.draft(image.mode if image.mode in ("L", "RGB") else None, (WORKING_SIZE, WORKING_SIZE))
        cost = _decode_cost(image, data, (width, height), upright_copy)
    except Exception:
        raise InvalidImageError("The image is corrupted and cannot be decoded.") from None
    if cost.bytes > max_decoded_bytes:
        logger.debug(
            "refused a %s %s image of %sx%s: decoding takes %s bytes",
            image.format,
            image.mode,
            width,
            height,
            cost.bytes,
        )
        raise ImageTooLargeError(
            f"Decoding the image ({image.format}, {width}x{height} pixels, mode {image.mode}) would take "
            f"{cost.bytes:,} bytes of memory; the limit is {max_decoded_bytes:,} (MAX_DECODED_BYTES)."
        )
    if budget is not None:
        budget.charge(cost.work, f"this image ({width}x{height} pixels)")
    return image, cost


def _load(image: Image.Image, max_pixels: int) -> int:
    """Decode the opened first frame; its EXIF orientation (1 when upright or already applied, as TIFF does)."""
    try:
        image.load()
        orientation = image.getexif().get(ORIENTATION_TAG, 1)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageTooLargeError(f"The image has more than {max_pixels:,} pixels.") from None
    except Exception:
        raise InvalidImageError("The image is corrupted or truncated and cannot be decoded.") from None
    return orientation if isinstance(orientation, int) else 1


def _detached(image: Image.Image) -> Image.Image:
    """The decoded pixels without the plugin object that read them: its decoder state and file are freed with it."""
    return image._new(image.im)  # Pillow's own way to wrap an image core (no copy)


def _upright(image: Image.Image, orientation: int) -> Image.Image:
    """The picture turned as its EXIF orientation says (a copy), or itself when upright."""
    turn = UPRIGHT_TURNS.get(orientation)
    return image if turn is None else image.transpose(turn)


def _decode_cost(image: Image.Image, data: bytes, header_size: tuple[int, int], upright_copy: bool) -> _Cost:
    """The memory and work decoding an opened image's first frame takes, from its header alone.

    The picture in Pillow's storage at the size it is decoded (a JPEG's draft scale), plus each decoder's own buffers,
    measured: see the constants above. Only frame 0 is decoded: no plugin decodes or keeps the other frames.
    """
    width, height = image.size
    pixels = width * height
    picture = pixels * bytes_per_pixel(image.mode)
    total = picture
    work = header_size[0] * header_size[1]
    decoder = image.tile[0][0] if image.tile else ""
    work *= DECODE_WORK_PER_PIXEL.get(decoder, 1)
    counted = False
    if image.format == "WEBP":
        total += pixels * WEBP_DECODER_BYTES_PER_PIXEL
    elif image.format in ("JPEG", "MPO"):
        total += _jpeg_coefficient_bytes(image, data, header_size)
    elif image.format == "TIFF":
        total += _tiff_decoder_bytes(image)
        counted = image.tag_v2.get(ORIENTATION_TAG, 1) in UPRIGHT_TURNS  # Pillow turns a TIFF upright while loading
        total += picture if counted else 0
    elif image.format == "BMP" and decoder == "bmp_rle":
        total += math.ceil(pixels * BMP_RLE_DECODER_BYTES_PER_PIXEL)
    elif image.format == "GIF" and getattr(image, "dispose", None) is not None:
        disposal = image.dispose  # the first frame's disposal area, made when Pillow opened the file
        total += disposal.size[0] * disposal.size[1] * bytes_per_pixel(disposal.mode)
    if upright_copy and not counted and _header_orientation(image) in UPRIGHT_TURNS:
        total += picture
        counted = True
    return _Cost(bytes=total, work=work, upright_copy_counted=counted)


def _header_orientation(image: Image.Image) -> int:
    """The EXIF orientation an opened image's header gives (1 if none or unreadable), loading nothing."""
    exif = image.info.get("exif")
    if not exif:
        return 1
    try:
        tags = Image.Exif()
        tags.load(exif)
        orientation = tags.get(ORIENTATION_TAG, 1)
    except Exception:
        return 1
    return orientation if isinstance(orientation, int) else 1


def _jpeg_coefficient_bytes(image: Image.Image, data: bytes, header_size: tuple[int, int]) -> int:
    """The full-size DCT coefficient buffer libjpeg keeps for a JPEG decoded in several scans (0 for a single scan).

    Progressive JPEGs and those whose first scan holds fewer components than the frame are decoded so, whatever
    the draft scale: 128 bytes per 8x8 block of each component.
    """
    layers = getattr(image, "layer", [])
    progressive = bool(image.info.get("progressive") or image.info.get("progression"))
    if not layers or (not progressive and _jpeg_first_scan_components(data) == len(layers)):
        return 0
    width, height = header_size
    most_across = max(max(layer[1] for layer in layers), 1)
    most_down = max(max(layer[2] for layer in layers), 1)
    total = 0
    for _, across, down, _ in layers:
        across, down = max(across, 1), max(down, 1)
        blocks_across = math.ceil(math.ceil(width * across / most_across) / 8)
        blocks_down = math.ceil(math.ceil(height * down / most_down) / 8)
        # libjpeg rounds each component's blocks up to whole MCUs
        total += math.ceil(blocks_across / across) * across * math.ceil(blocks_down / down) * down
    return total * JPEG_COEFFICIENT_BYTES_PER_BLOCK


def _jpeg_first_scan_components(data: bytes) -> int | None:
    """How many components a JPEG's first scan (SOS) holds, walking its markers; None if none is found."""
    position = 2
    while position + 4 < len(data):
        if data[position] != 0xFF or data[position + 1] == 0xFF:
            position += 1  # junk or fill bytes before a marker, which decoders skip too
            continue
        marker = data[position + 1]
        if marker in (0x00, 0x01, 0xD8) or 0xD0 <= marker <= 0xD7:
            position += 2
            continue
        if marker == 0xDA:
            return data[position + 4]
        position += 2 + int.from_bytes(data[position + 2 : position + 4], "big")
    return None


def _tiff_decoder_bytes(image: Image.Image) -> int:
    """libtiff's buffers for one strip or tile (a header may make one strip of the whole picture)."""
    if not getattr(image, "use_load_libtiff", False):
        return 0  # uncompressed: Pillow's own decoder reads rows straight into the picture
    tags = image.tag_v2
    width, height = tags.get(256, 0), tags.get(257, 0)
    samples = tags.get(258, (1,))
    planar = tags.get(284, 1)
    bits = max(samples) if planar == 2 else sum(samples)  # planar: one sample's plane at a time
    if 322 in tags:  # tiled
        across, down = tags.get(322, width), tags.get(323, height)
    else:
        across, down = width, min(tags.get(278, height), height)
    block = math.ceil(across * bits / 8) * down
    compression, photometric = tags.get(259, 1), tags.get(262, 0)
    if (photometric == 6 or compression == 6) and not (compression == 7 and planar == 1):
        block += across * 4 * down  # YCbCr is decoded through libtiff's RGBA reader: 4 more bytes a pixel of the block
    return block


def _check_webp_header(data: bytes, max_pixels: int, max_decoded_bytes: int) -> None:
    """Refuse a WebP from its first 30 bytes: Pillow opens WebPs with libwebp's decoder, which allocates at once."""
    if len(data) < 30 or data[:4] != b"RIFF" or data[8:12] != b"WEBP":
        return
    chunk = data[12:16]
    if chunk == b"VP8X":
        width, height = int.from_bytes(data[24:27], "little") + 1, int.from_bytes(data[27:30], "little") + 1
    elif chunk == b"VP8L" and data[20] == 0x2F:
        bits = int.from_bytes(data[21:25], "little")
        width, height = (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    elif chunk == b"VP8 " and data[23:26] == b"\x9d\x01\x2a":
        width, height = int.from_bytes(data[26:28], "little") & 0x3FFF, int.from_bytes(data[28:30], "little") & 0x3FFF
    else:
        return  # Pillow refuses it
    cost = width * height * (4 + WEBP_DECODER_BYTES_PER_PIXEL)
    if width * height <= max_pixels and cost > max_decoded_bytes:
        raise ImageTooLargeError(
            f"Decoding the image (WEBP, {width}x{height} pixels) would take {cost:,} bytes of memory; "
            f"the limit is {max_decoded_bytes:,} (MAX_DECODED_BYTES)."
        )


def to_grayscale(image: Image.Image) -> np.ndarray:
    """Luminance 0..1 as float32, transparent areas filled so that strokes keep their contrast.

    A big picture is reduced first (`reduce_large`); the rest is computed in strips of rows, so that the only
    full-size array is the result.
    """
    image = reduce_large(image)
    if image.mode in HIGH_DEPTH_MODES:
        # 16-bit and float images: scale by the type's range, not Pillow's 8-bit clipping
        return _scaled_high_depth(image, _high_depth_top(image))
    if image.mode == "LAB":
        # a CIELAB TIFF: Pillow converts LAB to no grayscale mode, and L* is its lightness
        image = image.getchannel("L")
    if not _has_alpha(image):
        return _luminance(image)
    return _flattened(image)


def _has_alpha(image: Image.Image) -> bool:
    """Whether the picture has transparency: an alpha channel, or a palette with a transparent entry."""
    return image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (image.mode == "P" and "transparency" in image.info)


def _spans(length: int, line_bytes: int, multiple: int = 1) -> Iterator[tuple[int, int]]:
    """(start, end) of strips of rows (or columns) of about STRIP_BYTES each, a multiple of `multiple` lines (the
    last: the rest)."""
    lines = max(STRIP_BYTES // max(line_bytes, 1) // multiple, 1) * multiple
    for start in range(0, length, lines):
        yield start, min(start + lines, length)


def _strip(image: Image.Image, top: int, bottom: int) -> Image.Image:
    """Rows top..bottom of a picture (a copy of them only)."""
    return image.crop((0, top, image.width, bottom))


def _as_rgba(image: Image.Image) -> Image.Image:
    """A picture with transparency (LA, La, PA, RGBa, a palette with a transparent entry) in RGBA."""
    if image.mode == "La":
        image = image.convert("LA")  # grayscale with premultiplied alpha (a TIFF): Pillow converts it to LA only
    return image if image.mode == "RGBA" else image.convert("RGBA")


def reduce_large(image: Image.Image) -> Image.Image:
    """A picture of 2 or more times the working size reduced by a whole factor, at 8 bits, strip by strip.

    A PNG of a few kB can hold 50 megapixels; converted or as float32 arrays at full size it would take hundreds of
    MB. Here each strip of rows is converted (premultiplied RGBa when it has transparency, L for palettes and 1-bit,
    scaled float for 16-bit, 32-bit and float pictures) and box-averaged by the whole factor on its own, so the
    extra memory is one strip. The result equals converting the whole picture, then reducing it. Smaller pictures
    pass as they are.
    """
    factor = max(image.size) // (2 * WORKING_SIZE)
    if factor < 2:
        return image
    if image.mode in DIRECTLY_REDUCIBLE_MODES:
        return image.reduce(factor)
    width, height = image.size
    convert: Callable[[Image.Image], Image.Image]
    if image.mode in HIGH_DEPTH_MODES:
        top = _high_depth_top(image)
        mode, convert = "F", lambda strip: Image.fromarray(_scaled_values(strip, top))
    elif _has_alpha(image):
        # averaged with alpha premultiplied: a transparent pixel's colour does not bleed into the strokes
        mode, convert = "RGBa", lambda strip: _as_rgba(strip).convert("RGBa")
    elif image.mode == "LAB":
        mode, convert = "L", lambda strip: strip.getchannel("L")
    else:
        mode, convert = "L", lambda strip: strip.convert("L")  # 1-bit, palette, ...
    reduced = Image.new(mode, (-(-width // factor), -(-height // factor)))
    for top_row, bottom_row in _spans(height, width * 4, factor):
        reduced.paste(convert(_strip(image, top_row, bottom_row)).reduce(factor), (0, top_row // factor))
    return reduced.convert("RGBA") if mode == "RGBa" else reduced


def _high_depth_top(image: Image.Image) -> float:
    """The value that maps to white in a 16-bit, 32-bit or float picture: its type's range, as the picture uses it.

    Refuses a float picture holding NaN or infinity, which no picture of a digit has (and no step after handles).
    """
    if image.mode.startswith("I;16"):
        return 65535.0
    largest = 0.0
    for top, bottom in _spans(image.height, image.width * 4):
        values = np.asarray(_strip(image, top, bottom), dtype=np.float32)
        if image.mode == "F" and not np.isfinite(values).all():
            raise InvalidImageError("The image has pixels that are not numbers (NaN or infinity).")
        largest = max(largest, float(values.max(initial=0)))
    if image.mode == "F":
        return largest if largest > 1 else 1.0
    return 65535.0 if largest > 255 else 255.0


def _scaled_values(image: Image.Image, top: float) -> np.ndarray:
    """A high-depth picture's (or strip's) values divided by `top` and clipped into 0..1, as float32."""
    values = np.asarray(image, dtype=np.float32)
    values = values / top  # a new, writable array (the one above may be Pillow's read-only buffer)
    return np.clip(values, 0.0, 1.0, out=values)


def _scaled_high_depth(image: Image.Image, top: float) -> np.ndarray:
    """A 16-bit, 32-bit or float picture as 0..1 float32, converted strip by strip."""
    result = np.empty((image.height, image.width), dtype=np.float32)
    for top_row, bottom_row in _spans(image.height, image.width * 4):
        result[top_row:bottom_row] = _scaled_values(_strip(image, top_row, bottom_row), top)
    return result


def _luminance(image: Image.Image) -> np.ndarray:
    """An opaque 8-bit picture's luminance 0..1 as float32, converted to L strip by strip."""
    result = np.empty((image.height, image.width), dtype=np.float32)
    for top, bottom in _spans(image.height, image.width * 4):
        strip = _strip(image, top, bottom)
        result[top:bottom] = np.asarray(strip if strip.mode == "L" else strip.convert("L"))
    result /= 255.0
    return result


def _flattened(image: Image.Image) -> np.ndarray:
    """A picture with transparency as luminance 0..1 float32, its transparent areas filled behind the strokes."""
    height, width = image.height, image.width
    levels = np.empty((height, width), dtype=np.uint8)  # luminance, 0..255
    alpha_levels = np.empty((height, width), dtype=np.uint8)
    for top, bottom in _spans(height, width * 4):
        # a picture of one strip (a canvas) is converted as it is, without a copy of its rows
        rgba = _as_rgba(image if bottom - top == height else _strip(image, top, bottom))
        levels[top:bottom] = np.asarray(rgba.convert("L"))
        alpha_levels[top:bottom] = np.asarray(rgba.getchannel("A"))
    if alpha_levels.min() >= 250:
        return _levels_to_unit(levels)  # opaque
    # the opaque pixels, strip by strip
    opaque_count = sum(int(np.count_nonzero(alpha_levels[top:bottom] >= 128)) for top, bottom in _spans(height, width))
    if opaque_count == 0:
        return np.ones((height, width), dtype=np.float32)  # fully transparent: blank
    if 2 * opaque_count < height * width:
        # few opaque pixels are the strokes (a canvas export): fill behind them with the
        # opposite of their colour, white behind dark strokes and black behind light ones
        weighted, alpha_total = 0.0, 0.0
        for top, bottom in _spans(height, width * 8):
            alpha_float = alpha_levels[top:bottom].ravel().astype(np.float64)
            weighted += float(levels[top:bottom].ravel().astype(np.float64) @ alpha_float)
            alpha_total += float(alpha_float.sum())
        fill = 1.0 if weighted / (255.0 * alpha_total) < 0.5 else 0.0
    else:
        # mostly opaque: the opaque part is the scene; fill holes with its background, the median of its levels
        opaque_levels = np.zeros(256, dtype=np.int64)
        for top, bottom in _spans(height, width):
            opaque_levels += np.bincount(levels[top:bottom][alpha_levels[top:bottom] >= 128], minlength=256)
        fill = _median_of_levels(opaque_levels)
    result = np.empty((height, width), dtype=np.float32)
    for top, bottom in _spans(height, width * 4):
        luminance = _levels_to_unit(levels[top:bottom])
        alpha = _levels_to_unit(alpha_levels[top:bottom])
        luminance *= alpha
        np.subtract(1.0, alpha, out=alpha)
        alpha *= fill
        np.add(luminance, alpha, out=result[top:bottom])  # luminance * alpha + fill * (1 - alpha)
    return result


def _levels_to_unit(levels: np.ndarray) -> np.ndarray:
    """8-bit levels as float32 0..1."""
    values = levels.astype(np.float32)
    values /= 255.0
    return values


def _median_of_levels(counts: np.ndarray) -> float:
    """The median of 8-bit levels given as counts per level, as `_median` computes it on their float32 0..1 values."""
    cumulative = np.cumsum(counts)
    total = int(cumulative[-1])
    lower = int(np.searchsorted(cumulative, (total - 1) // 2, side="right"))
    upper = int(np.searchsorted(cumulative, total // 2, side="right"))
    unit = np.float32(255.0)
    return float(np.float32(lower) / unit + np.float32(upper) / unit) / 2.0


def shrink(gray: np.ndarray, longest: int) -> np.ndarray:
    """Scale a grayscale array down (area averaging) so its longer side is at most `longest`.

    Pillow's BOX resize in its two passes, done as Pillow 13 orders them (vertical first when the height shrinks by
    more than twice the width): the first pass strip by strip, the second on the picture it narrowed or shortened.
    The same values as resizing the whole array at once, without a full-size copy of it.
    """
    height, width = gray.shape
    factor = longest / max(height, width)
    if factor >= 1.0:
        return gray
    return _shrink_to(gray, (max(1, round(width * factor)), max(1, round(height * factor))))


def _shrink_to(gray: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Scale a grayscale array down (area averaging) to `size` (width, height), strip by strip as `shrink` says."""
    height, width = gray.shape
    if height - size[1] > 2 * (width - size[0]):
        half = np.empty((size[1], width), dtype=np.float32)  # shortened: the vertical pass, columns at a time
        for left, right in _spans(width, height * 4):
            strip = Image.fromarray(np.ascontiguousarray(gray[:, left:right]))
            half[:, left:right] = np.asarray(strip.resize((right - left, size[1]), Image.BOX))
    else:
        half = np.empty((height, size[0]), dtype=np.float32)  # narrowed: the horizontal pass, rows at a time
        for top, bottom in _spans(height, width * 4):
            strip = Image.fromarray(gray[top:bottom])
            half[top:bottom] = np.asarray(strip.resize((size[0], bottom - top), Image.BOX))
    return np.asarray(Image.fromarray(half).resize(size, Image.BOX), dtype=np.float32)


def _border(values: np.ndarray) -> np.ndarray:
    """The picture's edge pixels, once each: its first and last rows and columns."""
    if min(values.shape) < 3:
        return values.ravel()
    return np.concatenate([values[0], values[-1], values[1:-1, 0], values[1:-1, -1]])


def clean_border_level(border: np.ndarray) -> float | None:
    """The level of the paper along a picture's edge (its `_border`), when the edge is clean paper; else None."""
    border = np.sort(border)
    level = border[border.size // 2]  # a level the picture has, not a mean of two
    clean = np.count_nonzero(np.abs(border - level) <= CLEAN_BORDER_TOLERANCE) >= CLEAN_BORDER_SHARE * border.size
    return float(level) if clean else None


def _line_runs(changed: np.ndarray) -> np.ndarray:
    """Lengths of the runs of identical lines between the first and last change (`changed[i]`: line i+1 differs from
    line i); the margins before the first change and after the last are paper, not the lattice."""
    changes = np.flatnonzero(changed)
    return np.diff(changes)


def pixel_block(gray: np.ndarray) -> tuple[float, float] | None:
    """The size (rows, columns) of the blocks of a picture enlarged with hard pixel edges, or None if it is not one.

    Rows and columns are compared in strips of about STRIP_BYTES, so that a large picture costs no full-size copy.
    """
    height, width = gray.shape
    if min(height, width) < 2 * MIN_PIXEL_BLOCK:
        return None
    row_changed = np.zeros(height - 1, dtype=bool)
    column_changed = np.zeros(width - 1, dtype=bool)
    for top, bottom in _spans(height, width * 4):
        strip = gray[max(top - 1, 0) : bottom]
        row_changed[max(top - 1, 0) : bottom - 1] |= np.any(strip[1:] != strip[:-1], axis=1)
        column_changed |= np.any(gray[top:bottom, 1:] != gray[top:bottom, :-1], axis=0)
    blocks: list[float | None] = []
    for changed in (row_changed, column_changed):
        runs = _line_runs(changed)
        if runs.size < 2:
            blocks.append(None)  # too few changes to tell (the rows of a bare upright stroke): the other way decides
            continue
        size = float(np.min(runs[runs >= np.median(runs) / 2]))  # one block; some runs span two or more
        multiples = np.maximum(np.round(runs / size), 1.0)
        on_lattice = np.abs(runs - multiples * size) <= multiples
        if size < MIN_PIXEL_BLOCK or np.count_nonzero(on_lattice) < PIXEL_BLOCK_REGULARITY * runs.size:
            return None
        blocks.append(float(runs.sum() / multiples.sum()))  # the mean block: an enlargement by 9.4 has runs of 9 and 10
    if blocks[0] is None and blocks[1] is None:
        return None
    return blocks[0] or blocks[1], blocks[1] or blocks[0]


def smooth_pixels(gray: np.ndarray, block: tuple[float, float], longest: int) -> np.ndarray:
    """A hard-pixelled picture as the drawing it stands for: its grid of pixels enlarged smoothly (bicubic), at most
    `longest` pixels on its longer side."""
    height, width = gray.shape
    grid = _shrink_to(gray, (max(1, round(width / block[1])), max(1, round(height / block[0]))))
    factor = min(longest / max(height, width), 1.0)
    size = (max(1, round(width * factor)), max(1, round(height * factor)))
    smooth = np.asarray(Image.fromarray(grid).resize(size, Image.BICUBIC), dtype=np.float32)
    return np.clip(smooth, grid.min(), grid.max())  # bicubic's overshoot is no ink (nor paper) the picture had


def working_picture(gray: np.ndarray, longest: int = WORKING_SIZE) -> np.ndarray:
    """The decoded grayscale picture at the size the digit is looked for in: hard pixels smoothed, then shrunk."""
    block = pixel_block(gray)
    if block is not None:
        return smooth_pixels(gray, block, longest)
    return shrink(gray, longest)


def _background(values: np.ndarray, from_border: bool = False) -> np.ndarray:
    """A smooth surface under the ink (uneven light, vignetting): a robust quadratic fit to block medians.

    The fit starts from the darker (background) blocks, or with `from_border` from the blocks along the edge, so
    that strokes covering most of the picture are not taken for its background.
    """
    height, width = values.shape
    block = max(1, max(height, width) // 24)
    flat = np.full_like(values, _median(_border(values)) if from_border else np.median(values))
    if min(height, width) < 48:
        return flat  # a small picture (a 28x28 digit, an icon) has no lighting to model
    rows, cols = height // block, width // block
    block_medians = np.median(values[: rows * block, : cols * block].reshape(rows, block, cols, block), axis=(1, 3))
    medians = block_medians.ravel()
    y, x = np.meshgrid(
        (np.arange(rows) + 0.5) * block / height * 2 - 1,
        (np.arange(cols) + 0.5) * block / width * 2 - 1,
        indexing="ij",
    )
    x, y = x.ravel(), y.ravel()
    design = np.stack([np.ones_like(x), x, y, x * x, x * y, y * y], axis=1)
    if from_border:
        edge = np.zeros((rows, cols), dtype=bool)
        edge[[0, -1], :] = edge[:, [0, -1]] = True
        keep = edge.ravel() & (medians <= np.median(medians[edge.ravel()]) + CLEAN_BORDER_TOLERANCE)
    else:
        keep = medians <= np.percentile(medians, 60)  # start from the darker (background) blocks
    for _ in range(4):
        coefficients, *_ = np.linalg.lstsq(design[keep], medians[keep], rcond=None)
        residual = medians - design @ coefficients
        spread = 1.4826 * np.median(np.abs(residual[keep])) + 1e-3
        # ink is bright here: blocks far above the surface are ink, not background
        keep = (residual < 2.0 * spread) & (residual > -4.0 * spread)
        if keep.sum() < design.shape[1] * 2:
            return flat
    grid_y, grid_x = np.meshgrid(
        (np.arange(height) + 0.5) / height * 2 - 1, (np.arange(width) + 0.5) / width * 2 - 1, indexing="ij"
    )
    c = coefficients
    surface = c[0] + c[1] * grid_x + c[2] * grid_y + c[3] * grid_x**2 + c[4] * grid_x * grid_y + c[5] * grid_y**2
    # the surface stays within the background's own range
    return np.clip(surface, values.min(), medians[keep].max()).astype(np.float32)


def ink_strength(gray: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bright-on-black ink strength of a grayscale picture, with its strong and weak (hysteresis) masks."""
    # order statistics by one sort: numpy's vectorised sort beats partition and median on pictures
    ordered = np.sort(gray, axis=None)
    # the ink level is a high order statistic, so that a few hot pixels of noise do not set it
    rank = min(max(int(0.0002 * gray.size), 3), 50) if gray.size > 6 else 1
    low, middle, high = ordered[rank - 1], ordered[gray.size // 2], ordered[gray.size - rank]
    # the background is the clean paper along the edge, if there is such, else the typical (median) level
    border = _border(gray)
    border_level = clean_border_level(border)
    if border_level is not None:
        middle = np.float32(border_level)
    # the ink is the tail farther from the background level: dark ink on light paper is flipped
    dark_ink = (middle - low) > (high - middle)
    values = 1.0 - gray if dark_ink else gray
    flat_count = np.count_nonzero(gray == middle)
    if 2 * flat_count > gray.size or (
        border_level is not None
        and flat_count >= FLAT_BACKGROUND_SHARE * gray.size
        and np.count_nonzero(border == middle) >= CLEAN_BORDER_SHARE * border.size
    ):
        # a flat background (a canvas, a screenshot, MNIST itself) covers most pixels, or the edge and a good part of
        # the picture: it is that level, exactly, and the noise around it is zero
        background = 1.0 - middle if dark_ink else middle
        strength = np.maximum(values - background, 0.0)
        noise = 0.0
        peak = max(float((1.0 - low if dark_ink else high) - background), 0.0)
    else:
        residual = values - _background(values, from_border=border_level is not None)
        # the noise of the background: measured on the clean edge when there is one (heavy strokes may be most pixels)
        paper = _border(residual) if border_level is not None else residual
        noise = 1.4826 * _median(np.abs(paper - _median(paper)))
        strength = np.clip(residual, 0.0, None)
        peak = float(np.sort(strength, axis=None)[-rank])
    if peak < max(0.08, 8.0 * noise):
        raise NoDigitError("No digit found: the image is blank or has too little contrast.")

    # hysteresis: faint ink counts where it connects to clearly dark (strong) ink
    strong = strength > 0.5 * peak
    weak = strength > max(0.2 * peak, 4.0 * noise)
    return strength, strong, weak


def find_ink(gray: np.ndarray) -> Ink:
    """Turn a grayscale picture into bright ink on black and locate the digit in it."""
    strength, strong, weak = ink_strength(gray)
    labels, count = ndimage.label(weak, structure=EIGHT_NEIGHBOURS)
    height, width = strength.shape
    if count == 1:
        # one connected stroke, as in most clean drawings: the digit, if it has strong ink and some size
        if not strong.any() or np.count_nonzero(weak) < max(2.0, 0.0001 * strength.size):
            raise NoDigitError("No digit found: only specks of noise.")
        rows, cols = np.flatnonzero(weak.any(axis=1)), np.flatnonzero(weak.any(axis=0))
        first_row, first_col, end_row, end_col = int(rows[0]), int(cols[0]), int(rows[-1]) + 1, int(cols[-1]) + 1
    else:
        flat_labels = labels.ravel()
        has_strong = np.bincount(flat_labels, weights=strong.ravel(), minlength=count + 1)[1:] > 0
        areas = np.bincount(flat_labels, minlength=count + 1)[1:].astype(np.float64)
        masses = np.bincount(flat_labels, weights=strength.ravel(), minlength=count + 1)[1:]
        slices = ndimage.find_objects(labels)
        touches_border = np.array(
            [s[0].start == 0 or s[1].start == 0 or s[0].stop == height or s[1].stop == width for s in slices]
        )
        candidates = has_strong & (areas >= max(2.0, 0.0001 * strength.size))
        if not candidates.any():
            raise NoDigitError("No digit found: only specks of noise.")
        # a band along an edge (a table beyond the paper, the paper's own edge, a shadow) is not the digit while a
        # sizeable mark lies elsewhere: then neither it nor what touches it is chosen
        bands = np.array([_is_band(piece, height, width) for piece in slices])
        rivals = candidates & ~bands & (areas >= BAND_RIVAL_SHARE * strength.size)
        excluded = bands if rivals.any() else np.zeros_like(bands)
        # the digit is the heaviest stroke, preferring strokes that are not cut by the picture's edge
        chosen = _choose_digit_strokes(
            slices, areas, masses * np.where(touches_border, 0.25, 1.0), candidates & ~excluded, excluded
        )
        first_row, first_col = min(slices[i][0].start for i in chosen), min(slices[i][1].start for i in chosen)
        end_row, end_col = max(slices[i][0].stop for i in chosen), max(slices[i][1].stop for i in chosen)
    # keep the chosen strokes and a rim around them (their anti-aliased edges), nothing else,
    # working on the digit's neighbourhood only: its strokes' box and a margin for their rims
    margin = 3
    top, left = max(first_row - margin, 0), max(first_col - margin, 0)
    bottom, right = min(end_row + margin, height), min(end_col + margin, width)
    strength = strength[top:bottom, left:right]
    if count == 1:
        strokes = weak[top:bottom, left:right]
    else:
        neighbourhood = labels[top:bottom, left:right]
        strokes = neighbourhood == chosen[0] + 1 if len(chosen) == 1 else np.isin(neighbourhood, chosen + 1)
    keep = grow(grow(strokes))
    level = percentile(strength[strokes], 90)
    strength = clip_unit(strength * np.float32(1.0 / max(level, 1e-6)))
    strength[~keep] = 0.0
    inked = strength > 0.05
    rows = np.flatnonzero(inked.any(axis=1))
    cols = np.flatnonzero(inked.any(axis=0))
    return Ink(strength=strength, box=(int(rows[0]), int(cols[0]), int(rows[-1]) + 1, int(cols[-1]) + 1))


def clip_unit(values: np.ndarray) -> np.ndarray:
    """Clip a float array into 0..1 in place (two ufunc calls, without np.clip's wrapper)."""
    np.maximum(values, 0.0, out=values)
    return np.minimum(values, 1.0, out=values)


def _median(values: np.ndarray) -> float:
    """The median, by a sort (several times faster than np.median on a picture)."""
    ordered = np.sort(values, axis=None)
    return float(ordered[(ordered.size - 1) // 2] + ordered[ordered.size // 2]) / 2.0


def percentile(values: np.ndarray, percent: float) -> float:
    """A percentile with linear interpolation (numpy's default method), by a sort."""
    ordered = np.sort(values, axis=None)
    position = percent / 100.0 * (ordered.size - 1)
    below = int(position)
    above = min(below + 1, ordered.size - 1)
    return float(ordered[below] + (ordered[above] - ordered[below]) * (position - below))


def grow(mask: np.ndarray) -> np.ndarray:
    """A boolean mask grown by one pixel up, down, left and right (binary dilation by a cross)."""
    grown = mask.copy()
    grown[1:] |= mask[:-1]
    grown[:-1] |= mask[1:]
    grown[:, 1:] |= mask[:, :-1]
    grown[:, :-1] |= mask[:, 1:]
    return grown


def _erode(mask: np.ndarray) -> np.ndarray:
    """A boolean mask shrunk by one pixel (binary erosion by a cross; outside the array counts as empty)."""
    eroded = mask.copy()
    eroded[1:] &= mask[:-1]
    eroded[:-1] &= mask[1:]
    eroded[:, 1:] &= mask[:, :-1]
    eroded[:, :-1] &= mask[:, 1:]
    eroded[0] = eroded[-1] = False
    eroded[:, 0] = eroded[:, -1] = False
    return eroded


def _is_band(piece: tuple[slice, slice], height: int, width: int) -> bool:
    """Whether a mark's box lies along an edge of the picture for most of that edge's length."""
    rows, cols = piece
    along_top_or_bottom = (rows.start == 0 or rows.stop == height) and cols.stop - cols.start >= BAND_SPAN * width
    along_left_or_right = (cols.start == 0 or cols.stop == width) and rows.stop - rows.start >= BAND_SPAN * height
    return along_top_or_bottom or along_left_or_right


def _choose_digit_strokes(
    slices: list,
    areas: np.ndarray,
    weights: np.ndarray,
    candidates: np.ndarray,
    excluded: np.ndarray,
) -> np.ndarray:
    """Indices of the digit's strokes: the heaviest one, then every sizeable stroke close to the growing box (marks
    `excluded` never)."""
    main = int(np.argmax(np.where(candidates, weights, -1.0)))
    sizeable = np.flatnonzero((areas >= 0.03 * areas[main]) & ~excluded)  # a 5's floating bar, not a speck
    top, left = slices[main][0].start, slices[main][1].start
    bottom, right = slices[main][0].stop, slices[main][1].stop
    chosen = [main]
    grew = True
    while grew:
        grew = False
        reach = 0.3 * max(bottom - top, right - left)
        for other in sizeable:
            rows, cols = slices[other]
            gap = max(rows.start - bottom, top - rows.stop, cols.start - right, left - cols.stop, 0)
            if other not in chosen and gap <= reach:
                chosen.append(int(other))
                top, left = min(top, rows.start), min(left, cols.start)
                bottom, right = max(bottom, rows.stop), max(right, cols.stop)
                grew = True
    return np.array(chosen)


def stroke_width(strength: np.ndarray) -> float:
    """Typical stroke width in pixels: twice the inked area over its outline length."""
    mask = strength > 0.5
    outline = mask & ~_erode(mask)
    return 2.0 * np.count_nonzero(mask) / max(np.count_nonzero(outline), 1)


def _resize(values: np.ndarray, width: int, height: int) -> np.ndarray:
    """Resample a float array with Lanczos anti-aliasing: one small matrix product per axis."""
    rows = _resize_weights.get(values.shape[0], height)
    columns = _resize_weights.get(values.shape[1], width)
    return (rows @ values @ columns.T).astype(np.float32)


class _WeightsCache:
    """The Lanczos weights of the sizes used last, up to `max_bytes` in all, whatever sizes uploads come in.

    Reading a number normalises hundreds of candidate digits of a few hundred different sizes:
    bounding the cache by bytes rather than by entries keeps many small matrices at no risk.
    """

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.held_bytes = 0
        self.entries: collections.OrderedDict[tuple[int, int], np.ndarray] = collections.OrderedDict()
        self.lock = threading.Lock()  # a worker's threads share it

    def get(self, source: int, target: int) -> np.ndarray:
        """The weights for resampling `source` pixels to `target`, made once while they stay in the cache."""
        key = (source, target)
        with self.lock:
            weights = self.entries.get(key)
            if weights is not None:
                self.entries.move_to_end(key)
                return weights
        weights = _lanczos_weights(source, target)
        with self.lock:
            if key not in self.entries:
                self.entries[key] = weights
                self.held_bytes += weights.nbytes
                while self.held_bytes > self.max_bytes and len(self.entries) > 1:
                    self.held_bytes -= self.entries.popitem(last=False)[1].nbytes
        return weights


# The most bytes of Lanczos weights a process keeps: the weights of the last 300 sizes or so a number needed (about
# 20 kB each); one large upload's are up to 400 kB. Kept up to 8 MB instead of the last 64 sizes (with masks made from
# their pieces), a number read in a median 327 ms against 380 (p95 1.5 s against 1.9), and the two workers held about
# 9 MB more; a 16 MB budget held 338 MB against 304 (docs/PERFORMANCE.md).
RESIZE_WEIGHT_BYTES = 8 * 2**20
_resize_weights = _WeightsCache(RESIZE_WEIGHT_BYTES)


def _lanczos_weights(source: int, target: int) -> np.ndarray:
    """The (target, source) Lanczos-3 weights Pillow uses, widened when shrinking so that it averages."""
    scale = source / target
    widen = max(scale, 1.0)
    centres = (np.arange(target) + 0.5) * scale
    # each output pixel reads the source pixels within 3 (widened) pixels of its centre, as Pillow does
    first = np.maximum((centres - 3.0 * widen + 0.5).astype(int), 0)
    last = np.minimum((centres + 3.0 * widen + 0.5).astype(int), source)
    pixels = first[:, np.newaxis] + np.arange(int(np.ceil(6.0 * widen)) + 2)  # (target, window)
    x = (pixels - centres[:, np.newaxis] + 0.5) / widen
    inside = (pixels < last[:, np.newaxis]) & (np.abs(x) < 3.0)
    kernel = np.where(inside, np.sinc(x) * np.sinc(x / 3.0), 0.0)
    totals = kernel.sum(axis=1, keepdims=True)
    kernel = np.divide(kernel, totals, out=np.zeros_like(kernel), where=totals != 0.0)
    weights = np.zeros((target, source))
    weights[np.nonzero(inside)[0], pixels[inside]] = kernel[inside]
    weights.flags.writeable = False  # shared by every call through the cache
    return weights


def normalize_digit(ink: Ink) -> np.ndarray:
    """Fit the digit into a 20x20 box (aspect kept), even out its stroke width, centre it by mass in 28x28."""
    top, left, bottom, right = ink.box
    digit = ink.strength[top:bottom, left:right]
    height, width = digit.shape
    # at a fixed working scale, thicken hairlines and slim very fat marker strokes towards MNIST's width
    scale = STROKE_SCALE / max(height, width)
    scaled_w, scaled_h = max(1, round(width * scale)), max(1, round(height * scale))
    digit = clip_unit(_resize(digit, scaled_w, scaled_h))
    # faint strokes (a fine pen shrunk from a big photo) back to full strength
    inked = digit[digit > 0.1 * digit.max()]
    digit = clip_unit(digit / max(percentile(inked, 90), 1e-6)) if inked.size else digit
    stroke = stroke_width(digit)
    # MNIST's own strokes span about 0.8-1.55x the typical width: only pens outside that change
    if stroke < 0.75 * TYPICAL_STROKE_WIDTH:
        radius = max(1, round((0.95 * TYPICAL_STROKE_WIDTH - stroke) / 2))
        # grey dilation into a margin of `radius`; the zeros around the digit (ink is >= 0) change nothing
        digit = _disk_filter(np.pad(digit, 2 * radius), radius, np.maximum)
    elif stroke > 1.6 * TYPICAL_STROKE_WIDTH:
        radius = max(1, round((stroke - 1.3 * TYPICAL_STROKE_WIDTH) / 2))
        digit = _disk_filter(np.pad(digit, radius, mode="symmetric"), radius, np.minimum)  # grey erosion
    # 20x20 box, longer side exactly 20, anti-aliased grey levels like MNIST
    height, width = digit.shape
    factor = BOX_SIZE / max(height, width)
    boxed = clip_unit(_resize(digit, max(1, round(width * factor)), max(1, round(height * factor))))
    if boxed.max() <= 0:
        raise NoDigitError("No digit found: the marks vanish at 28x28.")
    boxed /= boxed.max()
    return centre_by_mass(boxed)


def centre_by_mass(boxed: np.ndarray) -> np.ndarray:
    """A digit fitted into its 20x20 box placed in 28x28 float32 with its centre of mass at (14, 14), by a
    whole-pixel shift, as MNIST did."""
    total = boxed.sum(dtype=np.float64)
    centre_y = float(boxed.sum(axis=1) @ np.arange(boxed.shape[0])) / total
    centre_x = float(boxed.sum(axis=0) @ np.arange(boxed.shape[1])) / total
    frame = np.zeros((FRAME_SIZE, FRAME_SIZE), dtype=np.float32)
    offset_y = min(max(round(FRAME_SIZE / 2 - centre_y), 0), FRAME_SIZE - boxed.shape[0])
    offset_x = min(max(round(FRAME_SIZE / 2 - centre_x), 0), FRAME_SIZE - boxed.shape[1])
    frame[offset_y : offset_y + boxed.shape[0], offset_x : offset_x + boxed.shape[1]] = boxed
    return frame


def _disk_filter(padded: np.ndarray, radius: int, reduce: np.ufunc) -> np.ndarray:
    """Grey dilation (np.maximum) or erosion (np.minimum) by a disk, of an array padded by `radius`.

    The disk holds the offsets (dy, dx) with dy*dy + dx*dx <= radius*radius + radius. The result
    equals scipy's grey_dilation/grey_erosion with that footprint, computed row by row: first the
    maxima (minima) over centred runs of 1, 3, ... 2*radius+1 pixels, then for each row offset
    the run as wide as the disk is there. That is 4*radius+1 ufunc calls instead of scipy's
    generic footprint filter: 5-10x faster on a digit.
    """
    height, width = padded.shape[0] - 2 * radius, padded.shape[1] - 2 * radius
    runs = [padded[:, radius : radius + width]]
    for half_width in range(1, radius + 1):
        left = padded[:, radius - half_width : radius - half_width + width]
        right = padded[:, radius + half_width : radius + half_width + width]
        runs.append(reduce(reduce(runs[-1], left), right))
    result = None
    for dy in range(-radius, radius + 1):
        run = runs[math.isqrt(radius * radius + radius - dy * dy)][radius + dy : radius + dy + height]
        result = run.copy() if result is None else reduce(result, run, out=result)
    return result


def image_to_array(image: Image.Image) -> np.ndarray:
    """A decoded picture -> the network's 28x28 float32 input (bright digit on black, 0..1)."""
    return normalize_digit(find_ink(working_picture(to_grayscale(image))))


def encode_png(image: np.ndarray) -> bytes:
    """A grayscale array as PNG file bytes: uint8 as it is, floats 0..1 scaled to 0..255."""
    if image.dtype != np.uint8:
        image = np.round(np.clip(image, 0.0, 1.0) * 255.0).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(image, "L").save(buffer, format="PNG")
    return buffer.getvalue()


def preprocess(
    data: bytes,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_decoded_bytes: int = DEFAULT_MAX_DECODED_BYTES,
    budget: PixelBudget | None = None,
) -> np.ndarray:
    """Image file bytes -> the network's 28x28 float32 input; raises the model package's errors.

    The decoded picture is let go once grayscale, the full-size grayscale once shrunk to the working size.
    """
    gray = working_picture(decode_grayscale(data, max_pixels, max_decoded_bytes, budget)[0])
    return normalize_digit(find_ink(gray))
