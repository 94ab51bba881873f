"""The training harness the four networks share: seeding, the held-out split, fitting, export, the model card's
shared fields and the command line. Each network's module says only what differs: its examples, its architecture
(training.network), its augmentation, its own card fields and options, and what it picks after fitting.
"""

import argparse
import logging
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from training.data import Dataset, held_out_split, load_mnist, reader_split
from training.export import save_for_serving, write_card

logger = logging.getLogger(__name__)

# Images a training step, and Adam's learning rate at the start of its cosine decay: the design card's for the digit
# network, kept by the detector and the wholeness network. No trial of other values is recorded.
BATCH_SIZE = 128
LEARNING_RATE = 1e-3
# The cosine decay ends at this share of the starting learning rate ("cosine decay to 2%", the digit card's schedule).
FINAL_LEARNING_RATE_SHARE = 0.02
# Each batch's distortions are seeded with the run's seed times this (a prime) plus the batch's number: reproducible,
# and no two seeds' batches share distortions.
AUGMENTATION_SEED_STRIDE = 100003


def architecture_summary(network: object) -> list[dict]:
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


def seed_training(seed: int) -> None:
    """Seed Python, NumPy and TensorFlow and make TensorFlow's ops deterministic: a training run repeats exactly."""
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


@dataclass(frozen=True)
class Split:
    """A training split cut in two: the digits a network trains on, and the held-out ones it is judged on."""

    images: np.ndarray
    labels: np.ndarray
    validation_images: np.ndarray
    validation_labels: np.ndarray


def held_out(dataset: Dataset, validation_size: int, split_seed: int) -> Split:
    """The dataset's training split less its seeded held-out part, and that part: the same for every network."""
    validation, kept = held_out_split(len(dataset.x_train), validation_size, split_seed)
    return Split(dataset.x_train[kept], dataset.y_train[kept], dataset.x_train[validation], dataset.y_train[validation])


@dataclass(frozen=True)
class Fitting:
    """How a network is fitted: Adam on shuffled batches, its learning rate decaying along a cosine over the run."""

    loss: object
    batch_size: int = BATCH_SIZE
    learning_rate: float = LEARNING_RATE
    final_learning_rate_share: float = FINAL_LEARNING_RATE_SHARE
    metrics: tuple[str, ...] = ("accuracy",)

    def card(self) -> dict:
        """The fields the model card's "training" records of it."""
        return {"batch_size": self.batch_size, "optimizer": "Adam", "learning_rate": self.learning_rate}


