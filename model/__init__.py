"""The digit model: network, training, preprocessing and inference. Importing it loads no TensorFlow."""

import os
from pathlib import Path

# NumPy's OpenBLAS splits even the preprocessing's tiny matrix products over every core, and its
# threads spin: 4-5x slower than one thread, and it halves the other gunicorn workers' speed (a
# 280x280 canvas: 43 -> 92 requests/s). Set before NumPy loads (the model package is imported
# before anything that imports NumPy); an operator's own value wins.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

# The committed model file; its card (.json) and TensorFlow Lite export (.tflite) lie beside it.
DEFAULT_MODEL_PATH = Path(__file__).resolve().parent / "digits.keras"
# The committed "does this look like a digit at all" detector, with its card and export beside it.
DEFAULT_DETECTOR_PATH = Path(__file__).resolve().parent / "digitness.keras"
# The committed "is this group of strokes one whole digit" network that guides the number splitter.
DEFAULT_WHOLENESS_PATH = Path(__file__).resolve().parent / "wholeness.keras"
# The committed line reader, which reads a whole line of a number at once and has the splitter's last word.
DEFAULT_LINE_READER_PATH = Path(__file__).resolve().parent / "lines.keras"


def card_path_for(model_path: str | Path) -> Path:
    """The model card beside the model file: digits.keras -> digits.json."""
    return Path(model_path).with_suffix(".json")


def tflite_path_for(model_path: str | Path) -> Path:
    """The TensorFlow Lite export beside the model file: digits.keras -> digits.tflite."""
    return Path(model_path).with_suffix(".tflite")


def reader_split(model_path: str | Path = DEFAULT_MODEL_PATH) -> tuple[int, int]:
    """The digit model's held-out split, from its card: (validation images, seed). The other networks hold out the same."""
    import json

    card = json.loads(card_path_for(model_path).read_text())
    return int(card["data"]["validation_images"]), int(card["training"]["seed"])
