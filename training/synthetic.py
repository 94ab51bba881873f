"""Synthetic non-digits for training and evaluating a "this is not a digit" detector.

The detector's positives are handwritten digits; its negatives are marks that are not digits, made
here: letters and symbols rendered from fonts, and hand-drawn-looking shapes and scribbles (stars,
hearts, arrows, hatching, ...). Fonts and shape kinds come in a training set and a held-out set, so
that an evaluation can measure marks of fonts and kinds never seen in training. Digits rendered from
the same fonts (`font_digit`) are positives, so that the detector does not learn "typed = not a digit".

Every picture is a grayscale uint8 array like a scan or a canvas drawing: light paper (around 255),
dark ink, the mark filling 50-85 % of the picture's shorter side with a margin all round, 96-160
pixels a side. Every function draws its randomness from the `numpy.random.Generator` it is given, so
a seed gives the same picture again. It draws with numpy and Pillow. `digit_picture` draws an MNIST digit the
same way, and `network_input` reads any of these pictures through the service's preprocessing.
"""

import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from model.decoding import find_ink, normalize_digit, working_picture
from model.errors import NoDigitError

# ---------------------------------------------------------------------------------------------
# Fonts

TRAINING_FONT_FOLDER = Path("/usr/share/fonts/truetype/dejavu")
EVALUATION_FONT_FOLDER = Path("/usr/share/fonts/truetype/liberation")
# Pillow's own font (load_default with a size, available wherever Pillow has FreeType): `letter` and
# `font_digit` understand this name in place of a font file's path.
BUILTIN_FONT = "builtin"
# DejaVu for training; Liberation and Pillow's built-in font held out for evaluation.
TRAINING_FONTS: list[str] = sorted(str(path) for path in TRAINING_FONT_FOLDER.glob("*.ttf"))
EVALUATION_FONTS: list[str] = sorted(str(path) for path in EVALUATION_FONT_FOLDER.glob("*.ttf")) + [BUILTIN_FONT]

# Characters left out of the negatives because, handwritten, they are easily read as a digit: a
# negative that looks like a digit would teach the detector to turn real digits away.
AMBIGUOUS_CHARACTERS = (
    "OoQDU"  # 0: an oval (D is a 0 with a flat side, U a 0 left open at the top)
    "IlijJ|!/\\()[]{}"  # 1: a single upright stroke, with or without a hook, dot or bracket ends
    "Zz"  # 2: top bar, diagonal, bottom bar
    "Ss$"  # 5: S-curve, with or without a bar through it
    "Gb"  # 6: a loop at the bottom with a stroke rising from it
    "T"  # 7: a bar with a stem, the left arm of the bar easily lost
    "B&"  # 8: two stacked loops (a handwritten & is often an 8 with a tail)
    "gqa"  # 9: a loop at the top with a tail down (italic fonts' single-storey a is a 9 with a short tail)
)
LATIN_LETTERS = "".join(
    character
    for character in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
    if character not in AMBIGUOUS_CHARACTERS
)
# Symbols that read as no digit. Left out beside the ones above: . , ' - _ (specks and single lines).
SYMBOLS = "@%#?€*+=<>~"
# Every character `non_digit` writes.
LETTERS = LATIN_LETTERS + SYMBOLS

# Glyphs are rendered this many pixels high (em size) and then scaled into the picture.
FONT_SIZE = 120
# Extra outline around a glyph's strokes, as a fraction of its larger side: a fatter pen.
MAX_GLYPH_THICKENING = 0.04
# A glyph's outline is bent by moving the corners of a grid of this many cells a side ...
WARP_CELLS = 3
# ... each by up to this fraction of the glyph's larger side: an uneven hand.
MAX_WARP = 0.03
# A glyph is halved (box-averaged) first where the warp would shrink it below this scale.
MIN_WARP_SCALE = 0.6
# A warped glyph's ink is scaled again to the mark's size where the two differ by more than this fraction.
INK_SIZE_TOLERANCE = 0.05

# ---------------------------------------------------------------------------------------------
# Pictures

MIN_SIDE, MAX_SIDE = 96, 160  # pixels, each side drawn independently (non-square pictures)
MIN_MARK_FRACTION, MAX_MARK_FRACTION = 0.5, 0.85  # the mark's larger side / the picture's shorter side
MIN_MARGIN_FRACTION = 0.06  # paper kept clear round the mark, of the shorter side (0.85 + 2 * 0.06 < 1)
MIN_STROKE_FRACTION, MAX_STROKE_FRACTION = 0.03, 0.12  # pen width / the mark's larger side
MIN_STROKE_PIXELS = 2.5  # no hairlines, at the picture's scale
STROKE_WIDTH_VARIATION = 0.15  # each stroke's width differs from the pen's by up to this fraction
MAX_ROTATION_DEGREES = 15.0
MAX_SHEAR = 0.2  # slant, as tan of the angle
MAX_ASPECT_CHANGE = 0.2  # the width / height ratio is multiplied by exp(+-this)
SUPERSAMPLING = 2  # shapes are drawn at this many times the size and shrunk: anti-aliased edges
POINT_SPACING = 0.02  # lines are cut into points this far apart (the mark is about 1 unit) to wobble them
SHARP_TURN_DEGREES = 20.0  # a line's turns sharper than this get a disc of the pen (gentler ones show no notch)
# A smooth displacement of the whole mark (a sloppy hand), its amplitude in units of the mark ...
MIN_DRIFT, MAX_DRIFT = 0.004, 0.02
# ... and a faster tremor along each stroke.
MIN_TREMOR, MAX_TREMOR = 0.001, 0.004
CLEAN_PAPER_PROBABILITY = 0.5  # a canvas drawing: paper exactly 255
MIN_PAPER, MAX_PAPER = 225.0, 255.0  # otherwise a scan's paper level
MAX_INK = 60.0  # the ink's level is 0 up to this
BLUR_PROBABILITY = 0.3
MIN_BLUR_RADIUS, MAX_BLUR_RADIUS = 0.3, 0.7  # pixels, of a box blur
NOISE_PROBABILITY = 0.25
MIN_NOISE, MAX_NOISE = 1.0, 4.0  # standard deviation, grey levels

# ---------------------------------------------------------------------------------------------
# Touching pairs

