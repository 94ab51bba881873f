"""What the service runs: decoding uploads, the classifier and number reader, batching, errors, and the committed
network files beside them. Nothing here trains or imports TensorFlow; training lives in the `training` package."""

from pathlib import Path

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


# A slug may hold only the served files (.slugignore): the .tflite exports without their .keras files.
def served_file(model_path: str | Path, runtime: str) -> Path:
    """The file a runtime serves for a network named by its .keras path: the .tflite beside it (litert), or the .keras."""
    return tflite_path_for(model_path) if runtime == "litert" else Path(model_path)
