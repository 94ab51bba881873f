"""The committed model file: its accuracy on MNIST's test split matches its card and the goal."""

import numpy as np
import pytest

from training.evaluate import decode_as_uploads

# the whole of MNIST's test split, and 2000 of its digits decoded as uploads
pytestmark = pytest.mark.slow


def test_mnist_test_accuracy_matches_the_card(classifier, mnist):
    probabilities = classifier.raw_probabilities(mnist["x_test"] / 255.0)
    accuracy = float(np.mean(probabilities.argmax(axis=1) == mnist["y_test"]))
    assert accuracy >= 0.994
    assert abs(accuracy - classifier.card["test_accuracy"]) < 1e-4  # the card describes this very file


def test_decoding_png_uploads_costs_no_accuracy(classifier, mnist):
    count = 2000
    decoded = classifier.raw_probabilities(decode_as_uploads(mnist["x_test"][:count])).argmax(axis=1)
    direct = classifier.raw_probabilities(mnist["x_test"][:count] / 255.0).argmax(axis=1)
    labels = mnist["y_test"][:count]
    assert np.mean(decoded == labels) >= np.mean(direct == labels) - 0.002
