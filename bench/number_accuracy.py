"""Whole numbers and "not a digit": accuracy on evaluation sets this script builds itself.

    python -m bench.number_accuracy --data ../shared/data/mnist.npz

Four sets, none of them seen in training:
- numbers of 2-6 digits composed from MNIST *test* digits (training.numbers: uneven sizes and gaps,
  touching neighbours, slant, noise dots, some on two lines), read by /recognize/number.json's code:
  the share read exactly right (goal >= 97 %);
- non-digits: letters and symbols in fonts the detector never trained on (Liberation, Pillow's
  own) and hand-drawn shapes, both of kinds it trained on and of five kinds it never saw, read by
  /recognize.json's code: the share flagged `is_digit: false` (goal >= 85 %);
- the 10,000 MNIST test digits, drawn as pictures and as the original 28x28 PNGs: the share
  wrongly flagged (goal <= 1 %);
- the same non-digits, each written among 2-3 MNIST test digits as one more mark of a number
  (its size and slant like theirs), read by /recognize/number.json's code: the share left out of
  `number`, and what became of the others (no goal set; the issue asks it of every mark);
- with `--usps`, numbers of 2-4 digits where one or more digits are real USPS digits by other writers (the rest
  MNIST test digits), read by /recognize/number.json's code: the share read exactly right and how many of the
  USPS digits were left out of `number` (odd-looking real digits in a number are to be read, not left out).
It also reports the calibration of the confidence (expected calibration error) on the digits of
the numbers, before and after the model card's temperature. Each share comes with its 95 %
interval (Wilson's): with 1,000 numbers a share near 97 % is known to about ±1 point, so a goal met
or missed by less than that is not settled by one draw; `--seed` draws another set.
"""

import argparse
import collections
import time

import numpy as np
from scipy.stats import binomtest

from model.classifier import Classifier, calibrate, number_text
from model.decoding import encode_png, preprocess
from model.errors import NoDigitError, RecognitionError
from training import synthetic
from training.calibrate import expected_calibration_error
from training.data import load_mnist
from training.numbers import ComposedNumber, compose_number, number_set
from web.settings import read_settings


def read_numbers(classifier: Classifier, numbers: list) -> dict:
    """Exact-number accuracy overall and by length and kind; per-digit confidences for calibration."""
    right = collections.Counter()
    total = collections.Counter()
    misses = collections.Counter()
    confidences, raw, labels = [], [], []
    seconds = []
    in_line = collections.Counter()  # digits read in their line: all, and right where the digits line up with the truth
    for number in numbers:
        upload = encode_png(number.picture)
        started = time.perf_counter()
        try:
            digits, refused = classifier.read_number(upload), None
        except RecognitionError as error:  # what the service would answer with an error: a miss
            digits, refused = [], error.code
        seconds.append(time.perf_counter() - started)
        read = number_text(digits)
        if refused:
            misses[f"refused: {refused}"] += 1
        elif read != number.number:
            misses[miss_kind(number.number, "".join(str(item.prediction.digit) for item in digits))] += 1
        kinds = ["all", f"{len(number.number)} digits", "touching" if number.touching else "apart"]
        if len(number.lines) > 1:
            kinds.append("two lines")
        for kind in kinds:
            total[kind] += 1
            right[kind] += read == number.number
        in_line["read"] += sum(item.read_in_line for item in digits)
        if len(digits) == len(number.number):  # the digits line up with the truth: calibration data
            for item, truth in zip(digits, number.number, strict=False):
                confidences.append(item.prediction.probabilities)
                labels.append(int(truth))
                in_line["right"] += item.read_in_line and item.prediction.digit == int(truth)
        raw.append(read)
    probabilities = np.array(confidences)
    return {
        "accuracy": {kind: (right[kind], total[kind]) for kind in total},
        "misses": misses,
        "probabilities": probabilities,
        "labels": np.array(labels),
        "milliseconds": 1000 * np.array(seconds),
        "in_line": in_line,
    }


def wilson_interval(successes: int, trials: int, confidence: float = 0.95) -> tuple[float, float]:
    """The Wilson score interval of a share (SciPy's): how far one draw of `trials` can be trusted."""
    if trials <= 0:
        raise ValueError("a share of no trials has no interval")
    interval = binomtest(successes, trials).proportion_ci(confidence, method="wilson")
    return float(interval.low), float(interval.high)