STROKE_DARKNESS = 0.3  # pixels this dark (of the darkest) are the strokes ...
FULL_INK_PERCENTILE = 50  # ... and this percentile of their darkness is full ink
NOISE_FLOOR = 0.08  # darkness (of full ink) below which a pixel is paper with noise
INK_RIM = 3  # pixels of anti-aliased edge kept round the ink when a picture is cut to its ink
CORE_INK = 0.6  # coverage of the strokes' core, where the two marks are made to meet
# Pixels the second mark's core ink goes past the first's at their meeting: 0 shares a pixel, 1 puts
# them side by side or over each other; more could land in a gap of the first and not touch it.
MAX_PAIR_OVERLAP = 1
MAX_PAIR_VERTICAL_SHIFT = 0.15  # of the smaller mark's height, up or down from centred
PAIR_MARGIN_FRACTION = 0.12  # paper round the pair, of its height

Points = np.ndarray  # float64 (n, 2): x to the right, y down


@dataclass
class _Mark:
    """A shape as pen strokes and filled areas in unit coordinates, before wobble, slant and scale."""

    lines: list[Points] = field(default_factory=list)
    fills: list[Points] = field(default_factory=list)
    max_stroke_fraction: float = MAX_STROKE_FRACTION  # closely spaced lines need a finer pen


def available_fonts(paths: Sequence[str]) -> list[str]:
    """The fonts of `paths` that load (BUILTIN_FONT included), in the same order."""
    usable = []
    for path in paths:
        try:
            _load_font(path)
        except OSError:
            continue
        usable.append(path)
    return usable


@functools.lru_cache(maxsize=128)
def _load_font(font: str) -> ImageFont.FreeTypeFont:
    """The font at FONT_SIZE, loaded once."""
    if font == BUILTIN_FONT:
        return ImageFont.load_default(size=FONT_SIZE)
    return ImageFont.truetype(font, FONT_SIZE)


@functools.lru_cache(maxsize=128)
def _missing_glyph(font: str) -> tuple[tuple[int, int], bytes]:
    """Size and pixels of what the font draws for a character it lacks (usually a box)."""
    drawn = _load_font(font).getmask("\uffff")  # a noncharacter: no font has a glyph for it
    return drawn.size, bytes(drawn)


@functools.lru_cache(maxsize=8192)
def _has_glyph(font: str, character: str) -> bool:
    """Whether the font draws the character itself, not its "missing" box."""
    drawn = _load_font(font).getmask(character)
    return (drawn.size, bytes(drawn)) != _missing_glyph(font)


@functools.lru_cache(maxsize=128)
def font_characters(font: str) -> str:
    """The characters of LETTERS that the font has (Pillow's built-in font lacks the euro sign)."""
    return "".join(character for character in LETTERS if _has_glyph(font, character))


def letter(rng: np.random.Generator, font: str, character: str) -> np.ndarray:
    """One character (not a digit) in a font (a path or BUILTIN_FONT), thickened, slanted and bent."""
    if len(character) != 1 or character.isdigit():
        raise ValueError(f"letter() draws one character that is not a digit (see font_digit), not {character!r}")
    if not _has_glyph(font, character):
        raise ValueError(f"The font {font} has no glyph for {character!r}")
    return _glyph_picture(rng, font, character)


def font_digit(rng: np.random.Generator, font: str, digit: int) -> np.ndarray:
    """A digit 0-9 in a font, drawn like `letter`: a positive, so that typed marks are not all negatives."""
    if not 0 <= digit <= 9:
        raise ValueError(f"A digit is 0-9, not {digit}")
    return _glyph_picture(rng, font, str(digit))


def _glyph_picture(rng: np.random.Generator, font: str, character: str) -> np.ndarray:
    """A character rendered large, thickened, warped to the mark's size and placed on paper."""
    typeface = _load_font(font)
    left, top, right, bottom = _glyph_box(font, character)
    thickening = round(rng.uniform(0.0, MAX_GLYPH_THICKENING) * max(right - left, bottom - top, 1))
    padding = thickening + 2  # the thickening grows the glyph by its width on every side
    glyph = Image.new("L", (right - left + 2 * padding, bottom - top + 2 * padding), 0)
    ImageDraw.Draw(glyph).text(
        (padding - left, padding - top), character, fill=255, font=typeface, stroke_width=thickening, stroke_fill=255
    )
    width, height = _picture_size(rng)
    shorter = min(width, height)
    mark_size = rng.uniform(MIN_MARK_FRACTION, MAX_MARK_FRACTION) * shorter
    if mark_size < MIN_WARP_SCALE * max(glyph.size):
        glyph = glyph.reduce(2)  # the warp samples without smoothing: shrunk too far, strokes would alias
    ink = _warp(rng, glyph, mark_size)
    box = ink.getbbox()
    if box is None:
        raise ValueError(f"The font {font} draws nothing for {character!r}")
    ink = ink.crop(box)
    # the warp scaled the glyph's whole box, corners and padding included: now its ink to the mark's size
    margin = math.ceil(MIN_MARGIN_FRACTION * shorter)
    factor = min(mark_size / max(ink.size), (width - 2 * margin) / ink.width, (height - 2 * margin) / ink.height)
    if abs(factor - 1) > INK_SIZE_TOLERANCE:
        ink = ink.resize((max(1, int(ink.width * factor)), max(1, int(ink.height * factor))), Image.Resampling.BILINEAR)
    picture = Image.new("L", (width, height), 0)
    left = int(rng.integers(margin, width - margin - ink.width + 1))
    top = int(rng.integers(margin, height - margin - ink.height + 1))
    picture.paste(ink, (left, top))
    return _finish(rng, picture)


@functools.lru_cache(maxsize=4096)
def _glyph_box(font: str, character: str) -> tuple[int, int, int, int]:
    """The character's ink box (left, top, right, bottom) in the font at FONT_SIZE, measured once."""
    return _load_font(font).getbbox(character)


