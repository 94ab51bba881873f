"""Split a picture of a written number into its digits, in reading order.

Bytes in, digits out, no web framework. The ink is found as for a single digit; its connected
strokes are grouped into lines by height, and within a line into digits by the network itself
("recognition-based segmentation"): every plausible way of grouping neighbouring strokes is
read, and the grouping whose digits read best wins. That joins a 5 whose top bar floats, a 4
drawn in two strokes and a broken pen line, and a stroke too wide to be one digit (digits that
touch), or a narrower one that reads poorly as one digit (a 1 drawn through a 7's bar), is cut
where its ink is thinnest, upright or slanted (and its parts again), if the parts read better.
"Read best" weighs the reader's confidence, the detector's "looks like a digit" and, when given,
a Judge: the wholeness network's "this is exactly one whole digit" (not a part of one, nor two
stuck together), which sees each group in its surroundings. When given, a LineReader (the line
reader, training.line_reader) reads each line whole and has the last word among the search's best
groupings: the one whose digits it finds likeliest, weighed with the search's own score. Where it
finds even that one unlikely, the line is searched again with each piece also offered cut in two
(a cut the split found not worth making alone), and the better search wins; where it still finds
the digits unlikely, one digit may be read in its line: taken from the line reader's own reading.
Specks of noise are dropped. Each digit is then normalised exactly like a single upload.

What a request may cost is bounded before the work, whatever its strokes look like: writing
taller than `MAX_STROKE_HEIGHT` is read shrunk to it; a Budget counts the groups the networks
read and the pixels the reads, cuts and lines work on, and refuses (TooManyMarksError) before
the read that would pass either, or at once when every mark read once would; and a page keeps
at most `PAGE_PIXEL_BYTES` of its pieces' pixels.
"""

import collections
import functools
import heapq
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from PIL import Image
from scipy import ndimage

from model.decoding import (
    DEFAULT_MAX_PIXELS,
    EIGHT_NEIGHBOURS,
    Ink,
    PixelBudget,
    clip_unit,
    decode_grayscale,
    grow,
    ink_strength,
    normalize_digit,
    percentile,
    shrink,
    stroke_width,
)
from model.errors import NoDigitError, TooManyMarksError
from model.limits import DEFAULT_MAX_DECODED_BYTES, DEFAULT_MAX_GROUPS, DEFAULT_MAX_READ_PIXELS

