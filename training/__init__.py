"""Training the service's four networks and everything only training needs: MNIST loading, synthetic pictures, writing
styles, augmentation, the networks' architectures, calibration, evaluation and export. It may import `model`; the
service never imports it.

    python -m training.digits --data ../shared/data/mnist.npz        the digit network
    python -m training.detector --data ../shared/data/mnist.npz      the "not a digit" detector
    python -m training.wholeness --data ../shared/data/mnist.npz     the number splitter's wholeness network
    python -m training.line_reader --data ../shared/data/mnist.npz   the line reader
"""
