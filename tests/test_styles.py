"""Writing styles made from MNIST digits for training: flagged 1s, crossed 7s, box-filling digits."""

import numpy as np
from scipy import ndimage

from training import styles


def mnist_like(digit: np.ndarray) -> None:
    """uint8 28x28, ink fitted into 20x20 and centred by mass, as MNIST was made."""
    assert digit.shape == (28, 28) and digit.dtype == np.uint8
    rows, cols = np.flatnonzero(digit.max(axis=1) >= 60), np.flatnonzero(digit.max(axis=0) >= 60)
    assert 17 <= max(rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1) <= 21
    centre_y, centre_x = ndimage.center_of_mass(digit.astype(float))
    assert abs(centre_y - 14) <= 1 and abs(centre_x - 14) <= 1


def upright_stroke() -> np.ndarray:
    """A bare 1: an upright bar, as many MNIST 1s are."""
    digit = np.zeros((28, 28), dtype=np.uint8)
    digit[4:24, 13:16] = 255
    return digit


def seven() -> np.ndarray:
    """A plain 7: a bar on top and a stem."""
    digit = np.zeros((28, 28), dtype=np.uint8)
    digit[4:7, 7:21] = 255
    for row in range(7, 24):
        column = 19 - (row - 7) * 8 // 17
        digit[row, column - 1 : column + 2] = 255
    return digit


def test_a_flagged_one_gains_a_flag_to_the_upper_left_of_its_stroke():
    rng = np.random.default_rng(0)
    plain = upright_stroke()
    flagged = styles.flagged_one(plain, rng)
    mnist_like(flagged)
    # ink left of the stroke's top (the plain 1 has none there), none right of the stroke above its foot (if any)
    stroke_left, stroke_right = (int(column) for column in np.flatnonzero(flagged[20] >= 100)[[0, -1]])
    assert flagged[:14, :stroke_left].astype(int).sum() > 2 * 255
    assert flagged[:18, stroke_right + 2 :].max() < 60


def test_a_crossed_seven_gains_a_bar_across_its_stem():
    rng = np.random.default_rng(1)
    crossed = styles.crossed_seven(seven(), rng)
    mnist_like(crossed)
    # some row in the lower half of the digit now has a run of ink wider than the stem
    widest = max(np.count_nonzero(crossed[row] >= 100) for row in range(12, 20))
    assert widest >= 7


def test_box_filling_widens_a_narrow_digit_and_keeps_its_height():
    rng = np.random.default_rng(2)
    wide = styles.box_filling(upright_stroke(), rng)
    mnist_like(wide)
    width = np.count_nonzero(wide.max(axis=0) >= 100)
    assert 5 <= width <= 3 * 3 + 2  # wider than the 3-pixel bar, at most MAX_STRETCH times


def test_styled_examples_are_reproducible_and_keep_their_labels():
    images = np.stack([upright_stroke(), seven()] * 20)
    labels = np.array([1, 7] * 20)
    first, first_labels = styles.styled_examples(images, labels, seed=5)
    second, second_labels = styles.styled_examples(images, labels, seed=5)
    assert np.array_equal(first, second) and np.array_equal(first_labels, second_labels)
    assert set(first_labels) <= {1, 7} and len(first) > 0
