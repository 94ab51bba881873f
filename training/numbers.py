"""Pictures of whole numbers composed from MNIST digits, with which digit each pixel of ink belongs to.

The bench builds its evaluation sets from the *test* digits (no digit the networks trained on);
the splitter's "one whole digit?" network (training.wholeness) trains on numbers of training digits.
A number is 2-6 digits placed side by side on white paper the way people write: each digit its
own size (0.8-1.25x), uneven gaps (from slightly overlapping to half a digit apart), a wobbling
baseline, the whole number slanted (up to ±0.25), a few dots of noise; some numbers on two lines.
"""

import multiprocessing
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PIL import Image

from training.synthetic import ink_crop

# How numbers are composed: these make the sets every figure for numbers is measured on (the bench's draws, the
# validation numbers, the wholeness network's and the line reader's training), chosen to look like people's writing,
# not tuned on a measurement.
# Digit height in pixels, before each digit's own size change.
DIGIT_HEIGHT = 72
# Gaps between neighbouring digits' ink, as a share of the digit height.
MIN_GAP = -0.06
MAX_GAP = 0.45
# Share of numbers whose neighbours touch or nearly touch (gap drawn from -0.1..0.03).
TOUCHING_SHARE = 0.25
# Slant of the whole number, as tan of the angle.
MAX_SLANT = 0.25
# Share of numbers written on two lines.
TWO_LINE_SHARE = 0.1


@dataclass(frozen=True)
class ComposedNumber:
    """A picture of a number (uint8, dark ink on white), the digits in reading order and how it was made."""

    picture: np.ndarray
    number: str
    lines: list[str]
    touching: bool
    slant: float
    # per pixel, the index (in reading order) of the digit whose ink is darkest there; -1 for paper and noise
    owners: np.ndarray
    # the MNIST digits it was made of (uint8 28x28), in reading order
    digits: np.ndarray


def _scaled(image: np.ndarray, height: int) -> np.ndarray:
    """A digit crop scaled to `height` pixels tall, aspect kept, as float 0..1 ink."""
    width = max(1, round(image.shape[1] * height / image.shape[0]))
    return (
        np.asarray(Image.fromarray(image).resize((width, height), Image.BICUBIC), dtype=np.float32).clip(0, 255) / 255.0
    )


def _line(
    rng: np.random.Generator, digits: list[np.ndarray], touching: bool, first: int
) -> tuple[np.ndarray, np.ndarray]:
    """One line of digits as float ink (0 = paper) on a canvas tall enough for the baseline's wobble, and its owners
    (digit indices counted from `first`)."""
    scaled = [_scaled(ink_crop(image), round(DIGIT_HEIGHT * rng.uniform(0.8, 1.25))) for image in digits]
    gaps = [
        rng.uniform(-0.1, 0.03) if touching and rng.random() < 0.6 else rng.uniform(MIN_GAP, MAX_GAP)
        for _ in scaled[1:]
    ]
    height = int(1.6 * DIGIT_HEIGHT)
    width = sum(piece.shape[1] for piece in scaled) + int(sum(max(gap, 0) for gap in gaps) * DIGIT_HEIGHT) + 2
    canvas = np.zeros((height, width), dtype=np.float32)
    owners = np.full((height, width), -1, dtype=np.int16)
    x = 0
    for index, piece in enumerate(scaled):
        if index:
            x = max(0, x + round(gaps[index - 1] * DIGIT_HEIGHT))
        # digits sit on a common baseline that wobbles by up to a tenth of their height
        bottom = height - int(0.15 * DIGIT_HEIGHT) + round(rng.uniform(-0.1, 0.1) * DIGIT_HEIGHT)
        top = bottom - piece.shape[0]
        region = canvas[top:bottom, x : x + piece.shape[1]]
        darker = piece[:, : region.shape[1]] > region
        owners[top:bottom, x : x + piece.shape[1]][darker] = first + index
        np.maximum(region, piece[:, : region.shape[1]], out=region)
        x += piece.shape[1]
    return canvas[:, : max(x, 1)], owners[:, : max(x, 1)]


