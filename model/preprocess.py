"""From uploaded image bytes to the 28x28 array the network reads, normalised the way MNIST was made.

Bytes in, array out, no web framework: decode the upload (PNG, JPEG, GIF, WebP, BMP or TIFF),
find the ink whatever the background, pick the digit, fit it into a 20x20 box keeping its
aspect ratio and centre it by its centre of mass in a 28x28 frame, bright ink on black, values 0..1.
"""

import collections
import io
import math
import threading
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps
from scipy import ndimage

from model.errors import ImageTooLargeError, InvalidImageError, NoDigitError

# MNIST's geometry: the digit fits a 20x20 box whose centre of mass sits at (14, 14) of 28x28.
frame_size = 28
box_size = 20
# The digit is found on a copy at most this many pixels on its longer side.
working_size = 640
# Stroke widths are measured and adjusted with the digit's longer side at this many pixels.
stroke_scale = 80
# MNIST's typical stroke is about 2.6 pixels wide in the 20-pixel box (13 % of the box).
typical_stroke_width = 0.13 * stroke_scale
# The default ceiling on decoded pixels (a 50-megapixel phone photo still fits).
default_max_pixels = 50_000_000
# EXIF's orientation tag: 1 is upright, 2-8 are mirrored or rotated.
ORIENTATION_TAG = 0x0112
# The formats the service reads (JPEG includes phones' MPO). Pillow knows 40 more; each is more
# parser exposed to uploads, and EPS runs Ghostscript, a PostScript interpreter, on the file.
READABLE_FORMATS = ("PNG", "JPEG", "GIF", "WEBP", "BMP", "TIFF")
# Strokes connect through edges and corners.
EIGHT_NEIGHBOURS = np.ones((3, 3), dtype=bool)


@dataclass(frozen=True)
class Ink:
    """Where the ink is: bright-on-black strengths and the bounding box of the chosen digit."""

    strength: np.ndarray  # float32, the digit's neighbourhood: 0 = background, 1 = full ink
    box: tuple[int, int, int, int]  # top, left, bottom, right (exclusive) in `strength`


def decode_image(data: bytes, max_pixels: int = default_max_pixels) -> Image.Image:
    """Open image bytes with Pillow: first frame, EXIF orientation applied, fully loaded."""
    if not data:
        raise InvalidImageError("The uploaded file is empty.")
    try:
        with warnings.catch_warnings():
            # Pillow's own check, from the header, at the configured limit (its default is 89 MP): it
            # raises past twice the limit, and between once and twice the check below names the size
            Image.MAX_IMAGE_PIXELS = max_pixels
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=READABLE_FORMATS)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageTooLargeError(f"The image has more than {max_pixels:,} pixels.") from None
    except Exception:  # Pillow raises many kinds for bytes that are not an image
        raise InvalidImageError("The upload is not an image in a format this service reads.") from None
    width, height = image.size
    if width * height > max_pixels:
        raise ImageTooLargeError(
            f"The image has {width * height:,} pixels ({width}x{height}); the limit is {max_pixels:,}."
        )
    if width < 1 or height < 1:
        raise InvalidImageError("The image has no pixels.")
    try:
        image.seek(0)  # animated GIF/WebP, multi-page TIFF: the first frame
        # JPEG can decode at 1/2, 1/4 or 1/8 scale, which saves time and memory on big photos
        if image.format in ("JPEG", "MPO"):
            image.draft(image.mode if image.mode in ("L", "RGB") else None, (working_size, working_size))
        image.load()
        if image.getexif().get(ORIENTATION_TAG, 1) != 1:  # a phone photo taken sideways
            image = ImageOps.exif_transpose(image) or image
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageTooLargeError(f"The image has more than {max_pixels:,} pixels.") from None
    except Exception:
        raise InvalidImageError("The image is corrupted or truncated and cannot be decoded.") from None
    return image


