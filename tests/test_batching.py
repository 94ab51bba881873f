"""Micro-batching: concurrent requests of one process share a network call, each gets its own answer."""

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from model.batching import MicroBatcher
from model.classifier import Classifier
from tests.drawing import draw_digit, encode


def row_sums(batch: np.ndarray) -> np.ndarray:
    """A stand-in network whose output row says which image it came from."""
    time.sleep(0.02)  # slow enough that callers pile up behind a running batch
    return batch.reshape(len(batch), -1).sum(axis=1, keepdims=True)


def test_concurrent_callers_share_batches_and_each_gets_its_own_row():
    batcher = MicroBatcher(row_sums, max_batch=8, max_wait=0.005)
    images = [np.full((28, 28), index, dtype=np.float32) for index in range(40)]
    with ThreadPoolExecutor(16) as pool:
        rows = list(pool.map(batcher.probabilities, images))
    assert [float(row[0]) for row in rows] == [28 * 28 * index for index in range(40)]
    assert sum(batcher.batch_sizes) == 40
    assert max(batcher.batch_sizes) > 1 and max(batcher.batch_sizes) <= 8


def test_a_lone_request_does_not_wait_for_company():
    batcher = MicroBatcher(row_sums, max_batch=8, max_wait=5.0)  # a wait this long would show
    started = time.monotonic()
    batcher.probabilities(np.ones((28, 28), dtype=np.float32))
    assert time.monotonic() - started < 2.0
    assert list(batcher.batch_sizes) == [1]


def test_a_batch_waits_for_requests_still_being_decoded():
    batcher = MicroBatcher(row_sums, max_batch=8, max_wait=2.0)
    decoding = threading.Event()
    results = {}

    def late_request():
        with batcher.preparing() as ticket:
            decoding.set()
            time.sleep(0.2)  # still decoding when the first image is queued
            results["late"] = batcher.probabilities(np.ones((28, 28), dtype=np.float32), ticket)

    thread = threading.Thread(target=late_request)
    thread.start()
    decoding.wait()
    results["early"] = batcher.probabilities(np.zeros((28, 28), dtype=np.float32))
    thread.join()
    assert list(batcher.batch_sizes) == [2]
    assert float(results["early"][0]) == 0.0 and float(results["late"][0]) == 28 * 28


def test_a_request_that_fails_while_decoding_stops_counting():
    batcher = MicroBatcher(row_sums, max_batch=8, max_wait=5.0)
    with pytest.raises(ValueError):
        with batcher.preparing():
            raise ValueError("not an image")
    started = time.monotonic()
    batcher.probabilities(np.ones((28, 28), dtype=np.float32))
    assert time.monotonic() - started < 2.0  # nobody left to wait for


def test_a_failing_network_call_raises_in_every_caller_of_that_batch():
    def broken(batch):
        time.sleep(0.02)
        raise RuntimeError("network failed")

    batcher = MicroBatcher(broken, max_batch=4)
    with ThreadPoolExecutor(4) as pool:
        futures = [pool.submit(batcher.probabilities, np.zeros((28, 28), dtype=np.float32)) for _ in range(4)]
    for future in futures:
        with pytest.raises(RuntimeError, match="network failed"):
            future.result()
    # and the batching thread lives on for the next request
    batcher.predict = row_sums
    assert float(batcher.probabilities(np.ones((28, 28), dtype=np.float32))[0]) == 28 * 28


def test_micro_batched_classifier_answers_exactly_like_the_plain_one(classifier):
    batched = Classifier(
        classifier.runtime, classifier.card, classifier.model_sha256, classifier.runtime_name, max_batch=8
    )
    uploads = [encode(draw_digit(digit, background=None)) for digit in range(10)] * 3
    with ThreadPoolExecutor(8) as pool:
        together = list(pool.map(batched.read_digit, uploads))
    alone = [classifier.read_digit(upload) for upload in uploads]
    assert (
        [prediction.digit for prediction in together]
        == [prediction.digit for prediction in alone]
        == list(range(10)) * 3
    )
    np.testing.assert_allclose([p.probabilities for p in together], [p.probabilities for p in alone], atol=1e-5)
    assert sum(batched.batcher.batch_sizes) == len(uploads)