# Numbers are found on a copy at most this many pixels on its longer side (a long number needs more than one digit). No
# trial of another value is recorded.
NUMBER_WORKING_SIZE = 960
# Finding and labelling a page's ink counts this many of a budget's pixels per pixel of the page: 25-30 ns a pixel for
# strokes on paper, up to 170 for noise of many specks, against about 30 for a pixel a read works on. So a batch of
# pages that are all refused still cannot hold a worker: 64 pages of 960x960 used to take 25 s to find out.
PAGE_WORK_PER_PIXEL = 6
# A mark smaller than this share of the tallest mark, both ways, is a speck of noise. No trial of another value is
# recorded.
SPECK_SHARE = 0.15
# A mark at least this share of the tallest one's height starts or joins a line of writing. No trial of another value is
# recorded.
LINE_MARK_SHARE = 0.35
# The most strokes one digit is made of (a 4 in two strokes, a 5 with a floating bar, a broken line). No trial of
# another value is recorded.
MAX_STROKES_PER_DIGIT = 4
# A digit is at most this many times as wide as its line is tall; wider strokes are touching digits. No trial of another
# value is recorded.
MAX_DIGIT_WIDTH = 1.25
# A stroke at least this many times as wide as its line is tall is tried cut in two. No trial of another value is
# recorded.
MIN_SPLIT_WIDTH = 0.7
# A narrower stroke that reads poorly as one digit (score below `DOUBTFUL_SCORE`) is tried cut too, from this width (two
# digits written over each other: a 1 in a 9's tail, a 1 across a 7's bar). Trying narrow strokes cut read 95.2 % of the
# bench's usual numbers against 94.8 % (misses for too few marks 12 against 16; bench/TRIALS.md). In the second search,
# a looser doubt (narrow strokes reading below -0.5 tried cut) read 969 / 959 / 975 of the validation / fresh / usual
# numbers against 972 / 958 / 978 (bench/TRIALS.md, the second search's "Versions on the way"). No trial of another
# width is recorded.
DOUBTFUL_SPLIT_WIDTH = 0.45
DOUBTFUL_SCORE = -2.0
# The detector's say in the search: a digit score at or above `SURE_DIGIT_SCORE` costs nothing, lower ones cost
# `DETECTOR_WEIGHT` times their log ratio to it. The detector is far surer of 1s than of 4s, 8s and 0s: from a higher
# score on, it tilted the search towards cutting an open 4 into "11" (of the held-out validation digits, 3 % of the 1s
# but 19 % of the 4s and 23 % of the 8s score below 0.5, where its say used to start). Moved one at a time on the 1,000
# validation numbers (bench/TRIALS.md, "Other weights for the search's scores"): `SURE_DIGIT_SCORE` 0.03 / 0.3 and
# `DETECTOR_WEIGHT` 0.3-0.7 read 962-967 against 965; earlier, `DETECTOR_WEIGHT` 0.25 read 94.5 % and costs only below
# 0.01 95.5 %, against 95.5 % (bench/TRIALS.md, "The networks' doubts").
SURE_DIGIT_SCORE = 0.1
DETECTOR_WEIGHT = 0.5
# Cuts keep this share of a stroke's width clear of either end, and of each other. 0.1 (for a 1 touching the side of its
# neighbour) read 95.5 % of the validation numbers, as 0.2 did (2 fixed, 2 newly missed), at a 35-65 % longer median
# time (bench/TRIALS.md, "Tried after the slant fix").
CUT_MARGIN = 0.2
# Slants (as tan of the angle) along which touching digits are tried cut: these, and the line's own slant and these
# about it (a number written with a strong lean comes apart along its lean). With the line's own slants and the even
# cuts, 95.5 % of the validation numbers against 94.9 %; the even cuts along the line's slant only, 95.1 %
# (bench/TRIALS.md, "The even cuts").
CUT_SLANTS = (-0.3, -0.15, 0.0, 0.15, 0.3)
LINE_CUT_SLANTS = (-0.1, 0.0, 0.1)
# Valleys of the ink profile tried as cuts, per slant. No trial of another value is recorded.
CUTS_PER_SLANT = 2
# When no valley cut reads well (the best below `DOUBTFUL_SCORE`), cuts at these shares of the width too, per slant:
# where two digits touch side by side (a 0's right side against a 5's stem) the joint is no valley of the profile. Even
# cuts for every wide stroke, not only those that read poorly, read 95.4 % of the validation numbers against 95.5 %, at
# twice the time (bench/TRIALS.md, "The even cuts").
CUT_SHARES = (0.3, 0.4, 0.5, 0.6, 0.7)
# A wide stroke is cut, and its parts again, up to this many times over (up to 2 ** SPLIT_DEPTH parts: a chain of
# touching digits comes apart). No trial of another value is recorded.
SPLIT_DEPTH = 3
# The cuts of a stroke whose parts read best as they are are explored further, this many. Three, with even cuts for
# every wide stroke, read 95.6 % of the validation numbers against 95.5 %, at more than twice the time (bench/TRIALS.md,
# "The even cuts").
EXPLORED_CUTS = 2
# Strokes of one digit lie at most this share of the line's height apart. No trial of another value is recorded.
MAX_STROKE_GAP = 0.3
# A digit wider (upright) than this share of its line's height pays `WIDE_COST` per line height beyond it. Moved one at
# a time on the 1,000 validation numbers, `WIDE_START` 0.95 / 1.15 and `WIDE_COST` 2 / 4.5 read 962-967 against 965
# (bench/TRIALS.md, "Other weights for the search's scores").
WIDE_START = 1.05
WIDE_COST = 3.0
# A cut pays this much per stroke width of ink it goes through (a joint of touching digits is thin). 0.3 / 0.9 read 94.9
# / 94.8 % of the validation numbers against 94.9 % (before the even cuts); 0.4-0.8, 962-967 against 965
# (bench/TRIALS.md).
CUT_COST = 0.6
# Joining a piece to a digit costs this much per line height of gap between them (measured upright, with the line's
# slant taken out); pieces that overlap a little already pay a little. `GAP_COST` 6 / 14 read 95.0 / 95.0 % of the
# validation numbers against 94.9 % (before the even cuts); `GAP_ALLOWANCE` 0 / 0.1, 962-967 against 965
# (bench/TRIALS.md).
GAP_COST = 10.0
GAP_ALLOWANCE = 0.05
# Slants tried when taking a line's slant out (tan of the angle). No trial of another range is recorded.
SLANTS = np.linspace(-0.5, 0.5, 21)
# The whole-digit network's say in the search: this times the log of its score. 0.4 / 0.8 read 95.2 / 94.3 % of the
# validation numbers against 94.9 % (before the even cuts), 0.45 / 0.8 after them 95.5 / 95.2 % against 95.5 %; with the
# pair, 0.4-1.0 read 962-967 against 965 (bench/TRIALS.md).
WHOLE_WEIGHT = 0.6
# A group is judged in its surroundings: a square this many line heights wide about its middle. No trial of another
# value is recorded.
CONTEXT_SIZE = 1.75
# The line reader reads a line's strokes scaled to fit this picture (height, width), 2 pixels of paper kept round them:
# the committed line reader's input. No trial of another size is recorded.
LINE_PICTURE_SHAPE = (32, 320)
# The search keeps this many best groupings of each line for the line reader to weigh: 4 / 8 / 16 read 969 of the
# validation numbers each (docs/ACCURACY.md, "Numbers": inside a plateau).
KEPT_GROUPINGS = 8
# The line reader's say is this times the log of its probability of a grouping's digits: 0.5 / 1 / 2 / 3 read 970 / 969
# / 968 / 967 of the validation numbers (docs/ACCURACY.md, "Numbers": inside a plateau).
LINE_WEIGHT = 1.0
# Where the line reader gives the chosen digits less than `RECHECK_PROBABILITY`, the line is grouped again with each of
# its pieces at least `RECHECK_CUT_WIDTH` line heights wide also offered at its best cut, whether the split cut it or
# not (two 1s written close together and read as one 8; a 6's stem that went with the 2 it touches). Where it still
# gives them less, and its own reading of the line has as many digits and differs in exactly one, that digit is read in
# its line if the swap pays (`Segmenter.read_in_line`; "0447" read "0147": a 4 whose mark alone reads better as a 1). On
# the validation numbers, 0.1 % / 1 % / 5 % read 972 / 973 / 973, and 0.15 / 0.25 / 0.35 of the line's height 973 each
# (bench/TRIALS.md, the second search's settings). Committed: 1 % and 0.25.
RECHECK_PROBABILITY = 0.01
RECHECK_CUT_WIDTH = 0.25
# A number is read with its tallest stroke at most this many pixels tall: a taller one is shrunk to it first. Digits are
# measured at 80 pixels (decoding.STROKE_SCALE), so more only adds work: each read's window grows with the square of the
# height (a 660-pixel black square, read whole and cut 3,600 ways, took 45 s of CPU and 5.9 GB). The drawing page's
# numbers (its canvas is 280 high) and the bench's (one line of digits is 187 high) are read as drawn.
MAX_STROKE_HEIGHT = 320
# A read keeps this many pixels of paper round a group's ink: its anti-aliased rim. No trial of another value is
# recorded.
INK_RIM = 3
# The most bytes of stroke and part pixels a page keeps (rows and columns, 4 bytes a pixel; the least recently used
# dropped, and made again from their piece when asked). The numbers that read the most groups make 21-85 MB of them and
# read as fast with 4 MB kept as with all.
PAGE_PIXEL_BYTES = 8 * 2**20


# reads (N, 28, 28) network inputs: (N, 10) probabilities and (N,) "looks like a digit" scores, both 0..1
Reader = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]
# judges (N, 28, 28, 2) inputs, a group's normalised digit and its surroundings: (N,) "one whole digit" scores, 0..1
Judge = Callable[[np.ndarray], np.ndarray]
# reads a line picture (`LINE_PICTURE_SHAPE`, 0..1): (steps, 11) log probabilities per column, of "no new digit" and 0-9
LineReader = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Piece:
    """A connected stroke, or the part of one between (slanted) cuts."""

    label: int
    # each cut keeps the pixels where left <= x - slant * (y - pivot) < right: (left, right, slant, pivot)
    cuts: tuple[tuple[float, float, float, float], ...] = ()