def _random_affine(rng: np.random.Generator) -> np.ndarray:
    """A 2x2 matrix: rotation up to MAX_ROTATION_DEGREES, shear and a change of aspect."""
    angle = math.radians(rng.uniform(-MAX_ROTATION_DEGREES, MAX_ROTATION_DEGREES))
    shear = rng.uniform(-MAX_SHEAR, MAX_SHEAR)
    aspect = math.exp(rng.uniform(-MAX_ASPECT_CHANGE, MAX_ASPECT_CHANGE))
    cos, sin = math.cos(angle), math.sin(angle)
    rotation = np.array([[cos, -sin], [sin, cos]])
    return rotation @ np.array([[1.0, shear], [0.0, 1.0]]) @ np.diag([math.sqrt(aspect), 1.0 / math.sqrt(aspect)])


def _warp(rng: np.random.Generator, glyph: Image.Image, size: float) -> Image.Image:
    """The glyph rotated, slanted, stretched, scaled to `size` on its longer side and bent by a jittered mesh."""
    width, height = glyph.size
    corners = np.array([[0, 0], [width, 0], [0, height], [width, height]], dtype=np.float64) - (width / 2, height / 2)
    forward = _random_affine(rng)
    forward *= size / (2 * np.abs(corners @ forward.T).max())
    inverse = np.linalg.inv(forward)
    jitter = MAX_WARP * max(width, height)  # in the glyph's pixels
    reach = np.abs(corners @ forward.T).max(axis=0) + jitter * np.abs(forward).sum(axis=1) + 2
    out_width, out_height = int(math.ceil(2 * reach[0])), int(math.ceil(2 * reach[1]))
    # grid corners in the output, traced back into the glyph and nudged (shared by neighbouring cells)
    grid_x = np.linspace(0, out_width, WARP_CELLS + 1).round()
    grid_y = np.linspace(0, out_height, WARP_CELLS + 1).round()
    out_points = np.stack(np.meshgrid(grid_x, grid_y), axis=-1)  # (rows, columns, 2)
    sources = (out_points - (out_width / 2, out_height / 2)) @ inverse.T + (width / 2, height / 2)
    sources += rng.uniform(-jitter, jitter, sources.shape)
    mesh = []
    for row in range(WARP_CELLS):
        for column in range(WARP_CELLS):
            box = (int(grid_x[column]), int(grid_y[row]), int(grid_x[column + 1]), int(grid_y[row + 1]))
            upper_left, lower_left = sources[row, column], sources[row + 1, column]
            lower_right, upper_right = sources[row + 1, column + 1], sources[row, column + 1]
            quad = (*upper_left, *lower_left, *lower_right, *upper_right)
            mesh.append((box, tuple(float(value) for value in quad)))
    return glyph.transform((out_width, out_height), Image.Transform.MESH, mesh, resample=Image.Resampling.BILINEAR)


def _picture_size(rng: np.random.Generator) -> tuple[int, int]:
    """Width and height of a new picture."""
    return int(rng.integers(MIN_SIDE, MAX_SIDE + 1)), int(rng.integers(MIN_SIDE, MAX_SIDE + 1))


def _finish(rng: np.random.Generator, coverage: Image.Image, may_blur: bool = True) -> np.ndarray:
    """Coverage (0 = paper, 255 = ink) as dark ink on paper, sometimes slightly blurred or noisy, uint8."""
    paper = 255.0 if rng.random() < CLEAN_PAPER_PROBABILITY else rng.uniform(MIN_PAPER, MAX_PAPER)
    ink = rng.uniform(0.0, MAX_INK)
    levels = np.rint(paper - (paper - ink) * np.arange(256) / 255.0).astype(np.uint8)
    picture = coverage.point(levels.tolist())
    if may_blur and rng.random() < BLUR_PROBABILITY:
        # a box blur of a fraction of a pixel: close to a Gaussian's look at a third of its cost
        picture = picture.filter(ImageFilter.BoxBlur(rng.uniform(MIN_BLUR_RADIUS, MAX_BLUR_RADIUS)))
    values = np.asarray(picture)
    if rng.random() < NOISE_PROBABILITY:
        # uniform noise of the drawn standard deviation (a uniform number is 3 times as cheap as a normal one)
        spread = np.float32(rng.uniform(MIN_NOISE, MAX_NOISE) * math.sqrt(12.0))
        noise = (rng.random(values.shape, dtype=np.float32) - np.float32(0.5)) * spread
        values = np.clip(np.rint(values + noise), 0, 255).astype(np.uint8)
    return values


# ---------------------------------------------------------------------------------------------
# Hand-drawn shapes


def _arc(centre: tuple[float, float], radius_x: float, radius_y: float, start: float, end: float) -> Points:
    """Points along an elliptical arc; angles in radians, 0 = right, pi / 2 = down."""
    steps = max(8, int(abs(end - start) * max(radius_x, radius_y) / POINT_SPACING))
    angles = np.linspace(start, end, steps)
    return np.stack([centre[0] + radius_x * np.cos(angles), centre[1] + radius_y * np.sin(angles)], axis=1)


def _jittered(rng: np.random.Generator, points: Sequence[tuple[float, float]], amount: float) -> Points:
    """The points, each moved at random by up to `amount`."""
    array = np.asarray(points, dtype=np.float64)
    return array + rng.uniform(-amount, amount, array.shape)


def _closed(rng: np.random.Generator, points: Points) -> Points:
    """A closed outline as a hand closes it: ending near the start, sometimes running on past it."""
    end = points[0] + rng.uniform(-0.02, 0.02, 2)
    closed = np.vstack([points, end])
    if rng.random() < 0.4:
        direction = points[1] - points[0]
        overshoot = rng.uniform(0.03, 0.1) * direction / max(float(np.hypot(*direction)), 1e-9)
        closed = np.vstack([closed, end + overshoot])
    return closed


def _segment(start: tuple[float, float] | np.ndarray, end: tuple[float, float] | np.ndarray) -> Points:
    """A straight stroke between two points."""
    return np.array([start, end], dtype=np.float64)


def _triangle(rng: np.random.Generator) -> _Mark:
    """A triangle outline in any orientation."""
    turn = rng.uniform(0, 2 * math.pi)
    angles = turn + np.array([0.0, 2 * math.pi / 3, 4 * math.pi / 3])
    corners = np.stack([np.cos(angles), np.sin(angles)], axis=1) * 0.5
    return _Mark(lines=[_closed(rng, _jittered(rng, corners, 0.08))])


