"""Realistic uploads made from MNIST digits: browser canvases, screenshots, photos and scans.

Each scene is a function `(digit, rng) -> bytes`: it takes one 28x28 uint8 MNIST digit (white ink
on black) and a numpy Generator and returns the encoded image file (PNG or JPEG) a user might
upload. The same digit and the same generator state always give the same bytes.
"""

import io
from collections.abc import Callable

import numpy as np
from PIL import Image, ImageDraw
from scipy import ndimage

Renderer = Callable[[np.ndarray, np.random.Generator], bytes]
Color = tuple[float, float, float]

# MNIST pixels at or above this level (0..1) count as ink when a digit is cropped or thinned.
INK_LEVEL = 0.4
# A cropped digit keeps this many empty MNIST pixels around its ink.
CROP_MARGIN = 1
# Thinning runs on the digit upscaled by this factor, smoothed by this sigma (in upscaled pixels).
SKELETON_FACTOR = 4
SKELETON_SMOOTHING = 1.2
# Skeleton points are averaged over this window (upscaled pixels) so drawn lines do not zigzag.
SKELETON_AVERAGING = 5
SKELETON_PASSES = 2
# Pen strokes are drawn this many times larger and box-filtered down: anti-aliased edges.
SUPERSAMPLE = 3
# Empty pixels kept around a drawn digit so its anti-aliased edges and blur are not cut.
DRAW_PADDING = 4
# Width (output pixels) of the anti-aliased edge of a thresholded, smoothly upscaled digit.
SOFT_EDGE = 1.5
# A smoothly upscaled digit is blurred by this many MNIST pixels and cut at this level (0..1):
# round, even outlines instead of the wobble of the 28-pixel lattice.
SHAPE_SMOOTHING = 0.6
SHAPE_LEVEL = 0.45
# An MNIST stroke is typically this share of the digit's longer side.
TYPICAL_STROKE_FRACTION = 0.13
# An off-centre digit starts within this share of the free room from one edge or the other.
OFF_CENTRE_SHARE = 0.4

# A browser <canvas> of the kind handwriting demos use.
CANVAS_SIZE = 280
CANVAS_DIGIT_SIZE = (110, 230)  # longer side of the digit, pixels
CANVAS_MARGIN = 6

# Phone screenshots of a drawing app in dark mode.
SCREEN_SIZES = ((1080, 1920), (1170, 2532), (828, 1792))  # width, height
SCREEN_BACKGROUND: Color = (32, 33, 36)  # #202124
SCREEN_BAR: Color = (48, 49, 52)  # app bar and navigation bar, #303134
SCREEN_BAR_FRACTION = (0.07, 0.06)  # top bar, bottom bar, of the screen height
SCREEN_INK: Color = (232, 234, 237)
SCREEN_DIGIT_FRACTION = (0.3, 0.7)  # of the screen width
SCREEN_STROKE_FRACTION = (0.06, 0.11)  # of the digit height
SCREEN_MARGIN = 0.03  # of the screen width

# A phone photo of a yellow sticky note filling the frame.
NOTE_SIZE = (1600, 1200)  # width, height
NOTE_COLOR: Color = (250, 230, 90)
NOTE_COLOR_JITTER = 6.0
NOTE_BLOTCHES = 0.012  # relative brightness variation of the paper
NOTE_DIGIT_FRACTION = (0.15, 0.35)  # of the frame height
NOTE_STROKE_FRACTION = (0.015, 0.03)  # of the digit height
NOTE_SHADE = (0.25, 0.40)  # how much darker the far corner is
NOTE_NOISE = (4.0, 8.0)  # camera noise sigma, gray levels
NOTE_BLUR = (0.7, 1.4)  # optical blur sigma, pixels
NOTE_INKS: tuple[Color, ...] = ((22, 34, 96), (24, 24, 30))  # blue and black pens
NOTE_QUALITY = (80, 90)

# A grayscale A4 page scanned at 150 dpi with a small handwritten digit.
SCAN_SIZE = (1240, 1754)  # width, height
SCAN_PAPER = (236.0, 246.0)
SCAN_TEXTURE = 2.0  # amplitude of the paper's blotchy texture, gray levels
SCAN_NOISE = (1.5, 3.0)
SCAN_DIGIT_HEIGHT = (100, 200)  # pixels
SCAN_STROKE = (3.0, 6.0)  # pixels
SCAN_INK = (35.0, 90.0)  # gray level of the ink
SCAN_MARGIN = 0.06  # of the page size