@dataclass(frozen=True)
class Reading:
    """One digit of the number: where it is, the network's input and what the readers made of it."""

    line: int
    box: tuple[int, int, int, int]  # x, y, width, height in the uploaded image's pixels
    image: np.ndarray  # the normalised 28x28 input
    probabilities: np.ndarray  # (10,)
    digit: int  # the digit read: the reader's best, or where the line reader overruled it, the one read in its line
    digit_score: float
    whole_score: float | None = None  # the wholeness network's, when the splitter had one
    line_probability: float | None = (
        None  # the line reader's probability of its line's digits, when the splitter had one
    )

    @property
    def read_in_line(self) -> bool:
        """Whether the digit was read in its line by the line reader, not the reader's best for the mark alone."""
        return self.digit != int(np.argmax(self.probabilities))


class Line(NamedTuple):
    """A line of writing: its height, and its slant (tan of the angle) about a pivot row."""

    height: float
    slant: float
    pivot: float


class GroupReading(NamedTuple):
    """What the readers made of a group of pieces; image None when it vanished at 28x28."""

    score: (
        float  # how well it reads as one digit: log of the best class's probability, the capped digit and whole scores
    )
    image: np.ndarray | None
    probabilities: np.ndarray | None
    digit_score: float
    whole_score: float | None = None


def _shape_score(width: float, line_height: float, gaps: float = 0.0) -> float:
    """The cost of a digit of this upright width in its line, with `gaps` (in line heights) between its pieces."""
    wide = max(0.0, width / line_height - WIDE_START)
    return -WIDE_COST * wide - GAP_COST * gaps


