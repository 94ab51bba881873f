"""Synthetic non-digits: dark marks on light paper with a margin, reproducible, and fit for the network's preprocessing."""

import numpy as np
import pytest
from scipy import ndimage

from model.decoding import find_ink, normalize_digit
from training import synthetic
from training.synthetic import (
    AMBIGUOUS_CHARACTERS,
    BUILTIN_FONT,
    EVALUATION_FONTS,
    HELD_OUT_SHAPE_KINDS,
    LETTERS,
    SHAPE_KINDS,
    TRAINING_FONTS,
    TRAINING_SHAPE_KINDS,
    available_fonts,
    font_characters,
    font_digit,
    letter,
    non_digit,
    shape,
    touching_pair,
)

SEEDS = range(4)
# Ink is darker than this, paper lighter (paper is 225-255, ink 0-60, noise a few levels).
INK_LEVEL = 128
# Fonts to draw letters with: Pillow's own (always there) and the first of each family found.
SAMPLE_FONTS = [BUILTIN_FONT] + TRAINING_FONTS[:1] + [font for font in EVALUATION_FONTS[:1] if font != BUILTIN_FONT]
EIGHT_NEIGHBOURS = np.ones((3, 3), dtype=bool)


def ink_of(picture: np.ndarray) -> np.ndarray:
    """Where the picture has ink."""
    return picture < INK_LEVEL


def ink_columns(picture: np.ndarray) -> np.ndarray:
    """Indices of the columns that hold ink."""
    return np.flatnonzero(ink_of(picture).any(axis=0))


def assert_ink_on_paper(picture: np.ndarray) -> None:
    """uint8, 2-D, 96-160 a side, dark ink on light paper, the mark 40-90 % of the shorter side, clear of the edges."""
    assert picture.dtype == np.uint8 and picture.ndim == 2
    assert all(96 <= side <= 160 for side in picture.shape)
    assert np.median(picture) > 200 and picture.min() < 80
    rows, columns = np.flatnonzero(ink_of(picture).any(axis=1)), ink_columns(picture)
    mark = max(rows[-1] - rows[0] + 1, columns[-1] - columns[0] + 1)
    assert 0.4 * min(picture.shape) <= mark <= 0.9 * min(picture.shape)
    band = 3
    edges = np.concatenate(
        [picture[:band].ravel(), picture[-band:].ravel(), picture[:, :band].ravel(), picture[:, -band:].ravel()]
    )
    assert edges.min() > 150, "ink touches the picture's edge"


def assert_network_input(picture: np.ndarray) -> None:
    """The service's preprocessing makes a 28x28 input with some ink of it."""
    array = normalize_digit(find_ink(picture.astype(np.float32) / 255.0))
    assert array.shape == (28, 28) and array.dtype == np.float32
    assert array.min() >= 0.0 and array.max() <= 1.0
    assert np.count_nonzero(array > 0.5) >= 10


@pytest.mark.parametrize("kind", SHAPE_KINDS)
def test_every_shape_kind_is_ink_on_paper_that_preprocessing_accepts(kind):
    for seed in SEEDS:
        picture = shape(np.random.default_rng(seed), kind)
        assert_ink_on_paper(picture)
        assert_network_input(picture)


@pytest.mark.parametrize("font", SAMPLE_FONTS)
def test_letters_in_each_family_are_ink_on_paper_that_preprocessing_accepts(font):
    rng = np.random.default_rng(0)
    for character in "AKWefx#?%":
        picture = letter(rng, font, character)
        assert_ink_on_paper(picture)
        assert_network_input(picture)


def test_font_digits_are_ink_on_paper_that_preprocessing_accepts():
    rng = np.random.default_rng(0)
    for digit in range(10):
        picture = font_digit(rng, SAMPLE_FONTS[digit % len(SAMPLE_FONTS)], digit)
        assert_ink_on_paper(picture)
        assert_network_input(picture)


def test_letter_draws_no_digit_and_font_digit_no_letter():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError):
        letter(rng, BUILTIN_FONT, "7")
    with pytest.raises(ValueError):
        letter(rng, BUILTIN_FONT, "ab")
    with pytest.raises(ValueError):
        font_digit(rng, BUILTIN_FONT, 10)


def test_a_seed_gives_the_same_picture_and_another_seed_another():
    def pictures(seed):
        rng = np.random.default_rng(seed)
        return [
            shape(rng, "star"),
            shape(rng, "scribble"),
            letter(rng, BUILTIN_FONT, "K"),
            font_digit(rng, BUILTIN_FONT, 4),
            non_digit(rng, [BUILTIN_FONT], SHAPE_KINDS),
            touching_pair(rng, shape(rng, "zigzag"), letter(rng, BUILTIN_FONT, "M")),
        ]

    for first, again, other in zip(pictures(1), pictures(1), pictures(2), strict=False):
        assert np.array_equal(first, again)
        assert first.shape != other.shape or not np.array_equal(first, other)


