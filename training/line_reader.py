"""Train the line reader, which reads a whole line of writing at once, and write it beside the digit model.

    python -m training.line_reader --data ../shared/data/mnist.npz    # about 45 minutes on 2 cores

The splitter (model.number_reader) groups a line's strokes into digits by reading each group alone. Where
two groupings read about as well (a 1 touching its neighbour, a 0 that could be a 1 and a piece),
the whole line often settles it. This network reads a line's picture (model.number_reader.Page.line_picture)
and gives, for each column of 4 pixels, the probabilities of "no new digit" and of each digit: it is
trained with CTC (connectionist temporal classification), which needs no boxes, only the line's
digits. The splitter then weighs each of its best groupings by how likely the line reader finds the
digits they spell. It trains on numbers composed from the MNIST training digits (training.numbers),
each line cut out exactly as the splitter cuts it; the reader's validation digits are held out,
for the validation lines.
"""

import argparse
import logging
import sys
import time
from pathlib import Path

import numpy as np

from model import DEFAULT_LINE_READER_PATH
from model.decoding import shrink
from model.errors import NoDigitError
from model.number_reader import NUMBER_WORKING_SIZE, Page, best_path, writing_lines
from training import harness
from training.data import Dataset
from training.numbers import map_number_chunks, number_set

logger = logging.getLogger(__name__)

# Numbers are composed and cut into lines in chunks of this many, one chunk per worker process at a time (the results
# do not depend on it: each chunk's seed comes from where it starts).
CHUNK_SIZE = 500
# Lines of a batch, and the learning rate at the start of its cosine decay (to nothing): the committed line reader's,
# which reads 94.35 % of its 2,123 validation lines right alone; no trial of other values is recorded.
BATCH_SIZE = 64
LEARNING_RATE = 1e-3


def line_examples(images: np.ndarray, digit_labels: np.ndarray, count: int, seed: int) -> tuple[np.ndarray, list[str]]:
    """The lines of `count` composed numbers as the splitter cuts them: pictures (uint8, 0..255 ink) and their digits.

    A number whose lines the splitter finds other than as written is left out.
    """
    pictures, texts = [], []
    for number in number_set(images, digit_labels, count, seed):
        try:
            page = Page(shrink(number.picture.astype(np.float32) / 255.0, NUMBER_WORKING_SIZE))
        except NoDigitError:
            continue
        lines = writing_lines(page)
        if len(lines) != len(number.lines):
            continue
        for (labels, _), text in zip(lines, number.lines, strict=False):
            pictures.append(np.round(255.0 * page.line_picture(labels)).astype(np.uint8))
            texts.append(text)
    return np.stack(pictures), texts


def _chunk(job: tuple[int, int, np.ndarray, np.ndarray]) -> tuple[np.ndarray, list[str]]:
    """One chunk of line examples; run in a worker process."""
    seed, count, images, digit_labels = job
    return line_examples(images, digit_labels, count, seed)


def build_examples(
    images: np.ndarray, digit_labels: np.ndarray, numbers: int, seed: int
) -> tuple[np.ndarray, list[str]]:
    """The line examples of `numbers` composed numbers, made in parallel in chunks, reproducible from the seed."""
    parts = map_number_chunks(_chunk, images, digit_labels, numbers, seed, CHUNK_SIZE)
    return np.concatenate([part[0] for part in parts]), [text for part in parts for text in part[1]]


def encode_texts(texts: list[str]) -> np.ndarray:
    """Lines' digits as CTC targets: digit d as class d + 1, padded with 0 (Keras's CTC loss counts the non-zero ones)."""
    targets = np.zeros((len(texts), max(len(text) for text in texts)), dtype=np.int32)
    for row, text in zip(targets, texts, strict=False):
        row[: len(text)] = [int(character) + 1 for character in text]
    return targets


def best_path_text(log_probabilities: np.ndarray) -> str:
    """The line reader's own reading of a line's columns (steps, 11), as text."""
    return "".join(str(digit) for digit in best_path(log_probabilities))


def lines_read_right(network, pictures: np.ndarray, texts: list[str]) -> float:
    """The share of lines whose best path spells exactly their digits."""
    outputs = network.predict(pictures.astype(np.float32)[..., np.newaxis] / 255.0, batch_size=256, verbose=0)
    return float(np.mean([best_path_text(output) == text for output, text in zip(outputs, texts, strict=False)]))


def train(
    dataset: Dataset,
    output: Path = DEFAULT_LINE_READER_PATH,
    numbers: int = 60000,
    epochs: int = 8,
    validation_size: int = 5000,
    seed: int = 1,
    split_seed: int = 1,
    verbose: int | str = "auto",
) -> dict:
    """Train the line reader on lines of composed numbers; save it with its card; return the card."""
    import keras
    import tensorflow as tf

    from training.network import build_line_network

    fitting = harness.Fitting(keras.losses.CTC(), BATCH_SIZE, LEARNING_RATE, final_learning_rate_share=0.0, metrics=())
    run = harness.start(dataset, output, epochs, seed, fitting, verbose)
    # the reader's own split: its validation digits make the validation lines
    split = harness.held_out(dataset, validation_size, split_seed)
    x_train, train_texts = build_examples(split.images, split.labels, numbers, seed)
    x_validation, validation_texts = build_examples(
        split.validation_images, split.validation_labels, max(numbers // 30, 10), seed + 1
    )
    logger.info(
        "%d training and %d validation lines in %.0f s", len(x_train), len(x_validation), time.monotonic() - run.started
    )

    # the lines are kept as uint8 pictures and made the network's 0..1 inputs a batch at a time
    network = run.fit(
        build_line_network,
        x_train,
        encode_texts(train_texts),
        prepare=lambda pictures: tf.cast(pictures, tf.float32)[..., tf.newaxis] / 255.0,
    )
    accuracy = lines_read_right(network, x_validation, validation_texts)
    card = run.save(
        network,
        build_line_network,
        name="line_cnn",
        description="Reads a whole line of a number at once: per column of its picture "
        "(32x320, model.number_reader.Page.line_picture), "
        "the logits of 'no new digit' (class 0) and of each digit d (class d + 1), for CTC.",
        data={"numbers": numbers, "lines": int(len(x_train)), "validation_lines": int(len(x_validation))},
        training={"loss": "CTC"},
        results={"validation": {"lines_read_right": round(accuracy, 5)}},
    )
    logger.info("saved %s: %.2f%% of validation lines read right alone", run.output, 100 * accuracy)
    return card


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The line reader's own option: how many numbers its lines come from."""
    parser.add_argument("--numbers", type=int, default=60000, help="numbers to compose (default: %(default)s)")


def options(arguments: argparse.Namespace, dataset: Dataset) -> dict:
    """`train`'s own keyword arguments from the options."""
    return {"numbers": arguments.numbers}


COMMAND = harness.Command(
    "training.line_reader",
    __doc__.split("\n")[0],
    DEFAULT_LINE_READER_PATH,
    epochs=8,
    train=train,
    arguments=add_arguments,
    options=options,
)


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    return harness.main(COMMAND, argv)


if __name__ == "__main__":
    sys.exit(main())