class Page:
    """The ink of one picture, its connected strokes and the pixels of any group of pieces."""

    def __init__(self, gray: np.ndarray) -> None:
        self.strength, strong, self.weak = ink_strength(gray)
        self.labels, count = ndimage.label(self.weak, structure=EIGHT_NEIGHBOURS)
        flat = self.labels.ravel()
        areas = np.bincount(flat, minlength=count + 1)
        has_strong = np.bincount(flat, weights=strong.ravel(), minlength=count + 1) > 0
        self.slices = [None, *ndimage.find_objects(self.labels)]
        height, width = self.strength.shape
        self.strokes = [
            label
            for label in range(1, count + 1)
            if has_strong[label] and areas[label] >= max(2.0, 0.0001 * height * width)
        ]
        if not self.strokes:
            raise NoDigitError("No digit found: only specks of noise.")
        self.areas = areas  # how many pixels each stroke has, by label
        # rows and columns as 16-bit integers where the sum of two still fits (4 bytes a pixel), else 32-bit
        self.coordinate_type = np.int16 if 2 * max(height, width) <= np.iinfo(np.int16).max else np.int32
        self._pixels: collections.OrderedDict[Piece, tuple[np.ndarray, np.ndarray]] = collections.OrderedDict()
        self.pixel_bytes = 0  # the bytes `_pixels` holds: at most `PAGE_PIXEL_BYTES`, or a single piece's if more

    @functools.cached_property
    def tallest(self) -> int:
        """The height of the tallest stroke's box."""
        return max(self.slices[label][0].stop - self.slices[label][0].start for label in self.strokes)

    @functools.cached_property
    def ink_sums(self) -> np.ndarray:
        """Running sums of the ink, [y, x] = ink pixels above and left of (y, x): any rectangle's ink in 4 reads.

        Made on first use: only the wholeness network's surroundings need them.
        """
        return np.pad(self.weak.cumsum(axis=0, dtype=np.int32).cumsum(axis=1), ((1, 0), (1, 0)))

    def pixels(self, piece: Piece) -> tuple[np.ndarray, np.ndarray]:
        """Rows and columns of a piece's ink in the picture (kept while there is room: the search asks many times)."""
        kept = self._pixels.get(piece)
        if kept is not None:
            self._pixels.move_to_end(piece)
            return kept
        if piece.cuts:
            # a part: its piece's pixels before the last cut, less those on the far side of that cut
            rows, cols = self.pixels(Piece(piece.label, piece.cuts[:-1]))
            cut_left, cut_right, slant, pivot = piece.cuts[-1]
            sheared = cols - slant * (rows - pivot)
            inside = (sheared >= cut_left) & (sheared < cut_right)
            rows, cols = rows[inside], cols[inside]
        else:
            # a whole stroke: its pixels in its own box
            row_slice, col_slice = self.slices[piece.label]
            rows, cols = np.nonzero(self.labels[row_slice, col_slice] == piece.label)
            rows = (rows + row_slice.start).astype(self.coordinate_type)
            cols = (cols + col_slice.start).astype(self.coordinate_type)
        self._pixels[piece] = (rows, cols)
        self.pixel_bytes += rows.nbytes + cols.nbytes
        # the least recently used go first, the piece just made stays
        while self.pixel_bytes > PAGE_PIXEL_BYTES and len(self._pixels) > 1:
            dropped_rows, dropped_cols = self._pixels.popitem(last=False)[1]
            self.pixel_bytes -= dropped_rows.nbytes + dropped_cols.nbytes
        return rows, cols

    def box(self, piece: Piece) -> tuple[int, int, int, int]:
        """Top, left, bottom, right (exclusive) of a piece's ink: its stroke's box, or its part's; all 0 for none."""
        if not piece.cuts:
            row_slice, col_slice = self.slices[piece.label]
            return row_slice.start, col_slice.start, row_slice.stop, col_slice.stop
        rows, cols = self.pixels(piece)
        if rows.size == 0:
            return 0, 0, 0, 0
        return int(rows.min()), int(cols.min()), int(rows.max()) + 1, int(cols.max()) + 1

    def extent(self, pieces: list[Piece]) -> tuple[int, int, int, int]:
        """Top, left, bottom, right (exclusive) of the pieces' ink."""
        boxes = [box for box in (self.box(piece) for piece in pieces) if box[2] > box[0]]
        if not boxes:
            return 0, 0, 0, 0
        top, left, bottom, right = zip(*boxes, strict=False)
        return min(top), min(left), max(bottom), max(right)

    def window(self, pieces: list[Piece], margin: int = 0) -> tuple[int, int, int, int]:
        """Top, left, bottom, right of the window around the pieces' ink grown by `margin`: the pixels a read of them
        works on (empty for no ink)."""
        top, left, bottom, right = self.extent(pieces)
        if bottom == top:
            return 0, 0, 0, 0
        height, width = self.labels.shape
        return max(top - margin, 0), max(left - margin, 0), min(bottom + margin, height), min(right + margin, width)

    def window_area(self, pieces: list[Piece], margin: int = 0) -> int:
        """How many pixels the window around the pieces' ink (grown by `margin`) holds."""
        top, left, bottom, right = self.window(pieces, margin)
        return (bottom - top) * (right - left)

    def mask(self, pieces: list[Piece], margin: int = 0) -> tuple[np.ndarray, tuple[int, int]]:
        """The pieces' pixels in the window around their ink (grown by `margin`), and its top-left corner."""
        top, left, bottom, right = self.window(pieces, margin)
        mask = np.zeros((bottom - top, right - left), dtype=bool)
        for piece in pieces:
            rows, cols = self.pixels(piece)
            mask[rows - top, cols - left] = True
        return mask, (top, left)

    def surroundings(self, pieces: list[Piece], line_height: float) -> np.ndarray:
        """The pieces in their surroundings at the line's scale (28x28): their ink 1, any other ink 0.5, paper 0.

        A square `CONTEXT_SIZE` line heights wide about their middle: it shows how big they are
        for their line and whether their strokes run on into a neighbour's (a cut-off part).
        """
        rows = np.concatenate([self.pixels(piece)[0] for piece in pieces])
        cols = np.concatenate([self.pixels(piece)[1] for piece in pieces])
        picture = np.zeros((28, 28), dtype=np.float32)
        if rows.size == 0:
            return picture
        side = CONTEXT_SIZE * line_height
        top = (rows.min() + rows.max() + 1) / 2 - side / 2
        left = (cols.min() + cols.max() + 1) / 2 - side / 2
        height, width = self.weak.shape
        window_top, window_left = max(int(top), 0), max(int(left), 0)
        window_bottom, window_right = min(int(top + side) + 1, height), min(int(left + side) + 1, width)
        # any ink in each cell of the 28x28 grid: the ink summed over the cells' rectangles, from the running sums
        edges = []
        for start, stop, origin in ((window_top, window_bottom, top), (window_left, window_right, left)):
            cells = np.floor((np.arange(start, stop) - origin) * (28 / side)).astype(int)
            edges.append(start + np.searchsorted(cells, np.arange(29)))
        sums = self.ink_sums[np.ix_(*edges)]
        picture[(sums[1:, 1:] - sums[:-1, 1:] - sums[1:, :-1] + sums[:-1, :-1]) > 0] = 0.5
        y = np.floor((rows - top) * (28 / side)).astype(int)
        x = np.floor((cols - left) * (28 / side)).astype(int)
        inside = (y >= 0) & (y < 28) & (x >= 0) & (x < 28)
        picture[y[inside], x[inside]] = 1.0
        return picture

    def ink(self, pieces: list[Piece]) -> Ink:
        """The pieces as a single digit's Ink: their strokes and anti-aliased rims, no other ink."""
        strokes, (top, left) = self.mask(pieces, INK_RIM)
        if not strokes.any():
            raise NoDigitError("No digit found: the cut left no ink.")
        bottom, right = top + strokes.shape[0], left + strokes.shape[1]
        strength = self.strength[top:bottom, left:right]
        # the rims, but not the ink of a neighbouring digit or of the other side of a cut
        keep = grow(grow(strokes)) & (strokes | ~self.weak[top:bottom, left:right])
        level = percentile(strength[strokes], 90)
        strength = clip_unit(strength * np.float32(1.0 / max(level, 1e-6)))
        strength[~keep] = 0.0
        inked = strength > 0.05
        rows, cols = np.flatnonzero(inked.any(axis=1)), np.flatnonzero(inked.any(axis=0))
        if rows.size == 0:
            raise NoDigitError("No digit found: the marks are too faint.")
        return Ink(strength=strength, box=(int(rows[0]), int(cols[0]), int(rows[-1]) + 1, int(cols[-1]) + 1))

    def line_picture(self, labels: list[int]) -> np.ndarray:
        """A line's strokes as the line reader reads them: their ink scaled to fit `LINE_PICTURE_SHAPE`, at its left."""
        ink = self.ink([Piece(label) for label in labels])
        top, left, bottom, right = ink.box
        crop = ink.strength[top:bottom, left:right]
        height, width = LINE_PICTURE_SHAPE
        scale = min((height - 4) / crop.shape[0], (width - 4) / crop.shape[1])
        size = (max(1, round(crop.shape[1] * scale)), max(1, round(crop.shape[0] * scale)))
        # shrinking to under half averages whole boxes of pixels: thin strokes do not break up
        resample = Image.BILINEAR if scale > 0.5 else Image.BOX
        scaled = np.asarray(Image.fromarray(crop.astype(np.float32), "F").resize(size, resample), dtype=np.float32)
        picture = np.zeros(LINE_PICTURE_SHAPE, dtype=np.float32)
        row = (height - size[1]) // 2
        picture[row : row + size[1], 2 : 2 + size[0]] = np.clip(scaled, 0.0, 1.0)
        return picture


def _box_size(page: Page, label: int) -> tuple[int, int]:
    """Height and width of a stroke's bounding box."""
    rows, cols = page.slices[label]
    return rows.stop - rows.start, cols.stop - cols.start


