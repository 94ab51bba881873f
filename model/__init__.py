"""The digit model: network, training, preprocessing and inference. Importing it loads no TensorFlow."""

from pathlib import Path

# The committed model file; its card (.json) and TensorFlow Lite export (.tflite) lie beside it.
DEFAULT_MODEL_PATH = Path(__file__).resolve().parent / "digits.keras"
