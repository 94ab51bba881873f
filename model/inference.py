"""Inference: the trained network loaded once per process and called through a compiled function."""

import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from model.preprocess import default_max_pixels, preprocess

logger = logging.getLogger(__name__)

MODEL_DIR = Path(__file__).resolve().parent
DEFAULT_MODEL_PATH = MODEL_DIR / "digits.keras"


@dataclass(frozen=True)
class Prediction:
    """The network's reading of one image."""

    digit: int
    confidence: float
    probabilities: list[float]

    def as_dict(self) -> dict:
        """The JSON shape of the API's answer."""
        return {"digit": self.digit, "confidence": self.confidence, "probabilities": self.probabilities}


def prediction_from(probabilities: np.ndarray) -> Prediction:
    """Turn one row of softmax output into a Prediction (probabilities re-normalised in float64)."""
    values = np.asarray(probabilities, dtype=np.float64)
    values = values / values.sum()
    digit = int(np.argmax(values))
    return Prediction(digit=digit, confidence=float(values[digit]), probabilities=[float(v) for v in values])


class Classifier:
    """A loaded network plus its model card; `recognize` goes from image bytes to a Prediction."""

    def __init__(self, network, card: dict, model_sha256: str) -> None:
        import tensorflow as tf

        self.network = network
        self.card = card
        self.model_sha256 = model_sha256
        # one graph, traced once for any batch size; no per-call model.predict machinery
        self._forward = tf.function(
            lambda images: self.network(images, training=False),
            input_signature=[tf.TensorSpec(shape=(None, 28, 28, 1), dtype=tf.float32)],
            reduce_retracing=True,
        )
        self.predict_probabilities(np.zeros((1, 28, 28), dtype=np.float32))  # warm-up: trace now, not on the first request

    @classmethod
    def load(cls, path: str | Path = DEFAULT_MODEL_PATH) -> "Classifier":
        """Load a .keras file and the JSON model card beside it."""
        import keras

        path = Path(path)
        network = keras.models.load_model(path, compile=False)
        card_file = path.with_suffix(".json")
        card = json.loads(card_file.read_text()) if card_file.exists() else {}
        model_sha256 = hashlib.sha256(path.read_bytes()).hexdigest()
        logger.info("loaded model %s (sha256 %s)", path, model_sha256)
        return cls(network, card, model_sha256)

    def predict_probabilities(self, images: np.ndarray) -> np.ndarray:
        """Softmax outputs (N, 10) for images (N, 28, 28) or (N, 28, 28, 1) in 0..1."""
        batch = np.asarray(images, dtype=np.float32).reshape(-1, 28, 28, 1)
        return self._forward(batch).numpy()

    def classify(self, image: np.ndarray) -> Prediction:
        """The Prediction for one preprocessed 28x28 image."""
        return prediction_from(self.predict_probabilities(image[np.newaxis])[0])

    def recognize(self, data: bytes, max_pixels: int = default_max_pixels) -> Prediction:
        """Image file bytes -> Prediction; raises the model package's errors for bad input."""
        return self.classify(preprocess(data, max_pixels))

    def describe(self) -> dict:
        """The model card plus the model file's sha256, for GET /model.json."""
        return {**self.card, "sha256": self.model_sha256}