def writing_lines(page: Page) -> list[tuple[list[int], float]]:
    """The strokes grouped into lines of writing, top to bottom, each with its height; specks dropped."""
    sizes = {label: _box_size(page, label) for label in page.strokes}
    tallest = page.tallest
    marks = [label for label in page.strokes if max(sizes[label]) >= SPECK_SHARE * tallest]
    tall = sorted(
        (label for label in marks if sizes[label][0] >= LINE_MARK_SHARE * tallest),
        key=lambda label: page.slices[label][0].start,
    )
    # tall strokes that overlap in height share a line
    spans: list[list] = []  # [top, bottom, labels]
    for label in tall:
        top, bottom = page.slices[label][0].start, page.slices[label][0].stop
        for span in spans:
            overlap = min(bottom, span[1]) - max(top, span[0])
            if overlap >= 0.3 * min(bottom - top, span[1] - span[0]):
                span[0], span[1] = min(span[0], top), max(span[1], bottom)
                span[2].append(label)
                break
        else:
            spans.append([top, bottom, [label]])
    # a digit broken across its height (a 7 whose stem floats below its bar) makes two short spans: rejoin them
    spans.sort(key=lambda span: span[0])
    merged: list[list] = []
    for span in spans:
        if merged:
            previous = merged[-1]
            short = min(previous[1] - previous[0], span[1] - span[0]) < 0.75 * tallest
            if (
                short
                and span[0] - previous[1] <= 0.5 * tallest
                and max(previous[1], span[1]) - previous[0] <= 1.25 * tallest
            ):
                previous[1] = max(previous[1], span[1])
                previous[2].extend(span[2])
                continue
        merged.append(span)
    spans = merged
    # short strokes (a floating bar, a dot of a broken line) join the line nearest to their middle
    for label in marks:
        if label in tall:
            continue
        middle = (page.slices[label][0].start + page.slices[label][0].stop) / 2
        nearest = min(spans, key=lambda span: max(span[0] - middle, middle - span[1], 0))
        nearest[2].append(label)
    spans.sort(key=lambda span: span[0])
    return [(span[2], float(span[1] - span[0])) for span in spans]


def best_path(log_probabilities: np.ndarray) -> list[int]:
    """The line reader's own reading of a line: the likeliest class of each column (steps, 11), repeats merged and
    "no new digit" dropped."""
    classes = np.argmax(log_probabilities, axis=-1)
    kept = (classes != 0) & np.concatenate(([True], classes[1:] != classes[:-1]))
    return [int(column) - 1 for column in classes[kept]]


def ctc_log_probability(log_probabilities: np.ndarray, digits: list[int]) -> float:
    """The log probability that the line reader's columns (steps, 11) spell `digits`: CTC's forward algorithm.

    Column class 0 is "no new digit", class d + 1 the digit d; a digit spans one or more columns,
    and the same digit twice in a row needs a "no new digit" column between them.
    """
    # the states a spelling passes through: "no new digit" before, between and after the digits
    states = np.zeros(2 * len(digits) + 1, dtype=int)
    states[1::2] = np.asarray(digits, dtype=int) + 1
    # from two states back, past a "no new digit", unless the digit repeats
    may_skip = np.zeros(states.size, dtype=bool)
    may_skip[2:] = (states[2:] != 0) & (states[2:] != states[:-2])
    alpha = np.full(states.size, -np.inf)
    alpha[:2] = log_probabilities[0, states[:2]]
    for column in log_probabilities[1:]:
        # each state is reached by staying, from the state before, or from two before where it may skip
        before = np.concatenate(([-np.inf, -np.inf], alpha))
        alpha = (
            np.logaddexp(np.logaddexp(alpha, before[1:-1]), np.where(may_skip, before[:-2], -np.inf)) + column[states]
        )
    # it ends on the last digit or on the "no new digit" after it
    return float(np.logaddexp.reduce(alpha[-2:]))


Cut = tuple[Piece, Piece, float]  # the two parts, and how much ink the cut goes through, in stroke widths


def cut_slants(line: Line) -> list[float]:
    """The slants a piece of the line is tried cut along: `CUT_SLANTS`, and the line's own and those about it."""
    return list(
        dict.fromkeys(round(slant, 3) for slant in (*CUT_SLANTS, *(line.slant + turn for turn in LINE_CUT_SLANTS)))
    )


def _cuts(page: Page, piece: Piece, line: Line) -> tuple[list[Cut], list[Cut]]:
    """Ways to cut a wide piece in two along several slants (`cut_slants`): at the thinnest places of its ink profile,
    and evenly.

    The even cuts (at `CUT_SHARES` of the width) leave out those next to a valley, tried already.
    """
    stroke = stroke_width(page.mask([piece])[0].astype(np.float32))
    rows, cols = page.pixels(piece)
    pivot = float(rows.mean())
    at_valleys: list[Cut] = []
    at_shares: list[Cut] = []
    for slant in cut_slants(line):
        sheared = cols - slant * (rows - pivot)
        start = np.floor(sheared.min())
        profile = np.bincount((sheared - start).astype(int))
        width = profile.size
        inner = np.arange(int(CUT_MARGIN * width), int((1 - CUT_MARGIN) * width) + 1)
        inner = inner[inner < width]
        if inner.size == 0:
            continue
        # the lowest columns, at least a fifth of the width apart
        valleys: list[int] = []
        for column in inner[np.argsort(profile[inner], kind="stable")]:
            if all(abs(column - other) >= CUT_MARGIN * width for other in valleys):
                valleys.append(int(column))
            if len(valleys) == CUTS_PER_SLANT:
                break
        shares = [
            column
            for column in (int(share * width) for share in CUT_SHARES)
            if 0 < column < width and all(abs(column - valley) >= 0.05 * width for valley in valleys)
        ]
        for columns, options in ((valleys, at_valleys), (shares, at_shares)):
            for column in columns:
                cut = start + column + 0.5
                options.append(
                    (
                        Piece(piece.label, piece.cuts + ((-np.inf, cut, slant, pivot),)),
                        Piece(piece.label, piece.cuts + ((cut, np.inf, slant, pivot),)),
                        profile[column] / stroke,
                    )
                )
    return at_valleys, at_shares


class Budget:
    """How many more groups of strokes the networks may read for a request, and how many more pixels the reads and cuts
    may work on (a group's window, a cut stroke's pixels once per slant): shared by the numbers of a batch."""

    def __init__(self, groups: int = DEFAULT_MAX_GROUPS, pixels: int = DEFAULT_MAX_READ_PIXELS) -> None:
        self.limit = self.left = groups
        self.pixels_limit = self.pixels_left = pixels

    def check(self, groups: int, pixels: int = 0) -> None:
        """Raise TooManyMarksError if `groups` more reads or `pixels` more pixels would pass what is left; spend nothing."""
        if groups > self.left:
            raise TooManyMarksError(
                f"Too many marks to read as a number: reading them would take more than {self.limit:,} reads of groups of "
                "strokes for this request (MAX_NUMBER_GROUPS). Send a picture with fewer marks, or fewer numbers per request."
            )
        if pixels > self.pixels_left:
            raise TooManyMarksError(
                f"Too much ink to read as a number: reading it would work on more than {self.pixels_limit:,} pixels for this "
                "request (MAX_NUMBER_READ_PIXELS), as a solid block of ink or a page of dense strokes does. Send a picture "
                "of the number alone, or fewer numbers per request."
            )

    def spend(self, groups: int, pixels: int = 0) -> None:
        """Count `groups` more reads and `pixels` more pixels worked on, or raise TooManyMarksError (spending nothing) once
        either would pass its limit."""
        self.check(groups, pixels)
        self.left -= groups
        self.pixels_left -= pixels


