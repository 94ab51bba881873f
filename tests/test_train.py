"""Training: a tiny run on small synthetic data that saves, reloads and predicts."""

import json

import numpy as np
import pytest

from model.classifier import Classifier
from training import digits as digit_training
from training import evaluate as evaluation
from training.data import Dataset, file_sha256, load_mnist

pytestmark = [pytest.mark.slow, pytest.mark.training, pytest.mark.needs_tensorflow]


def synthetic_mnist(path, per_class: int = 30, seed: int = 0) -> None:
    """An npz in Keras's mnist layout whose class k is a bright bar at row 2 + 2k, with noise."""
    rng = np.random.default_rng(seed)

    def make(count: int):
        labels = np.repeat(np.arange(10, dtype=np.uint8), count)
        images = (rng.random((len(labels), 28, 28)) * 40).astype(np.uint8)
        for index, label in enumerate(labels):
            images[index, 4 + 2 * label : 6 + 2 * label, 4:24] = 255
        return images, labels

    x_train, y_train = make(per_class)
    x_test, y_test = make(5)
    np.savez(path, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)


def mnist_sample(mnist, train_count: int):
    """The first `train_count` MNIST training digits and 10 test digits, as the training commands load a data set."""
    return Dataset(
        mnist["x_train"][:train_count],
        mnist["y_train"][:train_count],
        mnist["x_test"][:10],
        mnist["y_test"][:10],
        "mnist.npz",
        "0" * 64,
    )


@pytest.fixture
def tiny_data(tmp_path):
    path = tmp_path / "tiny.npz"
    synthetic_mnist(path)
    return path


def test_load_mnist_reads_the_keras_layout_and_checksums_it(tiny_data):
    dataset = load_mnist(tiny_data)
    assert dataset.x_train.shape == (300, 28, 28) and dataset.x_test.shape == (50, 28, 28)
    assert dataset.sha256 == file_sha256(tiny_data)


def test_load_mnist_rejects_another_layout(tmp_path):
    path = tmp_path / "other.npz"
    np.savez(path, images=np.zeros((2, 28, 28)))
    with pytest.raises(ValueError, match="x_train"):
        load_mnist(path)


def test_tiny_training_run_saves_a_model_and_card_that_reload_and_predict(tiny_data, tmp_path, capsys):
    output = tmp_path / "tiny.keras"
    exit_code = digit_training.main(
        [
            "--data",
            str(tiny_data),
            "--output",
            str(output),
            "--epochs",
            "8",
            "--batch-size",
            "32",
            "--validation-size",
            "30",
            "--seed",
            "3",
            "--learning-rate",
            "0.003",
            "--no-augment",
        ]
    )
    assert exit_code == 0 and output.exists()
    card = json.loads(output.with_suffix(".json").read_text())
    assert card["parameters"] == 1_199_882
    assert card["data"]["sha256"] == file_sha256(tiny_data)
    assert card["training"]["seed"] == 3 and card["training"]["epochs"] == 8
    # 270 of MNIST's, plus the versions of some of them in other writing styles (training.styles)
    assert (
        card["data"]["train_images"] == 270 + card["data"]["styled_train_images"]
        and card["data"]["validation_images"] == 30
    )
    assert 0 < card["data"]["styled_train_images"] < 270
    assert [layer["type"] for layer in card["architecture"]][:2] == ["Conv2D", "Conv2D"]
    assert card["test_accuracy"] > 0.5  # ten bar positions are easy: far above chance (0.1)

    classifier = Classifier.load(output)
    dataset = load_mnist(tiny_data)
    probabilities = classifier.raw_probabilities(dataset.x_test / 255.0)
    accuracy = float(np.mean(probabilities.argmax(axis=1) == dataset.y_test))
    assert accuracy == pytest.approx(card["test_accuracy"], abs=1e-6)
    assert classifier.describe()["sha256"] == file_sha256(output)

    # the training command also exported the network for LiteRT, and both runtimes agree
    assert card["exports"]["tflite"]["sha256"] == file_sha256(output.with_suffix(".tflite"))
    litert = Classifier.load(output, runtime="litert")
    assert np.abs(litert.raw_probabilities(dataset.x_test / 255.0) - probabilities).max() < 1e-4

    # the evaluation command agrees with the card
    assert evaluation.main(["--data", str(tiny_data), "--model", str(output)]) == 0
    printed = capsys.readouterr().out
    assert f"accuracy:  {100 * card['test_accuracy']:.2f}%" in printed
    assert "confusion matrix" in printed


