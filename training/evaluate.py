"""Evaluate a trained model on MNIST's 10,000 test images: accuracy and confusion matrix.

python -m training.evaluate --data ../shared/data/mnist.npz [--through-decoder]
"""

import argparse
import logging
import sys
import time

import numpy as np

from model import DEFAULT_MODEL_PATH
from model.classifier import RUNTIMES, Classifier
from model.decoding import encode_png
from training.data import load_mnist

logger = logging.getLogger(__name__)


def confusion_matrix(labels: np.ndarray, predictions: np.ndarray, classes: int = 10) -> np.ndarray:
    """counts[true, predicted]."""
    counts = np.zeros((classes, classes), dtype=np.int64)
    np.add.at(counts, (labels.astype(int), predictions.astype(int)), 1)
    return counts


def format_confusion(counts: np.ndarray) -> str:
    """The matrix as an aligned text table: rows are true digits, columns predicted ones."""
    lines = ["true\\pred " + "".join(f"{digit:>6}" for digit in range(len(counts)))]
    for digit, row in enumerate(counts):
        lines.append(f"{digit:>9} " + "".join(f"{count:>6}" for count in row))
    return "\n".join(lines)


def decode_as_uploads(images: np.ndarray) -> np.ndarray:
    """Encode each uint8 image as a PNG file and read it back through the service's decoder."""
    from model.decoding import preprocess

    return np.stack([preprocess(encode_png(image)) for image in images])


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(prog="python -m training.evaluate", description=__doc__.split("\n")[0])
    parser.add_argument("--data", help="path to an npz in Keras's mnist.npz layout (default: the Keras download)")
    parser.add_argument("--model", default=str(DEFAULT_MODEL_PATH), help="model file (default: %(default)s)")
    parser.add_argument(
        "--runtime", default="keras", choices=RUNTIMES, help="run the network in (default: %(default)s)"
    )
    parser.add_argument(
        "--through-decoder",
        action="store_true",
        help="post-style: encode each test image as PNG and decode it as the service does",
    )
    arguments = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr)

    dataset = load_mnist(arguments.data)
    classifier = Classifier.load(arguments.model, runtime=arguments.runtime)
    started = time.monotonic()
    images = decode_as_uploads(dataset.x_test) if arguments.through_decoder else dataset.x_test / 255.0
    predictions = classifier.raw_probabilities(images).argmax(axis=1)
    elapsed = time.monotonic() - started
    errors = int(np.sum(predictions != dataset.y_test))
    accuracy = 1.0 - errors / len(dataset.y_test)

    path = "PNG upload -> decoder -> network" if arguments.through_decoder else "network on the raw test arrays"
    print(f"model:     {arguments.model}, {arguments.runtime} runtime (sha256 {classifier.model_sha256[:12]})")
    print(f"data:      {dataset.source} (sha256 {dataset.sha256[:12]})")
    print(f"path:      {path}")
    print(
        f"accuracy:  {100 * accuracy:.2f}% ({len(dataset.y_test) - errors}/{len(dataset.y_test)}, {errors} wrong) in {elapsed:.1f} s"
    )
    print("confusion matrix:")
    print(format_confusion(confusion_matrix(dataset.y_test, predictions)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