def test_training_and_evaluation_fonts_are_separate_families():
    assert not set(TRAINING_FONTS) & set(EVALUATION_FONTS)
    assert BUILTIN_FONT in EVALUATION_FONTS and BUILTIN_FONT not in TRAINING_FONTS
    assert TRAINING_FONTS == sorted(TRAINING_FONTS)
    assert all("/dejavu/" in font for font in TRAINING_FONTS)
    assert all("/liberation/" in font for font in EVALUATION_FONTS if font != BUILTIN_FONT)
    assert available_fonts([BUILTIN_FONT, "/no/such/font.ttf"] + TRAINING_FONTS) == [BUILTIN_FONT] + TRAINING_FONTS


def test_letters_leave_out_digits_and_characters_that_read_as_digits():
    assert not set(LETTERS) & set(AMBIGUOUS_CHARACTERS)
    assert not any(character.isdigit() or character.isspace() for character in LETTERS)
    assert len(set(LETTERS)) == len(LETTERS)
    for look_alike in "OoIlZSsBGbgqT":  # 0, 1, 2, 5, 8, 6, 9, 7
        assert look_alike in AMBIGUOUS_CHARACTERS
    for font in SAMPLE_FONTS:
        characters = font_characters(font)
        assert set(characters) <= set(LETTERS) and len(characters) > 0.9 * len(LETTERS)


def test_shape_kinds_split_into_training_and_held_out_and_leave_out_digit_look_alikes():
    assert set(TRAINING_SHAPE_KINDS) | set(HELD_OUT_SHAPE_KINDS) == set(SHAPE_KINDS)
    assert not set(TRAINING_SHAPE_KINDS) & set(HELD_OUT_SHAPE_KINDS)
    assert len(HELD_OUT_SHAPE_KINDS) >= 4 and len(TRAINING_SHAPE_KINDS) >= 15
    assert not {"circle", "ellipse", "oval", "line"} & set(SHAPE_KINDS)
    with pytest.raises(ValueError):
        shape(np.random.default_rng(0), "circle")


def test_non_digit_without_letters_never_draws_a_letter(monkeypatch):
    def no_letters(*arguments):
        raise AssertionError("letter() called with letter_share=0")

    monkeypatch.setattr(synthetic, "letter", no_letters)
    rng = np.random.default_rng(0)
    for _ in range(20):
        assert_ink_on_paper(non_digit(rng, [], TRAINING_SHAPE_KINDS, letter_share=0.0))


def test_non_digit_with_only_letters_draws_from_the_fonts_given():
    rng = np.random.default_rng(0)
    for _ in range(10):
        assert_ink_on_paper(non_digit(rng, [BUILTIN_FONT], [], letter_share=1.0))
    with pytest.raises(ValueError):
        non_digit(rng, [], SHAPE_KINDS, letter_share=0.5)
    with pytest.raises(ValueError):
        non_digit(rng, [BUILTIN_FONT], [], letter_share=0.5)


@pytest.mark.parametrize("seed", SEEDS)
def test_touching_pair_joins_two_marks_into_one_wider_stroke(seed):
    rng = np.random.default_rng(seed)
    first, second = shape(rng, "zigzag"), shape(rng, "triangle")  # each one unbroken stroke
    for picture in (first, second):
        assert ndimage.label(ink_of(picture), structure=EIGHT_NEIGHBOURS)[1] == 1
    pair = touching_pair(rng, first, second)
    assert pair.dtype == np.uint8 and pair.ndim == 2
    assert np.median(pair) > 200
    columns = ink_columns(pair)
    span = columns[-1] - columns[0] + 1
    assert span > max(np.ptp(ink_columns(first)), np.ptp(ink_columns(second))) + 1
    assert len(columns) == span, "an empty column between the two marks"
    assert ndimage.label(ink_of(pair), structure=EIGHT_NEIGHBOURS)[1] == 1, "the two marks do not touch"
    assert (
        ink_of(pair[:2]).sum()
        == ink_of(pair[-2:]).sum()
        == ink_of(pair[:, :2]).sum()
        == ink_of(pair[:, -2:]).sum()
        == 0
    )
    assert_network_input(pair)


def test_touching_pair_of_typed_digits_has_no_gap():
    rng = np.random.default_rng(5)
    pair = touching_pair(rng, font_digit(rng, BUILTIN_FONT, 3), font_digit(rng, BUILTIN_FONT, 7))
    columns = ink_columns(pair)
    assert len(columns) == columns[-1] - columns[0] + 1
