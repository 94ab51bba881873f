"""Writing styles MNIST's writers seldom used, made from MNIST digits themselves (training only).

MNIST's 1s are mostly a bare stroke and its 7s have no bar; many schools teach a 1 with a flag and a
7 crossed through its stem, and some scanners stretch every digit to fill its box. Each function
takes one 28x28 uint8 MNIST digit (bright ink on black) and a numpy Generator and returns a new
28x28 uint8 digit of the same class, as MNIST would have drawn it: ink fitted into 20x20, centred
by mass. The pen strokes they add are as wide as the digit's own.
"""

import numpy as np
from PIL import Image, ImageDraw

from model.decoding import centre_by_mass

# The digit's ink: pixels at or above this level (0..255).
INK_LEVEL = 100
# Strokes are drawn this many times larger and shrunk back: anti-aliased edges.
SUPERSAMPLE = 4
# A flag on a 1: its length as a share of the digit's height, and its angle below the horizontal (degrees).
FLAG_LENGTH = (0.2, 0.38)
FLAG_ANGLE = (25.0, 60.0)
# A base (foot) under a 1, on some of the flagged ones: its share of the height, either side of the stem.
FOOT_SHARE = 0.35
FOOT_PROBABILITY = 0.3
# The bar across a 7's stem: its height on the digit (share from the top), its half-length (share of the height).
BAR_HEIGHT = (0.45, 0.6)
BAR_HALF_LENGTH = (0.15, 0.25)
# Box-filling: the digit's narrower side is stretched towards its longer one by this share of the difference
# at most (1.0 would fill the box; a bare stroke of a 1 stays a stroke, however wide).
FILL_SHARE = (0.4, 1.0)
MAX_STRETCH = 3.0
# MNIST's frame and the box its ink is fitted into.
FRAME = 28
BOX = 20


def _ink_box(digit: np.ndarray) -> tuple[int, int, int, int]:
    """The ink's bounding box: top, left, bottom, right (exclusive)."""
    rows, cols = np.flatnonzero(digit.max(axis=1) >= INK_LEVEL), np.flatnonzero(digit.max(axis=0) >= INK_LEVEL)
    return int(rows[0]), int(cols[0]), int(rows[-1]) + 1, int(cols[-1]) + 1


def _stroke_width(digit: np.ndarray) -> float:
    """The digit's typical stroke width in pixels: its inked area over half its outline."""
    mask = digit >= INK_LEVEL
    inner = mask.copy()
    inner[1:] &= mask[:-1]
    inner[:-1] &= mask[1:]
    inner[:, 1:] &= mask[:, :-1]
    inner[:, :-1] &= mask[:, 1:]
    return 2.0 * mask.sum() / max(int((mask & ~inner).sum()), 1)


def _draw_lines(digit: np.ndarray, lines: list[tuple[tuple[float, float], tuple[float, float]]]) -> np.ndarray:
    """The digit with round-ended pen lines ((x, y) to (x, y), in pixels) drawn over it as wide as its strokes."""
    width = max(1.5, _stroke_width(digit)) * SUPERSAMPLE
    canvas = Image.new("L", (FRAME * SUPERSAMPLE, FRAME * SUPERSAMPLE), 0)
    pen = ImageDraw.Draw(canvas)
    for start, end in lines:
        points = [coordinate * SUPERSAMPLE for point in (start, end) for coordinate in point]
        pen.line(points, fill=255, width=round(width))
        for x, y in (start, end):
            radius = width / 2
            pen.ellipse(
                (
                    x * SUPERSAMPLE - radius,
                    y * SUPERSAMPLE - radius,
                    x * SUPERSAMPLE + radius,
                    y * SUPERSAMPLE + radius,
                ),
                fill=255,
            )
    strokes = np.asarray(canvas.reduce(SUPERSAMPLE))
    return refit(np.maximum(digit, strokes))


def refit(digit: np.ndarray) -> np.ndarray:
    """Ink of any box fitted into 20x20 (aspect kept) and centred by mass in 28x28, as MNIST was made."""
    top, left, bottom, right = _ink_box(digit)
    crop = digit[max(top - 1, 0) : bottom + 1, max(left - 1, 0) : right + 1].astype(np.float32)
    scale = BOX / max(crop.shape)
    size = (max(1, round(crop.shape[1] * scale)), max(1, round(crop.shape[0] * scale)))
    boxed = np.clip(np.asarray(Image.fromarray(crop, "F").resize(size, Image.BILINEAR)), 0, 255)
    return np.round(centre_by_mass(boxed)).astype(np.uint8)


