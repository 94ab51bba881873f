"""The bench's figures: each share is printed with an interval that says how far one draw can be trusted."""

import math

import pytest

from bench.number_accuracy import read_numbers, share_text, wilson_interval
from model.limits import NumberLimits
from training.numbers import number_set


def test_the_interval_of_no_successes_in_ten_is_the_textbook_one():
    low, high = wilson_interval(0, 10)
    assert low == 0.0
    assert high == pytest.approx(0.2775, abs=5e-5)


def test_the_interval_of_all_successes_mirrors_that_of_none():
    low, high = wilson_interval(10, 10)
    mirrored_low, mirrored_high = wilson_interval(0, 10)
    assert (low, high) == pytest.approx((1 - mirrored_high, 1 - mirrored_low))


@pytest.mark.parametrize("successes, trials", [(971, 1000), (952, 1000), (884, 1000), (78, 10_000)])
def test_the_interval_holds_the_share_and_narrows_with_ten_times_the_trials(successes, trials):
    low, high = wilson_interval(successes, trials)
    assert 0.0 <= low < successes / trials < high <= 1.0
    wider_low, wider_high = low, high
    low, high = wilson_interval(10 * successes, 10 * trials)
    assert wider_low < low < high < wider_high
    # about sqrt(10) times narrower
    assert (wider_high - wider_low) / (high - low) == pytest.approx(math.sqrt(10), rel=0.1)


def test_a_share_of_a_thousand_numbers_near_the_goal_is_known_to_about_one_point():
    low, high = wilson_interval(970, 1000)
    assert 0.009 < 0.97 - low < 0.013 and 0.008 < high - 0.97 < 0.012


def test_a_share_is_printed_with_its_interval_and_counts():
    assert share_text(971, 1000) == " 97.10 %  (95 % interval 95.87-97.97 %; 971/1000)"


def test_a_share_of_nothing_has_no_interval():
    with pytest.raises(ValueError):
        wilson_interval(0, 0)


def test_the_bench_counts_a_refused_number_as_a_miss_and_the_digits_read_in_their_line(classifier, mnist, monkeypatch):
    number = number_set(mnist["x_test"], mnist["y_test"], 766, seed=8)[765]  # "99": its second 9 read in its line
    read_number, calls = classifier.read_number, []

    def refusing_the_second(upload):
        calls.append(upload)
        return read_number(upload, NumberLimits(max_groups=1)) if len(calls) == 2 else read_number(upload)

    monkeypatch.setattr(classifier, "read_number", refusing_the_second)
    result = read_numbers(classifier, [number, number])
    assert result["accuracy"]["all"] == (1, 2)
    assert result["misses"] == {"refused: too_many_marks": 1}
    assert result["in_line"] == {"read": 1, "right": 1}
