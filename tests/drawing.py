"""Digits drawn by the tests themselves: pen strokes rendered with Pillow into many kinds of picture."""

import io
import math

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

Point = tuple[float, float]


def _arc(
    centre_x: float, centre_y: float, radius_x: float, radius_y: float, start: float, end: float, steps: int = 24
) -> list[Point]:
    """Points along an elliptical arc; angles in degrees, 0 = right, 90 = down."""
    return [
        (centre_x + radius_x * math.cos(math.radians(angle)), centre_y + radius_y * math.sin(math.radians(angle)))
        for angle in np.linspace(start, end, steps)
    ]


# Each digit as pen strokes in a unit box (x to the right, y down); a stroke is a list of points.
STROKES: dict[int, list[list[Point]]] = {
    0: [_arc(0.5, 0.5, 0.33, 0.48, 0, 360, 40)],
    1: [[(0.3, 0.2), (0.55, 0.0), (0.55, 1.0)]],
    2: [_arc(0.5, 0.28, 0.35, 0.27, 190, 370) + [(0.12, 1.0), (0.9, 1.0)]],
    3: [_arc(0.48, 0.26, 0.32, 0.25, 200, 450), _arc(0.48, 0.74, 0.36, 0.26, 270, 520)],
    4: [[(0.62, 0.0), (0.05, 0.68), (0.95, 0.68)], [(0.68, 0.25), (0.68, 1.0)]],
    5: [[(0.85, 0.0), (0.22, 0.0), (0.17, 0.45)] + _arc(0.5, 0.68, 0.36, 0.31, 220, 510)],
    6: [_arc(0.5, 0.7, 0.33, 0.3, 0, 360, 32), [(0.17, 0.7), (0.3, 0.28), (0.72, 0.0)]],
    7: [[(0.08, 0.0), (0.92, 0.0), (0.38, 1.0)]],
    8: [_arc(0.5, 0.25, 0.27, 0.25, 0, 360, 32), _arc(0.5, 0.73, 0.33, 0.27, 0, 360, 32)],
    9: [_arc(0.5, 0.3, 0.33, 0.3, 0, 360, 32), [(0.83, 0.3), (0.7, 0.72), (0.3, 1.0)]],
}


