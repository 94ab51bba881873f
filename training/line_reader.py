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
from training.data import reader_split
from training.data import Dataset, held_out_split, load_mnist
from model.errors import NoDigitError
from training.export import save_for_serving, write_card
from training.numbers import map_number_chunks, number_set
from model.decoding import shrink
from model.number_reader import Page, writing_lines, best_path, number_working_size

logger = logging.getLogger(__name__)

# Numbers are composed and cut into lines in chunks of this many, one chunk per worker process at a time.
chunk_size = 500
# Lines of a batch, and the learning rate at the start of its cosine decay.
batch_size, learning_rate = 64, 1e-3


def line_examples(images: np.ndarray, digit_labels: np.ndarray, count: int, seed: int) -> tuple[np.ndarray, list[str]]:
    """The lines of `count` composed numbers as the splitter cuts them: pictures (uint8, 0..255 ink) and their digits.

    A number whose lines the splitter finds other than as written is left out.
    """
    pictures, texts = [], []
    for number in number_set(images, digit_labels, count, seed):
        try:
            page = Page(shrink(number.picture.astype(np.float32) / 255.0, number_working_size))
        except NoDigitError:
            continue
        lines = writing_lines(page)
        if len(lines) != len(number.lines):
            continue
        for (labels, _), text in zip(lines, number.lines):
            pictures.append(np.round(255.0 * page.line_picture(labels)).astype(np.uint8))
            texts.append(text)
    return np.stack(pictures), texts


def _chunk(job: tuple[int, int, np.ndarray, np.ndarray]) -> tuple[np.ndarray, list[str]]:
    """One chunk of line examples; run in a worker process."""
    seed, count, images, digit_labels = job
    return line_examples(images, digit_labels, count, seed)


def build_examples(images: np.ndarray, digit_labels: np.ndarray, numbers: int, seed: int) -> tuple[np.ndarray, list[str]]:
    """The line examples of `numbers` composed numbers, made in parallel in chunks, reproducible from the seed."""
    parts = map_number_chunks(_chunk, images, digit_labels, numbers, seed, chunk_size)
    return np.concatenate([part[0] for part in parts]), [text for part in parts for text in part[1]]


def encode_texts(texts: list[str]) -> np.ndarray:
    """Lines' digits as CTC targets: digit d as class d + 1, padded with 0 (Keras's CTC loss counts the non-zero ones)."""
    targets = np.zeros((len(texts), max(len(text) for text in texts)), dtype=np.int32)
    for row, text in zip(targets, texts):
        row[:len(text)] = [int(character) + 1 for character in text]
    return targets


def best_path_text(log_probabilities: np.ndarray) -> str:
    """The line reader's own reading of a line's columns (steps, 11), as text."""
    return "".join(str(digit) for digit in best_path(log_probabilities))


def lines_read_right(network, pictures: np.ndarray, texts: list[str]) -> float:
    """The share of lines whose best path spells exactly their digits."""
    outputs = network.predict(pictures.astype(np.float32)[..., np.newaxis] / 255.0, batch_size=256, verbose=0)
    return float(np.mean([best_path_text(output) == text for output, text in zip(outputs, texts)]))


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

    from training.network import build_line_network, seed_training

    seed_training(seed)
    started = time.monotonic()
    # the reader's own split: its validation digits make the validation lines
    held_out, kept = held_out_split(len(dataset.x_train), validation_size, split_seed)
    x_train, train_texts = build_examples(dataset.x_train[kept], dataset.y_train[kept], numbers, seed)
    x_validation, validation_texts = build_examples(
        dataset.x_train[held_out], dataset.y_train[held_out], max(numbers // 30, 10), seed + 1)
    logger.info("%d training and %d validation lines in %.0f s", len(x_train), len(x_validation), time.monotonic() - started)

    batches = (
        tf.data.Dataset.from_tensor_slices((x_train, encode_texts(train_texts)))
        .shuffle(len(x_train), seed=seed, reshuffle_each_iteration=True)
        .batch(batch_size)
        .map(lambda pictures, targets: (tf.cast(pictures, tf.float32)[..., tf.newaxis] / 255.0, targets))
        .prefetch(tf.data.AUTOTUNE)
    )
    network = build_line_network()
    steps = epochs * int(np.ceil(len(x_train) / batch_size))
    network.compile(optimizer=keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(learning_rate, decay_steps=steps)),
                    loss=keras.losses.CTC())
    network.fit(batches, epochs=epochs, verbose=verbose)
    accuracy = lines_read_right(network, x_validation, validation_texts)

    output = Path(output)
    tflite_file = save_for_serving(network, build_line_network, output)
    card = write_card(output, {
        "name": "line_cnn",
        "description": "Reads a whole line of a number at once: per column of its picture (32x320, model.number_reader.Page.line_picture), "
                       "the logits of 'no new digit' (class 0) and of each digit d (class d + 1), for CTC.",
        "model_file": output.name,
        "parameters": int(network.count_params()),
        "data": {
            "file": Path(dataset.source).name,
            "sha256": dataset.sha256,
            "numbers": numbers,
            "lines": int(len(x_train)),
            "validation_lines": int(len(x_validation)),
        },
        "training": {"seed": seed, "epochs": epochs, "batch_size": batch_size, "optimizer": "Adam", "learning_rate": learning_rate,
                     "loss": "CTC", "seconds": round(time.monotonic() - started, 1)},
        "validation": {"lines_read_right": round(accuracy, 5)},
    }, tflite_file)
    logger.info("saved %s: %.2f%% of validation lines read right alone", output, 100 * accuracy)
    return card


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(prog="python -m training.line_reader", description=__doc__.split("\n")[0])
    parser.add_argument("--data", help="path to an npz in Keras's mnist.npz layout (default: the Keras download)")
    parser.add_argument("--output", default=str(DEFAULT_LINE_READER_PATH), help="network file to write (default: %(default)s)")
    parser.add_argument("--numbers", type=int, default=60000, help="numbers to compose (default: %(default)s)")
    parser.add_argument("--epochs", type=int, default=8, help="passes over the lines (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the numbers, shuffling and weights (default: %(default)s)")
    arguments = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr)
    validation_size, split_seed = reader_split()
    train(load_mnist(arguments.data), Path(arguments.output), numbers=arguments.numbers, epochs=arguments.epochs,
          validation_size=validation_size, seed=arguments.seed, split_seed=split_seed,
          verbose="auto" if sys.stdout.isatty() else 2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