def test_confusion_matrix_counts_true_against_predicted():
    counts = evaluation.confusion_matrix(np.array([0, 1, 1, 2]), np.array([0, 1, 2, 2]), classes=3)
    np.testing.assert_array_equal(counts, [[1, 0, 0], [0, 1, 1], [0, 0, 1]])
    assert evaluation.format_confusion(counts).splitlines()[2].split() == ["1", "0", "1", "1"]


def test_augmentation_is_reproducible_and_keeps_the_digit_in_range():
    import tensorflow as tf

    from training.augment import Augmentation, augment_batch

    images = np.zeros((8, 28, 28, 1), dtype=np.float32)
    images[:, 8:20, 12:16] = 1.0
    first = augment_batch(tf.constant(images), Augmentation(), tf.constant(5)).numpy()
    again = augment_batch(tf.constant(images), Augmentation(), tf.constant(5)).numpy()
    other = augment_batch(tf.constant(images), Augmentation(), tf.constant(6)).numpy()
    assert first.shape == images.shape
    np.testing.assert_array_equal(first, again)
    assert not np.allclose(first, other)
    assert first.min() >= 0.0 and first.max() <= 1.0
    # distortions move and reshape the stroke but keep most of it on the frame
    assert np.all(first.sum(axis=(1, 2, 3)) > 0.4 * images[0].sum())


def test_calibration_fits_a_temperature_into_the_card_and_the_classifier_uses_it(tiny_data, tmp_path):
    from training.calibrate import calibrate_model

    output = tmp_path / "tiny.keras"
    digit_training.main(
        [
            "--data",
            str(tiny_data),
            "--output",
            str(output),
            "--epochs",
            "3",
            "--batch-size",
            "32",
            "--validation-size",
            "30",
            "--seed",
            "3",
            "--no-augment",
        ]
    )
    calibration = calibrate_model(str(tiny_data), output)
    card = json.loads(output.with_suffix(".json").read_text())
    assert card["calibration"] == calibration and 0.25 <= calibration["temperature"] <= 4.0
    assert {"ece_before", "ece_after", "accuracy", "images"} <= set(calibration["test"])
    classifier = Classifier.load(output, detector_path=None)
    assert classifier.temperature == calibration["temperature"]
    raw = classifier.raw_probabilities(np.ones((1, 28, 28)) * 0.5)
    calibrated, digit_scores = classifier.read_scores(np.ones((1, 28, 28)) * 0.5)
    assert calibrated.argmax() == raw.argmax() and digit_scores[0] == 1.0  # no detector: everything is a digit


def test_a_tiny_detector_training_run_saves_a_detector_the_classifier_loads(tmp_path, mnist):
    from training import detector

    dataset = mnist_sample(mnist, 400)
    output = tmp_path / "digitness.keras"
    card = detector.train(
        dataset,
        output,
        epochs=2,
        validation_size=100,
        verbose=0,
        counts={"digit": 300, "font digit": 40, "non-digit": 300, "pair": 40},
    )
    assert output.exists() and output.with_suffix(".tflite").exists()
    assert json.loads(output.with_suffix(".json").read_text()) == card
    assert 0.0 < card["threshold"] < 1.0 and card["validation"]["digits_flagged"] <= 0.01
    classifier = Classifier.load(detector_path=output, runtime="litert")
    assert classifier.digit_threshold == card["threshold"]
    _, digit_scores = classifier.read_scores(mnist["x_test"][:20] / 255.0)
    assert digit_scores.shape == (20,) and ((0.0 <= digit_scores) & (digit_scores <= 1.0)).all()


class StopBeforeTraining(Exception):
    """Raised by a stand-in for held_out_split: the split is all these tests look at."""


@pytest.mark.parametrize("command", ["detector", "wholeness", "line_reader"])
def test_the_other_networks_hold_out_the_digit_models_validation_digits_whatever_their_own_seed(
    command, monkeypatch, mnist
):
    # their validation digits must be ones the reader never trained on, or their validation figures flatter them
    import importlib

    from training import harness
    from training.data import reader_split

    module = importlib.import_module(f"training.{command}")
    splits = []

    def held_out_split(count: int, validation_size: int, seed: int):
        splits.append((validation_size, seed))
        raise StopBeforeTraining

    dataset = mnist_sample(mnist, 100)
    monkeypatch.setattr(harness, "load_mnist", lambda path: dataset)
    monkeypatch.setattr(harness, "held_out_split", held_out_split)
    with pytest.raises(StopBeforeTraining):
        module.main(["--seeds", "7"] if command == "wholeness" else ["--seed", "7"])
    assert splits == [reader_split()] == [(5000, 1)]


