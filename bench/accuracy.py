"""Accuracy benchmark: the network on raw MNIST, on MNIST through PNG files and preprocessing,
and on MNIST digits rendered into realistic uploads (bench.scenes), one table to compare.

    python -m bench.accuracy --data ../shared/data/mnist.npz [--model model/digits.keras]
        [--per-scene 200] [--seed 0] [--save-dir DIR]
"""

import argparse
import csv
import logging
import os
import sys
import time
import zlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from bench.scenes import SCENES, Renderer, file_extension
from model import DEFAULT_MODEL_PATH
from model.classifier import Classifier
from model.decoding import encode_png, preprocess
from model.errors import RecognitionError
from training.data import load_mnist

logger = logging.getLogger("bench.accuracy")

DEFAULT_PER_SCENE = 200
DEFAULT_SEED = 0
BATCH_SIZE = 500  # images per network call
PROGRESS_EVERY = 2000  # MNIST images between progress lines
SCENE_PROGRESS_EVERY = 50  # rendered images between progress lines
INPUT_VIEW_SCALE = 4  # the saved 28x28 network inputs are enlarged this many times
FRAME = 28


@dataclass
class Result:
    """One row of the table: how many images, how many read right, and what it cost."""

    name: str
    total: int
    correct: int
    errors: int = 0  # RecognitionError raised by preprocessing, counted as wrong
    crashes: int = 0  # any other exception from rendering or preprocessing, counted as wrong
    preprocess_ms: float | None = None  # mean per image
    render_ms: float | None = None  # mean per image
    error_codes: Counter = field(default_factory=Counter)

    @property
    def accuracy(self) -> float:
        """Share of images read right."""
        return self.correct / self.total if self.total else 0.0


