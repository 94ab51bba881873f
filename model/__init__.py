"""The digit model: network, training, preprocessing and inference. Importing it loads no TensorFlow."""

from pathlib import Path

# The committed model file; its card (.json) and TensorFlow Lite export (.tflite) lie beside it.
DEFAULT_MODEL_PATH = Path(__file__).resolve().parent / "digits.keras"


def card_path_for(model_path: str | Path) -> Path:
    """The model card beside the model file: digits.keras -> digits.json."""
    return Path(model_path).with_suffix(".json")


def tflite_path_for(model_path: str | Path) -> Path:
    """The TensorFlow Lite export beside the model file: digits.keras -> digits.tflite."""
    return Path(model_path).with_suffix(".tflite")
