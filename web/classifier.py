"""The classifier an app serves, and the limits every request is read under, both made once per app."""

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import Flask

from model.classifier import Classifier
from model.limits import NumberLimits


def init_app(app: Flask) -> None:
    """Load the networks (here, once per worker process, never in a master that forks), unless the app was given a
    CLASSIFIER (tests share one), and the request limits from the settings."""
    app.extensions["classifier"] = app.config.get("CLASSIFIER") or Classifier.load(
        Path(app.config["MODEL_PATH"]),
        app.config["MODEL_RUNTIME"],
        max_batch=app.config["MICRO_BATCH_SIZE"],
        max_wait=app.config["MICRO_BATCH_WAIT_MS"] / 1000,
    )
    app.extensions["limits"] = request_limits(app.config)


def request_limits(settings: Mapping[str, Any]) -> NumberLimits:
    """What one request may cost, from the settings: its decoding (model/decoding.py) and its numbers' reads
    (model/number_reader.py)."""
    return NumberLimits(
        max_pixels=settings["MAX_IMAGE_PIXELS"],
        max_decoded_bytes=settings["MAX_DECODED_BYTES"],
        max_request_pixels=settings["MAX_REQUEST_PIXELS"],
        max_groups=settings["MAX_NUMBER_GROUPS"],
        max_read_pixels=settings["MAX_NUMBER_READ_PIXELS"],
    )