@pytest.fixture(scope="module")
def tiny_wholeness(tmp_path_factory, mnist):
    """A tiny two-seed wholeness training run, made once for the tests below: its dataset, network file and card."""
    from training import wholeness

    dataset = mnist_sample(mnist, 600)
    output = tmp_path_factory.mktemp("wholeness") / "wholeness.keras"
    card = wholeness.train(dataset, output, numbers=12, epochs=1, validation_size=100, seeds=(1, 2), verbose=0)
    return dataset, output, card


def test_a_tiny_wholeness_training_run_saves_a_network_the_splitter_uses(tiny_wholeness, mnist):
    from model.decoding import encode_png
    from training.numbers import number_set

    _, output, card = tiny_wholeness
    assert output.exists() and output.with_suffix(".tflite").exists()
    assert json.loads(output.with_suffix(".json").read_text()) == card
    assert card["data"]["examples"] > 12 and 0.0 < card["data"]["whole_share"] < 1.0
    assert [member["seed"] for member in card["members"]] == [1, 2]
    assert card["data"]["examples"] == sum(member["examples"] for member in card["members"])
    classifier = Classifier.load(runtime="litert", wholeness_path=output)
    scores = classifier._judge(np.zeros((3, 28, 28, 2)))
    assert scores.shape == (3,) and ((0.0 <= scores) & (scores <= 1.0)).all()
    number = number_set(mnist["x_test"][:20], mnist["y_test"][:20], 1, seed=4)[0]
    assert 1 <= len(classifier.read_number(encode_png(number.picture))) <= 2 * len(number.number)


def test_the_wholeness_ensemble_scores_the_mean_of_members_each_trained_as_its_seed_alone_would(
    tiny_wholeness, tmp_path
):
    # the committed network's members were trained one seed at a time: the command must give the same members
    import keras

    from training import wholeness

    dataset, output, _ = tiny_wholeness
    wholeness.train(dataset, tmp_path / "alone.keras", numbers=12, epochs=1, validation_size=100, seeds=(2,), verbose=0)
    pair = keras.models.load_model(output, compile=False)
    alone = keras.models.load_model(tmp_path / "alone.keras", compile=False)
    first, second = pair.get_layer("wholeness_cnn_1"), pair.get_layer("wholeness_cnn_2")
    for pair_weights, alone_weights in zip(
        second.get_weights(), alone.get_layer("wholeness_cnn_1").get_weights(), strict=True
    ):
        np.testing.assert_array_equal(pair_weights, alone_weights)
    groups = np.random.default_rng(0).random((5, 28, 28, 2)).astype(np.float32)
    scores = [network.predict(groups, verbose=0)[:, 0] for network in (pair, first, second)]
    assert not np.allclose(scores[1], scores[2])
    np.testing.assert_allclose(scores[0], (scores[1] + scores[2]) / 2, rtol=1e-5)


def test_a_tiny_line_reader_training_run_saves_a_network_the_splitter_uses(tmp_path, mnist):
    from model.decoding import encode_png
    from model.number_reader import LINE_PICTURE_SHAPE
    from training import line_reader
    from training.numbers import number_set

    dataset = mnist_sample(mnist, 600)
    output = tmp_path / "lines.keras"
    card = line_reader.train(dataset, output, numbers=30, epochs=1, validation_size=100, verbose=0)
    assert output.exists() and output.with_suffix(".tflite").exists()
    assert json.loads(output.with_suffix(".json").read_text()) == card
    assert card["data"]["lines"] >= 30 and card["data"]["validation_lines"] >= 10
    assert 0.0 <= card["validation"]["lines_read_right"] <= 1.0
    classifier = Classifier.load(runtime="litert", line_reader_path=output)
    log_probabilities = classifier._read_line(np.zeros(LINE_PICTURE_SHAPE, dtype=np.float32))
    assert log_probabilities.shape == (LINE_PICTURE_SHAPE[1] // 4, 11)
    np.testing.assert_allclose(np.exp(log_probabilities).sum(axis=1), 1.0, rtol=1e-5)
    assert classifier.describe()["line_reader"] == card
    number = number_set(mnist["x_test"][:20], mnist["y_test"][:20], 1, seed=4)[0]
    assert 1 <= len(classifier.read_number(encode_png(number.picture))) <= 2 * len(number.number)
