"""What reading a number may cost: the budget of groups and pixels, the working resolution, the pixel cache's bound."""

import numpy as np
import pytest
from PIL import Image, ImageDraw

from model import number_reader
from model.classifier import number_text
from model.errors import TooManyMarksError
from model.number_reader import Budget, Page, Piece, segment_number
from tests.drawing import draw_number, encode, gray


def fake_read(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A stand-in reader, instant and sure of nothing: every group reads as every digit alike and half a digit."""
    return np.full((len(images), 10), 0.1), np.full(len(images), 0.5)


def solid_block(side: int = 240, block: int = 160) -> np.ndarray:
    """A black square on a white page, as the splitter's grayscale input."""
    picture = Image.new("L", (side, side), 255)
    margin = (side - block) // 2
    ImageDraw.Draw(picture).rectangle((margin, margin, margin + block - 1, margin + block - 1), fill=0)
    return np.asarray(picture, dtype=np.float32) / 255.0


def scribbles(count: int, side: int = 240, seed: int = 0) -> np.ndarray:
    """`count` random pen strokes on a white page, seeded, as the splitter's grayscale input."""
    rng = np.random.default_rng(seed)
    picture = Image.new("L", (side, side), 255)
    pen = ImageDraw.Draw(picture)
    for _ in range(count):
        x, y = rng.uniform(0, side, 2)
        pen.line([(x, y), (x + rng.uniform(-30, 30), y + rng.uniform(-30, 30))], fill=0, width=int(rng.integers(2, 6)))
    return np.asarray(picture, dtype=np.float32) / 255.0


def strokes_in_rows(rows: int = 8, columns: int = 12) -> np.ndarray:
    """Short upright strokes apart from each other in rows, as the splitter's grayscale input: a mark each."""
    picture = Image.new("L", (columns * 30 + 20, rows * 40 + 20), 255)
    pen = ImageDraw.Draw(picture)
    for row in range(rows):
        for column in range(columns):
            pen.line([(20 + column * 30, 15 + row * 40), (24 + column * 30, 40 + row * 40)], fill=0, width=4)
    return np.asarray(picture, dtype=np.float32) / 255.0


# The pixel cache's bound in the tests: more than any one piece of their pictures holds, less than all of them.
WATCHED_PIXEL_BYTES = 256 * 2**10


class WatchedPage(Page):
    """A Page that records the most bytes of pixels it ever held, the bytes of all it made, and every page made."""

    made: list["WatchedPage"] = []

    def __init__(self, gray_page: np.ndarray) -> None:
        super().__init__(gray_page)
        self.most_bytes = self.made_bytes = 0
        WatchedPage.made.append(self)

    def pixels(self, piece: Piece) -> tuple[np.ndarray, np.ndarray]:
        """The piece's pixels, noting what the cache holds after each ask."""
        fresh = piece not in self._pixels
        rows, cols = super().pixels(piece)
        self.made_bytes += (rows.nbytes + cols.nbytes) * fresh
        self.most_bytes = max(self.most_bytes, self.pixel_bytes)
        return rows, cols


@pytest.fixture
def watched_pages(monkeypatch):
    """Pages made by segment_number are WatchedPages, their pixel cache held to WATCHED_PIXEL_BYTES."""
    WatchedPage.made = []
    monkeypatch.setattr(number_reader, "Page", WatchedPage)
    monkeypatch.setattr(number_reader, "PAGE_PIXEL_BYTES", WATCHED_PIXEL_BYTES)
    return WatchedPage.made


def test_a_budget_counts_groups_and_pixels_and_refuses_past_either_spending_nothing():
    budget = Budget(10, 1_000)
    budget.spend(4, 600)
    budget.spend(6, 400)
    assert (budget.left, budget.pixels_left) == (0, 0)
    with pytest.raises(TooManyMarksError, match="10 reads.*MAX_NUMBER_GROUPS"):
        budget.spend(1)
    fresh = Budget(10, 1_000)
    with pytest.raises(TooManyMarksError, match="1,000 pixels.*MAX_NUMBER_READ_PIXELS"):
        fresh.spend(1, 1_001)
    assert (fresh.left, fresh.pixels_left) == (10, 1_000)  # a refused read spends nothing
    fresh.check(10, 1_000)  # what is left fits exactly, and checking spends nothing
    assert (fresh.left, fresh.pixels_left) == (10, 1_000)


def test_the_defaults_come_from_the_limits_module():
    from model.limits import DEFAULT_MAX_GROUPS, DEFAULT_MAX_READ_PIXELS

    budget = Budget()
    assert (budget.limit, budget.pixels_limit) == (DEFAULT_MAX_GROUPS, DEFAULT_MAX_READ_PIXELS)


def window_area(page: Page, pieces: list[Piece], margin: int) -> int:
    """The pixels of the box round the pieces' ink grown by `margin` within the page, from their pixels themselves."""
    rows = np.concatenate([page.pixels(piece)[0] for piece in pieces]).astype(int)
    cols = np.concatenate([page.pixels(piece)[1] for piece in pieces]).astype(int)
    height, width = page.labels.shape
    top, left = max(rows.min() - margin, 0), max(cols.min() - margin, 0)
    bottom, right = min(rows.max() + 1 + margin, height), min(cols.max() + 1 + margin, width)
    return (bottom - top) * (right - left)


def test_a_read_counts_the_window_round_its_groups_ink_and_a_cut_its_pixels_per_slant():
    page = Page(gray(draw_number("17", gaps=[25])[0]))
    one, seven = sorted(page.strokes, key=lambda label: page.slices[label][1].start)
    rows, cols = page.pixels(Piece(seven))
    budget = Budget(10**6, 10**9)
    segmenter = number_reader.Segmenter(page, fake_read, budget=budget)
    line = number_reader.Line(100.0, 0.0, float(rows.mean()))
    right_part = Piece(seven, ((float(np.median(cols)), np.inf, 0.3, float(rows.mean())),))
    segmenter.score_all([(Piece(one),), (Piece(one), right_part)], line)
    assert budget.limit - budget.left == 2
    assert budget.pixels_limit - budget.pixels_left == (
        window_area(page, [Piece(one)], number_reader.INK_RIM)
        + window_area(page, [Piece(one), right_part], number_reader.INK_RIM)
    )
    spent = budget.pixels_limit - budget.pixels_left
    segmenter.score_all([(Piece(one),)], line)  # read already: counted once
    assert (budget.limit - budget.left, budget.pixels_limit - budget.pixels_left) == (2, spent)
    segmenter.cuts(Piece(seven), line)
    slants = len(number_reader.cut_slants(line))
    assert (
        slants == 7
        and budget.pixels_limit - budget.pixels_left - spent
        == window_area(page, [Piece(seven)], 0) + slants * rows.size
    )


def test_a_cut_part_is_its_pieces_pixels_on_its_side_kept_as_16_bit_coordinates():
    page = Page(gray(draw_number("7")[0]))
    seven = page.strokes[0]
    rows, cols = page.pixels(Piece(seven))
    assert rows.dtype == np.int16 and cols.dtype == np.int16
    first = (-np.inf, float(np.median(cols)), 0.3, float(rows.mean()))
    second = (float(rows.mean()), np.inf, -0.5, float(np.median(cols)))
    part = Piece(seven, (first, second))
    part_rows, part_cols = page.pixels(part)
    # the same pixels, in the same order, as the stroke's box less what lies beyond either cut
    box_rows, box_cols = np.nonzero(page.labels == seven)
    keep = np.ones(box_rows.size, dtype=bool)
    for cut_left, cut_right, slant, pivot in part.cuts:
        sheared = box_cols - slant * (box_rows - pivot)
        keep &= (sheared >= cut_left) & (sheared < cut_right)
    assert 0 < part_rows.size < rows.size
    np.testing.assert_array_equal(part_rows, box_rows[keep])
    np.testing.assert_array_equal(part_cols, box_cols[keep])
    assert page.box(part) == (
        int(part_rows.min()),
        int(part_cols.min()),
        int(part_rows.max()) + 1,
        int(part_cols.max()) + 1,
    )


def test_the_pixel_cache_drops_the_least_recently_used_past_its_bytes(monkeypatch):
    monkeypatch.setattr(number_reader, "PAGE_PIXEL_BYTES", 4_000)
    page = Page(gray(draw_number("2024")[0]))
    first, *others = page.strokes
    page.pixels(Piece(first))
    for label in others:
        page.pixels(Piece(label))
        page.pixels(Piece(first))  # used again: kept
        assert page.pixel_bytes <= 4_000 or len(page._pixels) == 1
    assert Piece(first) in page._pixels and Piece(others[0]) not in page._pixels
    # a dropped piece is made again, the same
    rows, cols = page.pixels(Piece(others[0]))
    assert rows.size == page.areas[others[0]]


def test_a_solid_block_is_answered_within_its_budget_with_the_pixel_cache_bounded(watched_pages):
    budget = Budget(300, 3_000_000)
    try:
        readings = segment_number(solid_block(), fake_read, budget=budget)
        assert readings
    except TooManyMarksError:
        pass
    assert budget.left >= 0 and budget.pixels_left >= 0
    (page,) = watched_pages
    assert page.most_bytes <= WATCHED_PIXEL_BYTES < page.made_bytes


def test_a_page_of_dense_scribbles_is_answered_within_its_budget_with_the_pixel_cache_bounded(watched_pages):
    read_groups = []

    def counting_read(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        read_groups.append(len(images))
        return fake_read(images)

    budget = Budget(500, 5_000_000)
    try:
        assert segment_number(scribbles(400), counting_read, budget=budget)
    except TooManyMarksError:
        pass
    assert 0 < sum(read_groups) <= 500 and budget.left >= 0 and budget.pixels_left >= 0
    (page,) = watched_pages
    assert page.most_bytes <= WATCHED_PIXEL_BYTES < page.made_bytes


def test_a_picture_of_more_marks_than_the_budget_reads_is_refused_before_any_read():
    read_groups = []

    def counting_read(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        read_groups.append(len(images))
        return fake_read(images)

    page = Page(strokes_in_rows())
    marks = [[Piece(label)] for labels, _ in number_reader.writing_lines(page) for label in labels]
    least_pixels = sum(page.window_area(mark, number_reader.INK_RIM) for mark in marks)  # each read alone, once
    assert len(marks) == 96
    with pytest.raises(TooManyMarksError, match="MAX_NUMBER_GROUPS"):
        segment_number(strokes_in_rows(), counting_read, budget=Budget(len(marks) - 1))
    with pytest.raises(TooManyMarksError, match="MAX_NUMBER_READ_PIXELS"):
        segment_number(strokes_in_rows(), counting_read, budget=Budget(10**6, least_pixels - 1))
    assert read_groups == []


def test_a_block_of_ink_is_refused_once_its_reads_would_pass_the_pixel_budget():
    budget = Budget(10**6, 2_000_000)
    with pytest.raises(TooManyMarksError, match="2,000,000 pixels"):
        segment_number(solid_block(), fake_read, budget=budget)
    assert 0 <= budget.pixels_left < 2_000_000


@pytest.mark.parametrize("text", ["2024", "13", "7085", "946"])
def test_ordinary_drawn_numbers_read_right_with_the_default_budget(classifier, text):
    picture, _ = draw_number(text)
    budget = Budget()
    assert number_text(classifier.read_number(encode(picture), budget=budget)) == text
    assert (
        budget.limit - budget.left < budget.limit // 10
        and budget.pixels_limit - budget.pixels_left < budget.pixels_limit // 10
    )


def test_writing_taller_than_the_working_height_is_read_shrunk_with_boxes_in_the_uploads_pixels(
    classifier, watched_pages
):
    picture, boxes = draw_number("52", scale=3.5)  # strokes about 390 pixels tall
    digits = classifier.read_number(encode(picture))
    assert number_text(digits) == "52"
    assert watched_pages[-1].tallest <= number_reader.MAX_STROKE_HEIGHT < watched_pages[0].tallest
    for item, (left, top, width, height) in zip(digits, boxes, strict=False):
        x, y, box_width, box_height = item.box
        assert (
            left - 25 <= x
            and x + box_width <= left + width + 25
            and top - 25 <= y
            and y + box_height <= top + height + 25
        )
        assert box_height >= 0.6 * height