def share_text(successes: int, trials: int) -> str:
    """A share as the bench prints it: percent, its 95 % interval and the counts."""
    low, high = wilson_interval(successes, trials)
    return (
        f"{100 * successes / trials:6.2f} %  (95 % interval {100 * low:.2f}-{100 * high:.2f} %; {successes}/{trials})"
    )


def reads_every_digit_alone(classifier: Classifier, number: ComposedNumber) -> bool:
    """Whether the network reads each of the number's MNIST digits right on its own: no splitter can do better."""
    probabilities = classifier.raw_probabilities(number.digits.astype(np.float32) / 255.0)
    return "".join(str(digit) for digit in probabilities.argmax(axis=1)) == number.number


def miss_kind(truth: str, marks: str) -> str:
    """Why a number was misread, from the digits of every mark (non-digits included)."""
    if marks == truth:
        return "every digit right, one flagged as no digit"
    if len(marks) != len(truth):
        return (
            "too few marks (digits kept together)"
            if len(marks) < len(truth)
            else "too many marks (a digit cut or its pieces apart)"
        )
    return "the right marks, a digit misread"


def flagged_count(classifier: Classifier, pictures: list[np.ndarray]) -> tuple[int, int]:
    """How many pictures are answered with is_digit false or 422 no_digit, and how many of them the latter."""
    # in batches of a request's size, as a client sends them: a request's decoding budget is shared by its images
    batch = read_settings({})["MAX_BATCH_IMAGES"]
    results = [
        result
        for start in range(0, len(pictures), batch)
        for result in classifier.read_digits([encode_png(picture) for picture in pictures[start : start + batch]])
    ]
    no_digit = sum(isinstance(result, NoDigitError) for result in results)
    flagged = sum(isinstance(result, NoDigitError) or not result.is_digit for result in results)
    return flagged, no_digit


def marked_numbers(rng: np.random.Generator, images: np.ndarray, labels: np.ndarray, marks: list[np.ndarray]) -> list:
    """Numbers of 2-3 MNIST digits with one non-digit mark written among them, each with the digits alone."""
    numbers = []
    for mark in marks:
        try:  # at MNIST's scale, so that the composer sizes and slants it like the digits
            mark_image = np.round(255 * preprocess(encode_png(mark))).astype(np.uint8)
        except RecognitionError:
            continue
        chosen = rng.choice(len(images), size=int(rng.integers(2, 4)), replace=False)
        place = int(rng.integers(0, len(chosen) + 1))
        written = compose_number(
            rng, np.insert(images[chosen], place, mark_image, axis=0), np.insert(labels[chosen], place, 0)
        )
        numbers.append((written, "".join(str(int(label)) for label in labels[chosen])))
    return numbers


def mark_outcome(classifier: Classifier, number: ComposedNumber, digits_alone: str) -> str:
    """What became of the non-digit mark in a number: left out of it, or why not."""
    try:
        digits = classifier.read_number(encode_png(number.picture))
    except RecognitionError as error:  # what the service would answer with an error: no number, the mark not left out
        return f"the number refused: {error.code}"
    read = number_text(digits)
    if read == digits_alone:
        return "left out of the number"
    if len(digits) > len(digits_alone) + 1:
        return "cut, its parts read as digits"
    if len(read) == len(digits_alone) + 1:
        return "read as a digit"
    return "other (joined to a digit, a digit misread)"


# Each digit of a number with USPS digits is a USPS digit with this chance (at least one per number).
usps_share = 0.5


