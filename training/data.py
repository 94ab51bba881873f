"""Loading MNIST from Keras's npz layout, with a checksum for the model card."""

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from model import DEFAULT_MODEL_PATH, card_path_for


@dataclass(frozen=True)
class Dataset:
    """MNIST splits as uint8 arrays (N, 28, 28) with uint8 labels, plus where they came from."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    source: str
    sha256: str


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file, read in chunks so large files need little memory."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def load_mnist(path: str | Path | None = None) -> Dataset:
    """Load MNIST from an npz file, or through the standard Keras download when no path is given."""
    if path is None:
        import keras  # only the online path needs Keras

        # Keras downloads once and caches under $KERAS_HOME/datasets (default ~/.keras)
        keras.datasets.mnist.load_data()
        keras_home = Path(os.environ.get("KERAS_HOME", Path.home() / ".keras"))
        path = keras_home / "datasets" / "mnist.npz"
    path = Path(path)
    with np.load(path) as arrays:
        missing = {"x_train", "y_train", "x_test", "y_test"} - set(arrays.files)
        if missing:
            raise ValueError(f"{path} lacks the arrays {sorted(missing)} of Keras's mnist.npz layout")
        return Dataset(
            x_train=arrays["x_train"],
            y_train=arrays["y_train"],
            x_test=arrays["x_test"],
            y_test=arrays["y_test"],
            source=str(path),
            sha256=file_sha256(path),
        )


def held_out_split(count: int, validation_size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices of a training split's seeded held-out (validation) part and of the rest: the same for every network."""
    order = np.random.default_rng(seed).permutation(count)
    return order[:validation_size], order[validation_size:]


def reader_split(model_path: str | Path = DEFAULT_MODEL_PATH) -> tuple[int, int]:
    """The digit model's held-out split, from its card: (validation images, seed). The other networks hold out the same."""
    card = json.loads(card_path_for(model_path).read_text())
    return int(card["data"]["validation_images"]), int(card["training"]["seed"])