@dataclass(frozen=True)
class Run:
    """One training run: its data, its output file, its epochs, its seed (or an ensemble's members' seeds), how it fits,
    how loudly Keras reports, and when it started."""

    dataset: Dataset
    output: Path
    epochs: int
    seed: int | tuple[int, ...]
    fitting: Fitting
    verbose: int | str = "auto"
    started: float = field(default_factory=time.monotonic)

    def fit(
        self,
        build: Callable[[], object],
        inputs: np.ndarray,
        targets: np.ndarray,
        augmentation: object | None = None,
        prepare: Callable[[object], object] | None = None,
        validation: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> object:
        """Build the network and fit it to the examples, shuffled each epoch from the seed; return it.

        `augmentation` (training.augment.Augmentation) distorts each batch's inputs, reproducibly from the seed and the
        batch's number; `prepare` turns a batch's stored inputs into the network's (after any augmentation).
        """
        import keras
        import tensorflow as tf

        from training.augment import augment_batch

        seed = self.seed
        batches = (
            tf.data.Dataset.from_tensor_slices((inputs, targets))
            .shuffle(len(inputs), seed=seed, reshuffle_each_iteration=True)
            .batch(self.fitting.batch_size)
        )
        if augmentation is not None:
            stride = seed * AUGMENTATION_SEED_STRIDE
            batches = batches.enumerate().map(
                lambda index, batch: (
                    augment_batch(batch[0], augmentation, tf.cast(index, tf.int32) + stride),
                    batch[1],
                ),
                num_parallel_calls=tf.data.AUTOTUNE,
                deterministic=True,
            )
        if prepare is not None:
            batches = batches.map(lambda batch_inputs, batch_targets: (prepare(batch_inputs), batch_targets))
        batches = batches.prefetch(tf.data.AUTOTUNE)

        network = build()
        steps = self.epochs * int(np.ceil(len(inputs) / self.fitting.batch_size))
        schedule = keras.optimizers.schedules.CosineDecay(
            self.fitting.learning_rate, decay_steps=steps, alpha=self.fitting.final_learning_rate_share
        )
        metrics = list(self.fitting.metrics) or None
        network.compile(optimizer=keras.optimizers.Adam(schedule), loss=self.fitting.loss, metrics=metrics)
        network.fit(batches, epochs=self.epochs, validation_data=validation, verbose=self.verbose)
        return network

    def member(self, seed: int) -> "Run":
        """The same run for one of an ensemble's members: seeded with the member's seed, on its own clock."""
        seed_training(seed)
        return replace(self, seed=seed, started=time.monotonic())

    def save(
        self,
        network: object,
        build: Callable[[], object],
        name: str,
        description: str,
        data: dict,
        results: dict,
        head: dict | None = None,
        training: dict | None = None,
        layers: bool = False,
    ) -> dict:
        """Save the network for serving (.keras and .tflite) and write its card; return the card.

        The card's shared fields come from the run; the network's own go where they belong: `head` after its
        parameter count, `data` and `training` into those sections, `results` (what it measured) last. With `layers`,
        the card also lists the network's layers (`architecture_summary`) before its parameter count.
        """
        tflite_file = save_for_serving(network, build, self.output)
        seeds = {"seed": self.seed} if isinstance(self.seed, int) else {"seeds": list(self.seed)}
        return write_card(
            self.output,
            {
                "name": name,
                "description": description,
                "model_file": self.output.name,
                **({"architecture": architecture_summary(network)} if layers else {}),
                "parameters": int(network.count_params()),
                **(head or {}),
                "data": {"file": Path(self.dataset.source).name, "sha256": self.dataset.sha256, **data},
                "training": {
                    **seeds,
                    "epochs": self.epochs,
                    **self.fitting.card(),
                    **(training or {}),
                    "seconds": round(time.monotonic() - self.started, 1),
                },
                **results,
            },
            tflite_file,
        )


def start(dataset: Dataset, output: Path, epochs: int, seed: int, fitting: Fitting, verbose: int | str = "auto") -> Run:
    """Seed everything and start the clock: a run that repeats exactly from its seed."""
    seed_training(seed)
    return Run(dataset, Path(output), epochs, seed, fitting, verbose)


def _no_arguments(parser: argparse.ArgumentParser) -> None:
    """A network without options of its own."""


def _no_options(arguments: argparse.Namespace, dataset: Dataset) -> dict:
    """A network without options of its own."""
    return {}


@dataclass(frozen=True)
class Command:
    """A network's training command: its name and defaults, its own options, and the function that trains it.

    The harness gives `train` the dataset, `output`, `epochs`, `verbose`, `seed` (or `seeds`, for an ensemble) and,
    where the network holds out the reader's split, `validation_size` and `split_seed`; `options` adds the network's
    own keyword arguments from its options (and may replace a shared one).
    """

    module: str
    description: str
    output: Path
    epochs: int
    train: Callable[..., dict]
    arguments: Callable[[argparse.ArgumentParser], None] = _no_arguments
    options: Callable[[argparse.Namespace, Dataset], dict] = _no_options
    # one member per seed (--seeds), instead of one seed (--seed)
    ensemble: bool = False
    # hold out the digit model's validation digits (its card's split) whatever the seed; the digit model sets them
    reader_split: bool = True


def main(command: Command, argv: list[str] | None = None) -> int:
    """A network's command line: parse the shared options and the network's own, load MNIST, train."""
    parser = argparse.ArgumentParser(prog=f"python -m {command.module}", description=command.description)
    parser.add_argument("--data", help="path to an npz in Keras's mnist.npz layout (default: the Keras download)")
    parser.add_argument(
        "--output",
        default=str(command.output),
        help="network file to write; its card goes beside it (default: %(default)s)",
    )
    parser.add_argument(
        "--epochs", type=int, default=command.epochs, help="passes over the training examples (default: %(default)s)"
    )
    split_note = "; the validation digits are the digit model's, from its card" if command.reader_split else ""
    if command.ensemble:
        parser.add_argument(
            "--seeds",
            type=int,
            nargs="+",
            default=[1, 2],
            help=f"one member per seed, each with its own examples and weights{split_note} (default: %(default)s)",
        )
    else:
        split_note = split_note or ", and of the held-out split"
        parser.add_argument(
            "--seed",
            type=int,
            default=1,
            help="random seed of the examples, their order, any augmentation and the weights"
            f"{split_note} (default: %(default)s)",
        )
    command.arguments(parser)
    arguments = parser.parse_args(argv)

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr)
    dataset = load_mnist(arguments.data)
    options = {
        "dataset": dataset,
        "output": Path(arguments.output),
        "epochs": arguments.epochs,
        "verbose": "auto" if sys.stdout.isatty() else 2,
    }
    options.update({"seeds": tuple(arguments.seeds)} if command.ensemble else {"seed": arguments.seed})
    if command.reader_split:
        # the reader's own split, whatever this network's seed: validation digits the reader never trained on
        options["validation_size"], options["split_seed"] = reader_split()
    options.update(command.options(arguments, dataset))
    command.train(**options)
    return 0
