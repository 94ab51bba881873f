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
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy.special import log_softmax

from model import (
    DEFAULT_DETECTOR_PATH,
    DEFAULT_LINE_READER_PATH,
    DEFAULT_MODEL_PATH,
    DEFAULT_WHOLENESS_PATH,
    card_path_for,
    served_file,
)
from model.batching import MicroBatcher
from model.decoding import PixelBudget, preprocess
from model.errors import RecognitionError
from model.limits import DEFAULT_LIMITS, DecodeLimits, NumberLimits
from model.number_reader import LINE_PICTURE_SHAPE, Budget, Reading, read_number

logger = logging.getLogger(__name__)

RUNTIMES = ("keras", "litert")

# Inside a number, a mark the detector doubts still counts as a digit when the reader is sure of it and either the
# wholeness network judges it one whole digit in its surroundings or the line reader finds its line's digits likely:
# then the detector's score need only reach `VOUCHED_DIGIT_SCORE`. The bench's marked numbers measure what it
# costs: non-digits written among digits left out of `number` less often. Chosen on the 1,000 validation numbers
# (bench/TRIALS.md, "The threshold inside numbers"): with the wholeness pair, 96.5 % read against 96.1 % with the plain
# threshold, and 112 of 600 non-digits among digits left out against 140; the values sit on a plateau (a floor of 10^-6
# or 10^-5, a wholeness score from 0.5 to 0.75 and a reader's 0.8 to 0.95 all read 96.5 %; a floor of 3*10^-5 or a
# wholeness score of 0.9, 96.3 %).
VOUCHED_DIGIT_SCORE = 1e-5
VOUCHED_WHOLE_SCORE = 0.75
# The line reader vouches from this probability of its line's digits: 0 / 1 / 3 more of the validation / fresh / usual
# numbers read than without it (969 / 956 / 972; docs/ACCURACY.md, "Numbers").
VOUCHED_LINE_PROBABILITY = 0.5
VOUCHED_CONFIDENCE = 0.9
# A mark written in line with its line's other digits (`written_in_line`: a digit's size, in their band) is one of them
# though the detector doubts it, unless the detector all but rules it out: it needs `IN_LINE_EVIDENCE` times less of the
# detector's score, both floors (the card's threshold, and `VOUCHED_DIGIT_SCORE` where the splitter's networks vouch)
# divided by it. Chosen on scratch sets drawn apart from the bench's (with a retrained detector, threshold 0.0079, not kept): of 900
# numbers of 2-4 MNIST validation digits, each with one digit the detector doubts alone, the floors leave 30 doubted
# digits out of `number`, divided by 1.5 / 2 / 2.5 / 4 they leave 24 / 19 / 15 / 10 out; of 300 numbers each with a
# non-digit among 2-3 digits (sized and placed like them, so that only the detector tells them apart) they leave out
# 89 / 87 / 82 / 78 non-digits against 90. Counted per number, the step from 1 to 1.5 keeps doubted digits in more
# numbers (6 in 900, 0.7 %) than it loses non-digits from (1 in 300, 0.3 %), the step from 1.5 to 2 in fewer (5 in 900,
# 0.6 %, against 2 in 300, 0.7 %); so too with the committed detector (threshold 0.00026: 17 doubted digits left out,
# against 11 / 7 / 4 divided by 1.5 / 2 / 2.5, and 73 non-digits against 73 / 71 / 66). 1.5 is the most that pays.
IN_LINE_EVIDENCE = 1.5
# What in line is, against the boxes of the line's other digits (those that are digits alone): a height from
# `IN_LINE_MIN_HEIGHT` to `IN_LINE_MAX_HEIGHT` times their median height, sharing `IN_LINE_MIN_OVERLAP` of the shorter of
# its upright extent and their band (median top to median bottom), and no wider than `IN_LINE_MAX_WIDTH` times their
# height. Measured on 5,567 digits read in the scratch numbers (each digit sized 0.8-1.25x by the composer, so that one
# is 0.64-1.56 times another): heights 0.65-1.54 times their line's for 99.8 %, overlap 0.75 or more, widths up to 1.69
# for 99 % (a wider mark is mostly two digits read as one, or a dash); 1.5 % of them are out of line by these bounds.
IN_LINE_MIN_HEIGHT = 0.6
IN_LINE_MAX_HEIGHT = 1.6
IN_LINE_MIN_OVERLAP = 0.7
IN_LINE_MAX_WIDTH = 1.6


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
            "digit": self.digit,
            "confidence": self.confidence,
            "is_digit": self.is_digit,
            "probabilities": self.probabilities,
        }


