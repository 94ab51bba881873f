"""The usual pattern this service is compared with: Flask plus one `model.predict` call per request.

    gunicorn 'bench.usual_pattern:app'

The same trained network (model/digits.keras), the same route and upload field, written the
way most tutorials and earlier digit services write it: the image squashed to 28x28 grayscale
and handed to `model.predict`. It exists only as the baseline of `python -m bench.throughput`.
"""

import os

import keras
import numpy as np
from flask import Flask, jsonify, request
from PIL import Image, ImageOps

from model import DEFAULT_MODEL_PATH

app = Flask(__name__)
classifier = keras.models.load_model(os.environ.get("MODEL_PATH", DEFAULT_MODEL_PATH), compile=False)


@app.get("/healthz")
def healthz():
    """Ready once the module (and so the model) has loaded."""
    return jsonify(status="ok")


@app.post("/recognize.json")
def recognize():
    """Squash the upload to 28x28 grayscale, invert it to MNIST's white-on-black and predict."""
    image = ImageOps.invert(Image.open(request.files["image"]).convert("L")).resize((28, 28))
    pixels = np.asarray(image, dtype=np.float32).reshape(1, 28, 28, 1) / 255.0
    probabilities = classifier.predict(pixels, verbose=0)[0]
    digit = int(np.argmax(probabilities))
    return jsonify(digit=digit, confidence=float(probabilities[digit]))