# A 12-megapixel phone photo of a digit written with a ballpoint pen on white paper.
BALLPOINT_SIZE = (3000, 4000)  # width, height
BALLPOINT_PAPER: Color = (238, 236, 228)
BALLPOINT_DIGIT_HEIGHT = (600, 900)  # pixels
BALLPOINT_STROKE = (3.0, 5.0)  # pixels
BALLPOINT_INK: Color = (28, 44, 138)
BALLPOINT_PRESSURE = (0.6, 1.0)  # ink opacity range along the line
BALLPOINT_SHADE = (0.08, 0.2)
BALLPOINT_NOISE = (3.0, 5.0)
BALLPOINT_BLUR = 0.8
BALLPOINT_QUALITY = (85, 92)
BAND_ROWS = 512  # large frames are built this many rows at a time

# A thick black marker on white paper, saved as PNG.
MARKER_WIDTHS = (1000, 1600)  # frame width; the frame is 4:3
MARKER_PAPER: Color = (250, 250, 247)
MARKER_INK: Color = (18, 18, 20)
MARKER_DIGIT_FRACTION = (0.4, 0.7)  # longer side of the digit, of the frame height
MARKER_STROKE_FRACTION = (0.2, 0.25)  # of the digit's longer side
MARKER_NOISE = 2.0
MARKER_ROUNDING = 0.4  # outline smoothing, as a share of how far the shape is dilated
MARKER_MIN_ROUNDING = 0.015  # and at least this share of the digit's size

# Dark felt-tip ink on a saturated sheet of coloured paper.
PAPER_COLORS: tuple[Color, ...] = ((246, 168, 200), (158, 204, 242), (150, 222, 150))
PAPER_COLOR_JITTER = 8.0
PAPER_BLOTCHES = 0.012
PAPER_SIZE = (1200, 900)  # width, height
PAPER_DIGIT_FRACTION = (0.3, 0.6)
PAPER_STROKE_FRACTION = (0.05, 0.09)
PAPER_INKS: tuple[Color, ...] = ((20, 20, 26), (26, 30, 84))
PAPER_SHADE = (0.05, 0.15)
PAPER_NOISE = 3.0
PAPER_QUALITY = (82, 90)

PNG_COMPRESSION = 3  # zlib level for large noisy PNGs: realistic files, quicker to write


# --- the digit's shape ------------------------------------------------------------------------


def _crop(digit: np.ndarray) -> np.ndarray:
    """The digit's ink box plus a small margin, as float32 0..1."""
    values = np.asarray(digit, dtype=np.float32) / 255.0
    rows = np.flatnonzero((values >= INK_LEVEL).any(axis=1))
    cols = np.flatnonzero((values >= INK_LEVEL).any(axis=0))
    if rows.size == 0:
        raise ValueError("the MNIST digit has no ink")
    values = np.pad(values, CROP_MARGIN)
    return values[rows[0] : rows[-1] + 1 + 2 * CROP_MARGIN, cols[0] : cols[-1] + 1 + 2 * CROP_MARGIN]


def _upscale(values: np.ndarray, width: int, height: int) -> np.ndarray:
    """Bicubic resize of a float array."""
    image = Image.fromarray(np.ascontiguousarray(values, dtype=np.float32), "F")
    return np.asarray(image.resize((width, height), Image.BICUBIC), dtype=np.float32)


def _shape_field(digit: np.ndarray, size: int) -> tuple[np.ndarray, float]:
    """The digit smoothly upscaled so its longer side is about `size` pixels, and the scale factor used."""
    crop = _crop(digit)
    factor = size / (max(crop.shape) - 2 * CROP_MARGIN)
    height, width = (max(1, round(side * factor)) for side in crop.shape)
    # blurring rounds off the wobble of the 28-pixel lattice
    field = ndimage.gaussian_filter(_upscale(crop, width, height), sigma=SHAPE_SMOOTHING * factor)
    return field, factor


