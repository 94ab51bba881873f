"""Train the digit CNN on MNIST and write the model file with its JSON model card.

python -m training.digits --data ../shared/data/mnist.npz
"""

import argparse
import logging
import sys
from pathlib import Path

import numpy as np

from model import DEFAULT_MODEL_PATH
from training import harness
from training.data import Dataset, file_sha256

logger = logging.getLogger(__name__)


def to_network_input(images: np.ndarray) -> np.ndarray:
    """uint8 (N, 28, 28) -> float32 (N, 28, 28, 1) in 0..1, the network's input."""
    return (images.astype("float32") / 255.0)[..., np.newaxis]


def train(
    dataset: Dataset,
    output: Path = DEFAULT_MODEL_PATH,
    epochs: int = 20,
    batch_size: int = harness.BATCH_SIZE,
    validation_size: int = 5000,
    seed: int = 1,
    learning_rate: float = harness.LEARNING_RATE,
    augment: bool = True,
    styles: bool = True,
    verbose: int | str = "auto",
) -> dict:
    """Train, evaluate, save the model and its card; return the card."""
    from training.augment import Augmentation
    from training.network import build_network
    from training.styles import styled_examples, styles_card

    fitting = harness.Fitting("sparse_categorical_crossentropy", batch_size, learning_rate)
    run = harness.start(dataset, output, epochs, seed, fitting, verbose)
    # this network's split is the reader's: the other networks hold out the same digits (training.data.reader_split)
    split = harness.held_out(dataset, validation_size, seed)
    x_train, y_train = to_network_input(split.images), split.labels
    x_validation, y_validation = to_network_input(split.validation_images), split.validation_labels
    styled_count = 0
    if styles:
        # the training digits' extra versions in the writing styles MNIST lacks (flagged 1s, crossed 7s, box-filling)
        styled_images, styled_labels = styled_examples(split.images, y_train, seed)
        x_train = np.concatenate([x_train, to_network_input(styled_images)])
        y_train = np.concatenate([y_train, styled_labels])
        styled_count = len(styled_labels)
    settings = Augmentation()
    network = run.fit(
        build_network,
        x_train,
        y_train,
        augmentation=settings if augment else None,
        validation=(x_validation, y_validation),
    )

    _, validation_accuracy = network.evaluate(x_validation, y_validation, verbose=0)
    _, test_accuracy = network.evaluate(to_network_input(dataset.x_test), dataset.y_test, verbose=0)
    card = run.save(
        network,
        build_network,
        name="digit_cnn",
        description="Handwritten digit classifier: 28x28 grayscale, bright ink on black, values 0..1.",
        layers=True,
        head={"input_shape": [28, 28, 1], "classes": list(range(10))},
        data={
            "train_images": int(len(x_train)),
            "styled_train_images": styled_count,
            "validation_images": int(len(x_validation)),
            "test_images": int(len(dataset.x_test)),
        },
        training={
            "learning_rate_schedule": "cosine decay to 2%",
            "augmentation": settings.as_dict() if augment else None,
            "styles": styles_card() if styles else None,
        },
        results={
            "validation_accuracy": round(float(validation_accuracy), 5),
            "test_accuracy": round(float(test_accuracy), 5),
        },
    )
    logger.info(
        "saved %s (sha256 %s): validation accuracy %.4f, test accuracy %.4f",
        run.output,
        file_sha256(run.output),
        validation_accuracy,
        test_accuracy,
    )
    return card


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The digit network's own options: batches, split, learning rate, augmentation, styles, a quick trial's size."""
    parser.add_argument(
        "--batch-size", type=int, default=harness.BATCH_SIZE, help="images per training step (default: %(default)s)"
    )
    parser.add_argument(
        "--validation-size",
        type=int,
        default=5000,
        help="training images held out for validation (default: %(default)s)",
    )
    parser.add_argument(
        "--learning-rate",
        type=float,
        default=harness.LEARNING_RATE,
        help="initial Adam learning rate (default: %(default)s)",
    )
    parser.add_argument("--no-augment", dest="augment", action="store_false", help="train on the images as they are")
    parser.add_argument(
        "--no-styles", dest="styles", action="store_false", help="no extra digits in other writing styles"
    )
    parser.add_argument("--limit", type=int, help="use only the first N training images (quick trials)")


def options(arguments: argparse.Namespace, dataset: Dataset) -> dict:
    """`train`'s own keyword arguments from the options; `--limit` cuts the training images, the split to a tenth."""
    if arguments.limit:
        dataset = Dataset(
            dataset.x_train[: arguments.limit],
            dataset.y_train[: arguments.limit],
            dataset.x_test,
            dataset.y_test,
            dataset.source,
            dataset.sha256,
        )
    return {
        "dataset": dataset,
        "batch_size": arguments.batch_size,
        "validation_size": min(arguments.validation_size, len(dataset.x_train) // 10),
        "learning_rate": arguments.learning_rate,
        "augment": arguments.augment,
        "styles": arguments.styles,
    }


COMMAND = harness.Command(
    "training.digits",
    __doc__.split("\n")[0],
    DEFAULT_MODEL_PATH,
    epochs=20,
    train=train,
    arguments=add_arguments,
    options=options,
    reader_split=False,
)


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    return harness.main(COMMAND, argv)


if __name__ == "__main__":
    sys.exit(main())