def draw_digit(
    digit: int,
    size: tuple[int, int] = (280, 280),
    box: tuple[float, float, float, float] | None = None,
    stroke_width: float | None = None,
    ink: tuple = (0, 0, 0),
    background: tuple | None = (255, 255, 255),
    mode: str = "RGB",
    strokes: list[list[Point]] | None = None,
) -> Image.Image:
    """Draw a digit with a round pen; `box` = (left, top, width, height) in pixels, `background` None = transparent."""
    width, height = size
    if box is None:
        box = (width * 0.3, height * 0.15, width * 0.4, height * 0.7)
    left, top, box_width, box_height = box
    if stroke_width is None:
        stroke_width = box_height * 0.12
    # small pictures are drawn at up to 4x and shrunk, for smooth anti-aliased edges like a browser canvas
    scale = max(1, min(4, 2000 // max(width, height)))
    canvas_mode = "RGBA" if background is None else mode
    fill_background = (0, 0, 0, 0) if background is None else background
    big = Image.new(canvas_mode, (width * scale, height * scale), fill_background)
    pen = ImageDraw.Draw(big)
    radius = stroke_width * scale / 2
    for stroke in strokes or STROKES[digit]:
        points = [((left + x * box_width) * scale, (top + y * box_height) * scale) for x, y in stroke]
        pen.line(points, fill=ink, width=max(1, round(stroke_width * scale)), joint="curve")
        for x, y in (points[0], points[-1]):
            pen.ellipse((x - radius, y - radius, x + radius, y + radius), fill=ink)
    return big.resize(size, Image.LANCZOS) if scale > 1 else big


def encode(image: Image.Image, image_format: str = "PNG", **options) -> bytes:
    """Encode a Pillow image into file bytes."""
    buffer = io.BytesIO()
    image.save(buffer, format=image_format, **options)
    return buffer.getvalue()


def photo_of_digit(
    digit: int, seed: int = 0, size: tuple[int, int] = (1600, 1200), paper=(250, 228, 95)
) -> Image.Image:
    """A phone photo: the digit in pen on coloured paper, uneven light, camera noise and slight blur."""
    rng = np.random.default_rng(seed)
    width, height = size
    digit_height = height * 0.3
    box = (width * 0.55, height * 0.2, digit_height * 0.6, digit_height)
    image = draw_digit(digit, size, box=box, stroke_width=digit_height * 0.05, ink=(30, 35, 90), background=paper)
    pixels = np.asarray(image, dtype=np.float32)
    y, x = np.mgrid[0:height, 0:width]
    light = 1.0 - 0.35 * (x / width) * (y / height)  # darker towards one corner
    pixels = pixels * light[..., None] + rng.normal(0, 6, pixels.shape)
    photo = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
    return photo.filter(ImageFilter.GaussianBlur(1.2))


def _star_points(points: int = 5) -> list[Point]:
    """A pentagram drawn in one go: every second point of a star, back to the start."""
    return [
        (0.5 + 0.5 * math.cos(math.radians(-90 + 144 * step)), 0.52 + 0.5 * math.sin(math.radians(-90 + 144 * step)))
        for step in range(points + 1)
    ]


# Marks that are no digit, as pen strokes in a unit box like STROKES (drawn best in a square box).
NOT_DIGIT_STROKES: dict[str, list[list[Point]]] = {
    "star": [_star_points()],
    "cross": [[(0.0, 0.0), (1.0, 1.0)], [(1.0, 0.0), (0.0, 1.0)]],
    "triangle": [[(0.5, 0.0), (1.0, 0.9), (0.0, 0.9), (0.5, 0.0)]],
    "square": [[(0.0, 0.0), (1.0, 0.0), (1.0, 1.0), (0.0, 1.0), (0.0, 0.0)]],
    "spiral": [
        [
            (0.5 + r * math.cos(a) / 2, 0.5 + r * math.sin(a) / 2)
            for a, r in ((math.radians(angle), angle / 1000) for angle in range(0, 1000, 15))
        ]
    ],
    "zigzag": [[(step / 6, 0.3 if step % 2 == 0 else 0.7) for step in range(7)]],
    "heart": [
        [
            (
                0.5 + 0.03 * 16 * math.sin(t) ** 3,
                0.45 - 0.03 * (13 * math.cos(t) - 5 * math.cos(2 * t) - 2 * math.cos(3 * t) - math.cos(4 * t)),
            )
            for t in np.linspace(0, 2 * math.pi, 40)
        ]
    ],
}


def draw_number_picture(
    digits: str, size: tuple[int, int] = (1400, 400), digit_width: float = 0.16
) -> tuple[Image.Image, list[tuple]]:
    """A number's digits side by side on white paper, and each digit's box (left, top, width, height) in pixels."""
    width, height = size
    box_width, gap = width * digit_width, width * digit_width * 0.5
    left = (width - len(digits) * box_width - (len(digits) - 1) * gap) / 2
    picture, boxes = Image.new("RGB", size, (255, 255, 255)), []
    for index, digit in enumerate(digits):
        box = (left + index * (box_width + gap), height * 0.15, box_width, height * 0.7)
        mark = draw_digit(int(digit), size, box=box, background=None)
        picture.paste(mark, (0, 0), mark)
        boxes.append(box)
    return picture, boxes


# Where each digit of a drawn number goes: unit-box strokes placed side by side in a wide picture.
DIGIT_WIDTH, DIGIT_HEIGHT, GAP = 60, 100, 30


def number_strokes(
    text: str, gaps: list[float] | None = None, marks: dict[int, list[list[Point]]] | None = None
) -> tuple[list, list]:
    """Strokes of a number written left to right (a unit box as tall as the digits) and each character's box.

    `gaps` are the spaces between characters in pixels (default GAP); `marks` replaces the
    strokes of the character at an index (a drawing that is no digit).
    """
    gaps = gaps if gaps is not None else [GAP] * (len(text) - 1)
    total_width = len(text) * DIGIT_WIDTH + sum(gaps)
    strokes, boxes, left = [], [], 0.0
    for index, character in enumerate(text):
        shape = (marks or {}).get(index) or STROKES[int(character)]
        strokes += [[((left + x * DIGIT_WIDTH) / total_width, y) for x, y in stroke] for stroke in shape]
        boxes.append((left, DIGIT_WIDTH))
        left += DIGIT_WIDTH + (gaps[index] if index < len(gaps) else 0)
    return strokes, boxes


def draw_number(
    text: str, scale: float = 1.0, gaps: list[float] | None = None, marks=None, dots: int = 0
) -> tuple[Image.Image, list]:
    """A number drawn in pen on white, 60 px margins; returns the picture and each character's (left, top, width, height)."""
    strokes, boxes = number_strokes(text, gaps, marks)
    total_width = boxes[-1][0] + DIGIT_WIDTH
    margin = 60
    size = (round((total_width + 2 * margin) * scale), round((DIGIT_HEIGHT + 2 * margin) * scale))
    box = (margin * scale, margin * scale, total_width * scale, DIGIT_HEIGHT * scale)
    picture = draw_digit(0, size, box=box, stroke_width=11 * scale, strokes=strokes)
    if dots:
        pen = Image.new("L", size, 0)
        draw = ImageDraw.Draw(pen)
        rng = np.random.default_rng(dots)
        for _ in range(dots):
            x, y = rng.uniform(5, size[0] - 5), rng.uniform(5, 30 * scale)
            draw.ellipse((x - 2 * scale, y - 2 * scale, x + 2 * scale, y + 2 * scale), fill=255)
        picture.paste((0, 0, 0), mask=pen)
    character_boxes = [
        ((margin + left) * scale, margin * scale, width * scale, DIGIT_HEIGHT * scale) for left, width in boxes
    ]
    return picture, character_boxes


def gray(picture: Image.Image) -> np.ndarray:
    """A drawn picture as the splitter's grayscale input, 0..1."""
    return np.asarray(picture.convert("L"), dtype=np.float32) / 255.0