def usps_as_mnist(image: np.ndarray) -> np.ndarray:
    """A USPS digit (16x16 uint8, bright ink on black) in MNIST's layout (28x28, bright ink on black, centred), so that
    the composer cuts it to its ink, scales that to the MNIST digits' height and writes it dark on white with them."""
    return np.pad(image, (28 - image.shape[0]) // 2)


def usps_numbers(
    rng: np.random.Generator,
    images: np.ndarray,
    labels: np.ndarray,
    usps_images: np.ndarray,
    usps_labels: np.ndarray,
    count: int,
) -> list[tuple[ComposedNumber, list[int]]]:
    """`count` numbers of 2-4 digits (lengths equally often) where each digit is a real USPS digit with the chance
    `usps_share` (at least one per number) and otherwise an MNIST test digit, each with where its USPS digits are (their
    indices in reading order)."""
    numbers = []
    for index in range(count):
        length = 2 + index % 3
        real = rng.random(length) < usps_share
        if not real.any():
            real[rng.integers(length)] = True
        mnist_chosen = rng.choice(len(images), size=length, replace=False)
        usps_chosen = rng.choice(len(usps_images), size=length, replace=False)
        digits = np.where(
            real[:, None, None], np.stack([usps_as_mnist(usps_images[i]) for i in usps_chosen]), images[mnist_chosen]
        )
        digit_labels = np.where(real, usps_labels[usps_chosen], labels[mnist_chosen])
        numbers.append((compose_number(rng, digits, digit_labels), np.flatnonzero(real).tolist()))
    return numbers


def mark_of(number: ComposedNumber, digits: list, index: int) -> int | None:
    """Which of the read marks `digits` holds the most of the ink of the number's digit `index` in its box; None when
    none holds any of it."""
    rows, cols = np.nonzero((number.owners == index) & (number.picture < 128))
    held = [
        np.count_nonzero((cols >= x) & (cols < x + width) & (rows >= y) & (rows < y + height))
        for x, y, width, height in (item.box for item in digits)
    ]
    return int(np.argmax(held)) if held and max(held) > 0 else None


def read_usps_numbers(classifier: Classifier, numbers: list[tuple[ComposedNumber, list[int]]]) -> dict:
    """Numbers with USPS digits read: how many exactly right, and what became of their USPS digits in `number`."""
    outcomes = collections.Counter()
    right = 0
    for number, places in numbers:
        try:
            digits = classifier.read_number(encode_png(number.picture))
        except RecognitionError:  # what the service would answer with an error: a miss, its USPS digits lost
            outcomes["the number refused"] += len(places)
            continue
        right += number_text(digits) == number.number
        for place in places:
            mark = mark_of(number, digits, place)
            if mark is None:
                outcomes["not found"] += 1
            elif not digits[mark].prediction.is_digit:
                outcomes["left out of the number"] += 1
            elif digits[mark].prediction.digit != int(number.number[place]):
                outcomes["in the number, misread"] += 1
            else:
                outcomes["in the number, read right"] += 1
    return {"right": right, "numbers": len(numbers), "outcomes": outcomes}


def main(argv: list[str] | None = None) -> int:
    """Build the sets, read them, print the figures."""
    parser = argparse.ArgumentParser(prog="python -m bench.number_accuracy", description=__doc__.split("\n")[0])
    parser.add_argument("--data", help="path to an npz in Keras's mnist.npz layout (default: the Keras download)")
    parser.add_argument("--numbers", type=int, default=1000, help="numbers to compose (default: %(default)s)")
    parser.add_argument(
        "--seed",
        type=int,
        default=7,
        help="seed of the numbers' draw; another seed is a fresh set of "
        "numbers that no choice was tuned on (default: %(default)s)",
    )
    parser.add_argument("--non-digits", type=int, default=1000, help="non-digits of each group (default: %(default)s)")
    parser.add_argument(
        "--marked", type=int, default=200, help="non-digits of each group written inside numbers (default: %(default)s)"
    )
    parser.add_argument(
        "--test-digits",
        type=int,
        default=10_000,
        help="MNIST test digits read alone for the share wrongly flagged (default: all %(default)s)",
    )
    parser.add_argument(
        "--usps",
        help="path to the USPS npz (x: 16x16 uint8 bright ink on black, y): numbers with "
        "real USPS digits among MNIST test digits (default: none)",
    )
    parser.add_argument("--usps-numbers", type=int, default=500, help="numbers with USPS digits (default: %(default)s)")
    parser.add_argument("--runtime", default="litert", help="model runtime (default: %(default)s)")
    arguments = parser.parse_args(argv)
    dataset = load_mnist(arguments.data)
    classifier = Classifier.load(runtime=arguments.runtime)

    numbers = number_set(dataset.x_test, dataset.y_test, arguments.numbers, arguments.seed)
    result = read_numbers(classifier, numbers)
    print(
        f"Numbers of 2-6 MNIST test digits ({len(numbers)}, seed {arguments.seed}), read exactly right (goal >= 97 %):"
    )
    for kind, (right, total) in sorted(result["accuracy"].items(), key=lambda item: (item[0] != "all", item[0])):
        print(f"  {kind:<12} {share_text(right, total)}")
    for kind, count in result["misses"].most_common():
        print(f"  missed: {kind:<48} {count}")
    in_line = result["in_line"]
    print(
        f"  digits read in their line (the line reader's reading of the mark): {in_line['read']}, {in_line['right']} of them right"
    )
    milliseconds = result["milliseconds"]
    print(
        f"  time per number in process: median {np.median(milliseconds):.0f} ms, p95 {np.percentile(milliseconds, 95):.0f} ms"
    )
    alone = sum(reads_every_digit_alone(classifier, number) for number in numbers)
    print(
        f"  every digit read right alone (its 28x28 image): {alone}/{len(numbers)}, the most any splitter could read right"
    )

    rng = np.random.default_rng(11)
    groups = {
        "letters, held-out fonts": [
            synthetic.non_digit(rng, synthetic.EVALUATION_FONTS, (), letter_share=1.0)
            for _ in range(arguments.non_digits)
        ],
        "shapes, trained kinds": [
            synthetic.shape(rng, synthetic.TRAINING_SHAPE_KINDS[rng.integers(len(synthetic.TRAINING_SHAPE_KINDS))])
            for _ in range(arguments.non_digits)
        ],
        "shapes, held-out kinds": [
            synthetic.shape(rng, synthetic.HELD_OUT_SHAPE_KINDS[rng.integers(len(synthetic.HELD_OUT_SHAPE_KINDS))])
            for _ in range(arguments.non_digits)
        ],
    }
    print("Non-digits flagged is_digit=false, or 422 no_digit (goal >= 85 %):")
    counts = {name: flagged_count(classifier, pictures) for name, pictures in groups.items()}
    for name, (flagged, no_digit) in counts.items():
        print(f"  {name:<24} {share_text(flagged, len(groups[name]))}, {no_digit} of them 422 no_digit")
    print(f"  {'all':<24} {share_text(sum(flagged for flagged, _ in counts.values()), sum(map(len, groups.values())))}")

    print("MNIST test digits wrongly flagged (goal <= 1 %):")
    test_digits = dataset.x_test[: arguments.test_digits]
    drawn = [synthetic.digit_picture(rng, image) for image in test_digits]
    print(f"  drawn as pictures       {share_text(flagged_count(classifier, drawn)[0], len(drawn))}")
    originals = [255 - image for image in test_digits]
    print(f"  original 28x28 PNGs     {share_text(flagged_count(classifier, originals)[0], len(originals))}")

    if arguments.marked > 0:
        print("Non-digits written among 2-3 MNIST test digits, left out of the number (no goal set):")
        for name, pictures in groups.items():
            marked = marked_numbers(rng, dataset.x_test, dataset.y_test, pictures[: arguments.marked])
            outcomes = collections.Counter(
                mark_outcome(classifier, number, digits_alone) for number, digits_alone in marked
            )
            count = sum(outcomes.values())
            print(
                f"  {name:<24} {100 * outcomes['left out of the number'] / count:6.2f} %  ({count}) "
                + ", ".join(
                    f"{kind} {amount}" for kind, amount in outcomes.most_common() if kind != "left out of the number"
                )
            )

    if arguments.usps:
        with np.load(arguments.usps) as usps:
            usps_images, usps_labels = usps["x"], usps["y"].astype(int)
        written = usps_numbers(
            np.random.default_rng(arguments.seed + 13),
            dataset.x_test,
            dataset.y_test,
            usps_images,
            usps_labels,
            arguments.usps_numbers,
        )
        usps_result = read_usps_numbers(classifier, written)
        outcomes = usps_result["outcomes"]
        print(
            f"Numbers of 2-4 digits with real USPS digits among MNIST test digits ({usps_result['numbers']}), read exactly right:"
        )
        print(f"  all          {share_text(usps_result['right'], usps_result['numbers'])}")
        print(
            f"  USPS digits left out of the number: {share_text(outcomes['left out of the number'], sum(outcomes.values()))}; "
            + ", ".join(
                f"{kind} {amount}" for kind, amount in outcomes.most_common() if kind != "left out of the number"
            )
        )

    probabilities, labels = result["probabilities"], result["labels"]
    raw = calibrate(probabilities, 1.0 / classifier.temperature)  # undo the card's temperature
    print(f"Calibration on the {len(labels)} digits of the numbers (ECE, {classifier.temperature=:.3f}):")
    print(
        f"  before {100 * expected_calibration_error(raw, labels):.2f} %, after {100 * expected_calibration_error(probabilities, labels):.2f} %"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