def shape_alpha(digit: np.ndarray, size: int) -> np.ndarray:
    """Ink coverage 0..1 of the digit smoothly upscaled so its longer side is about `size` pixels."""
    field, factor = _shape_field(digit, size)
    # the field rises by about 1 over `factor` pixels at a stroke's edge: a ramp SOFT_EDGE pixels wide
    alpha = np.clip((field - SHAPE_LEVEL) * factor / SOFT_EDGE + 0.5, 0.0, 1.0)
    return np.pad(alpha, DRAW_PADDING).astype(np.float32)


def marker_alpha(digit: np.ndarray, size: int, stroke_fraction: float) -> np.ndarray:
    """Ink coverage 0..1 of the digit's shape dilated until its strokes are `stroke_fraction` of its size."""
    # dilation adds to the outline too: start smaller so the grown digit ends up about `size` pixels
    inner = max(8, round(size * (1.0 - stroke_fraction) / (1.0 - TYPICAL_STROKE_FRACTION)))
    field, _ = _shape_field(digit, inner)
    mask = field >= SHAPE_LEVEL
    outline = mask & ~ndimage.binary_erosion(mask)
    own_width = 2.0 * mask.sum() / max(int(outline.sum()), 1)
    grow = max(0.0, (stroke_fraction * size - own_width) / 2.0)
    pad = int(np.ceil(grow)) + DRAW_PADDING
    mask = np.pad(mask, pad)
    # signed distance to the outline, positive inside: grow it and keep a one-pixel anti-aliased edge
    inside, outside = ndimage.distance_transform_edt(mask), ndimage.distance_transform_edt(~mask)
    signed = (inside - outside + grow).astype(np.float32)
    rounding = max(MARKER_ROUNDING * grow, MARKER_MIN_ROUNDING * size)
    signed = ndimage.gaussian_filter(signed, rounding)  # a felt tip rounds off small bumps
    return np.clip(signed + 0.5, 0.0, 1.0).astype(np.float32)


def _thin(mask: np.ndarray) -> np.ndarray:
    """Zhang-Suen thinning: a one-pixel-wide skeleton of a binary mask."""
    image = np.pad(mask, 1).astype(np.uint8)
    while True:
        changed = False
        for step in (0, 1):
            p = image
            # neighbours clockwise from north: P2 .. P9
            around = [
                p[:-2, 1:-1], p[:-2, 2:], p[1:-1, 2:], p[2:, 2:],
                p[2:, 1:-1], p[2:, :-2], p[1:-1, :-2], p[:-2, :-2],
            ]  # fmt: skip
            count = sum(n.astype(np.int16) for n in around)
            transitions = sum(((around[i] == 0) & (around[(i + 1) % 8] == 1)).astype(np.int16) for i in range(8))
            north, east, south, west = around[0], around[2], around[4], around[6]
            if step == 0:
                side = (north * east * south == 0) & (east * south * west == 0)
            else:
                side = (north * east * west == 0) & (north * south * west == 0)
            remove = (p[1:-1, 1:-1] == 1) & (count >= 2) & (count <= 6) & (transitions == 1) & side
            if remove.any():
                image[1:-1, 1:-1][remove] = 0
                changed = True
        if not changed:
            return image[1:-1, 1:-1].astype(bool)


def _skeleton(digit: np.ndarray) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """The digit's centre line: smoothed point positions (N, 2) as (y, x) and segments between them."""
    crop = _crop(digit)
    height, width = (side * SKELETON_FACTOR for side in crop.shape)
    field = ndimage.gaussian_filter(_upscale(crop, width, height), SKELETON_SMOOTHING)
    skeleton = _thin(field >= INK_LEVEL)
    if not skeleton.any():
        skeleton = field >= field.max() * 0.9
    # average each point with its skeleton neighbours: staircase steps become straight lines
    ys, xs = np.nonzero(skeleton)
    weight = skeleton.astype(np.float32)
    grid_y, grid_x = np.indices(skeleton.shape, dtype=np.float32)
    window = np.ones((SKELETON_AVERAGING, SKELETON_AVERAGING), dtype=np.float32)
    total = np.maximum(ndimage.correlate(weight, window, mode="constant"), 1.0)
    mean_y, mean_x = grid_y, grid_x
    for _ in range(SKELETON_PASSES):
        mean_y = ndimage.correlate(weight * mean_y, window, mode="constant") / total
        mean_x = ndimage.correlate(weight * mean_x, window, mode="constant") / total
    points = np.stack([mean_y[ys, xs], mean_x[ys, xs]], axis=1)
    index = np.full(skeleton.shape, -1, dtype=np.int64)
    index[ys, xs] = np.arange(ys.size)
    padded = np.pad(index, 1, constant_values=-1)
    segments: list[tuple[int, int]] = []
    for dy, dx in ((0, 1), (1, 0), (1, 1), (1, -1)):
        neighbour = padded[1 + dy : 1 + dy + skeleton.shape[0], 1 + dx : 1 + dx + skeleton.shape[1]][ys, xs]
        linked = neighbour >= 0
        if dy and dx:  # a diagonal step is redundant where an L-shaped pair already joins the two
            beside_a = padded[1 : 1 + skeleton.shape[0], 1 + dx : 1 + dx + skeleton.shape[1]][ys, xs]
            beside_b = padded[2 : 2 + skeleton.shape[0], 1 : 1 + skeleton.shape[1]][ys, xs]
            linked &= (beside_a < 0) & (beside_b < 0)
        segments.extend(zip(np.flatnonzero(linked).tolist(), neighbour[linked].tolist(), strict=False))
    return points, segments