def _quadrilateral(rng: np.random.Generator, half_width: float, half_height: float) -> _Mark:
    """A four-cornered outline with sharp corners (rounded ones would read as 0)."""
    corners = [(-half_width, -half_height), (half_width, -half_height), (half_width, half_height)]
    corners.append((-half_width, half_height))
    start = int(rng.integers(4))  # the corner the pen starts from
    ordered = corners[start:] + corners[:start]
    return _Mark(lines=[_closed(rng, _jittered(rng, ordered, 0.03))])


def _square(rng: np.random.Generator) -> _Mark:
    """A square outline."""
    return _quadrilateral(rng, 0.5, 0.5)


def _rectangle(rng: np.random.Generator) -> _Mark:
    """A rectangle outline lying flat (an upright narrow one reads as a 0, or at 28x28 pixels as a 1)."""
    return _quadrilateral(rng, 0.5, 0.5 / rng.uniform(1.6, 2.6))


def _star(rng: np.random.Generator) -> _Mark:
    """A five-pointed star: the pentagram drawn in one go, or its outline."""
    turn = -math.pi / 2 + rng.uniform(-0.3, 0.3)
    if rng.random() < 0.5:
        angles = turn + np.arange(5) * (4 * math.pi / 5)
        points = np.stack([np.cos(angles), np.sin(angles)], axis=1) * 0.5
        return _Mark(
            lines=[_closed(rng, _jittered(rng, points, 0.04))], max_stroke_fraction=0.08
        )  # keep its middle open
    angles = turn + np.arange(10) * (math.pi / 5)
    radii = np.where(np.arange(10) % 2 == 0, 0.5, 0.5 * rng.uniform(0.38, 0.5))
    points = np.stack([np.cos(angles) * radii, np.sin(angles) * radii], axis=1)
    return _Mark(lines=[_closed(rng, _jittered(rng, points, 0.03))])


def _heart(rng: np.random.Generator) -> _Mark:
    """A heart outline, from the classic parametric curve."""
    angles = np.linspace(0, 2 * math.pi, 60, endpoint=False) + rng.uniform(0, 2 * math.pi)
    x = 16 * np.sin(angles) ** 3
    y = -(13 * np.cos(angles) - 5 * np.cos(2 * angles) - 2 * np.cos(3 * angles) - np.cos(4 * angles))
    points = np.stack([x, y], axis=1) / 32.0
    return _Mark(lines=[_closed(rng, points)])


def _arrow(rng: np.random.Generator) -> _Mark:
    """An arrow pointing left or right, give or take 25 degrees (a steep one pointing up-right is a 7)."""
    head_length = rng.uniform(0.2, 0.35)
    head_angle = rng.uniform(math.radians(25), math.radians(45))
    shaft = np.array([[-0.5, 0.0], [0.5, 0.0]])
    if rng.random() < 0.3:  # a bent shaft
        shaft = np.array([[-0.5, 0.0], [0.0, rng.uniform(-0.12, 0.12)], [0.5, 0.0]])
    tip = shaft[-1]
    heads = [
        _segment(tip, tip + head_length * np.array([-math.cos(head_angle), side * math.sin(head_angle)]))
        for side in (-1, 1)
    ]
    if rng.random() < 0.5:  # the head in one stroke
        heads = [np.vstack([heads[0][::-1], heads[1][1:]])]
    direction = rng.uniform(-math.radians(25), math.radians(25)) + (math.pi if rng.random() < 0.5 else 0.0)
    cos, sin = math.cos(direction), math.sin(direction)
    rotation = np.array([[cos, -sin], [sin, cos]])
    return _Mark(lines=[line @ rotation.T for line in [shaft, *heads]])


def _cross(rng: np.random.Generator) -> _Mark:
    """An X: two crossing diagonals."""
    first = _jittered(rng, [(-0.5, -0.5), (0.5, 0.5)], 0.1)
    second = _jittered(rng, [(0.5, -0.5), (-0.5, 0.5)], 0.1)
    return _Mark(lines=[first, second])


def _plus(rng: np.random.Generator) -> _Mark:
    """A plus sign."""
    across = rng.uniform(-0.12, 0.12)
    upright = rng.uniform(-0.12, 0.12)
    return _Mark(
        lines=[
            _jittered(rng, [(-0.5, across), (0.5, across)], 0.05),
            _jittered(rng, [(upright, -0.5), (upright, 0.5)], 0.05),
        ]
    )


def _smiley(rng: np.random.Generator) -> _Mark:
    """A face: a circle with two eyes and a smiling (or frowning) mouth."""
    start = rng.uniform(0, 2 * math.pi)
    face = _arc((0.0, 0.0), 0.5, 0.5 * rng.uniform(0.9, 1.1), start, start + 2 * math.pi + rng.uniform(0.0, 0.4))
    eye_y, eye_x = rng.uniform(-0.22, -0.1), rng.uniform(0.12, 0.2)
    eye_radius = rng.uniform(0.05, 0.08)  # smaller eyes vanish at 28x28 and leave a 0 with a line in it
    eyes = [_arc((side * eye_x, eye_y), eye_radius, eye_radius * 1.3, 0, 2 * math.pi) for side in (-1, 1)]
    mouth_radius = rng.uniform(0.18, 0.3)
    if rng.random() < 0.8:
        mouth = _arc((0.0, 0.02), mouth_radius, mouth_radius * 0.8, math.radians(20), math.radians(160))
    else:
        mouth = _arc((0.0, 0.35), mouth_radius, mouth_radius * 0.6, math.radians(200), math.radians(340))
    return _Mark(lines=[face, mouth], fills=eyes)


def _spiral(rng: np.random.Generator) -> _Mark:
    """A spiral of 2.25 to 3 turns out from the middle (with fewer it reads as a 6, a 0 or an @)."""
    turns = rng.uniform(2.25, 3.0)
    angles = np.linspace(0, turns * 2 * math.pi, int(60 * turns))
    radii = 0.5 * (0.04 + 0.96 * angles / angles[-1])
    direction = 1 if rng.random() < 0.5 else -1
    points = np.stack([radii * np.cos(direction * angles), radii * np.sin(direction * angles)], axis=1)
    return _Mark(lines=[points], max_stroke_fraction=0.3 / (2 * turns))


