"""The two runtimes of the same trained network: Keras (TensorFlow) and LiteRT (its TensorFlow Lite export)."""

import os
import subprocess
import sys

import numpy as np
import pytest

from bench.service import PROJECT_ROOT
from model.classifier import Classifier
from tests.helpers import NEEDS_PROC


@pytest.fixture(scope="module")
def litert_classifier():
    return Classifier.load(runtime="litert")


def run_python(program: str, environment: dict[str, str] | None = None) -> str:
    """What a Python program prints, run in a fresh interpreter from the project's folder (as the service starts)."""
    return subprocess.run(
        [sys.executable, "-c", program], cwd=PROJECT_ROOT, env=environment, capture_output=True, text=True, check=True
    ).stdout


@pytest.mark.needs_tensorflow
def test_both_runtimes_agree_on_every_mnist_test_image(keras_classifier, litert_classifier, mnist):
    images = mnist["x_test"] / 255.0
    keras_probabilities = keras_classifier.raw_probabilities(images)
    litert_probabilities = litert_classifier.raw_probabilities(images)
    assert keras_probabilities.shape == litert_probabilities.shape == (10_000, 10)
    np.testing.assert_array_equal(keras_probabilities.argmax(axis=1), litert_probabilities.argmax(axis=1))
    assert np.abs(keras_probabilities - litert_probabilities).max() < 1e-4


def test_litert_batches_of_changing_size(litert_classifier, mnist):
    images = mnist["x_test"][:7] / 255.0
    together = litert_classifier.raw_probabilities(images)
    one_by_one = np.concatenate([litert_classifier.raw_probabilities(image[np.newaxis]) for image in images])
    np.testing.assert_allclose(together, one_by_one, atol=1e-6)


def test_litert_runs_a_large_batch_in_chunks_and_never_sizes_its_buffers_beyond_one(
    litert_classifier, mnist, monkeypatch
):
    runtime = litert_classifier.runtime
    monkeypatch.setattr(runtime, "max_chunk", 8)
    images = mnist["x_test"][:21] / 255.0
    chunked = litert_classifier.raw_probabilities(images)
    assert runtime._interpreter.get_input_details()[0]["shape"][0] <= 8
    one_by_one = np.concatenate([litert_classifier.raw_probabilities(image[np.newaxis]) for image in images])
    np.testing.assert_allclose(chunked, one_by_one, atol=1e-6)


def test_the_litert_runtime_never_imports_tensorflow():
    program = (
        "import sys; from model.classifier import Classifier; "
        "classifier = Classifier.load(runtime='litert'); "
        "print(classifier.raw_probabilities(__import__('numpy').zeros((2, 28, 28))).shape, 'tensorflow' in sys.modules)"
    )
    output = run_python(program)
    assert output.strip() == "(2, 10) False"


def test_the_service_runs_on_requirements_txt_alone_and_never_loads_training_code():
    """Heroku installs requirements.txt only: no TensorFlow, Keras, h5py or requests may be imported; and serving code
    never imports the `training` package (the import direction is training -> model, never the reverse)."""
    program = (
        "import sys\n"
        "class Refuse:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('tensorflow', 'keras', 'h5py', 'requests', 'training'):\n"
        "            raise ImportError(name + ' may not be imported by the service')\n"
        "sys.meta_path.insert(0, Refuse())\n"
        "import server\n"
        "client = server.create_app().test_client()\n"
        "answer = client.post('/recognize.json', data=open('examples/three.png', 'rb').read(), content_type='image/png')\n"
        "number = client.post('/recognize/number.json', data=open('examples/number.png', 'rb').read(), content_type='image/png')\n"
        "print(answer.status_code, answer.get_json()['digit'], number.status_code)\n"
    )
    output = run_python(program)
    assert output.strip() == "200 3 200"


def test_model_card_records_the_export_and_the_runtime(litert_classifier):
    described = litert_classifier.describe()
    assert described["runtime"] == "litert"
    assert described["sha256"] == described["exports"]["tflite"]["sha256"]


def test_unknown_runtime_is_refused():
    with pytest.raises(ValueError, match="litert"):
        Classifier.load(runtime="onnx")


@NEEDS_PROC
def test_the_service_keeps_numpy_to_one_thread_per_worker():
    """Workers each fill a core; BLAS threads of their own would spin and slow the other workers."""
    program = (
        "import os, server, numpy\n"
        "matrix = numpy.ones((800, 800), dtype=numpy.float32)\n"
        "for _ in range(5):\n"
        "    matrix @ matrix\n"
        "print(len(os.listdir('/proc/self/task')))\n"
    )
    environment = {key: value for key, value in os.environ.items() if key != "OPENBLAS_NUM_THREADS"}
    output = run_python(program, environment)
    assert output.strip() == "1"


def test_serving_code_never_imports_training_code():
    """model/, web/ and server.py name no module of `training`, even in a function body: serving never imports training."""
    import ast

    serving_files = [
        PROJECT_ROOT / "server.py",
        *sorted((PROJECT_ROOT / "model").glob("*.py")),
        *sorted((PROJECT_ROOT / "web").glob("*.py")),
    ]
    offenders = []
    for path in serving_files:
        for node in ast.walk(ast.parse(path.read_text())):
            names = [alias.name for alias in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            offenders += [
                f"{path.name}: {name}" for name in names if name.split(".")[0] in ("training", "bench", "tests")
            ]
    assert len(serving_files) > 10
    assert offenders == []
