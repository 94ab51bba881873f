"""Inference: the trained network loaded once per process and called through a compiled function.

Two runtimes run the same trained network:
- "keras": the .keras file in TensorFlow, called through one `tf.function` with a fixed signature;
- "litert": its TensorFlow Lite export run by LiteRT (ai-edge-litert), without importing TensorFlow.
"""

import hashlib
import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy.special import log_softmax

from model import (
    DEFAULT_DETECTOR_PATH, DEFAULT_LINE_READER_PATH, DEFAULT_MODEL_PATH, DEFAULT_WHOLENESS_PATH, card_path_for, tflite_path_for,
)
from model.batching import MicroBatcher
from model.errors import RecognitionError
from model.limits import (
    default_max_decoded_bytes, default_max_groups, default_max_pixels, default_max_read_pixels, default_max_request_pixels,
)
from model.decoding import PixelBudget, preprocess
from model.number_reader import Budget, Reading, line_picture_shape, read_number

logger = logging.getLogger(__name__)

RUNTIMES = ("keras", "litert")

# Inside a number, a mark the detector doubts still counts as a digit when the reader is sure of it and either the
# wholeness network judges it one whole digit in its surroundings or the line reader finds its line's digits likely:
# then the detector's score need only reach `vouched_digit_score`. The bench's marked numbers measure what it
# costs: non-digits written among digits left out of `number` less often.
vouched_digit_score, vouched_whole_score, vouched_line_probability, vouched_confidence = 1e-5, 0.75, 0.5, 0.9
# A mark written in line with its line's other digits (`written_in_line`: a digit's size, in their band) is one of them
# though the detector doubts it, unless the detector all but rules it out: it needs `in_line_evidence` times less of the
# detector's score, both floors (the card's threshold, and `vouched_digit_score` where the splitter's networks vouch)
# divided by it. Chosen on scratch sets drawn apart from the bench's (with a retrained detector, threshold 0.0079, not kept): of 900
# numbers of 2-4 MNIST validation digits, each with one digit the detector doubts alone, the floors leave 30 doubted
# digits out of `number`, divided by 1.5 / 2 / 2.5 / 4 they leave 24 / 19 / 15 / 10 out; of 300 numbers each with a
# non-digit among 2-3 digits (sized and placed like them, so that only the detector tells them apart) they leave out
# 89 / 87 / 82 / 78 non-digits against 90. Counted per number, the step from 1 to 1.5 keeps doubted digits in more
# numbers (6 in 900, 0.7 %) than it loses non-digits from (1 in 300, 0.3 %), the step from 1.5 to 2 in fewer (5 in 900,
# 0.6 %, against 2 in 300, 0.7 %); so too with the committed detector (threshold 0.00026: 17 doubted digits left out,
# against 11 / 7 / 4 divided by 1.5 / 2 / 2.5, and 73 non-digits against 73 / 71 / 66). 1.5 is the most that pays.
in_line_evidence = 1.5
# What in line is, against the boxes of the line's other digits (those that are digits alone): a height from
# `in_line_min_height` to `in_line_max_height` times their median height, sharing `in_line_min_overlap` of the shorter of
# its upright extent and their band (median top to median bottom), and no wider than `in_line_max_width` times their
# height. Measured on 5,567 digits read in the scratch numbers (each digit sized 0.8-1.25x by the composer, so that one
# is 0.64-1.56 times another): heights 0.65-1.54 times their line's for 99.8 %, overlap 0.75 or more, widths up to 1.69
# for 99 % (a wider mark is mostly two digits read as one, or a dash); 1.5 % of them are out of line by these bounds.
in_line_min_height = 0.6
in_line_max_height = 1.6
in_line_min_overlap = 0.7
in_line_max_width = 1.6


@dataclass(frozen=True)
class Prediction:
    """The network's reading of one image."""

    digit: int
    confidence: float
    probabilities: list[float]
    # False when the picture does not look like any digit (a letter, a shape, a scribble)
    is_digit: bool = True
    # what the network read: the preprocessed 28x28 image, 0..1 (not part of the answer unless asked)
    model_input: np.ndarray | None = field(default=None, compare=False, repr=False)

    def as_dict(self) -> dict:
        """The JSON shape of the API's answer."""
        return {
            "digit": self.digit, "confidence": self.confidence, "is_digit": self.is_digit, "probabilities": self.probabilities,
        }