def _zigzag(rng: np.random.Generator) -> _Mark:
    """A zigzag of 4 to 8 strokes lying flat (two or three strokes would be a Z, 2 or N)."""
    count = int(rng.integers(4, 9))
    x = np.linspace(-0.5, 0.5, count + 1)
    height = rng.uniform(0.15, 0.35)
    y = np.where(np.arange(count + 1) % 2 == 0, -height, height)
    return _Mark(lines=[_jittered(rng, np.stack([x, y], axis=1), 0.03)], max_stroke_fraction=0.35 / count)


def _wave(rng: np.random.Generator) -> _Mark:
    """A wavy line of 1.5 to 3 periods lying flat."""
    periods = rng.uniform(1.5, 3.0)
    x = np.linspace(-0.5, 0.5, 80)
    y = rng.uniform(0.1, 0.22) * np.sin(2 * math.pi * periods * x + rng.uniform(0, 2 * math.pi))
    return _Mark(lines=[np.stack([x, y], axis=1)])


def _checkmark(rng: np.random.Generator) -> _Mark:
    """A tick: a short stroke down and a long one up."""
    points = [(-0.5, rng.uniform(-0.05, 0.15)), (rng.uniform(-0.25, -0.05), 0.5), (0.5, -0.5)]
    return _Mark(lines=[_jittered(rng, points, 0.04)])


def _hash(rng: np.random.Generator) -> _Mark:
    """A # sign: two slanted uprights across two bars."""
    slant = rng.uniform(0.0, 0.2)
    gap = rng.uniform(0.15, 0.25)
    lines = [_jittered(rng, [(-0.5, side * gap), (0.5, side * gap)], 0.04) for side in (-1, 1)]
    lines += [_jittered(rng, [(side * gap + slant, -0.5), (side * gap - slant, 0.5)], 0.04) for side in (-1, 1)]
    return _Mark(lines=lines, max_stroke_fraction=0.5 * gap)


def _asterisk(rng: np.random.Generator) -> _Mark:
    """An asterisk: three or four strokes through the middle."""
    count = int(rng.integers(3, 5))
    angles = rng.uniform(0, math.pi) + np.arange(count) * math.pi / count + rng.uniform(-0.12, 0.12, count)
    ends = [(0.5 * math.cos(angle), 0.5 * math.sin(angle)) for angle in angles]
    lines = [_jittered(rng, [(-x, -y), (x, y)], 0.03) for x, y in ends]
    return _Mark(lines=lines, max_stroke_fraction=0.08)


def _smooth(points: Points, rounds: int = 3) -> Points:
    """Chaikin's corner cutting: a polyline rounded into a smooth curve through its corners' neighbourhood."""
    for _ in range(rounds):
        quarter = 0.75 * points[:-1] + 0.25 * points[1:]
        three_quarters = 0.25 * points[:-1] + 0.75 * points[1:]
        middle = np.empty((2 * len(quarter), 2))
        middle[0::2], middle[1::2] = quarter, three_quarters
        points = np.vstack([points[:1], middle, points[-1:]])
    return points


def _scribble(rng: np.random.Generator) -> _Mark:
    """A smooth random curve of 8 to 20 segments, wandering or looping, often crossing itself."""
    count = int(rng.integers(8, 21))
    if rng.random() < 0.5:
        # wandering: at least 12 turns, as with fewer the curve easily reads as a letter or digit
        corners = rng.uniform(-0.5, 0.5, (max(count, 12) + 1, 2))
    else:  # looping across like scratching out: circles on a drifting centre
        angles = np.cumsum(rng.uniform(0.8, 1.8, count + 1)) * (1 if rng.random() < 0.5 else -1)
        centres = np.stack([np.linspace(-0.35, 0.35, count + 1), rng.uniform(-0.1, 0.1, count + 1)], axis=1)
        corners = centres + 0.25 * np.stack([np.cos(angles), np.sin(angles)], axis=1)
    return _Mark(lines=[_smooth(corners)], max_stroke_fraction=0.08)


def _parallel_lines(rng: np.random.Generator, count: int, angle: float) -> list[Points]:
    """Count roughly parallel strokes at an angle, of uneven length, filling about a unit square."""
    direction = np.array([math.cos(angle), math.sin(angle)])
    normal = np.array([-direction[1], direction[0]])
    offsets = np.linspace(-0.5, 0.5, count) + rng.uniform(-0.15, 0.15, count) / count
    lines = []
    for offset in offsets:
        start, end = -rng.uniform(0.3, 0.5), rng.uniform(0.3, 0.5)
        tilt = rng.uniform(-0.03, 0.03)
        lines.append(np.array([offset * normal + start * direction, (offset + tilt) * normal + end * direction]))
    return lines


def _hatching(rng: np.random.Generator) -> _Mark:
    """4 to 10 parallel strokes, as in shading."""
    count = int(rng.integers(4, 11))
    return _Mark(lines=_parallel_lines(rng, count, rng.uniform(0, math.pi)), max_stroke_fraction=0.45 / count)


def _crosshatch(rng: np.random.Generator) -> _Mark:
    """Two sets of 3 to 7 parallel strokes crossing at 50 to 90 degrees."""
    counts = rng.integers(3, 8, 2)
    angle = rng.uniform(0, math.pi)
    lines = _parallel_lines(rng, int(counts[0]), angle)
    crossing = rng.choice([-1, 1]) * rng.uniform(math.radians(50), math.radians(90))
    lines += _parallel_lines(rng, int(counts[1]), angle + crossing)
    return _Mark(lines=lines, max_stroke_fraction=0.45 / int(counts.max()))


def _blob(rng: np.random.Generator) -> _Mark:
    """A filled irregular shape (only filled: its outline alone would read as 0)."""
    angles = np.linspace(0, 2 * math.pi, 40, endpoint=False)
    radii = np.ones_like(angles)
    for harmonic in (2, 3, 4, 5):
        radii += rng.uniform(0, 0.35 / harmonic * 2) * np.cos(harmonic * angles + rng.uniform(0, 2 * math.pi))
    radii = np.maximum(radii, 0.3)
    points = 0.5 * np.stack([radii * np.cos(angles), radii * np.sin(angles)], axis=1)
    return _Mark(fills=[points])