def predict_digits(classifier: Classifier, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The network's digit and confidence for (N, 28, 28) float32 images, BATCH_SIZE at a time."""
    digits = np.empty(len(images), dtype=np.int64)
    confidences = np.empty(len(images), dtype=np.float32)
    for start in range(0, len(images), BATCH_SIZE):
        probabilities = classifier.raw_probabilities(images[start : start + BATCH_SIZE])
        digits[start : start + BATCH_SIZE] = probabilities.argmax(axis=1)
        confidences[start : start + BATCH_SIZE] = probabilities.max(axis=1)
    return digits, confidences


def network_accuracy(classifier: Classifier, images: np.ndarray, labels: np.ndarray) -> Result:
    """Accuracy of the network fed the MNIST arrays directly (scaled to 0..1, no preprocessing)."""
    digits, _ = predict_digits(classifier, images.astype(np.float32) / 255.0)
    return Result("mnist test, network only", len(labels), int((digits == labels).sum()))


def mnist_png_accuracy(classifier: Classifier, images: np.ndarray, labels: np.ndarray) -> Result:
    """Accuracy when each MNIST image is a PNG file read through `preprocess` and then the network."""
    inputs = np.zeros((len(images), FRAME, FRAME), dtype=np.float32)
    ok = np.zeros(len(images), dtype=bool)
    result = Result("mnist test, png + preprocess", len(labels), 0)
    elapsed = 0.0
    for i, image in enumerate(images):
        data = encode_png(image)
        started = time.perf_counter()
        try:
            inputs[i] = preprocess(data)
            ok[i] = True
        except RecognitionError as error:
            result.errors += 1
            result.error_codes[error.code] += 1
        finally:
            elapsed += time.perf_counter() - started
        if (i + 1) % PROGRESS_EVERY == 0:
            logger.info("mnist png: %d/%d preprocessed", i + 1, len(images))
    digits, _ = predict_digits(classifier, inputs)
    result.correct = int(((digits == labels) & ok).sum())
    result.preprocess_ms = 1000.0 * elapsed / max(len(images), 1)
    return result


def image_rng(seed: int, scene: str, index: int) -> np.random.Generator:
    """The generator for one rendering: fixed by seed, scene and test index, independent of order."""
    return np.random.default_rng([seed, zlib.crc32(scene.encode()), index])


def save_render(folder: Path, index: int, label: int, data: bytes, seen: np.ndarray | None) -> None:
    """Write a rendered upload, and the 28x28 input preprocessing made of it (enlarged), into `folder`."""
    stem = f"{index:05d}_{label}"
    (folder / f"{stem}.{file_extension(data)}").write_bytes(data)
    if seen is not None:
        view = Image.fromarray(np.clip(np.rint(seen * 255.0), 0, 255).astype(np.uint8), "L")
        view.resize((FRAME * INPUT_VIEW_SCALE,) * 2, Image.NEAREST).save(folder / f"{stem}_input.png")


def scene_accuracy(
    classifier: Classifier,
    name: str,
    renderer: Renderer,
    images: np.ndarray,
    labels: np.ndarray,
    indices: np.ndarray,
    seed: int,
    save_dir: Path | None = None,
) -> Result:
    """Accuracy on the chosen test digits rendered into one scene, read through `preprocess` and the network."""
    folder = save_dir / name if save_dir is not None else None
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
    inputs = np.zeros((len(indices), FRAME, FRAME), dtype=np.float32)
    ok = np.zeros(len(indices), dtype=bool)
    outcome: list[str] = [""] * len(indices)
    result = Result(name, len(indices), 0)
    render_time = preprocess_time = 0.0
    for position, index in enumerate(indices):
        label = int(labels[index])
        data = b""
        try:
            started = time.perf_counter()
            data = renderer(images[index], image_rng(seed, name, int(index)))
            render_time += time.perf_counter() - started
            started = time.perf_counter()
            try:
                inputs[position] = preprocess(data)
                ok[position] = True
            finally:
                preprocess_time += time.perf_counter() - started
        except RecognitionError as error:
            result.errors += 1
            result.error_codes[error.code] += 1
            outcome[position] = error.code
        except Exception:
            result.crashes += 1
            outcome[position] = "crash"
            logger.exception("%s: test image %d crashed", name, index)
        if folder is not None and data:
            save_render(folder, int(index), label, data, inputs[position] if ok[position] else None)
        if (position + 1) % SCENE_PROGRESS_EVERY == 0:
            logger.info("%s: %d/%d rendered and preprocessed", name, position + 1, len(indices))
    digits, confidences = predict_digits(classifier, inputs)
    chosen = labels[indices]
    result.correct = int(((digits == chosen) & ok).sum())
    result.render_ms = 1000.0 * render_time / max(len(indices), 1)
    result.preprocess_ms = 1000.0 * preprocess_time / max(len(indices), 1)
    if folder is not None:
        with open(folder / "results.csv", "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["index", "label", "predicted", "confidence", "error"])
            for position, index in enumerate(indices):
                predicted = int(digits[position]) if ok[position] else ""
                confidence = f"{confidences[position]:.4f}" if ok[position] else ""
                writer.writerow([int(index), int(chosen[position]), predicted, confidence, outcome[position]])
    return result


def format_table(results: Sequence[Result]) -> str:
    """The results as an aligned text table."""
    header = ("test", "images", "correct", "accuracy", "errors", "crashes", "render ms", "preproc ms")
    rows = [header]
    for r in results:
        rows.append(
            (
                r.name,
                str(r.total),
                str(r.correct),
                f"{100.0 * r.accuracy:.2f}%",
                str(r.errors),
                str(r.crashes),
                "-" if r.render_ms is None else f"{r.render_ms:.1f}",
                "-" if r.preprocess_ms is None else f"{r.preprocess_ms:.1f}",
            )
        )
    widths = [max(len(row[column]) for row in rows) for column in range(len(header))]
    lines = []
    for number, row in enumerate(rows):
        cells = [row[0].ljust(widths[0])] + [
            cell.rjust(width) for cell, width in zip(row[1:], widths[1:], strict=False)
        ]
        lines.append("  ".join(cells))
        if number == 0:
            lines.append("  ".join("-" * width for width in widths))
    return "\n".join(lines)


def total_line(scene_results: Sequence[Result], seconds: float) -> str:
    """One line summing up the scene rows and the run time."""
    total = sum(r.total for r in scene_results)
    correct = sum(r.correct for r in scene_results)
    errors = sum(r.errors for r in scene_results)
    crashes = sum(r.crashes for r in scene_results)
    share = 100.0 * correct / total if total else 0.0
    return (
        f"total over {len(scene_results)} scenes: {correct}/{total} correct ({share:.2f}%), "
        f"{errors} recognition errors, {crashes} crashes; run took {seconds:.0f} s"
    )


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(prog="python -m bench.accuracy", description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, type=Path, help="MNIST in Keras's npz layout")
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL_PATH, help="the .keras model to test")
    parser.add_argument("--per-scene", type=int, default=DEFAULT_PER_SCENE, help="test digits rendered into each scene")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="picks the test digits and renderings")
    parser.add_argument("--save-dir", type=Path, help="write each rendered file (and the 28x28 input) here")
    parser.add_argument(
        "--scenes", nargs="+", choices=sorted(SCENES), metavar="SCENE", help="only these scenes (default: all)"
    )
    parser.add_argument("--skip-mnist", action="store_true", help="leave out the two full MNIST test rows")
    args = parser.parse_args(argv)
    if args.per_scene < 1:
        parser.error("--per-scene must be at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print the table; exit status 1 if anything crashed."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(message)s")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's start-up chatter out of the log
    started = time.perf_counter()
    dataset = load_mnist(args.data)
    images, labels = dataset.x_test, dataset.y_test.astype(np.int64)
    classifier = Classifier.load(args.model)
    results: list[Result] = []
    if not args.skip_mnist:
        logger.info("mnist test set: network only")
        results.append(network_accuracy(classifier, images, labels))
        logger.info("mnist test set: png files through preprocess")
        results.append(mnist_png_accuracy(classifier, images, labels))
    count = min(args.per_scene, len(labels))
    indices = np.random.default_rng(args.seed).choice(len(labels), size=count, replace=False)
    scene_results = []
    for name in args.scenes or list(SCENES):
        logger.info("scene %s: %d test digits", name, count)
        result = scene_accuracy(classifier, name, SCENES[name], images, labels, indices, args.seed, args.save_dir)
        if result.error_codes:
            logger.info("%s: errors by code %s", name, dict(result.error_codes))
        scene_results.append(result)
    results.extend(scene_results)
    seconds = time.perf_counter() - started
    print(f"model {args.model}, data {args.data}, {count} digits per scene, seed {args.seed}")
    print(format_table(results))
    print(total_line(scene_results, seconds))
    return 1 if any(r.crashes for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