def calibrate(probabilities: np.ndarray, temperature: float) -> np.ndarray:
    """Temperature scaling of softmax rows (N, 10): softmax(log(p) / T), in float64; T = 1 changes nothing."""
    logits = np.log(np.maximum(np.asarray(probabilities, dtype=np.float64), 1e-30)) / temperature
    logits -= logits.max(axis=-1, keepdims=True)
    scaled = np.exp(logits)
    return scaled / scaled.sum(axis=-1, keepdims=True)


def prediction_from(
    probabilities: np.ndarray, model_input: np.ndarray | None = None, is_digit: bool = True, digit: int | None = None,
) -> Prediction:
    """Turn one row of (calibrated) probabilities into a Prediction (re-normalised in float64): of their best digit, or
    of `digit` when given (a digit read in its line), with the probability of that digit as its confidence."""
    values = np.asarray(probabilities, dtype=np.float64)
    values = values / values.sum()
    digit = int(np.argmax(values)) if digit is None else int(digit)
    return Prediction(digit, float(values[digit]), [float(v) for v in values], bool(is_digit), model_input)


class KerasRuntime:
    """The .keras network in TensorFlow: one graph, traced once for any batch size."""

    def __init__(self, path: Path) -> None:
        import keras
        import tensorflow as tf

        network = keras.models.load_model(path, compile=False)
        self._forward = tf.function(
            lambda images: network(images, training=False),
            input_signature=[tf.TensorSpec(shape=(None, *network.input_shape[1:]), dtype=tf.float32)],
        )

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        """The network's outputs for a float32 batch (N, 28, 28, channels)."""
        return self._forward(batch).numpy()


class LiteRTRuntime:
    """The TensorFlow Lite export run by LiteRT's interpreter; no TensorFlow in the process."""

    # The most inputs one interpreter run takes. Its buffers are sized for the largest batch it has run, and the
    # number splitter reads hundreds of groups in one call: uncapped, a worker grew from 180 to about 250 MiB, capped 200.
    max_chunk = 32

    def __init__(self, path: Path) -> None:
        from ai_edge_litert.interpreter import Interpreter

        self._interpreter = Interpreter(model_path=str(path), num_threads=1)
        self._input = self._interpreter.get_input_details()[0]["index"]
        self._output = self._interpreter.get_output_details()[0]["index"]
        self._batch_size = 0
        self._lock = threading.Lock()  # an interpreter runs one call at a time

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        """The network's outputs for a float32 batch (N, 28, 28, channels), run `max_chunk` inputs at a time."""
        with self._lock:
            if len(batch) <= self.max_chunk:
                return self._invoke(batch)
            return np.concatenate([self._invoke(batch[start:start + self.max_chunk]) for start in range(0, len(batch), self.max_chunk)])

    def _invoke(self, batch: np.ndarray) -> np.ndarray:
        """One run of the interpreter, its tensors sized for this batch."""
        if len(batch) != self._batch_size:
            self._interpreter.resize_tensor_input(self._input, list(batch.shape))
            self._interpreter.allocate_tensors()
            self._batch_size = len(batch)
        self._interpreter.set_tensor(self._input, batch)
        self._interpreter.invoke()
        return self._interpreter.get_tensor(self._output).copy()


@dataclass(frozen=True)
class NumberDigit:
    """One digit of a number: the Prediction for it, its line of writing and its box (x, y, width, height)."""

    prediction: Prediction
    line: int
    box: tuple[int, int, int, int]
    # True where the digit is the line reader's reading of the mark in its line, not the best of its own probabilities
    read_in_line: bool = False


def written_in_line(box: tuple[int, int, int, int], neighbours: list[tuple[int, int, int, int]]) -> bool:
    """Whether a mark's box (x, y, width, height) is written like its neighbours' in a line of digits: close to the median
    of their heights, sharing their upright band (median top to median bottom), not a speck, a blob or a long stroke."""
    if not neighbours:
        return False
    _, top, width, height = box
    line_height = float(np.median([other[3] for other in neighbours]))
    band_top = float(np.median([other[1] for other in neighbours]))
    band_bottom = float(np.median([other[1] + other[3] for other in neighbours]))
    shared = min(top + height, band_bottom) - max(top, band_top)
    return (in_line_min_height <= height / line_height <= in_line_max_height and width <= in_line_max_width * line_height
            and shared >= in_line_min_overlap * max(1.0, min(height, band_bottom - band_top)))


def number_text(digits: list[NumberDigit]) -> str:
    """The number the digits spell, non-digit marks left out: what `number` answers."""
    return "".join(str(item.prediction.digit) for item in digits if item.prediction.is_digit)