def to_grayscale(image: Image.Image) -> np.ndarray:
    """Luminance 0..1 as float32, transparent areas filled so that strokes keep their contrast."""
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        # 16-bit and float images: scale by the type's range, not Pillow's 8-bit clipping
        values = np.asarray(image, dtype=np.float32)
        if image.mode == "F" and not np.isfinite(values).all():
            # a float TIFF can hold NaN or infinity, which no picture of a digit has (and no step below handles)
            raise InvalidImageError("The image has pixels that are not numbers (NaN or infinity).")
        top = 65535.0 if values.max(initial=0) > 255 or image.mode.startswith("I;16") else 255.0
        if image.mode == "F":
            top = max(float(values.max(initial=0)), 1.0) if values.max(initial=0) > 1 else 1.0
        return np.clip(values / top, 0.0, 1.0)
    if image.mode == "LAB":
        # a CIELAB TIFF: Pillow converts LAB to no grayscale mode, and L* is its lightness
        image = image.getchannel("L")
    elif image.mode == "La":
        # grayscale with premultiplied alpha (a TIFF): Pillow converts it to LA only
        image = image.convert("LA")
    image = _reduce_large(image)
    if not _has_alpha(image):
        return np.asarray(image if image.mode == "L" else image.convert("L"), dtype=np.float32) / 255.0
    rgba = image.convert("RGBA")
    luminance = np.asarray(rgba.convert("L"), dtype=np.float32) / 255.0
    alpha_levels = np.asarray(rgba.getchannel("A"))
    if alpha_levels.min() >= 250:
        return luminance  # opaque
    opaque = alpha_levels >= 128
    if not opaque.any():
        return np.ones_like(luminance)  # fully transparent: blank
    alpha = alpha_levels.astype(np.float32) / 255.0
    if 2 * np.count_nonzero(opaque) < opaque.size:
        # few opaque pixels are the strokes (a canvas export): fill behind them with the
        # opposite of their colour, white behind dark strokes and black behind light ones
        stroke_luminance = float(luminance.ravel() @ alpha.ravel()) / float(alpha.sum())
        fill = 1.0 if stroke_luminance < 0.5 else 0.0
    else:
        # mostly opaque: the opaque part is the scene; fill holes with its background
        fill = _median(luminance[opaque])
    return luminance * alpha + fill * (1.0 - alpha)


def _has_alpha(image: Image.Image) -> bool:
    """Whether the picture has transparency: an alpha channel, or a palette with a transparent entry."""
    return image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (image.mode == "P" and "transparency" in image.info)


def _reduce_large(image: Image.Image) -> Image.Image:
    """A picture of 2 or more times the working size reduced by a whole factor in Pillow's 8-bit modes.

    A PNG of a few kB can hold 49 megapixels; as float32 arrays at full size it would take 400 MB.
    Reduced here first (box averages, alpha premultiplied), it never does. Smaller ones pass as they are.
    """
    factor = max(image.size) // (2 * working_size)
    if factor < 2:
        return image
    if image.mode not in ("L", "RGB", "RGBA", "CMYK", "YCbCr"):
        image = image.convert("RGBA" if _has_alpha(image) else "L")  # 1-bit, palette, LA, ...
    if image.mode == "RGBA":
        # averaged with alpha premultiplied: a transparent pixel's colour does not bleed into the strokes
        return image.convert("RGBa").reduce(factor).convert("RGBA")
    return image.reduce(factor)


def _shrink(gray: np.ndarray, longest: int) -> np.ndarray:
    """Scale a grayscale array down (area averaging) so its longer side is at most `longest`."""
    height, width = gray.shape
    factor = longest / max(height, width)
    if factor >= 1.0:
        return gray
    size = (max(1, round(width * factor)), max(1, round(height * factor)))
    return np.asarray(Image.fromarray(gray, "F").resize(size, Image.BOX), dtype=np.float32)


