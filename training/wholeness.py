"""Train the splitter's "is this group of strokes one whole digit?" network and write it beside the digit model.

    python -m training.wholeness --data ../shared/data/mnist.npz    # two seeds, about an hour on 2 cores

Reading a number, the splitter weighs many ways to group and cut its strokes. The reader alone
judges them badly: half a 0 reads as a confident 1, two touching 0s as a confident 0. This small
network learns the difference from the very candidates the splitter weighs: numbers are composed
from MNIST training digits (training.numbers, which knows which digit each pixel of ink belongs to),
the splitter runs on them, and every group it reads is labelled "one whole digit" when at least
`WHOLE_SHARE` of its ink is one digit's and covers that much of it, "not" when either share is
below `PART_SHARE` (a part of a digit, a digit with a piece of its neighbour, two digits); a
random sample of the far more numerous "not" groups is kept. The network sees each group
twice: normalised as the reader sees it, and in its surroundings. The splitter runs without a
wholeness network here, so that a retraining does not learn from its predecessor. The reader's
validation digits are held out, for the validation examples. One network is trained per seed,
each on numbers of its own, and the file written holds them all as one network that scores a
group with the mean of their scores (training.network.build_wholeness_ensemble).
"""

import argparse
import logging
import sys
import time
from pathlib import Path

import numpy as np

from model import DEFAULT_DETECTOR_PATH, DEFAULT_MODEL_PATH, DEFAULT_WHOLENESS_PATH
from model.number_reader import Page, Reader, Segmenter, writing_lines
from training import harness
from training.data import Dataset
from training.numbers import ComposedNumber, map_number_chunks, number_set

logger = logging.getLogger(__name__)

# A group is one whole digit when this share of its ink is one digit's, and it holds this share of that digit's ink.
# Labelling every group with half of a second digit's ink "not" instead (bench/TRIALS.md, "Groups of two digits labelled
# 'not'") judged more groups right but read no more numbers: 963 of the 1,000 validation numbers against 965.
WHOLE_SHARE = 0.9
# A group is not one whole digit when either share is below this; groups in between are left out of training.
PART_SHARE = 0.8
# The splitter weighs many more parts than digits: at most this many "not" examples are kept per "whole" one. The
# committed pair's value (docs/ARCHITECTURE.md: 243,416 and 244,656 examples); no trial of another is recorded.
NEGATIVES_PER_POSITIVE = 3


def candidates(number: ComposedNumber, read: Reader) -> tuple[np.ndarray, np.ndarray]:
    """Every group the splitter reads in a composed number: its (28, 28, 2) inputs and labels (1 whole, 0 not, -1 unsure)."""
    page = Page(number.picture.astype(np.float32) / 255.0)
    segmenter = Segmenter(page, read)
    owners = number.owners
    ink_owners = owners[np.isin(page.labels, page.strokes)]
    digit_ink = np.bincount(ink_owners[ink_owners >= 0], minlength=len(number.number))
    inputs, labels = [], []
    for labels_of_line, height in writing_lines(page):
        line = segmenter.line(labels_of_line, height)
        seen = set(segmenter.cache)
        segmenter.group_line(segmenter.split_wide(labels_of_line, line), line)
        for group in set(segmenter.cache) - seen:
            reading = segmenter.cache[group]
            if reading.image is None:
                continue
            rows = np.concatenate([page.pixels(piece)[0] for piece in group])
            cols = np.concatenate([page.pixels(piece)[1] for piece in group])
            counts = np.bincount(owners[rows, cols] + 1, minlength=len(number.number) + 1)
            digit = int(np.argmax(counts[1:]))
            precision = counts[digit + 1] / max(rows.size, 1)
            recall = counts[digit + 1] / max(digit_ink[digit], 1)
            label = 1 if min(precision, recall) >= WHOLE_SHARE else 0 if min(precision, recall) < PART_SHARE else -1
            inputs.append(np.stack([reading.image, page.surroundings(list(group), line.height)], axis=-1))
            labels.append(label)
    if not inputs:
        return np.zeros((0, 28, 28, 2), np.float32), np.zeros(0, np.int8)
    return np.stack(inputs).astype(np.float32), np.array(labels, dtype=np.int8)


_classifier = None