def calibrate(probabilities: np.ndarray, temperature: float) -> np.ndarray:
    """Temperature scaling of softmax rows (N, 10): softmax(log(p) / T), in float64; T = 1 changes nothing."""
    logits = np.log(np.maximum(np.asarray(probabilities, dtype=np.float64), 1e-30)) / temperature
    logits -= logits.max(axis=-1, keepdims=True)
    scaled = np.exp(logits)
    return scaled / scaled.sum(axis=-1, keepdims=True)


def prediction_from(
    probabilities: np.ndarray,
    model_input: np.ndarray | None = None,
    is_digit: bool = True,
    digit: int | None = None,
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
            return np.concatenate(
                [self._invoke(batch[start : start + self.max_chunk]) for start in range(0, len(batch), self.max_chunk)]
            )

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
    return (
        IN_LINE_MIN_HEIGHT <= height / line_height <= IN_LINE_MAX_HEIGHT
        and width <= IN_LINE_MAX_WIDTH * line_height
        and shared >= IN_LINE_MIN_OVERLAP * max(1.0, min(height, band_bottom - band_top))
    )


def number_text(digits: list[NumberDigit]) -> str:
    """The number the digits spell, non-digit marks left out: what `number` answers."""
    return "".join(str(item.prediction.digit) for item in digits if item.prediction.is_digit)


class Classifier:
    """A loaded network plus its model card; `read_digit` goes from image bytes to a Prediction, `read_number` to a
    number's digits.

    Confidences are temperature-scaled with the card's calibration. A second, small network (the
    "digitness" detector), when given, scores how much each picture looks like a digit at all; a
    third (the "wholeness" network) and a fourth (the line reader), when given, guide the number splitter.
    With `max_batch` above 1, concurrent `read_digit` calls share network calls (micro-batching).
    """

    def __init__(
        self,
        runtime,
        card: dict,
        model_sha256: str,
        runtime_name: str = "keras",
        max_batch: int = 1,
        max_wait: float = 0.002,
        detector=None,
        detector_card: dict | None = None,
        wholeness=None,
        wholeness_card: dict | None = None,
        line_reader=None,
        line_reader_card: dict | None = None,
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
        self.batcher = MicroBatcher(self._read_rows, max_batch, max_wait) if max_batch > 1 else None
        # called after every network call with (images, seconds): the web layer's metrics hook in here
        self.on_inference: Callable[[int, float], None] | None = None
        # warm-up: trace now, not on the first request; and with the largest batch a runtime runs at once, so that its
        # buffers are as big at rest as a number's reads make them (a worker's resting memory is then its working one)
        largest = getattr(runtime, "max_chunk", 1)
        self._read_rows(np.zeros((largest, 28, 28), dtype=np.float32))
        if wholeness is not None:
            self._judge(np.zeros((largest, 28, 28, 2), dtype=np.float32))
        if line_reader is not None:
            self._read_line(np.zeros(LINE_PICTURE_SHAPE, dtype=np.float32))

    @classmethod
    def load(
        cls,
        path: str | Path = DEFAULT_MODEL_PATH,
        runtime: str = "keras",
        max_batch: int = 1,
        max_wait: float = 0.002,
        detector_path: str | Path | None = DEFAULT_DETECTOR_PATH,
        wholeness_path: str | Path | None = DEFAULT_WHOLENESS_PATH,
        line_reader_path: str | Path | None = DEFAULT_LINE_READER_PATH,
    ) -> "Classifier":
        """Load the model for `runtime` ("keras": the .keras file; "litert": the .tflite beside it), its card, the
        detector, the wholeness network and the line reader."""
        if runtime not in RUNTIMES:
            raise ValueError(f"unknown model runtime {runtime!r}: choose one of {', '.join(RUNTIMES)}")
        path = Path(path)
        engine, card, model_sha256 = _load_network(path, runtime)
        detector, detector_card = None, None
        if detector_path is not None and served_file(detector_path, runtime).exists():
            detector, detector_card, _ = _load_network(Path(detector_path), runtime)
        else:
            logger.warning("no digit detector at %s: every picture counts as a digit", detector_path)
        wholeness, wholeness_card = None, None
        if wholeness_path is not None and served_file(wholeness_path, runtime).exists():
            wholeness, wholeness_card, _ = _load_network(Path(wholeness_path), runtime)
        elif wholeness_path is not None:
            logger.warning("no wholeness network at %s: numbers are split by the reader alone", wholeness_path)
        line_reader, line_reader_card = None, None
        if line_reader_path is not None and served_file(line_reader_path, runtime).exists():
            line_reader, line_reader_card, _ = _load_network(Path(line_reader_path), runtime)
        elif line_reader_path is not None:
            logger.warning("no line reader at %s: numbers are split without it", line_reader_path)
        return cls(
            engine,
            card,
            model_sha256,
            runtime,
            max_batch,
            max_wait,
            detector,
            detector_card,
            wholeness,
            wholeness_card,
            line_reader,
            line_reader_card,
        )

    def read_digit(self, upload: bytes, limits: DecodeLimits = DEFAULT_LIMITS) -> Prediction:
        """One image file -> the digit in it (through the micro-batcher, when there is one); raises the model package's
        errors for bad input (ImageTooLargeError past any of `limits`, told from the header before decoding)."""
        budget = PixelBudget(limits.max_request_pixels)
        if self.batcher is None:
            image = preprocess(upload, limits.max_pixels, limits.max_decoded_bytes, budget)
            return self._prediction(self._read_rows(image[np.newaxis])[0], image)
        with self.batcher.preparing() as ticket:
            image = preprocess(upload, limits.max_pixels, limits.max_decoded_bytes, budget)
            return self._prediction(self.batcher.probabilities(image, ticket), image)

    def read_digits(
        self,
        uploads: Sequence[bytes | RecognitionError],
        limits: DecodeLimits = DEFAULT_LIMITS,
    ) -> list[Prediction | RecognitionError]:
        """Many image files at once, in order: a Prediction per readable image, its RecognitionError otherwise.

        Items that are already a RecognitionError (e.g. bad base64) pass through; all readable
        images go through the network in one call. The images share one budget of `limits.max_request_pixels` decoded,
        each charged from its header before it is decoded: once an image does not fit, it and every later one
        answer ImageTooLargeError, and the ones before keep their answers.
        """
        budget = PixelBudget(limits.max_request_pixels)
        results: list = list(uploads)  # each upload, replaced by its answer
        readable: list[int] = []
        images: list[np.ndarray] = []
        for index, upload in enumerate(uploads):
            if isinstance(upload, RecognitionError):
                continue
            try:
                images.append(preprocess(upload, limits.max_pixels, limits.max_decoded_bytes, budget))
                readable.append(index)
            except RecognitionError as error:
                results[index] = error
        if images:
            for index, image, row in zip(readable, images, self._read_rows(np.stack(images)), strict=False):
                results[index] = self._prediction(row, image)
        return results

    def read_number(
        self,
        upload: bytes,
        limits: NumberLimits = DEFAULT_LIMITS,
        budget: Budget | None = None,
    ) -> list[NumberDigit]:
        """An image file of a written number -> its digits in reading order (lines top to bottom); raises the model
        package's errors. Its header is checked against the decode limits before it is decoded, and its group reads are
        counted against `budget` (one shared with other numbers), else against a fresh one of `limits`' size."""
        budget = budget if budget is not None else Budget(limits.max_groups, limits.max_read_pixels)
        return self._read_number(upload, limits, budget, PixelBudget(limits.max_request_pixels))

    def read_numbers(
        self,
        uploads: Sequence[bytes | RecognitionError],
        limits: NumberLimits = DEFAULT_LIMITS,
    ) -> list[list[NumberDigit] | RecognitionError]:
        """Many image files read as numbers, in order: each one's NumberDigits, or its RecognitionError (as
        read_digits).

        They share one budget of `limits.max_groups` group reads and `limits.max_read_pixels` pixels those reads work
        on (once it is spent, the numbers left answer TooManyMarksError), and one of `limits.max_request_pixels`
        decoded, as read_digits' images do.
        """
        budget = Budget(limits.max_groups, limits.max_read_pixels)
        pixel_budget = PixelBudget(limits.max_request_pixels)
        results: list[list[NumberDigit] | RecognitionError] = []
        for upload in uploads:
            try:
                results.append(
                    upload
                    if isinstance(upload, RecognitionError)
                    else self._read_number(upload, limits, budget, pixel_budget)
                )
            except RecognitionError as error:
                results.append(error.with_traceback(None))  # its traceback would keep the number's page alive
        return results

    def read_scores(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Calibrated probabilities (N, 10) and the detector's digit scores (N,) for images already preprocessed,
        (N, 28, 28) in 0..1: the number reader's Reader (model/number_reader.py), for tools that drive its splitter."""
        rows = self._read_rows(images)
        return calibrate(rows[:, :10], self.temperature), rows[:, 10]

    def raw_probabilities(self, images: np.ndarray) -> np.ndarray:
        """The network's own softmax outputs (N, 10) for images (N, 28, 28) or (N, 28, 28, 1) in 0..1, uncalibrated and
        without the detector: what calibration fits its temperature to, and what the runtimes must agree on."""
        return self.runtime(_as_batch(images))

    def describe(self) -> dict:
        """The model card plus the served file's sha256, the runtime and the other networks' cards (GET /model.json)."""
        return {
            **self.card,
            "runtime": self.runtime_name,
            "sha256": self.model_sha256,
            "digitness": self.detector_card or None,
            "wholeness": self.wholeness_card or None,
            "line_reader": self.line_reader_card or None,
        }

    def _read_rows(self, images: np.ndarray) -> np.ndarray:
        """One call of both networks for images (N, 28, 28): rows of the 10 softmax outputs and the digit score."""
        batch = _as_batch(images)
        started = time.perf_counter()
        probabilities = self.runtime(batch)
        digit_scores = self.detector(batch) if self.detector is not None else np.ones((len(batch), 1), np.float32)
        if self.on_inference is not None:
            self.on_inference(len(batch), time.perf_counter() - started)
        return np.concatenate([probabilities, np.reshape(digit_scores, (-1, 1))], axis=1)

    def _judge(self, inputs: np.ndarray) -> np.ndarray:
        """The wholeness network's scores (N,) for (N, 28, 28, 2) inputs: is each group of strokes one whole digit?"""
        return self.wholeness(np.ascontiguousarray(inputs, dtype=np.float32))[:, 0]

    def _read_line(self, picture: np.ndarray) -> np.ndarray:
        """The line reader's log probabilities (columns, 11) for one line picture (number_reader.Page.line_picture)."""
        logits = self.line_reader(np.ascontiguousarray(picture, dtype=np.float32)[np.newaxis, ..., np.newaxis])[0]
        return log_softmax(logits, axis=-1)

    def _prediction(self, row: np.ndarray, image: np.ndarray | None) -> Prediction:
        """A Prediction from one row of _read_rows."""
        probabilities = calibrate(row[:10], self.temperature)
        return prediction_from(probabilities, image, bool(row[10] >= self.digit_threshold))

    def _read_number(
        self,
        upload: bytes,
        limits: DecodeLimits,
        budget: Budget,
        pixel_budget: PixelBudget,
    ) -> list[NumberDigit]:
        """One number's digits, its group reads counted against `budget` and its decoding charged to `pixel_budget`
        (both shared with the other numbers of a request)."""
        judge = self._judge if self.wholeness is not None else None
        read_line = self._read_line if self.line_reader is not None else None
        readings = read_number(
            upload,
            self.read_scores,
            limits.max_pixels,
            judge,
            read_line,
            budget,
            limits.max_decoded_bytes,
            pixel_budget,
        )
        return [
            NumberDigit(
                prediction_from(reading.probabilities, reading.image, is_digit, reading.digit),
                reading.line,
                reading.box,
                reading.read_in_line,
            )
            for reading, is_digit in zip(readings, self._digits_in_number(readings), strict=False)
        ]

    def _digits_in_number(self, readings: list[Reading]) -> list[bool]:
        """Whether each mark of a number is a digit: as `_is_digit_in_number` judges it alone, or, written in line with
        the marks of its line that are digits alone (`written_in_line`), with `IN_LINE_EVIDENCE` times less of the
        detector's score."""
        alone = [self._is_digit_in_number(reading) for reading in readings]
        digits = []
        for reading, is_digit in zip(readings, alone, strict=False):
            neighbours = [
                other.box
                for other, other_is_digit in zip(readings, alone, strict=False)
                if other_is_digit and other is not reading and other.line == reading.line
            ]
            digits.append(
                is_digit
                or (self._is_digit_in_number(reading, IN_LINE_EVIDENCE) and written_in_line(reading.box, neighbours))
            )
        return digits

    def _is_digit_in_number(self, reading: Reading, evidence: float = 1.0) -> bool:
        """Whether a mark of a number is a digit: as a single upload, or vouched for by the splitter's networks; with
        `evidence` above 1, what else says it is one (its place in its line) lowers both floors that many times."""
        vouched = float(reading.probabilities.max()) >= VOUCHED_CONFIDENCE and (
            (reading.whole_score is not None and reading.whole_score >= VOUCHED_WHOLE_SCORE)
            or (reading.line_probability is not None and reading.line_probability >= VOUCHED_LINE_PROBABILITY)
        )
        floor = min(VOUCHED_DIGIT_SCORE, self.digit_threshold) if vouched else self.digit_threshold
        return reading.digit_score >= floor / evidence


def _as_batch(images: np.ndarray) -> np.ndarray:
    """Images (N, 28, 28) or (N, 28, 28, 1) as the networks' contiguous float32 (N, 28, 28, 1) input."""
    return np.ascontiguousarray(np.asarray(images, dtype=np.float32).reshape(-1, 28, 28, 1))


def _load_network(path: Path, runtime: str) -> tuple[object, dict, str]:
    """A network file for `runtime` (the .keras, or the .tflite beside it), its card and the served file's sha256."""
    served = served_file(path, runtime)
    engine = LiteRTRuntime(served) if runtime == "litert" else KerasRuntime(served)
    card_file = card_path_for(path)
    card = json.loads(card_file.read_text()) if card_file.exists() else {}
    model_sha256 = hashlib.sha256(served.read_bytes()).hexdigest()
    logger.info("loaded model %s with the %s runtime (sha256 %s)", served, runtime, model_sha256)
    return engine, card, model_sha256