def _lightning(rng: np.random.Generator) -> _Mark:
    """A lightning bolt's outline, or the bolt filled in."""
    outline = [(0.1, -0.5), (-0.3, 0.08), (-0.02, 0.08), (-0.18, 0.5), (0.32, -0.12), (0.05, -0.12), (0.25, -0.5)]
    points = _jittered(rng, outline, 0.03)
    if rng.random() < 0.4:
        return _Mark(fills=[points])
    return _Mark(lines=[_closed(rng, points)], max_stroke_fraction=0.08)


def _cloud(rng: np.random.Generator) -> _Mark:
    """A cloud: 3 to 6 big round bumps over a flat or gently curved base (shallow bumps would make a 0)."""
    bumps = int(rng.integers(3, 7))
    base = rng.uniform(0.0, 0.12)  # how far the base sags
    # the bumps' feet along the top, from the right end of the base to the left end
    feet = np.linspace(0.5, -0.5, bumps + 1) + np.concatenate([[0.0], rng.uniform(-0.04, 0.04, bumps - 1), [0.0]])
    outline = []
    for right, left in zip(feet[:-1], feet[1:], strict=False):
        centre_x, radius = (right + left) / 2, (right - left) / 2
        height = radius * rng.uniform(0.9, 1.5)
        # the middle bumps stand higher: the cloud's dome
        lift = 0.15 * math.cos(math.pi * centre_x)
        outline.append(_arc((centre_x, -lift), radius, height, 0.0, -math.pi))
    base_x = np.linspace(-0.5, 0.5, 20)
    outline.append(np.stack([base_x, base * (1 - (2 * base_x) ** 2)], axis=1))
    return _Mark(lines=[_closed(rng, np.vstack(outline))], max_stroke_fraction=0.08)


def _house(rng: np.random.Generator) -> _Mark:
    """A house: walls and a pointed roof as one outline, sometimes a door."""
    eaves = rng.uniform(-0.15, 0.05)
    outline = [(-0.4, 0.5), (-0.4, eaves), (0.0, -0.5), (0.4, eaves), (0.4, 0.5)]
    lines = [_closed(rng, _jittered(rng, outline, 0.03))]
    if rng.random() < 0.6:
        door_left = rng.uniform(-0.25, 0.05)
        door_top = rng.uniform(0.1, 0.25)
        door = [(door_left, 0.5), (door_left, door_top), (door_left + 0.18, door_top), (door_left + 0.18, 0.5)]
        lines.append(_jittered(rng, door, 0.02))
    return _Mark(lines=lines, max_stroke_fraction=0.09)


def _diamond(rng: np.random.Generator) -> _Mark:
    """A rhombus standing on a corner, its corners sharp."""
    half_width = rng.uniform(0.32, 0.5)
    corners = [(0.0, -0.5), (half_width, 0.0), (0.0, 0.5), (-half_width, 0.0)]
    return _Mark(lines=[_closed(rng, _jittered(rng, corners, 0.03))])


def _dots(rng: np.random.Generator) -> _Mark:
    """3 to 9 small filled dots scattered apart."""
    count = int(rng.integers(3, 10))
    radius = rng.uniform(0.04, 0.08)
    centres: list[np.ndarray] = []
    for candidate in rng.uniform(-0.5, 0.5, (20 * count, 2)):  # the first `count` that keep apart (at least 3)
        if all(np.hypot(*(candidate - other)) > 4 * radius for other in centres):
            centres.append(candidate)
            if len(centres) == count:
                break
    fills = [_arc((float(x), float(y)), radius, radius * rng.uniform(0.8, 1.2), 0, 2 * math.pi) for x, y in centres]
    return _Mark(fills=fills)


def _letters_run(rng: np.random.Generator) -> _Mark:
    """Joined-up handwriting without real letters: a run of 3 to 5 loops (eee, lll) or arches (mmm, nnn)."""
    count = int(rng.integers(3, 6))
    if rng.random() < 0.5:  # loops: a trochoid whose circle outruns its roll
        turns = np.linspace(-0.25, count + 0.25, 60 * count) * 2 * math.pi
        x = turns / (2 * math.pi) * rng.uniform(0.8, 1.2) - rng.uniform(0.35, 0.5) * np.sin(turns)
        y = rng.uniform(0.5, 1.2) * np.cos(turns)  # e-high to l-high loops
        lines = [np.stack([x, y], axis=1) / max(float(np.ptp(x)), 1e-9)]
    else:  # arches: humps going up and down, with a lead-in stroke
        steps = np.linspace(0, count, 50 * count)
        x = steps + 0.15 * np.sin(2 * math.pi * steps)
        y = -(np.abs(np.sin(math.pi * steps)) ** 0.5)
        lead = np.array([[-0.4, -0.1], [x[0], y[0]]])
        lines = [np.vstack([lead, np.stack([x, y], axis=1)]) / count]
    return _Mark(lines=lines, max_stroke_fraction=0.35 / count)


# Every kind of shape, drawn with wobbly hand-drawn lines. No plain circle or ellipse (read as 0) and
# no single straight line (read as 1): a negative that looks like a digit teaches the detector to turn
# real digits away.
_SHAPE_MAKERS: dict[str, Callable[[np.random.Generator], _Mark]] = {
    "triangle": _triangle,
    "square": _square,
    "rectangle": _rectangle,
    "star": _star,
    "heart": _heart,
    "arrow": _arrow,
    "cross": _cross,
    "plus": _plus,
    "smiley": _smiley,
    "spiral": _spiral,
    "zigzag": _zigzag,
    "wave": _wave,
    "checkmark": _checkmark,
    "hash": _hash,
    "asterisk": _asterisk,
    "scribble": _scribble,
    "hatching": _hatching,
    "crosshatch": _crosshatch,
    "blob": _blob,
    "lightning": _lightning,
    "cloud": _cloud,
    "house": _house,
    "diamond": _diamond,
    "dots": _dots,
    "letters-run": _letters_run,
}
SHAPE_KINDS: tuple[str, ...] = tuple(_SHAPE_MAKERS)
# Kinds kept out of training, so that an evaluation can report on shapes the detector never saw.
HELD_OUT_SHAPE_KINDS: tuple[str, ...] = ("lightning", "cloud", "house", "diamond", "crosshatch")
TRAINING_SHAPE_KINDS: tuple[str, ...] = tuple(kind for kind in SHAPE_KINDS if kind not in HELD_OUT_SHAPE_KINDS)