def _slanted(ink: np.ndarray, slant: float, resample: int = Image.BILINEAR) -> np.ndarray:
    """Shear the ink (or, with NEAREST, the owners) so that verticals lean right by `slant` (tan of the angle)."""
    height, width = ink.shape
    extra = int(abs(slant) * height) + 2
    image = Image.fromarray(ink, "F")
    # output (x, y) reads input (x + slant * (y - height) + offset, y): row y moves right by slant * (height - y) - offset,
    # and the offset makes room on the left for the rows that lean left, so no ink leaves the picture
    offset = min(slant, 0.0) * height - 1
    sheared = image.transform(
        (width + extra, height),
        Image.AFFINE,
        (1, slant, -slant * height + offset, 0, 1, 0),
        resample=resample,
        fillcolor=-1.0 if resample == Image.NEAREST else 0.0,
    )
    return np.asarray(sheared, dtype=np.float32)


def compose_number(rng: np.random.Generator, images: np.ndarray, labels: np.ndarray) -> ComposedNumber:
    """One number from MNIST digits `images` (uint8 28x28) with their `labels`, written on paper."""
    touching = bool(rng.random() < TOUCHING_SHARE)
    two_lines = len(images) >= 4 and rng.random() < TWO_LINE_SHARE
    split = int(rng.integers(2, len(images) - 1)) if two_lines else len(images)
    line_parts = (
        [(images[:split], labels[:split]), (images[split:], labels[split:])] if two_lines else [(images, labels)]
    )
    lines = [_line(rng, list(part), touching, first) for (part, _), first in zip(line_parts, (0, split), strict=False)]
    width = max(line.shape[1] for line, _ in lines)
    # lines start at slightly different places, a quarter of a digit apart vertically
    gap = int(0.25 * DIGIT_HEIGHT)
    ink = np.zeros(
        (sum(line.shape[0] for line, _ in lines) + gap * (len(lines) - 1), width + DIGIT_HEIGHT // 2), np.float32
    )
    owners = np.full(ink.shape, -1.0, dtype=np.float32)
    y = 0
    for line, line_owners in lines:
        x = int(rng.integers(0, DIGIT_HEIGHT // 2 + 1))
        ink[y : y + line.shape[0], x : x + line.shape[1]] = np.maximum(
            ink[y : y + line.shape[0], x : x + line.shape[1]], line
        )
        owners[y : y + line.shape[0], x : x + line.shape[1]] = line_owners
        y += line.shape[0] + gap
    slant = float(rng.uniform(-MAX_SLANT, MAX_SLANT))
    ink = _slanted(ink, slant)
    owners = _slanted(owners, slant, Image.NEAREST)
    # a margin of paper, then a few dots of noise anywhere
    margin = DIGIT_HEIGHT // 2
    ink = np.pad(ink, margin)
    owners = np.pad(owners, margin, constant_values=-1.0).astype(np.int16)
    rows, columns = np.ogrid[: ink.shape[0], : ink.shape[1]]
    for _ in range(int(rng.integers(0, 5))):
        radius = rng.uniform(0.8, 2.5)
        cy, cx = rng.uniform(0, ink.shape[0]), rng.uniform(0, ink.shape[1])
        np.maximum(
            ink,
            ((rows - cy) ** 2 + (columns - cx) ** 2 <= radius**2).astype(np.float32) * rng.uniform(0.5, 1.0),
            out=ink,
        )
    picture = np.round(255.0 * (1.0 - np.clip(ink, 0.0, 1.0))).astype(np.uint8)
    line_texts = ["".join(str(int(label)) for label in part_labels) for _, part_labels in line_parts]
    return ComposedNumber(picture, "".join(line_texts), line_texts, touching, slant, owners, np.asarray(images))


def number_set(images: np.ndarray, labels: np.ndarray, count: int, seed: int = 7) -> list[ComposedNumber]:
    """`count` numbers of 2-6 digits (lengths equally often), digits drawn at random from `images`."""
    rng = np.random.default_rng(seed)
    numbers = []
    for index in range(count):
        length = 2 + index % 5
        chosen = rng.choice(len(images), size=length, replace=False)
        numbers.append(compose_number(rng, images[chosen], labels[chosen]))
    return numbers


def map_number_chunks(
    work: Callable[[tuple[int, int, np.ndarray, np.ndarray]], object],
    images: np.ndarray,
    labels: np.ndarray,
    count: int,
    seed: int,
    chunk: int,
) -> list:
    """`work` over `count` numbers in chunks, in worker processes: each job is (seed, numbers, images, labels), its
    seed derived from `seed` and where the chunk starts, so the result is reproducible whatever the workers."""
    jobs = [(seed * 1_000_003 + start, min(chunk, count - start), images, labels) for start in range(0, count, chunk)]
    with multiprocessing.get_context("spawn").Pool() as pool:
        return pool.map(work, jobs)