class Segmenter:
    """Reads a picture of a number with a Reader (and a Judge and a LineReader, if any); caches each group's reading."""

    def __init__(
        self,
        page: Page,
        read: Reader,
        judge: Judge | None = None,
        read_line: LineReader | None = None,
        budget: Budget | None = None,
    ) -> None:
        self.page = page
        self.read = read
        self.judge = judge
        self.read_line = read_line
        self.budget = budget  # None: no limit (the splitter's own training reads every composed number whole)
        self.cache: dict[tuple[Piece, ...], GroupReading] = {}  # as many as the budget's groups

    def spend(self, groups: int, pixels: int) -> None:
        """Count reads and the pixels they work on against the budget, if any (TooManyMarksError past it)."""
        if self.budget is not None:
            self.budget.spend(groups, pixels)

    def score_all(self, groups: list[tuple[Piece, ...]], line: Line) -> None:
        """Read every group of the line not read yet, in one network call, once the budget has counted them."""
        fresh = [group for group in dict.fromkeys(groups) if group not in self.cache]
        if not fresh:
            return
        self.spend(len(fresh), sum(self.page.window_area(list(group), INK_RIM) for group in fresh))
        images, readable = [], []
        for group in fresh:
            try:
                images.append(normalize_digit(self.page.ink(list(group))))
                readable.append(group)
            except NoDigitError:
                self.cache[group] = GroupReading(-np.inf, None, None, 0.0)
        if not images:
            return
        batch = np.stack(images)
        probabilities, digit_scores = self.read(batch)
        whole_scores = np.ones(len(images))  # without a judge the whole score adds nothing: log(1) = 0
        if self.judge is not None:
            contexts = np.stack([self.page.surroundings(list(group), line.height) for group in readable])
            whole_scores = self.judge(np.stack([batch, contexts], axis=-1))
        for group, image, row, digit_score, whole_score in zip(
            readable, images, probabilities, digit_scores, whole_scores, strict=False
        ):
            score = float(
                np.log(max(float(row.max()), 1e-9))
                + DETECTOR_WEIGHT * np.log(min(max(float(digit_score), 1e-9) / SURE_DIGIT_SCORE, 1.0))
                + WHOLE_WEIGHT * np.log(max(float(whole_score), 1e-6))
            )
            judged = float(whole_score) if self.judge is not None else None
            self.cache[group] = GroupReading(score, image, row, float(digit_score), judged)

    def score(self, piece: Piece, line: Line) -> float:
        """How well a single piece reads as one digit of its line, with the cost of its width."""
        left, right = self.columns(piece, line)
        return self.cache[(piece,)].score + _shape_score(right - left, line.height)

    def split_wide(self, labels: list[int], line: Line) -> list[Piece]:
        """The line's pieces: strokes as they are, or cut where the parts read better as digits."""
        return [part for label in labels for part in self.split(Piece(label), line, SPLIT_DEPTH)[1]]

    def split(self, piece: Piece, line: Line, depth: int) -> tuple[float, list[Piece]]:
        """A piece as it is, or cut in two and each part split again (`depth` levels), whichever reads best; and its score.

        Each part counts with its own best split, so that a chain of touching digits is cut even
        where both its halves are still chains.
        """
        self.score_all([(piece,)], line)
        best = (self.score(piece, line), [piece])
        left, right = self.columns(piece, line)
        top, _, bottom, _ = self.page.extent([piece])
        width = right - left
        narrow = width < MIN_SPLIT_WIDTH * line.height or width < 0.7 * (bottom - top)
        # a narrow stroke is cut only if it is uncut yet and reads poorly as one digit (two digits written over each other)
        doubtful = (
            not piece.cuts
            and -np.inf < best[0] < DOUBTFUL_SCORE
            and width >= DOUBTFUL_SPLIT_WIDTH * min(line.height, bottom - top)
        )
        if depth == 0 or (narrow and not doubtful):
            return best
        at_valleys, at_shares = self.cuts(piece, line)
        best = self.explore(at_valleys, line, depth, best)
        if best[0] < DOUBTFUL_SCORE:  # still reads poorly: the joint may be no valley (digits touching side by side)
            best = self.explore(at_shares, line, depth, best)
        return best

    def cuts(self, piece: Piece, line: Line) -> tuple[list[Cut], list[Cut]]:
        """The ways to cut a piece (`_cuts`), once the budget has counted their work: its window, its pixels per slant."""
        self.spend(0, self.page.window_area([piece]) + len(cut_slants(line)) * self.page.pixels(piece)[0].size)
        return _cuts(self.page, piece, line)

    def explore(
        self, options: list[Cut], line: Line, depth: int, best: tuple[float, list[Piece]]
    ) -> tuple[float, list[Piece]]:
        """The best of `best` and the cuts whose two parts read best as they are, each part split again."""
        self.score_all([(part,) for first, second, _ in options for part in (first, second)], line)
        options.sort(key=lambda option: self.cut_score(option, line), reverse=True)
        for first, second, crossing in options[:EXPLORED_CUTS]:
            (first_score, first_parts), (second_score, second_parts) = (
                self.split(first, line, depth - 1),
                self.split(second, line, depth - 1),
            )
            score = first_score + second_score - CUT_COST * crossing
            if score > best[0]:
                best = (score, first_parts + second_parts)
        return best

    def cut_score(self, cut: Cut, line: Line) -> float:
        """How well a cut's two parts read as they are, less the cost of the ink it goes through."""
        first, second, crossing = cut
        return self.score(first, line) + self.score(second, line) - CUT_COST * crossing

    def columns(self, piece: Piece, line: Line) -> tuple[float, float]:
        """Left and right (exclusive) of a piece's ink, measured upright: with the line's slant taken out."""
        rows, cols = self.page.pixels(piece)
        if rows.size == 0:
            return 0.0, 0.0
        upright = cols - line.slant * (rows - line.pivot)
        return float(upright.min()), float(upright.max()) + 1.0

    def group_line(self, pieces: list[Piece], line: Line) -> tuple[list[tuple[Piece, ...]], list[int], float | None]:
        """Group a line's pieces into digits: the search's best grouping or, with a line reader, the best of its best
        groupings once the line reader has weighed the digits each spells; the digits read; and the line reader's
        probability of them.

        Where the line reader finds that reading unlikely, the line is grouped again with its pieces also offered cut:
        the better of the two searches wins (a grouping that joins a cut's two parts again has the piece whole). Where
        it still finds it unlikely, a digit may be read in its line (`read_in_line`).
        """
        groupings = self.groupings(pieces, line)
        if self.read_line is None or not groupings:
            groups = groupings[0][1] if groupings else []
            return groups, self.best_digits(groups), None
        labels = sorted({piece.label for piece in pieces})
        self.spend(0, self.page.window_area([Piece(label) for label in labels], INK_RIM))
        log_probabilities = self.read_line(self.page.line_picture(labels))
        total, spelled, groups = self.weigh(groupings, log_probabilities)
        if np.exp(spelled) < RECHECK_PROBABILITY:
            offered, cut_parts = self.offer_cuts(pieces, line)
            # none when a digit of many strokes, each cut, has more parts than a digit may hold and a part reads as none
            regroupings = self.groupings(offered, line, cut_parts) if cut_parts else []
            if regroupings:
                again = self.weigh(regroupings, log_probabilities)
                if again[0] > total:
                    total, spelled, groups = again
        digits = self.best_digits(groups)
        if np.exp(spelled) < RECHECK_PROBABILITY:
            digits, spelled = self.read_in_line(groups, digits, spelled, log_probabilities)
        return groups, digits, float(np.exp(spelled))

    def best_digits(self, groups: list[tuple[Piece, ...]]) -> list[int]:
        """The reader's best digit for each group, read alone."""
        return [int(np.argmax(self.cache[group].probabilities)) for group in groups]

    def read_in_line(
        self, groups: list[tuple[Piece, ...]], digits: list[int], spelled: float, log_probabilities: np.ndarray
    ) -> tuple[list[int], float]:
        """The digits with one taken from the line reader's own reading where that pays, and their log probability.

        Only where its own reading has as many digits and differs in exactly one: that digit costs the log ratio of the
        reader's probabilities of it and of its best, and is taken when the cost plus the line reader's log probability
        of its own reading beats its log probability of `digits` (`spelled`).
        """
        own = best_path(log_probabilities)
        differing = [index for index, (mine, theirs) in enumerate(zip(own, digits, strict=False)) if mine != theirs]
        if len(own) != len(digits) or len(differing) != 1:
            return digits, spelled
        (index,) = differing
        probabilities = self.cache[groups[index]].probabilities
        cost = float(
            np.log(max(float(probabilities[own[index]]), 1e-9)) - np.log(max(float(probabilities[digits[index]]), 1e-9))
        )
        own_spelled = ctc_log_probability(log_probabilities, own)
        return (own, own_spelled) if cost + own_spelled > spelled else (digits, spelled)

    def weigh(
        self, groupings: list[tuple[float, list[tuple[Piece, ...]]]], log_probabilities: np.ndarray
    ) -> tuple[float, float, list[tuple[Piece, ...]]]:
        """The grouping whose search score plus the line reader's say is highest: (that total, its log probability, it)."""
        weighed = []
        for score, groups in groupings:
            spelled = ctc_log_probability(log_probabilities, self.best_digits(groups))
            weighed.append((score + LINE_WEIGHT * spelled, spelled, groups))
        return max(weighed, key=lambda option: option[0])

    def offer_cuts(self, pieces: list[Piece], line: Line) -> tuple[list[Piece], dict[Piece, tuple[Piece, float]]]:
        """The pieces with each one wide enough to hold two 1s replaced by the two parts of its best cut; and each
        part's other part and the ink the cut crosses (in stroke widths), for the search to join them again or not."""
        offered: list[Piece] = []
        cut_parts: dict[Piece, tuple[Piece, float]] = {}
        for piece in pieces:
            left, right = self.columns(piece, line)
            options = []
            if right - left >= RECHECK_CUT_WIDTH * line.height:
                options = [option for options in self.cuts(piece, line) for option in options]
                self.score_all([(part,) for first, second, _ in options for part in (first, second)], line)
            readable = [
                option
                for option in options
                if self.cache[(option[0],)].image is not None and self.cache[(option[1],)].image is not None
            ]
            if not readable:
                offered.append(piece)
                continue
            first, second, crossing = max(readable, key=lambda option: self.cut_score(option, line))
            offered += [first, second]
            cut_parts[first], cut_parts[second] = (second, crossing), (first, crossing)
        return offered, cut_parts

    def groupings(
        self, pieces: list[Piece], line: Line, cut_parts: dict[Piece, tuple[Piece, float]] | None = None
    ) -> list[tuple[float, list[tuple[Piece, ...]]]]:
        """The `KEPT_GROUPINGS` best ways to group a line's pieces into digits, groups of neighbours, best first, scored.

        `cut_parts` pairs the two parts of a cut stroke: joined again they pay no gap, and a group that holds one part
        without the other pays half the cut's cost.
        """
        cut_parts = cut_parts or {}
        line_height = line.height
        spans = {piece: self.columns(piece, line) for piece in pieces}
        pieces = sorted(pieces, key=lambda piece: sum(spans[piece]))
        candidates: dict[tuple[int, int], tuple[tuple[Piece, ...], float]] = {}
        for start in range(len(pieces)):
            left, right = spans[pieces[start]]
            gaps = 0.0
            for end in range(start + 1, min(start + MAX_STROKES_PER_DIGIT, len(pieces)) + 1):
                if end > start + 1:
                    piece_left, piece_right = spans[pieces[end - 1]]
                    gap = max(piece_left - right, left - piece_right)  # negative: they overlap
                    left, right = min(left, piece_left), max(right, piece_right)
                    rejoined = cut_parts.get(pieces[end - 1], (None, 0.0))[0] in pieces[start : end - 1]
                    if not rejoined and (
                        gap > MAX_STROKE_GAP * line_height or right - left > MAX_DIGIT_WIDTH * line_height
                    ):
                        break
                    if not rejoined:
                        gaps += max(0.0, gap / line_height + GAP_ALLOWANCE)
                group = tuple(pieces[start:end])
                parted = sum(
                    cut_parts[piece][1] for piece in group if piece in cut_parts and cut_parts[piece][0] not in group
                )
                candidates[(start, end)] = (
                    group,
                    _shape_score(right - left, line_height, gaps) - 0.5 * CUT_COST * parted,
                )
        self.score_all([group for group, _ in candidates.values()], line)
        # best[i]: the best ways to read the first i pieces as digits: (score, where the last digit starts, which of
        # best[start] it continues); an unreadable group starts none
        best: list[list[tuple[float, int, int]]] = [[(0.0, -1, -1)]] + [[] for _ in pieces]
        for end in range(1, len(pieces) + 1):
            options = []
            for start in range(max(0, end - MAX_STROKES_PER_DIGIT), end):
                if (start, end) not in candidates:
                    continue
                group, shape_score = candidates[(start, end)]
                group_score = self.cache[group].score + shape_score
                if group_score > -np.inf:
                    options.extend((score + group_score, start, rank) for rank, (score, _, _) in enumerate(best[start]))
            best[end] = heapq.nlargest(KEPT_GROUPINGS, options)
        groupings = []
        for score, start, rank in best[len(pieces)]:
            groups, end = [], len(pieces)
            while end > 0:
                groups.append(candidates[(start, end)][0])
                end = start
                _, start, rank = best[end][rank]
            groupings.append((score, groups[::-1]))
        return groupings

    def line(self, labels: list[int], height: float) -> Line:
        """The line's slant: the shear that makes its ink's column profile sharpest (upright strokes), about its middle row.

        Counted first: its window, and its pixels once per slant tried.
        """
        strokes = [Piece(label) for label in labels]
        self.spend(0, self.page.window_area(strokes) + len(SLANTS) * int(self.page.areas[labels].sum()))
        mask, (top, left) = self.page.mask(strokes)
        rows, cols = np.nonzero(mask)
        pivot = float(rows.mean()) + top
        sharpness = []
        for slant in SLANTS:
            upright = np.round(cols - slant * (rows + top - pivot)).astype(int)
            sharpness.append(float(np.square(np.bincount(upright - upright.min()).astype(np.float64)).sum()))
        return Line(height, float(SLANTS[int(np.argmax(sharpness))]), pivot)


