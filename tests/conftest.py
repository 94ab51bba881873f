"""Shared fixtures: the committed classifier (loaded once), the app and its test client."""

from pathlib import Path

import pytest

from server import create_app

PROJECT_ROOT = Path(__file__).resolve().parent.parent
MNIST_PATH = PROJECT_ROOT.parent / "shared" / "data" / "mnist.npz"


@pytest.fixture(scope="session")
def classifier():
    """The committed model, loaded once for the whole test session."""
    from model.inference import Classifier

    return Classifier.load()


@pytest.fixture
def app(classifier):
    """The Flask app with the shared classifier and exceptions turned into 500 answers."""
    return create_app({"TESTING": True, "PROPAGATE_EXCEPTIONS": False, "CLASSIFIER": classifier})


@pytest.fixture
def client(app):
    """Flask's test client for the app."""
    return app.test_client()


@pytest.fixture(scope="session")
def mnist():
    """The MNIST npz beside the project (../shared/data), which CI provides."""
    import numpy as np

    if not MNIST_PATH.exists():
        pytest.skip(f"MNIST not found at {MNIST_PATH}")
    with np.load(MNIST_PATH) as arrays:
        return {name: arrays[name] for name in arrays.files}
