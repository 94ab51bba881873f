"""The network is exactly the design card's CNN."""

import numpy as np
import pytest

# training.network imports Keras: each test imports it when it runs, not when it is collected (the quick run has none)
pytestmark = [pytest.mark.slow, pytest.mark.needs_tensorflow]


def test_layers_are_the_cards_cnn():
    from training.network import build_network

    network = build_network()
    described = [
        (
            type(layer).__name__,
            getattr(layer, "filters", None) or getattr(layer, "units", None) or getattr(layer, "rate", None),
        )
        for layer in network.layers
    ]
    assert described == [
        ("Conv2D", 32),
        ("Conv2D", 64),
        ("MaxPooling2D", None),
        ("Dropout", 0.25),
        ("Flatten", None),
        ("Dense", 128),
        ("Dropout", 0.5),
        ("Dense", 10),
    ]
    convolutions = [layer for layer in network.layers if type(layer).__name__ == "Conv2D"]
    assert all(layer.kernel_size == (3, 3) and layer.activation.__name__ == "relu" for layer in convolutions)
    assert network.layers[2].pool_size == (2, 2)
    assert network.layers[5].activation.__name__ == "relu"
    assert network.layers[-1].activation.__name__ == "softmax"


def test_shapes_and_parameter_count():
    from training.network import INPUT_SHAPE, NUM_CLASSES, build_network

    network = build_network()
    assert tuple(network.input_shape[1:]) == INPUT_SHAPE == (28, 28, 1)
    assert network.output_shape == (None, NUM_CLASSES)
    # 320 + 18,496 + 1,179,776 + 1,290 weights and biases
    assert network.count_params() == 1_199_882


def test_output_is_a_probability_distribution():
    from training.network import build_network

    network = build_network()
    probabilities = np.asarray(network(np.random.default_rng(0).random((4, 28, 28, 1), dtype=np.float32)))
    assert probabilities.shape == (4, 10)
    assert np.all(probabilities >= 0)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