class Classifier:
    """A loaded network plus its model card; `recognize` goes from image bytes to a Prediction.

    Confidences are temperature-scaled with the card's calibration. A second, small network (the
    "digitness" detector), when given, scores how much each picture looks like a digit at all; a
    third (the "wholeness" network) and a fourth (the line reader), when given, guide the number splitter.
    With `max_batch` above 1, concurrent `recognize` calls share network calls (micro-batching).
    """

    def __init__(
        self, runtime, card: dict, model_sha256: str, runtime_name: str = "keras", max_batch: int = 1,
        max_wait: float = 0.002, detector=None, detector_card: dict | None = None, wholeness=None,
        wholeness_card: dict | None = None, line_reader=None, line_reader_card: dict | None = None,
    ) -> None:
        self.runtime = runtime
        self.runtime_name = runtime_name
        self.card = card
        self.model_sha256 = model_sha256
        self.temperature = float(card.get("calibration", {}).get("temperature", 1.0))
        self.detector = detector
        self.detector_card = detector_card or {}
        self.digit_threshold = float(self.detector_card.get("threshold", 0.5))
        self.wholeness = wholeness
        self.wholeness_card = wholeness_card or {}
        self.line_reader = line_reader
        self.line_reader_card = line_reader_card or {}
        self.batcher = MicroBatcher(self.read_rows, max_batch, max_wait) if max_batch > 1 else None
        # called after every network call with (images, seconds): the web layer's metrics hook in here
        self.on_inference: Callable[[int, float], None] | None = None
        # warm-up: trace now, not on the first request; and with the largest batch a runtime runs at once, so that its
        # buffers are as big at rest as a number's reads make them (a worker's resting memory is then its working one)
        largest = getattr(runtime, "max_chunk", 1)
        self.read_rows(np.zeros((largest, 28, 28), dtype=np.float32))
        if wholeness is not None:
            self.judge(np.zeros((largest, 28, 28, 2), dtype=np.float32))
        if line_reader is not None:
            self.read_line(np.zeros(line_picture_shape, dtype=np.float32))

    @classmethod
    def load(
        cls, path: str | Path = DEFAULT_MODEL_PATH, runtime: str = "keras", max_batch: int = 1, max_wait: float = 0.002,
        detector_path: str | Path | None = DEFAULT_DETECTOR_PATH, wholeness_path: str | Path | None = DEFAULT_WHOLENESS_PATH,
        line_reader_path: str | Path | None = DEFAULT_LINE_READER_PATH,
    ) -> "Classifier":
        """Load the model for `runtime` ("keras": the .keras file; "litert": the .tflite beside it), its card, the
        detector, the wholeness network and the line reader."""
        if runtime not in RUNTIMES:
            raise ValueError(f"unknown model runtime {runtime!r}: choose one of {', '.join(RUNTIMES)}")
        path = Path(path)
        engine, card, model_sha256 = _load_network(path, runtime)
        detector, detector_card = None, None
        if detector_path is not None and Path(detector_path).exists():
            detector, detector_card, _ = _load_network(Path(detector_path), runtime)
        else:
            logger.warning("no digit detector at %s: every picture counts as a digit", detector_path)
        wholeness, wholeness_card = None, None
        if wholeness_path is not None and Path(wholeness_path).exists():
            wholeness, wholeness_card, _ = _load_network(Path(wholeness_path), runtime)
        elif wholeness_path is not None:
            logger.warning("no wholeness network at %s: numbers are split by the reader alone", wholeness_path)
        line_reader, line_reader_card = None, None
        if line_reader_path is not None and Path(line_reader_path).exists():
            line_reader, line_reader_card, _ = _load_network(Path(line_reader_path), runtime)
        elif line_reader_path is not None:
            logger.warning("no line reader at %s: numbers are split without it", line_reader_path)
        return cls(engine, card, model_sha256, runtime, max_batch, max_wait, detector, detector_card, wholeness, wholeness_card,
                   line_reader, line_reader_card)

    def predict_probabilities(self, images: np.ndarray) -> np.ndarray:
        """The network's own softmax outputs (N, 10) for images (N, 28, 28) or (N, 28, 28, 1) in 0..1 (no detector)."""
        return self.runtime(_as_batch(images))

    def read_rows(self, images: np.ndarray) -> np.ndarray:
        """One call of both networks for images (N, 28, 28): rows of the 10 softmax outputs and the digit score."""
        batch = _as_batch(images)
        started = time.perf_counter()
        probabilities = self.runtime(batch)
        digit_scores = self.detector(batch) if self.detector is not None else np.ones((len(batch), 1), np.float32)
        if self.on_inference is not None:
            self.on_inference(len(batch), time.perf_counter() - started)
        return np.concatenate([probabilities, np.reshape(digit_scores, (-1, 1))], axis=1)

    def read(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Calibrated probabilities (N, 10) and digit scores (N,) for preprocessed images."""
        rows = self.read_rows(images)
        return calibrate(rows[:, :10], self.temperature), rows[:, 10]

    def judge(self, inputs: np.ndarray) -> np.ndarray:
        """The wholeness network's scores (N,) for (N, 28, 28, 2) inputs: is each group of strokes one whole digit?"""
        return self.wholeness(np.ascontiguousarray(inputs, dtype=np.float32))[:, 0]

    def read_line(self, picture: np.ndarray) -> np.ndarray:
        """The line reader's log probabilities (columns, 11) for one line picture (model.number_reader.Page.line_picture)."""
        logits = self.line_reader(np.ascontiguousarray(picture, dtype=np.float32)[np.newaxis, ..., np.newaxis])[0]
        return log_softmax(logits, axis=-1)

    def _prediction(self, row: np.ndarray, image: np.ndarray | None) -> Prediction:
        """A Prediction from one row of read_rows."""
        probabilities = calibrate(row[:10], self.temperature)
        return prediction_from(probabilities, image, bool(row[10] >= self.digit_threshold))

    def classify(self, image: np.ndarray) -> Prediction:
        """The Prediction for one preprocessed 28x28 image."""
        return self._prediction(self.read_rows(image[np.newaxis])[0], image)

    def recognize(
        self, data: bytes, max_pixels: int = default_max_pixels, max_decoded_bytes: int = default_max_decoded_bytes,
        max_request_pixels: int = default_max_request_pixels,
    ) -> Prediction:
        """Image file bytes -> Prediction; raises the model package's errors for bad input (ImageTooLargeError past
        any of the decode limits, checked from the header before decoding)."""
        budget = PixelBudget(max_request_pixels)
        if self.batcher is None:
            return self.classify(preprocess(data, max_pixels, max_decoded_bytes, budget))
        with self.batcher.preparing() as ticket:
            image = preprocess(data, max_pixels, max_decoded_bytes, budget)
            return self._prediction(self.batcher.probabilities(image, ticket), image)

    def recognize_batch(
        self, uploads: list, max_pixels: int = default_max_pixels, max_decoded_bytes: int = default_max_decoded_bytes,
        max_request_pixels: int = default_max_request_pixels,
    ) -> list:
        """Many uploads at once, in order: a Prediction per readable image, its RecognitionError otherwise.

        Items that are already a RecognitionError (e.g. bad base64) pass through; all readable
        images go through the network in one call. The images share one budget of `max_request_pixels` decoded,
        each charged from its header before it is decoded: once an image does not fit, it and every later one
        answer ImageTooLargeError, and the ones before keep their answers.
        """
        budget = PixelBudget(max_request_pixels)
        results: list = list(uploads)
        readable: list[int] = []
        images: list[np.ndarray] = []
        for index, upload in enumerate(uploads):
            if isinstance(upload, RecognitionError):
                continue
            try:
                images.append(preprocess(upload, max_pixels, max_decoded_bytes, budget))
                readable.append(index)
            except RecognitionError as error:
                results[index] = error
        if images:
            for index, image, row in zip(readable, images, self.read_rows(np.stack(images))):
                results[index] = self._prediction(row, image)
        return results

    def recognize_numbers(
        self, uploads: list, max_pixels: int = default_max_pixels, max_groups: int = default_max_groups,
        max_decoded_bytes: int = default_max_decoded_bytes, max_request_pixels: int = default_max_request_pixels,
        max_read_pixels: int = default_max_read_pixels,
    ) -> list:
        """Many uploads read as numbers, in order: each one's NumberDigits, or its RecognitionError (as recognize_batch).

        They share one budget of `max_groups` group reads and `max_read_pixels` pixels those reads work on (once it is
        spent, the numbers left answer TooManyMarksError), and one of `max_request_pixels` decoded, as recognize_batch's
        images do.
        """
        budget = Budget(max_groups, max_read_pixels)
        pixel_budget = PixelBudget(max_request_pixels)
        results: list = []
        for upload in uploads:
            try:
                results.append(upload if isinstance(upload, RecognitionError) else self.recognize_number(
                    upload, max_pixels, budget, max_decoded_bytes, pixel_budget))
            except RecognitionError as error:
                results.append(error.with_traceback(None))  # its traceback would keep the number's page alive
        return results

    def recognize_number(
        self, data: bytes, max_pixels: int = default_max_pixels, budget: Budget | int = default_max_groups,
        max_decoded_bytes: int = default_max_decoded_bytes, pixel_budget: PixelBudget | int = default_max_request_pixels,
        max_read_pixels: int = default_max_read_pixels,
    ) -> list[NumberDigit]:
        """Image file bytes of a written number -> its digits in reading order (lines top to bottom), reading at most
        `budget` groups of strokes (a number of them with `max_read_pixels` pixels, or a Budget shared with other
        numbers). Its header is checked against the decode limits, and charged to `pixel_budget` (a request's pixels,
        or a PixelBudget shared with other numbers), before it is decoded."""
        budget = budget if isinstance(budget, Budget) else Budget(budget, max_read_pixels)
        pixel_budget = pixel_budget if isinstance(pixel_budget, PixelBudget) else PixelBudget(pixel_budget)
        readings = read_number(data, self.read, max_pixels, self.judge if self.wholeness is not None else None,
                               self.read_line if self.line_reader is not None else None, budget, max_decoded_bytes,
                               pixel_budget)
        return [
            NumberDigit(
                prediction_from(reading.probabilities, reading.image, is_digit, reading.digit),
                reading.line,
                reading.box,
                reading.read_in_line,
            )
            for reading, is_digit in zip(readings, self.digits_in_number(readings))
        ]

    def digits_in_number(self, readings: list[Reading]) -> list[bool]:
        """Whether each mark of a number is a digit: as `is_digit_in_number` judges it alone, or, written in line with
        the marks of its line that are digits alone (`written_in_line`), with `in_line_evidence` times less of the
        detector's score."""
        alone = [self.is_digit_in_number(reading) for reading in readings]
        digits = []
        for reading, is_digit in zip(readings, alone):
            neighbours = [other.box for other, other_is_digit in zip(readings, alone)
                          if other_is_digit and other is not reading and other.line == reading.line]
            digits.append(is_digit or (self.is_digit_in_number(reading, in_line_evidence)
                                       and written_in_line(reading.box, neighbours)))
        return digits

    def is_digit_in_number(self, reading: Reading, evidence: float = 1.0) -> bool:
        """Whether a mark of a number is a digit: as a single upload, or vouched for by the splitter's networks; with
        `evidence` above 1, what else says it is one (its place in its line) lowers both floors that many times."""
        vouched = float(reading.probabilities.max()) >= vouched_confidence and (
            (reading.whole_score is not None and reading.whole_score >= vouched_whole_score)
            or (reading.line_probability is not None and reading.line_probability >= vouched_line_probability))
        floor = min(vouched_digit_score, self.digit_threshold) if vouched else self.digit_threshold
        return reading.digit_score >= floor / evidence

    def describe(self) -> dict:
        """The model card plus the served file's sha256, the runtime and the other networks' cards, for GET /model.json."""
        return {
            **self.card, "runtime": self.runtime_name, "sha256": self.model_sha256, "digitness": self.detector_card or None,
            "wholeness": self.wholeness_card or None, "line_reader": self.line_reader_card or None,
        }


def _as_batch(images: np.ndarray) -> np.ndarray:
    """Images (N, 28, 28) or (N, 28, 28, 1) as the networks' contiguous float32 (N, 28, 28, 1) input."""
    return np.ascontiguousarray(np.asarray(images, dtype=np.float32).reshape(-1, 28, 28, 1))


def _load_network(path: Path, runtime: str) -> tuple[object, dict, str]:
    """A network file for `runtime` (the .keras, or the .tflite beside it), its card and the served file's sha256."""
    served = tflite_path_for(path) if runtime == "litert" else path
    engine = LiteRTRuntime(served) if runtime == "litert" else KerasRuntime(served)
    card_file = card_path_for(path)
    card = json.loads(card_file.read_text()) if card_file.exists() else {}
    model_sha256 = hashlib.sha256(served.read_bytes()).hexdigest()
    logger.info("loaded model %s with the %s runtime (sha256 %s)", served, runtime, model_sha256)
    return engine, card, model_sha256