def pen_alpha(digit: np.ndarray, height: float, stroke: float, max_width: float | None = None) -> np.ndarray:
    """Ink coverage 0..1 of the digit redrawn as a pen line `stroke` pixels wide, about `height` pixels tall."""
    points, segments = _skeleton(digit)
    low, high = points.min(axis=0), points.max(axis=0)
    extent_y, extent_x = np.maximum(high - low, 1.0)
    scale = max(height - stroke, 1.0) / extent_y
    if max_width is not None:
        scale = min(scale, max(max_width - stroke, 1.0) / extent_x)
    pad = stroke / 2 + DRAW_PADDING
    out_height = int(np.ceil(extent_y * scale + 2 * pad))
    out_width = int(np.ceil(extent_x * scale + 2 * pad))
    ss = SUPERSAMPLE
    canvas = Image.new("L", (out_width * ss, out_height * ss), 0)
    draw = ImageDraw.Draw(canvas)
    xy = ((points - low) * scale + pad) * ss
    radius = stroke * ss / 2
    width = max(1, round(stroke * ss))
    for a, b in segments:
        draw.line([(xy[a, 1], xy[a, 0]), (xy[b, 1], xy[b, 0])], fill=255, width=width)
    for y, x in xy:  # round joints and caps
        draw.ellipse([x - radius, y - radius, x + radius, y + radius], fill=255)
    return np.asarray(canvas.reduce(ss), dtype=np.float32) / 255.0


# --- backgrounds, placement and files ------------------------------------------------------------


def smooth_noise(height: int, width: int, rng: np.random.Generator, cells: int = 6) -> np.ndarray:
    """A smooth random field about N(0, 1): a few random values per side, bicubically upscaled."""
    rows = max(2, round(cells * height / max(height, width))) + 1
    cols = max(2, round(cells * width / max(height, width))) + 1
    coarse = rng.standard_normal((rows, cols)).astype(np.float32)
    return _upscale(coarse, width, height)


def _shading(
    rows: slice, height: int, width: int, corner: tuple[int, int], depth: float, vignette: float = 0.0
) -> np.ndarray:
    """Brightness 1 at one corner falling smoothly to 1-depth at the opposite one, for a band of rows."""
    y = (np.arange(height, dtype=np.float32)[rows] + 0.5) / height
    x = (np.arange(width, dtype=np.float32) + 0.5) / width
    dy = (y if corner[0] == 0 else 1 - y)[:, None]
    dx = (x if corner[1] == 0 else 1 - x)[None, :]
    distance = np.sqrt(dy * dy + dx * dx) / np.sqrt(2.0)
    light = 1.0 - depth * distance**1.5
    if vignette:
        light -= vignette * (((y[:, None] - 0.5) ** 2 + (x[None, :] - 0.5) ** 2) * 2.0)
    return light.astype(np.float32)


def _offset(span: int, rng: np.random.Generator, off_centre: bool) -> int:
    """A random offset in 0..span; with `off_centre`, within the outer OFF_CENTRE_SHARE at either end."""
    if not off_centre:
        return int(rng.integers(0, span + 1))
    near = int(rng.integers(0, int(OFF_CENTRE_SHARE * span) + 1))
    return near if rng.integers(2) == 0 else span - near