def flagged_one(digit: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A 1 given the flag (and sometimes the foot) that continental schools teach."""
    top, left, bottom, right = _ink_box(digit)
    height = bottom - top
    top_x = float(np.flatnonzero(digit[top] >= INK_LEVEL).mean()) + 0.5
    length = rng.uniform(*FLAG_LENGTH) * height
    angle = np.radians(rng.uniform(*FLAG_ANGLE))
    start = (top_x, top + 0.5)
    lines = [(start, (top_x - length * np.cos(angle), top + 0.5 + length * np.sin(angle)))]
    if rng.random() < FOOT_PROBABILITY:
        bottom_x = float(np.flatnonzero(digit[bottom - 1] >= INK_LEVEL).mean()) + 0.5
        half = FOOT_SHARE * height / 2
        lines.append(((bottom_x - half, bottom - 0.5), (bottom_x + half, bottom - 0.5)))
    return _draw_lines(digit, lines)


def crossed_seven(digit: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A 7 with the bar across its stem that continental schools teach."""
    top, left, bottom, right = _ink_box(digit)
    height = bottom - top
    row = top + round(rng.uniform(*BAR_HEIGHT) * height)
    inked = np.flatnonzero(digit[row] >= INK_LEVEL)
    if inked.size == 0:
        return digit
    centre = float(inked.mean()) + 0.5
    half = rng.uniform(*BAR_HALF_LENGTH) * height
    tilt = rng.uniform(-0.08, 0.08) * height
    return _draw_lines(digit, [((centre - half, row + 0.5 + tilt), (centre + half, row + 0.5 - tilt))])


def box_filling(digit: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The digit stretched across its narrower side towards filling a square box, as some scans are made."""
    top, left, bottom, right = _ink_box(digit)
    crop = digit[top:bottom, left:right].astype(np.float32)
    height, width = crop.shape
    longer, shorter = max(height, width), min(height, width)
    target = min(shorter + rng.uniform(*FILL_SHARE) * (longer - shorter), MAX_STRETCH * shorter)
    size = (round(target), height) if width < height else (width, round(target))
    stretched = np.clip(np.asarray(Image.fromarray(crop, "F").resize(size, Image.BILINEAR)), 0, 255)
    canvas = np.zeros((max(size[1], FRAME), max(size[0], FRAME)), dtype=np.float32)
    canvas[: size[1], : size[0]] = stretched
    return refit(canvas)


# Which styles a digit class may be given, with the share of that class's training digits given each.
STYLES = {
    1: ((flagged_one, 0.35),),
    7: ((crossed_seven, 0.3),),
}
# The share of every class's digits also given in a box-filling version.
BOX_FILLING_SHARE = 0.1


def styled_digit(rng: np.random.Generator, digit: np.ndarray, label: int) -> np.ndarray:
    """The digit in one style MNIST lacks: its class's own (a flag on a 1, a bar on a 7) half the time, else filling its
    box; for networks that want every example styled (the detector's positives), not a share of them."""
    class_styles = STYLES.get(label, ())
    if class_styles and rng.random() < 0.5:
        return class_styles[int(rng.integers(len(class_styles)))][0](digit, rng)
    return box_filling(digit, rng)


def styled_examples(images: np.ndarray, labels: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Extra training digits in the styles above, made from (a seeded random part of) `images`."""
    rng = np.random.default_rng(seed)
    made, made_labels = [], []
    for index in range(len(images)):
        label = int(labels[index])
        for style, share in STYLES.get(label, ()):
            if rng.random() < share:
                made.append(style(images[index], rng))
                made_labels.append(label)
        if rng.random() < BOX_FILLING_SHARE:
            made.append(box_filling(images[index], rng))
            made_labels.append(label)
    return np.stack(made), np.array(made_labels, dtype=labels.dtype)


def styles_card() -> dict:
    """The styles and their shares, for the model card."""
    return {
        "per_class": {
            str(label): {style.__name__: share for style, share in styled} for label, styled in STYLES.items()
        },
        "box_filling": BOX_FILLING_SHARE,
    }
