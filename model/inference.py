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

from model import DEFAULT_MODEL_PATH, card_path_for, tflite_path_for
from model.batching import MicroBatcher
from model.errors import RecognitionError
from model.preprocess import default_max_pixels, preprocess

logger = logging.getLogger(__name__)

RUNTIMES = ("keras", "litert")


@dataclass(frozen=True)
class Prediction:
    """The network's reading of one image."""

    digit: int
    confidence: float
    probabilities: list[float]
    # what the network read: the preprocessed 28x28 image, 0..1 (not part of the answer unless asked)
    model_input: np.ndarray | None = field(default=None, compare=False, repr=False)

    def as_dict(self) -> dict:
        """The JSON shape of the API's answer."""
        return {"digit": self.digit, "confidence": self.confidence, "probabilities": self.probabilities}


def prediction_from(probabilities: np.ndarray, model_input: np.ndarray | None = None) -> Prediction:
    """Turn one row of softmax output into a Prediction (probabilities re-normalised in float64)."""
    values = np.asarray(probabilities, dtype=np.float64)
    values = values / values.sum()
    digit = int(np.argmax(values))
    return Prediction(digit, float(values[digit]), [float(v) for v in values], model_input)


class KerasRuntime:
    """The .keras network in TensorFlow: one graph, traced once for any batch size."""

    def __init__(self, path: Path) -> None:
        import keras
        import tensorflow as tf

        network = keras.models.load_model(path, compile=False)
        self._forward = tf.function(
            lambda images: network(images, training=False),
            input_signature=[tf.TensorSpec(shape=(None, 28, 28, 1), dtype=tf.float32)],
        )

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        """Softmax outputs for a float32 (N, 28, 28, 1) batch."""
        return self._forward(batch).numpy()


class LiteRTRuntime:
    """The TensorFlow Lite export run by LiteRT's interpreter; no TensorFlow in the process."""

    def __init__(self, path: Path) -> None:
        from ai_edge_litert.interpreter import Interpreter

        self._interpreter = Interpreter(model_path=str(path), num_threads=1)
        self._input = self._interpreter.get_input_details()[0]["index"]
        self._output = self._interpreter.get_output_details()[0]["index"]
        self._batch_size = 0
        self._lock = threading.Lock()  # an interpreter runs one call at a time

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        """Softmax outputs for a float32 (N, 28, 28, 1) batch."""
        with self._lock:
            if len(batch) != self._batch_size:
                self._interpreter.resize_tensor_input(self._input, list(batch.shape))
                self._interpreter.allocate_tensors()
                self._batch_size = len(batch)
            self._interpreter.set_tensor(self._input, batch)
            self._interpreter.invoke()
            return self._interpreter.get_tensor(self._output).copy()


class Classifier:
    """A loaded network plus its model card; `recognize` goes from image bytes to a Prediction.

    With `max_batch` above 1, concurrent `recognize` calls share network calls (micro-batching).
    """

    def __init__(
        self, runtime, card: dict, model_sha256: str, runtime_name: str = "keras", max_batch: int = 1, max_wait: float = 0.002
    ) -> None:
        self.runtime = runtime
        self.runtime_name = runtime_name
        self.card = card
        self.model_sha256 = model_sha256
        self.batcher = MicroBatcher(self.predict_probabilities, max_batch, max_wait) if max_batch > 1 else None
        # called after every network call with (images, seconds): the web layer's metrics hook in here
        self.on_inference: Callable[[int, float], None] | None = None
        self.predict_probabilities(np.zeros((1, 28, 28), dtype=np.float32))  # warm-up: trace now, not on the first request

    @classmethod
    def load(
        cls, path: str | Path = DEFAULT_MODEL_PATH, runtime: str = "keras", max_batch: int = 1, max_wait: float = 0.002
    ) -> "Classifier":
        """Load the model for `runtime` ("keras": the .keras file; "litert": the .tflite beside it) and its card."""
        if runtime not in RUNTIMES:
            raise ValueError(f"unknown model runtime {runtime!r}: choose one of {', '.join(RUNTIMES)}")
        path = Path(path)
        served = tflite_path_for(path) if runtime == "litert" else path
        engine = LiteRTRuntime(served) if runtime == "litert" else KerasRuntime(served)
        card_file = card_path_for(path)
        card = json.loads(card_file.read_text()) if card_file.exists() else {}
        model_sha256 = hashlib.sha256(served.read_bytes()).hexdigest()
        logger.info("loaded model %s with the %s runtime (sha256 %s)", served, runtime, model_sha256)
        return cls(engine, card, model_sha256, runtime, max_batch, max_wait)

    def predict_probabilities(self, images: np.ndarray) -> np.ndarray:
        """Softmax outputs (N, 10) for images (N, 28, 28) or (N, 28, 28, 1) in 0..1."""
        batch = np.ascontiguousarray(np.asarray(images, dtype=np.float32).reshape(-1, 28, 28, 1))
        started = time.perf_counter()
        probabilities = self.runtime(batch)
        if self.on_inference is not None:
            self.on_inference(len(batch), time.perf_counter() - started)
        return probabilities

    def classify(self, image: np.ndarray) -> Prediction:
        """The Prediction for one preprocessed 28x28 image."""
        return prediction_from(self.predict_probabilities(image[np.newaxis])[0], image)

    def recognize(self, data: bytes, max_pixels: int = default_max_pixels) -> Prediction:
        """Image file bytes -> Prediction; raises the model package's errors for bad input."""
        if self.batcher is None:
            return self.classify(preprocess(data, max_pixels))
        with self.batcher.preparing() as ticket:
            image = preprocess(data, max_pixels)
            return prediction_from(self.batcher.probabilities(image, ticket), image)

    def recognize_batch(self, uploads: list, max_pixels: int = default_max_pixels) -> list:
        """Many uploads at once, in order: a Prediction per readable image, its RecognitionError otherwise.

        Items that are already a RecognitionError (e.g. bad base64) pass through; all readable
        images go through the network in one call.
        """
        results: list = list(uploads)
        readable: list[int] = []
        images: list[np.ndarray] = []
        for index, upload in enumerate(uploads):
            if isinstance(upload, RecognitionError):
                continue
            try:
                images.append(preprocess(upload, max_pixels))
                readable.append(index)
            except RecognitionError as error:
                results[index] = error
        if images:
            for index, image, probabilities in zip(readable, images, self.predict_probabilities(np.stack(images))):
                results[index] = prediction_from(probabilities, image)
        return results

    def describe(self) -> dict:
        """The model card plus the served file's sha256 and the runtime, for GET /model.json."""
        return {**self.card, "runtime": self.runtime_name, "sha256": self.model_sha256}