def segment_number(
    gray: np.ndarray,
    read: Reader,
    scale: tuple[float, float] = (1.0, 1.0),
    judge: Judge | None = None,
    read_line: LineReader | None = None,
    budget: Budget | None = None,
) -> list[Reading]:
    """The digits of a number in a grayscale picture, in reading order; boxes scaled by (x, y) `scale`.

    Writing taller than `MAX_STROKE_HEIGHT` is read shrunk to it. With a budget, a picture whose marks would pass it
    even if each were read only once, alone, is refused before any read.
    """
    if budget is not None:
        budget.spend(0, PAGE_WORK_PER_PIXEL * gray.size)  # finding and labelling the ink, before it is done
    page = Page(gray)
    if page.tallest > MAX_STROKE_HEIGHT:
        # the page shrunk so that its tallest stroke is `MAX_STROKE_HEIGHT` tall, its boxes scaled back
        shrunk = shrink(gray, max(1, round(max(gray.shape) * MAX_STROKE_HEIGHT / page.tallest)))
        scale = (scale[0] * gray.shape[1] / shrunk.shape[1], scale[1] * gray.shape[0] / shrunk.shape[0])
        if budget is not None:
            budget.spend(0, PAGE_WORK_PER_PIXEL * shrunk.size)
        page = Page(shrunk)
    lines = writing_lines(page)
    if budget is not None:
        # each mark is read alone at least once (`Segmenter.split`)
        marks = [[Piece(label)] for labels, _ in lines for label in labels]
        budget.check(len(marks), sum(page.window_area(mark, INK_RIM) for mark in marks))
    segmenter = Segmenter(page, read, judge, read_line, budget)
    readings = []
    for line_number, (labels, height) in enumerate(lines):
        line = segmenter.line(labels, height)  # measured once: the cuts leave the line's pixels as they are
        groups, digits, line_probability = segmenter.group_line(segmenter.split_wide(labels, line), line)
        for group, digit in zip(
            groups, digits, strict=False
        ):  # all readable: `groupings` leaves out any group that vanished at 28x28
            reading = segmenter.cache[group]
            top, left, bottom, right = page.extent(list(group))
            x, y = int(np.floor(left * scale[0])), int(np.floor(top * scale[1]))
            box = (x, y, int(np.ceil(right * scale[0])) - x, int(np.ceil(bottom * scale[1])) - y)
            readings.append(
                Reading(
                    line_number,
                    box,
                    reading.image,
                    reading.probabilities,
                    digit,
                    reading.digit_score,
                    reading.whole_score,
                    line_probability,
                )
            )
    if not readings:
        raise NoDigitError("No digit found: the marks vanish at 28x28.")
    return readings


def read_number(
    data: bytes,
    read: Reader,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    judge: Judge | None = None,
    read_line: LineReader | None = None,
    budget: Budget | None = None,
    max_decoded_bytes: int = DEFAULT_MAX_DECODED_BYTES,
    pixel_budget: PixelBudget | None = None,
) -> list[Reading]:
    """Image file bytes -> the number's digits in reading order; raises the model package's errors.

    The upload is refused from its header past the decode limits (and charged to `pixel_budget`), and the full-size
    picture is let go once shrunk to the working size."""
    gray, (width, height) = decode_grayscale(data, max_pixels, max_decoded_bytes, pixel_budget)
    shrunk = shrink(gray, NUMBER_WORKING_SIZE)
    del gray
    return segment_number(shrunk, read, (width / shrunk.shape[1], height / shrunk.shape[0]), judge, read_line, budget)
