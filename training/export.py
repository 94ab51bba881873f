"""Export a trained Keras model to TensorFlow Lite, for the LiteRT runtime that needs no TensorFlow.

python -m training.export [--model model/digits.keras]     # writes model/digits.tflite beside it
"""

import argparse
import datetime
import json
import logging
import sys
from pathlib import Path

from model import DEFAULT_MODEL_PATH, card_path_for, tflite_path_for
from training.data import file_sha256

logger = logging.getLogger(__name__)


def export_tflite(network, output: Path) -> Path:
    """Convert the network (float32, batch dimension left free) and write the .tflite file."""
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_keras_model(network)
    output.write_bytes(converter.convert())
    logger.info("exported %s (sha256 %s)", output, file_sha256(output))
    return output


def save_for_serving(network, build, output: Path) -> Path:
    """Save a trained network's weights in a fresh, uncompiled copy made by `build` (the optimizer's
    state would triple the file), and its TensorFlow Lite export beside it; return the export's path."""
    output.parent.mkdir(parents=True, exist_ok=True)
    served = build()
    served.set_weights(network.get_weights())
    served.save(output)
    return export_tflite(served, tflite_path_for(output))


def exports_entry(tflite_file: Path) -> dict:
    """The model card's record of the export."""
    return {"tflite": {"file": tflite_file.name, "sha256": file_sha256(tflite_file)}}


def write_card(output: Path, card: dict, tflite_file: Path) -> dict:
    """Finish a newly trained network's card (when, with which versions, its export) and write it beside `output`."""
    import keras
    import tensorflow as tf

    card = {
        **card,
        "trained_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "versions": {"tensorflow": tf.__version__, "keras": keras.__version__},
        "exports": exports_entry(tflite_file),
    }
    card_path_for(output).write_text(json.dumps(card, indent=2) + "\n")
    return card


def export_model_file(model_path: Path = DEFAULT_MODEL_PATH) -> Path:
    """Export the .keras file's network beside it and record the export in its model card."""
    import keras

    network = keras.models.load_model(model_path, compile=False)
    output = export_tflite(network, tflite_path_for(model_path))
    card_path = card_path_for(model_path)
    if card_path.exists():
        card = json.loads(card_path.read_text())
        card["exports"] = exports_entry(output)
        card_path.write_text(json.dumps(card, indent=2) + "\n")
    return output


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(prog="python -m training.export", description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=str(DEFAULT_MODEL_PATH), help="the .keras file (default: %(default)s)")
    arguments = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr)
    export_model_file(Path(arguments.model))
    return 0


if __name__ == "__main__":
    sys.exit(main())