def shape(rng: np.random.Generator, kind: str, any_turn: bool = False) -> np.ndarray:
    """One hand-drawn shape of a kind in SHAPE_KINDS; with any_turn, turned by any angle (a shape is no digit whichever
    way up it lies, while a digit is written upright)."""
    maker = _SHAPE_MAKERS.get(kind)
    if maker is None:
        raise ValueError(f"Unknown shape kind {kind!r}; the kinds are {', '.join(SHAPE_KINDS)}")
    return _finish(rng, _draw(rng, maker(rng), rng.uniform(0.0, 2 * math.pi) if any_turn else 0.0))


def _densify(strokes: list[Points]) -> tuple[Points, np.ndarray]:
    """All strokes' points, with more added POINT_SPACING apart along each segment (corners kept), and their strokes."""
    points = np.vstack(strokes)
    stroke_of_point = np.repeat(np.arange(len(strokes)), [len(stroke) for stroke in strokes])
    steps = np.zeros_like(points)
    steps[:-1] = points[1:] - points[:-1]
    last = np.ones(len(points), dtype=bool)  # a stroke's last point: no segment starts there
    last[:-1] = stroke_of_point[1:] != stroke_of_point[:-1]
    steps[last] = 0.0
    pieces = np.maximum(1, np.ceil(np.hypot(steps[:, 0], steps[:, 1]) / POINT_SPACING))
    counts = np.where(last, 1, pieces).astype(np.int64)
    origin = np.repeat(np.arange(len(points)), counts)
    fraction = (np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)) / counts[origin]
    return points[origin] + steps[origin] * fraction[:, None], stroke_of_point[origin]


def _wobble(rng: np.random.Generator, points: Points) -> Points:
    """Points (strokes one after another) bent by a smooth drift over the mark and a tremor along the pen's way."""
    shift = np.zeros_like(points)
    for _ in range(2):  # two plane waves per axis make a smooth random field
        angle = rng.uniform(0, 2 * math.pi)
        frequency = np.array([math.cos(angle), math.sin(angle)]) * 2 * math.pi * rng.uniform(0.7, 2.0)
        phases = rng.uniform(0, 2 * math.pi, 2)
        shift += rng.uniform(MIN_DRIFT, MAX_DRIFT, 2) * np.sin((points @ frequency)[:, None] + phases)
    travelled = np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(points, axis=0).T))])
    cycles = 2 * math.pi * rng.uniform(2.0, 5.0)  # per unit of the pen's way
    shift += rng.uniform(MIN_TREMOR, MAX_TREMOR) * np.sin(cycles * travelled[:, None] + rng.uniform(0, 2 * math.pi, 2))
    return points + shift


def _sharp_turns(points: Points) -> np.ndarray:
    """Indices of a polyline's inner points where it turns by more than SHARP_TURN_DEGREES."""
    steps = np.diff(points, axis=0)
    incoming, outgoing = steps[:-1], steps[1:]
    cross = incoming[:, 0] * outgoing[:, 1] - incoming[:, 1] * outgoing[:, 0]
    dot = (incoming * outgoing).sum(axis=1)
    return np.flatnonzero(np.abs(np.arctan2(cross, dot)) > math.radians(SHARP_TURN_DEGREES)) + 1


def _draw(rng: np.random.Generator, mark: _Mark, turn: float = 0.0) -> Image.Image:
    """The mark turned by `turn` radians, wobbled, slanted, scaled into a new picture and drawn with a round pen, bright
    on black."""
    points, stroke_of_point = _densify(mark.lines + mark.fills)
    cos, sin = math.cos(turn), math.sin(turn)
    points = _wobble(rng, points @ np.array([[cos, -sin], [sin, cos]]).T) @ _random_affine(rng).T
    low, high = points.min(axis=0), points.max(axis=0)
    extent = max(float((high - low).max()), 1e-9)

    width, height = _picture_size(rng)
    shorter = min(width, height)
    mark_size = rng.uniform(MIN_MARK_FRACTION, MAX_MARK_FRACTION) * shorter
    top_fraction = min(MAX_STROKE_FRACTION, mark.max_stroke_fraction)
    stroke = max(rng.uniform(min(MIN_STROKE_FRACTION, top_fraction), top_fraction) * mark_size, MIN_STROKE_PIXELS)
    widest = stroke * (1 + STROKE_WIDTH_VARIATION) if mark.lines else 0.0
    scale = (mark_size - widest) / extent
    ink_size = (high - low) * scale + widest
    margin = math.ceil(MIN_MARGIN_FRACTION * shorter)
    left = rng.uniform(margin, max(margin, width - margin - ink_size[0]))
    top = rng.uniform(margin, max(margin, height - margin - ink_size[1]))
    pixels = ((points - low) * scale + (left + widest / 2, top + widest / 2)) * SUPERSAMPLING
    strokes = np.split(pixels, np.flatnonzero(np.diff(stroke_of_point)) + 1)

    canvas = Image.new("L", (width * SUPERSAMPLING, height * SUPERSAMPLING), 0)
    pen = ImageDraw.Draw(canvas)
    for outline in strokes[len(mark.lines) :]:
        pen.polygon(outline.ravel().tolist(), fill=255)
    for line in strokes[: len(mark.lines)]:
        line_width = stroke * SUPERSAMPLING * (1 + rng.uniform(-STROKE_WIDTH_VARIATION, STROKE_WIDTH_VARIATION))
        # Pillow draws a wide line as one quadrilateral per segment, which leaves slivers and notches
        # at the joints; the same line through the segments' middles covers them
        middles = np.vstack([line[:1], (line[1:] + line[:-1]) / 2, line[-1:]])
        for path in (line, middles):
            pen.line(path.ravel().tolist(), fill=255, width=max(1, round(line_width)))
        # a round pen: discs at the ends and where the line turns sharply (gentle bends need none)
        radius = line_width / 2
        for x, y in line[np.concatenate([[0], _sharp_turns(line), [len(line) - 1]])]:
            pen.ellipse((x - radius, y - radius, x + radius, y + radius), fill=255)
    return canvas.reduce(SUPERSAMPLING)