def _place(
    frame: tuple[int, int], ink: tuple[int, int], rng: np.random.Generator, margin: int = 0, off_centre: bool = False
) -> tuple[int, int]:
    """A random top-left corner that keeps an ink box inside the frame; optionally away from the middle."""
    span_y = max(frame[0] - ink[0] - 2 * margin, 0)
    span_x = max(frame[1] - ink[1] - 2 * margin, 0)
    return margin + _offset(span_y, rng, off_centre), margin + _offset(span_x, rng, off_centre)


def _paint(reflectance: np.ndarray, alpha: np.ndarray, top: int, left: int, ink: Color | float) -> None:
    """Lay ink of coverage `alpha` over the frame in place (float, last axis colour when 3-D)."""
    height = min(alpha.shape[0], reflectance.shape[0] - top)
    width = min(alpha.shape[1], reflectance.shape[1] - left)
    region = reflectance[top : top + height, left : left + width]
    a = alpha[:height, :width]
    if region.ndim == 3:
        a = a[..., None]
        ink_values = np.asarray(ink, dtype=np.float32)
    else:
        ink_values = np.float32(ink)
    region *= 1.0 - a
    region += a * ink_values


def _jitter(color: Color, rng: np.random.Generator, spread: float) -> np.ndarray:
    """A colour varied by a small random amount per channel."""
    return np.clip(np.asarray(color, dtype=np.float32) + rng.normal(0.0, spread, 3), 0, 255).astype(np.float32)


def _pressure(alpha: np.ndarray, rng: np.random.Generator, low: float, high: float) -> np.ndarray:
    """Ink coverage modulated smoothly between `low` and `high`, like uneven pen pressure."""
    field = smooth_noise(alpha.shape[0], alpha.shape[1], rng, cells=5)
    opacity = low + (high - low) * np.clip(0.5 + 0.3 * field, 0.0, 1.0)
    return alpha * opacity


def _to_uint8(values: np.ndarray) -> np.ndarray:
    """Round and clip float pixel values into uint8."""
    return np.clip(np.rint(values), 0, 255).astype(np.uint8)


def _encode_png(pixels: np.ndarray, mode: str, compress_level: int = 6) -> bytes:
    """PNG file bytes of a uint8 array."""
    buffer = io.BytesIO()
    Image.fromarray(pixels, mode).save(buffer, format="PNG", compress_level=compress_level)
    return buffer.getvalue()


def _encode_jpeg(pixels: np.ndarray, quality: int) -> bytes:
    """JPEG file bytes of a uint8 RGB or L array."""
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=int(quality))
    return buffer.getvalue()


def file_extension(data: bytes) -> str:
    """The usual file extension of encoded image bytes ('png', 'jpg' or 'bin')."""
    if data.startswith(b"\x89PNG"):
        return "png"
    if data.startswith(b"\xff\xd8"):
        return "jpg"
    return "bin"


# --- the scenes -----------------------------------------------------------------------------------


