"""The convolutional network of the design card, written once."""

import keras

from model.number_reader import LINE_PICTURE_SHAPE

# Ten digit classes, one grayscale 28x28 input image: the design card's network (MNIST's format, not tuned).
NUM_CLASSES = 10
INPUT_SHAPE = (28, 28, 1)
# The line reader: a line's picture in, and per column of 4 pixels "no new digit" (class 0) or a digit (class d + 1).
LINE_INPUT_SHAPE = (*LINE_PICTURE_SHAPE, 1)
LINE_CLASSES = NUM_CLASSES + 1
LINE_COLUMNS = LINE_PICTURE_SHAPE[1] // 4


def build_network() -> keras.Sequential:
    """Build the card's CNN: two convolutions, pooling, dropout, dense head, softmax."""
    return keras.Sequential(
        [
            keras.Input(shape=INPUT_SHAPE),
            # 32 local edge and stroke detectors
            keras.layers.Conv2D(32, kernel_size=(3, 3), activation="relu"),
            # 64 detectors of stroke combinations
            keras.layers.Conv2D(64, kernel_size=(3, 3), activation="relu"),
            # halve the resolution, keep the strongest response
            keras.layers.MaxPooling2D(pool_size=(2, 2)),
            # regularise the convolutional features
            keras.layers.Dropout(0.25),
            # one long feature vector
            keras.layers.Flatten(),
            # a hidden layer that combines features into digit evidence
            keras.layers.Dense(128, activation="relu"),
            # regularise the dense layer
            keras.layers.Dropout(0.5),
            # a probability for each digit
            keras.layers.Dense(NUM_CLASSES, activation="softmax"),
        ],
        name="digit_cnn",
    )


def build_digitness_network() -> keras.Sequential:
    """A small CNN that scores whether a 28x28 input looks like a digit at all (1) or not (0)."""
    return keras.Sequential(
        [
            keras.Input(shape=INPUT_SHAPE),
            # 16 local stroke detectors
            keras.layers.Conv2D(16, kernel_size=(3, 3), activation="relu"),
            # halve the resolution
            keras.layers.MaxPooling2D(pool_size=(2, 2)),
            # 32 detectors of stroke combinations
            keras.layers.Conv2D(32, kernel_size=(3, 3), activation="relu"),
            # halve again
            keras.layers.MaxPooling2D(pool_size=(2, 2)),
            # one feature vector
            keras.layers.Flatten(),
            # combine the features into shape evidence
            keras.layers.Dense(64, activation="relu"),
            # regularise it
            keras.layers.Dropout(0.3),
            # the probability that the input is a digit
            keras.layers.Dense(1, activation="sigmoid"),
        ],
        name="digitness_cnn",
    )


def build_wholeness_network(name: str = "wholeness_cnn") -> keras.Sequential:
    """A small CNN that scores whether a group of strokes is one whole digit (1), not a part or two stuck together (0).

    Its two input channels: the group normalised as the reader sees it, and the group in its
    surroundings at the line's scale (model.number_reader.Page.surroundings).
    """
    return keras.Sequential(
        [
            keras.Input(shape=(28, 28, 2)),
            # 32 local detectors of strokes and of where they run on into other ink
            keras.layers.Conv2D(32, kernel_size=(3, 3), activation="relu"),
            # halve the resolution
            keras.layers.MaxPooling2D(pool_size=(2, 2)),
            # 64 detectors of stroke combinations
            keras.layers.Conv2D(64, kernel_size=(3, 3), activation="relu"),
            # halve again
            keras.layers.MaxPooling2D(pool_size=(2, 2)),
            # one feature vector
            keras.layers.Flatten(),
            # combine the features into evidence of one whole digit
            keras.layers.Dense(64, activation="relu"),
            # regularise it
            keras.layers.Dropout(0.3),
            # the probability that the group is exactly one whole digit
            keras.layers.Dense(1, activation="sigmoid"),
        ],
        name=name,
    )


def build_line_network() -> keras.Sequential:
    """A small fully convolutional network that reads a whole line at once: each column's class logits (CTC)."""
    return keras.Sequential(
        [
            keras.Input(shape=LINE_INPUT_SHAPE),
            # 16 local stroke detectors
            keras.layers.Conv2D(16, kernel_size=(3, 3), padding="same", activation="relu"),
            # halve the resolution
            keras.layers.MaxPooling2D(pool_size=(2, 2)),
            # 32 detectors of stroke combinations
            keras.layers.Conv2D(32, kernel_size=(3, 3), padding="same", activation="relu"),
            # halve again
            keras.layers.MaxPooling2D(pool_size=(2, 2)),
            # 64 detectors of digit parts
            keras.layers.Conv2D(64, kernel_size=(3, 3), padding="same", activation="relu"),
            # halve the height only: a column every 4 pixels of the line
            keras.layers.MaxPooling2D(pool_size=(2, 1)),
            # 64 detectors of digit shapes
            keras.layers.Conv2D(64, kernel_size=(3, 3), padding="same", activation="relu"),
            # columns first
            keras.layers.Permute((2, 1, 3)),
            # each column's features as one vector
            keras.layers.Reshape((LINE_COLUMNS, (LINE_PICTURE_SHAPE[0] // 8) * 64)),
            # each column with its neighbours, 5 columns (20 pixels) wide
            keras.layers.Conv1D(128, kernel_size=5, padding="same", activation="relu"),
            # regularise it
            keras.layers.Dropout(0.25),
            # and wider again: a column sees about two digits of the line
            keras.layers.Conv1D(128, kernel_size=5, padding="same", activation="relu"),
            # per column, the logits of "no new digit" and of each digit
            keras.layers.Dense(LINE_CLASSES),
        ],
        name="line_cnn",
    )


def build_wholeness_ensemble(members: int) -> keras.Model:
    """Several wholeness networks as one: the mean of their scores.

    Trained apart, on numbers of their own, they misjudge different groups; the mean misjudges fewer.
    """
    inputs = keras.Input(shape=(28, 28, 2))
    # each member's score, 0..1
    scores = [build_wholeness_network(f"wholeness_cnn_{index}")(inputs) for index in range(1, members + 1)]
    # their mean
    return keras.Model(inputs, keras.layers.Average()(scores) if members > 1 else scores[0], name="wholeness_ensemble")