# ---------------------------------------------------------------------------------------------
# Mixtures and pairs


def non_digit(
    rng: np.random.Generator,
    fonts: Sequence[str],
    kinds: Sequence[str],
    letter_share: float = 0.5,
    turned_share: float = 0.0,
) -> np.ndarray:
    """A random non-digit: with probability letter_share a character in one of `fonts`, else a shape of `kinds`, turned
    by any angle with probability turned_share."""
    if letter_share > 0 and not fonts:
        raise ValueError("Letters were asked for (letter_share > 0) but no font was given")
    if letter_share < 1 and not kinds:
        raise ValueError("Shapes were asked for (letter_share < 1) but no shape kind was given")
    if rng.random() < letter_share:
        font = fonts[int(rng.integers(len(fonts)))]
        characters = font_characters(font)
        if not characters:
            raise ValueError(f"The font {font} has none of the characters in LETTERS")
        return letter(rng, font, characters[int(rng.integers(len(characters)))])
    return shape(
        rng, kinds[int(rng.integers(len(kinds)))], any_turn=turned_share > 0 and bool(rng.random() < turned_share)
    )


def _coverage(picture: np.ndarray) -> np.ndarray:
    """How much ink each pixel of a picture (dark ink on light paper) holds, 0..1, paper's noise left out.

    Full ink is the level of the strokes' middles (not the darkest pixel), so that a thin or blurred
    stroke comes out as dark as a thick one.
    """
    darkness = float(np.median(picture)) - picture.astype(np.float32)
    strokes = darkness[darkness > STROKE_DARKNESS * darkness.max()]
    full = max(float(np.percentile(strokes, FULL_INK_PERCENTILE)), 1.0)
    return np.clip((darkness / np.float32(full) - NOISE_FLOOR) / (1 - NOISE_FLOOR), 0.0, 1.0)


def touching_pair(rng: np.random.Generator, first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Two marks side by side, their ink touching or overlapping a little (the darker wins): a stuck pair.

    Both are dark ink on light paper (uint8), as the generators here make them. The result is as large
    as the two marks need with a margin round them, redrawn on new paper (its own ink level and noise).
    """
    crops, cores = [], []
    for picture in (first, second):
        coverage = _coverage(picture)
        rows, columns = np.flatnonzero(coverage.any(axis=1)), np.flatnonzero(coverage.any(axis=0))
        if rows.size == 0:
            raise ValueError("A picture given to touching_pair has no ink")
        top, bottom = max(rows[0] - INK_RIM, 0), min(rows[-1] + 1 + INK_RIM, picture.shape[0])
        left, right = max(columns[0] - INK_RIM, 0), min(columns[-1] + 1 + INK_RIM, picture.shape[1])
        crops.append(coverage[top:bottom, left:right])
        cores.append(crops[-1] > CORE_INK)
    (first_crop, second_crop), (first_core, second_core) = crops, cores
    first_height, second_height = first_crop.shape[0], second_crop.shape[0]

    # the second mark's height against the first: centred, give or take, sharing rows of ink
    centred = (first_height - second_height) / 2
    wanted = round(centred + rng.uniform(-1, 1) * MAX_PAIR_VERTICAL_SHIFT * min(first_height, second_height))
    first_rows, second_rows = first_core.any(axis=1), second_core.any(axis=1)
    candidates = sorted(range(-second_height + 1, first_height), key=lambda offset: (abs(offset - wanted), offset))
    for offset in candidates:  # the second picture's row 0 lands on the first's row `offset`
        start, stop = max(0, offset), min(first_height, offset + second_height)
        shared_rows = np.flatnonzero(first_rows[start:stop] & second_rows[start - offset : stop - offset]) + start
        if shared_rows.size:
            break
    # per shared row, the first mark's rightmost ink and the second's leftmost: the second moves left
    # until in some row they meet, in the same pixel or (one pixel further) side by side
    first_right = first_core.shape[1] - 1 - np.argmax(first_core[shared_rows, ::-1], axis=1)
    second_left = np.argmax(second_core[shared_rows - offset], axis=1)
    shift = int((first_right - second_left).max()) - int(rng.integers(0, MAX_PAIR_OVERLAP + 1))

    top, left = min(0, offset), min(0, shift)
    height = max(first_height, offset + second_height) - top
    width = max(first_crop.shape[1], shift + second_crop.shape[1]) - left
    margin = math.ceil(PAIR_MARGIN_FRACTION * height)
    pair = np.zeros((height + 2 * margin, width + 2 * margin), dtype=np.float32)
    for crop, row, column in ((first_crop, -top, -left), (second_crop, offset - top, shift - left)):
        region = pair[margin + row : margin + row + crop.shape[0], margin + column : margin + column + crop.shape[1]]
        np.maximum(region, crop, out=region)
    return _finish(rng, Image.fromarray(np.rint(pair * 255).astype(np.uint8)), may_blur=False)  # blurred already


def ink_crop(image: np.ndarray) -> np.ndarray:
    """An MNIST-style image (bright ink on black) cut to its ink's bounding box."""
    rows, cols = np.flatnonzero(image.max(axis=1) > 0), np.flatnonzero(image.max(axis=0) > 0)
    return image[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]


def digit_picture(rng: np.random.Generator, image: np.ndarray) -> np.ndarray:
    """An MNIST digit as a drawing: its ink scaled to 48-120 pixels tall, dark on white paper, with a margin."""
    crop = ink_crop(image)
    height = int(rng.integers(48, 121))
    width = max(1, round(crop.shape[1] * height / crop.shape[0] * rng.uniform(0.85, 1.15)))
    ink = np.asarray(Image.fromarray(crop).resize((width, height), Image.BICUBIC))
    return np.pad(255 - ink, height // 4, constant_values=255)


def network_input(picture: np.ndarray) -> np.ndarray | None:
    """A uint8 picture (dark ink on light paper) -> the service's normalised 28x28 input, or None if it has no ink."""
    try:
        return normalize_digit(find_ink(working_picture(picture.astype(np.float32) / 255.0)))
    except NoDigitError:
        return None