def _examples(job: tuple[int, int, np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """The candidates of `count` composed numbers; run in a worker process, which loads the reader once."""
    global _classifier
    from model.classifier import Classifier

    seed, count, images, digit_labels = job
    if _classifier is None:
        # the splitter as it is without this network (nor the line reader, which only picks among its groupings),
        # so that a retraining does not learn from its predecessor
        _classifier = Classifier.load(
            DEFAULT_MODEL_PATH,
            runtime="litert",
            detector_path=DEFAULT_DETECTOR_PATH,
            wholeness_path=None,
            line_reader_path=None,
        )
    parts = [candidates(number, _classifier.read_scores) for number in number_set(images, digit_labels, count, seed)]
    inputs = np.concatenate([part[0] for part in parts])
    labels = np.concatenate([part[1] for part in parts])
    positives, negatives = np.flatnonzero(labels == 1), np.flatnonzero(labels == 0)
    rng = np.random.default_rng(seed)
    negatives = rng.choice(negatives, min(len(negatives), NEGATIVES_PER_POSITIVE * len(positives)), replace=False)
    kept = np.sort(np.concatenate([positives, negatives]))
    return inputs[kept], labels[kept].astype(np.float32)


def build_examples(
    images: np.ndarray, digit_labels: np.ndarray, numbers: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """The labelled candidates of `numbers` composed numbers, made in parallel in chunks, reproducible from the seed."""
    parts = map_number_chunks(_examples, images, digit_labels, numbers, seed, chunk=250)
    return np.concatenate([part[0] for part in parts]), np.concatenate([part[1] for part in parts])


def train(
    dataset: Dataset,
    output: Path = DEFAULT_WHOLENESS_PATH,
    numbers: int = 6000,
    epochs: int = 8,
    validation_size: int = 5000,
    seeds: tuple[int, ...] = (1, 2),
    split_seed: int = 1,
    verbose: int | str = "auto",
) -> dict:
    """Train one network per seed, each on numbers of its own; save their mean as one network with its card; return the card."""
    from training.network import build_wholeness_ensemble

    run = harness.Run(dataset, Path(output), epochs, tuple(seeds), harness.Fitting("binary_crossentropy"), verbose)
    # the reader's own split, whatever the seeds: its validation digits are ones the reader never trained on
    split = harness.held_out(dataset, validation_size, split_seed)
    validation_numbers = max(numbers // 10, 10)
    members, member_cards, validations = [], [], []
    for seed in seeds:
        network, x_validation, y_validation, member_card = _train_member(run, split, numbers, validation_numbers, seed)
        members.append(network)
        member_cards.append(member_card)
        validations.append((x_validation, y_validation))

    ensemble = build_wholeness_ensemble(len(members))
    ensemble.set_weights([weights for network in members for weights in network.get_weights()])
    # judged on every member's validation groups: all from digits that neither the reader nor any member trained on
    x_validation = np.concatenate([pair[0] for pair in validations])
    y_validation = np.concatenate([pair[1] for pair in validations])
    accuracy = _judged_right(ensemble, x_validation, y_validation)

    examples = sum(member["examples"] for member in member_cards)
    card = run.save(
        ensemble,
        lambda: build_wholeness_ensemble(len(members)),
        name="wholeness_cnn",
        description="Scores whether a group of strokes is one whole digit (1), or a part of one or two stuck together "
        "(0). Inputs (28, 28, 2): the normalised group and its surroundings. "
        "The mean of its members' scores.",
        data={
            "numbers": numbers,
            "examples": examples,
            "whole_share": round(
                sum(member["whole_share"] * member["examples"] for member in member_cards) / examples, 4
            ),
            "labels": {
                "whole_share": WHOLE_SHARE,
                "part_share": PART_SHARE,
                "negatives_per_positive": NEGATIVES_PER_POSITIVE,
            },
            "validation_numbers": validation_numbers,
            "validation_examples": int(len(x_validation)),
        },
        results={"members": member_cards, "validation": {"accuracy": round(accuracy, 5)}},
    )
    logger.info("saved %s: %.2f%% of validation groups judged right", run.output, 100 * accuracy)
    return card


def _train_member(
    ensemble_run: harness.Run,
    split: harness.Split,
    numbers: int,
    validation_numbers: int,
    seed: int,
) -> tuple[object, np.ndarray, np.ndarray, dict]:
    """One member, exactly as its seed trains it alone: the network, its validation examples, its entry in the card."""
    from training.network import build_wholeness_network

    run = ensemble_run.member(seed)
    x_train, y_train = build_examples(split.images, split.labels, numbers, seed)
    x_validation, y_validation = build_examples(
        split.validation_images, split.validation_labels, validation_numbers, seed + 1
    )
    logger.info(
        "seed %d: %d training examples (%.1f%% whole) and %d validation examples in %.0f s",
        seed,
        len(x_train),
        100 * y_train.mean(),
        len(x_validation),
        time.monotonic() - run.started,
    )
    network = run.fit(build_wholeness_network, x_train, y_train, validation=(x_validation, y_validation))
    member_card = {
        "seed": seed,
        "examples": int(len(x_train)),
        "whole_share": round(float(y_train.mean()), 4),
        "validation_accuracy": round(_judged_right(network, x_validation, y_validation), 5),
        "seconds": round(time.monotonic() - run.started, 1),
    }
    logger.info("seed %d: %.2f%% of its validation groups judged right", seed, 100 * member_card["validation_accuracy"])
    return network, x_validation, y_validation, member_card


def _judged_right(network, inputs: np.ndarray, labels: np.ndarray) -> float:
    """The share of labelled groups a network judges right (whole from a score of 0.5)."""
    scores = network.predict(inputs, verbose=0)[:, 0]
    return float(np.mean((scores >= 0.5) == (labels == 1)))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The wholeness network's own option: how many numbers each member learns from."""
    parser.add_argument(
        "--numbers", type=int, default=6000, help="numbers to compose for each member's training (default: %(default)s)"
    )


def options(arguments: argparse.Namespace, dataset: Dataset) -> dict:
    """`train`'s own keyword arguments from the options."""
    return {"numbers": arguments.numbers}


COMMAND = harness.Command(
    "training.wholeness",
    __doc__.split("\n")[0],
    DEFAULT_WHOLENESS_PATH,
    epochs=8,
    train=train,
    arguments=add_arguments,
    options=options,
    ensemble=True,
)


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    return harness.main(COMMAND, argv)


if __name__ == "__main__":
    sys.exit(main())