def _canvas_alpha(digit: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A 280x280 stroke coverage: the digit at a random size and place on a canvas."""
    size = int(rng.integers(CANVAS_DIGIT_SIZE[0], CANVAS_DIGIT_SIZE[1] + 1))
    alpha = shape_alpha(digit, size)[:CANVAS_SIZE, :CANVAS_SIZE]
    frame = np.zeros((CANVAS_SIZE, CANVAS_SIZE), dtype=np.float32)
    top, left = _place(frame.shape, alpha.shape, rng, margin=CANVAS_MARGIN - DRAW_PADDING)
    _paint(frame, alpha, top, left, 1.0)
    return frame


def canvas_transparent(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    """A browser canvas export: 280x280 RGBA PNG, transparent background, black anti-aliased strokes."""
    alpha = _canvas_alpha(digit, rng)
    pixels = np.zeros((CANVAS_SIZE, CANVAS_SIZE, 4), dtype=np.uint8)
    pixels[..., 3] = _to_uint8(alpha * 255.0)
    return _encode_png(pixels, "RGBA")


def canvas_white(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    """A browser canvas painted white first: 280x280 RGB PNG, black strokes on white."""
    alpha = _canvas_alpha(digit, rng)
    gray = _to_uint8(255.0 * (1.0 - alpha))
    return _encode_png(np.repeat(gray[..., None], 3, axis=2), "RGB")


def screen_light_on_dark(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    """A dark-mode drawing app screenshot: light gray strokes on #202124 between app bars, PNG."""
    width, height = SCREEN_SIZES[int(rng.integers(len(SCREEN_SIZES)))]
    frame = np.empty((height, width, 3), dtype=np.float32)
    frame[:] = np.asarray(SCREEN_BACKGROUND, dtype=np.float32)
    top_bar, bottom_bar = (round(fraction * height) for fraction in SCREEN_BAR_FRACTION)
    frame[:top_bar] = SCREEN_BAR
    frame[height - bottom_bar :] = SCREEN_BAR
    digit_height = rng.uniform(*SCREEN_DIGIT_FRACTION) * width
    stroke = rng.uniform(*SCREEN_STROKE_FRACTION) * digit_height
    alpha = pen_alpha(digit, digit_height, stroke, max_width=0.9 * width)
    area = (height - top_bar - bottom_bar, width)
    top, left = _place(area, alpha.shape, rng, margin=round(SCREEN_MARGIN * width))
    _paint(frame, alpha, top + top_bar, left, SCREEN_INK)
    return _encode_png(_to_uint8(frame), "RGB")


def sticky_note_photo(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    """A phone photo of a yellow sticky note: uneven light, camera noise, thin pen digit off centre, JPEG."""
    width, height = NOTE_SIZE
    base = _jitter(NOTE_COLOR, rng, NOTE_COLOR_JITTER)
    blotches = 1.0 + NOTE_BLOTCHES * smooth_noise(height, width, rng, cells=4)
    frame = base[None, None, :] * blotches[..., None]
    digit_height = rng.uniform(*NOTE_DIGIT_FRACTION) * height
    stroke = rng.uniform(*NOTE_STROKE_FRACTION) * digit_height
    alpha = pen_alpha(digit, digit_height, stroke, max_width=0.6 * width)
    alpha = _pressure(alpha, rng, 0.85, 1.0)
    alpha = ndimage.gaussian_filter(alpha, rng.uniform(*NOTE_BLUR))  # the lens blurs the ink's edges
    top, left = _place((height, width), alpha.shape, rng, margin=height // 20, off_centre=True)
    _paint(frame, alpha, top, left, NOTE_INKS[int(rng.integers(len(NOTE_INKS)))])
    corner = (int(rng.integers(2)), int(rng.integers(2)))
    frame *= _shading(slice(None), height, width, corner, rng.uniform(*NOTE_SHADE), vignette=0.05)[..., None]
    frame += rng.standard_normal(frame.shape, dtype=np.float32) * np.float32(rng.uniform(*NOTE_NOISE))
    return _encode_jpeg(_to_uint8(frame), int(rng.integers(NOTE_QUALITY[0], NOTE_QUALITY[1] + 1)))


def small_digit_in_scan(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    """A 150 dpi grayscale A4 scan of white paper with a small pen digit somewhere on it, PNG."""
    width, height = SCAN_SIZE
    paper = rng.uniform(*SCAN_PAPER)
    frame = paper + SCAN_TEXTURE * smooth_noise(height, width, rng, cells=40)
    frame += rng.standard_normal(frame.shape, dtype=np.float32) * np.float32(rng.uniform(*SCAN_NOISE))
    digit_height = rng.uniform(*SCAN_DIGIT_HEIGHT)
    alpha = pen_alpha(digit, digit_height, rng.uniform(*SCAN_STROKE))
    alpha = _pressure(alpha, rng, 0.8, 1.0)
    margin_y, margin_x = round(SCAN_MARGIN * height), round(SCAN_MARGIN * width)
    top, left = _place((height - 2 * margin_y, width - 2 * margin_x), alpha.shape, rng)
    _paint(frame, alpha, top + margin_y, left + margin_x, rng.uniform(*SCAN_INK))
    return _encode_png(_to_uint8(frame), "L", PNG_COMPRESSION)


def ballpoint_highres(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    """A 12-megapixel phone photo of a thin blue ballpoint digit on white paper, JPEG."""
    width, height = BALLPOINT_SIZE
    paper = _jitter(BALLPOINT_PAPER, rng, 2.0)
    digit_height = rng.uniform(*BALLPOINT_DIGIT_HEIGHT)
    alpha = pen_alpha(digit, digit_height, rng.uniform(*BALLPOINT_STROKE), max_width=0.8 * width)
    alpha = ndimage.gaussian_filter(_pressure(alpha, rng, *BALLPOINT_PRESSURE), BALLPOINT_BLUR)
    top, left = _place((height, width), alpha.shape, rng, margin=height // 12, off_centre=True)
    corner = (int(rng.integers(2)), int(rng.integers(2)))
    depth = rng.uniform(*BALLPOINT_SHADE)
    noise = np.float32(rng.uniform(*BALLPOINT_NOISE))
    ink = _jitter(BALLPOINT_INK, rng, 6.0)
    pixels = np.empty((height, width, 3), dtype=np.uint8)
    for start in range(0, height, BAND_ROWS):  # a band at a time keeps the float copies small
        rows = slice(start, min(start + BAND_ROWS, height))
        band = np.empty((rows.stop - start, width, 3), dtype=np.float32)
        band[:] = paper
        if top < rows.stop and top + alpha.shape[0] > start:
            cut = alpha[max(start - top, 0) : rows.stop - top]
            _paint(band, cut, max(top - start, 0), left, ink)
        band *= _shading(rows, height, width, corner, depth, vignette=0.06)[..., None]
        band += (rng.standard_normal(band.shape[:2], dtype=np.float32) * noise)[..., None]
        pixels[rows] = _to_uint8(band)
    return _encode_jpeg(pixels, int(rng.integers(BALLPOINT_QUALITY[0], BALLPOINT_QUALITY[1] + 1)))


def fat_marker(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    """A very thick black marker digit on white paper (strokes ~20-25 % of its height), PNG."""
    width = int(rng.integers(MARKER_WIDTHS[0], MARKER_WIDTHS[1] + 1))
    height = width * 3 // 4
    frame = np.empty((height, width, 3), dtype=np.float32)
    frame[:] = _jitter(MARKER_PAPER, rng, 1.5)
    size = round(rng.uniform(*MARKER_DIGIT_FRACTION) * height)
    alpha = marker_alpha(digit, size, rng.uniform(*MARKER_STROKE_FRACTION))
    top, left = _place((height, width), alpha.shape, rng)
    _paint(frame, alpha, top, left, MARKER_INK)
    frame += (rng.standard_normal((height, width), dtype=np.float32) * np.float32(MARKER_NOISE))[..., None]
    return _encode_png(_to_uint8(frame), "RGB", PNG_COMPRESSION)


def colored_paper(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    """Dark felt-tip ink on pink, light blue or green paper, mild light falloff and noise, JPEG."""
    width, height = PAPER_SIZE
    base = _jitter(PAPER_COLORS[int(rng.integers(len(PAPER_COLORS)))], rng, PAPER_COLOR_JITTER)
    frame = base[None, None, :] * (1.0 + PAPER_BLOTCHES * smooth_noise(height, width, rng, cells=4))[..., None]
    digit_height = rng.uniform(*PAPER_DIGIT_FRACTION) * height
    stroke = rng.uniform(*PAPER_STROKE_FRACTION) * digit_height
    alpha = ndimage.gaussian_filter(pen_alpha(digit, digit_height, stroke, max_width=0.8 * width), 0.8)
    top, left = _place((height, width), alpha.shape, rng, margin=height // 20)
    _paint(frame, _pressure(alpha, rng, 0.85, 1.0), top, left, PAPER_INKS[int(rng.integers(len(PAPER_INKS)))])
    corner = (int(rng.integers(2)), int(rng.integers(2)))
    frame *= _shading(slice(None), height, width, corner, rng.uniform(*PAPER_SHADE))[..., None]
    frame += rng.standard_normal(frame.shape, dtype=np.float32) * np.float32(PAPER_NOISE)
    return _encode_jpeg(_to_uint8(frame), int(rng.integers(PAPER_QUALITY[0], PAPER_QUALITY[1] + 1)))


SCENES: dict[str, Renderer] = {
    "canvas_transparent": canvas_transparent,
    "canvas_white": canvas_white,
    "screen_light_on_dark": screen_light_on_dark,
    "sticky_note_photo": sticky_note_photo,
    "small_digit_in_scan": small_digit_in_scan,
    "ballpoint_highres": ballpoint_highres,
    "fat_marker": fat_marker,
    "colored_paper": colored_paper,
}