def _background(values: np.ndarray) -> np.ndarray:
    """A smooth surface under the ink (uneven light, vignetting): a robust quadratic fit to block medians."""
    height, width = values.shape
    block = max(1, max(height, width) // 24)
    flat = np.full_like(values, np.median(values))
    if min(height, width) < 48:
        return flat  # a small picture (a 28x28 digit, an icon) has no lighting to model
    rows, cols = height // block, width // block
    medians = np.median(
        values[: rows * block, : cols * block].reshape(rows, block, cols, block), axis=(1, 3)
    ).ravel()
    y, x = np.meshgrid(
        (np.arange(rows) + 0.5) * block / height * 2 - 1, (np.arange(cols) + 0.5) * block / width * 2 - 1,
        indexing="ij",
    )
    x, y = x.ravel(), y.ravel()
    design = np.stack([np.ones_like(x), x, y, x * x, x * y, y * y], axis=1)
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
    # the ink is the tail farther from the typical (background) level: dark ink on light paper is flipped
    dark_ink = (middle - low) > (high - middle)
    values = 1.0 - gray if dark_ink else gray
    if 2 * np.count_nonzero(gray == middle) > gray.size:
        # a flat background (a canvas, a screenshot, MNIST itself) covers most pixels: it is the
        # median, exactly, and the noise around it is zero
        background = 1.0 - middle if dark_ink else middle
        strength = np.maximum(values - background, 0.0)
        noise = 0.0
        peak = max(float((1.0 - low if dark_ink else high) - background), 0.0)
    else:
        residual = values - _background(values)
        noise = 1.4826 * _median(np.abs(residual - _median(residual)))
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
        # the digit is the heaviest stroke, preferring strokes that are not cut by the picture's edge
        chosen = _choose_digit_strokes(slices, areas, masses * np.where(touches_border, 0.25, 1.0), candidates)
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
    keep = _grow(_grow(strokes))
    level = _percentile(strength[strokes], 90)
    strength = _clip_unit(strength * np.float32(1.0 / max(level, 1e-6)))
    strength[~keep] = 0.0
    inked = strength > 0.05
    rows = np.flatnonzero(inked.any(axis=1))
    cols = np.flatnonzero(inked.any(axis=0))
    return Ink(strength=strength, box=(int(rows[0]), int(cols[0]), int(rows[-1]) + 1, int(cols[-1]) + 1))


def _clip_unit(values: np.ndarray) -> np.ndarray:
    """Clip a float array into 0..1 in place (two ufunc calls, without np.clip's wrapper)."""
    np.maximum(values, 0.0, out=values)
    return np.minimum(values, 1.0, out=values)


def _median(values: np.ndarray) -> float:
    """The median, by a sort (several times faster than np.median on a picture)."""
    ordered = np.sort(values, axis=None)
    return float(ordered[(ordered.size - 1) // 2] + ordered[ordered.size // 2]) / 2.0


def _percentile(values: np.ndarray, percent: float) -> float:
    """A percentile with linear interpolation (numpy's default method), by a sort."""
    ordered = np.sort(values, axis=None)
    position = percent / 100.0 * (ordered.size - 1)
    below = int(position)
    above = min(below + 1, ordered.size - 1)
    return float(ordered[below] + (ordered[above] - ordered[below]) * (position - below))


def _grow(mask: np.ndarray) -> np.ndarray:
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


def _choose_digit_strokes(slices: list, areas: np.ndarray, weights: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    """Indices of the digit's strokes: the heaviest one, then every sizeable stroke close to the growing box."""
    main = int(np.argmax(np.where(candidates, weights, -1.0)))
    sizeable = np.flatnonzero(areas >= 0.03 * areas[main])  # a 5's floating bar, not a speck
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


def _stroke_width(strength: np.ndarray) -> float:
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


# 8 MB: the weights of the last 300 sizes or so a number needed (about 20 kB each); one large upload's are up to 400 kB
_resize_weights = _WeightsCache(8 * 2**20)


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
    scale = stroke_scale / max(height, width)
    scaled_w, scaled_h = max(1, round(width * scale)), max(1, round(height * scale))
    digit = _clip_unit(_resize(digit, scaled_w, scaled_h))
    # faint strokes (a fine pen shrunk from a big photo) back to full strength
    inked = digit[digit > 0.1 * digit.max()]
    digit = _clip_unit(digit / max(_percentile(inked, 90), 1e-6)) if inked.size else digit
    stroke = _stroke_width(digit)
    # MNIST's own strokes span about 0.8-1.55x the typical width: only pens outside that change
    if stroke < 0.75 * typical_stroke_width:
        radius = max(1, round((0.95 * typical_stroke_width - stroke) / 2))
        # grey dilation into a margin of `radius`; the zeros around the digit (ink is >= 0) change nothing
        digit = _disk_filter(np.pad(digit, 2 * radius), radius, np.maximum)
    elif stroke > 1.6 * typical_stroke_width:
        radius = max(1, round((stroke - 1.3 * typical_stroke_width) / 2))
        digit = _disk_filter(np.pad(digit, radius, mode="symmetric"), radius, np.minimum)  # grey erosion
    # 20x20 box, longer side exactly 20, anti-aliased grey levels like MNIST
    height, width = digit.shape
    factor = box_size / max(height, width)
    boxed = _clip_unit(_resize(digit, max(1, round(width * factor)), max(1, round(height * factor))))
    if boxed.max() <= 0:
        raise NoDigitError("No digit found: the marks vanish at 28x28.")
    boxed /= boxed.max()
    # centre of mass to (14, 14) by a whole-pixel shift, as MNIST did
    total = boxed.sum(dtype=np.float64)
    centre_y = float(boxed.sum(axis=1) @ np.arange(boxed.shape[0])) / total
    centre_x = float(boxed.sum(axis=0) @ np.arange(boxed.shape[1])) / total
    frame = np.zeros((frame_size, frame_size), dtype=np.float32)
    offset_y = min(max(round(frame_size / 2 - centre_y), 0), frame_size - boxed.shape[0])
    offset_x = min(max(round(frame_size / 2 - centre_x), 0), frame_size - boxed.shape[1])
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
    gray = _shrink(to_grayscale(image), working_size)
    return normalize_digit(find_ink(gray))


def encode_png(image: np.ndarray) -> bytes:
    """A grayscale array as PNG file bytes: uint8 as it is, floats 0..1 scaled to 0..255."""
    if image.dtype != np.uint8:
        image = np.round(np.clip(image, 0.0, 1.0) * 255.0).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(image, "L").save(buffer, format="PNG")
    return buffer.getvalue()


def preprocess(data: bytes, max_pixels: int = default_max_pixels) -> np.ndarray:
    """Image file bytes -> the network's 28x28 float32 input; raises the model package's errors."""
    return image_to_array(decode_image(data, max_pixels))
