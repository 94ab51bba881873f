"""Train the digit CNN on MNIST and write the model file with its JSON model card.

    python -m training.digits --data ../shared/data/mnist.npz
"""

import argparse
import logging
import sys
import time
from pathlib import Path

import numpy as np

from model import DEFAULT_MODEL_PATH
from training.data import Dataset, file_sha256, held_out_split, load_mnist
from training.export import save_for_serving, write_card

logger = logging.getLogger(__name__)


def to_network_input(images: np.ndarray) -> np.ndarray:
    """uint8 (N, 28, 28) -> float32 (N, 28, 28, 1) in 0..1, the network's input."""
    return (images.astype("float32") / 255.0)[..., np.newaxis]


def split_validation(dataset: Dataset, validation_size: int, seed: int) -> tuple:
    """Hold out a seeded random part of the training split for validation."""
    held_out, kept = held_out_split(len(dataset.x_train), validation_size, seed)
    return (
        to_network_input(dataset.x_train[kept]),
        dataset.y_train[kept],
        to_network_input(dataset.x_train[held_out]),
        dataset.y_train[held_out],
    )


def architecture_summary(network) -> list[dict]:
    """One entry per layer: its name, kind, output shape and parameter count."""
    return [
        {
            "layer": layer.name,
            "type": type(layer).__name__,
            "output_shape": list(layer.output.shape[1:]),
            "parameters": int(layer.count_params()),
        }
        for layer in network.layers
    ]


def train(
    dataset: Dataset,
    output: Path = DEFAULT_MODEL_PATH,
    epochs: int = 20,
    batch_size: int = 128,
    validation_size: int = 5000,
    seed: int = 1,
    learning_rate: float = 1e-3,
    augment: bool = True,
    styles: bool = True,
    verbose: int | str = "auto",
) -> dict:
    """Train, evaluate, save the model and its card; return the card."""
    import keras
    import tensorflow as tf

    from training.augment import Augmentation, augment_batch
    from training.network import build_network, seed_training
    from training.styles import styled_examples, styles_card

    seed_training(seed)
    started = time.monotonic()

    x_train, y_train, x_validation, y_validation = split_validation(dataset, validation_size, seed)
    styled_count = 0
    if styles:
        # the training digits' extra versions in the writing styles MNIST lacks (flagged 1s, crossed 7s, box-filling)
        styled_images, styled_labels = styled_examples((x_train[..., 0] * 255.0).round().astype(np.uint8), y_train, seed)
        x_train = np.concatenate([x_train, to_network_input(styled_images)])
        y_train = np.concatenate([y_train, styled_labels])
        styled_count = len(styled_labels)
    settings = Augmentation()
    batches = (
        tf.data.Dataset.from_tensor_slices((x_train, y_train))
        .shuffle(len(x_train), seed=seed, reshuffle_each_iteration=True)
        .batch(batch_size)
        .enumerate()
    )
    if augment:
        # each batch gets its own distortions, reproducible from the seed and the batch number
        batches = batches.map(
            lambda index, batch: (augment_batch(batch[0], settings, tf.cast(index, tf.int32) + seed * 100003), batch[1]),
            num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=True,
        )
    else:
        batches = batches.map(lambda index, batch: batch)
    batches = batches.prefetch(tf.data.AUTOTUNE)

    network = build_network()
    steps = epochs * int(np.ceil(len(x_train) / batch_size))
    schedule = keras.optimizers.schedules.CosineDecay(learning_rate, decay_steps=steps, alpha=0.02)
    network.compile(
        optimizer=keras.optimizers.Adam(schedule),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    network.fit(batches, epochs=epochs, validation_data=(x_validation, y_validation), verbose=verbose)

    _, validation_accuracy = network.evaluate(x_validation, y_validation, verbose=0)
    _, test_accuracy = network.evaluate(to_network_input(dataset.x_test), dataset.y_test, verbose=0)
    output = Path(output)
    # the .keras file, and the same network for the LiteRT runtime beside it
    tflite_file = save_for_serving(network, build_network, output)

    card = write_card(output, {
        "name": "digit_cnn",
        "description": "Handwritten digit classifier: 28x28 grayscale, bright ink on black, values 0..1.",
        "model_file": output.name,
        "architecture": architecture_summary(network),
        "parameters": int(network.count_params()),
        "input_shape": [28, 28, 1],
        "classes": list(range(10)),
        "data": {
            "file": Path(dataset.source).name,
            "sha256": dataset.sha256,
            "train_images": int(len(x_train)),
            "styled_train_images": styled_count,
            "validation_images": int(len(x_validation)),
            "test_images": int(len(dataset.x_test)),
        },
        "training": {
            "seed": seed,
            "epochs": epochs,
            "batch_size": batch_size,
            "optimizer": "Adam",
            "learning_rate": learning_rate,
            "learning_rate_schedule": "cosine decay to 2%",
            "augmentation": settings.as_dict() if augment else None,
            "styles": styles_card() if styles else None,
            "seconds": round(time.monotonic() - started, 1),
        },
        "validation_accuracy": round(float(validation_accuracy), 5),
        "test_accuracy": round(float(test_accuracy), 5),
    }, tflite_file)
    logger.info(
        "saved %s (sha256 %s): validation accuracy %.4f, test accuracy %.4f",
        output, file_sha256(output), validation_accuracy, test_accuracy,
    )
    return card


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(prog="python -m training.digits", description=__doc__.split("\n")[0])
    parser.add_argument("--data", help="path to an npz in Keras's mnist.npz layout (default: the Keras download)")
    parser.add_argument("--output", default=str(DEFAULT_MODEL_PATH), help="model file to write; the card goes beside it (default: %(default)s)")
    parser.add_argument("--epochs", type=int, default=20, help="passes over the training images (default: %(default)s)")
    parser.add_argument("--batch-size", type=int, default=128, help="images per training step (default: %(default)s)")
    parser.add_argument("--validation-size", type=int, default=5000, help="training images held out for validation (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=1, help="random seed for the split, shuffling, augmentation and weights (default: %(default)s)")
    parser.add_argument("--learning-rate", type=float, default=1e-3, help="initial Adam learning rate (default: %(default)s)")
    parser.add_argument("--no-augment", dest="augment", action="store_false", help="train on the images as they are")
    parser.add_argument("--no-styles", dest="styles", action="store_false", help="no extra digits in other writing styles")
    parser.add_argument("--limit", type=int, help="use only the first N training images (quick trials)")
    arguments = parser.parse_args(argv)

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr)
    dataset = load_mnist(arguments.data)
    if arguments.limit:
        dataset = Dataset(dataset.x_train[: arguments.limit], dataset.y_train[: arguments.limit],
                          dataset.x_test, dataset.y_test, dataset.source, dataset.sha256)
    card = train(
        dataset,
        output=Path(arguments.output),
        epochs=arguments.epochs,
        batch_size=arguments.batch_size,
        validation_size=min(arguments.validation_size, len(dataset.x_train) // 10),
        seed=arguments.seed,
        learning_rate=arguments.learning_rate,
        augment=arguments.augment,
        styles=arguments.styles,
        verbose="auto" if sys.stdout.isatty() else 2,
    )
    logger.info("test accuracy %.2f%%", 100 * card["test_accuracy"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
