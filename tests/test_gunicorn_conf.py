"""gunicorn.conf.py's hooks: a worker that keeps a request's memory, or lost its metrics files, restarts after it."""

import importlib.util
import logging
import os
from types import SimpleNamespace

import pytest

from tests.helpers import PROJECT_ROOT


@pytest.fixture(scope="module")
def config():
    """gunicorn.conf.py loaded as gunicorn loads it."""
    spec = importlib.util.spec_from_file_location("gunicorn_conf_under_test", PROJECT_ROOT / "gunicorn.conf.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def booted_worker(config, metrics=None) -> SimpleNamespace:
    """A stand-in for gunicorn's worker object, as post_worker_init leaves it."""
    worker = SimpleNamespace(
        alive=True,
        log=logging.getLogger("test.worker"),
        wsgi=SimpleNamespace(extensions={"metrics": metrics} if metrics else {}),
    )
    config.post_worker_init(worker)
    return worker


def finish_request(config, worker) -> None:
    """Run the post_request hook for a POST."""
    config.post_request(worker, SimpleNamespace(method="POST", path="/recognize/number.json"), {}, None)


def test_a_worker_at_its_resting_size_goes_on(config):
    worker = booted_worker(config)
    assert worker.resting_bytes > 10 * 2**20  # this very process, read from /proc
    finish_request(config, worker)
    assert worker.alive


def test_a_worker_that_keeps_a_requests_memory_restarts_after_it(config, caplog):
    worker = booted_worker(config)
    held = bytearray(int(worker.resting_bytes * config.WORKER_GROWTH_LIMIT))  # more than the growth allowed, in use
    held[::4096] = b"\1" * len(held[::4096])  # touched, so resident
    with caplog.at_level(logging.INFO):
        finish_request(config, worker)
    assert not worker.alive
    assert "restarting it to give the memory back" in caplog.text
    del held


def test_memory_freed_before_the_check_keeps_the_worker(config):
    worker = booted_worker(config)
    held = bytearray(int(worker.resting_bytes * config.WORKER_GROWTH_LIMIT))
    held[::4096] = b"\1" * len(held[::4096])
    del held  # given back (a big buffer is its own mapping)
    finish_request(config, worker)
    assert worker.alive


def test_a_worker_whose_metrics_files_were_lost_restarts_after_its_request(config):
    worker = booted_worker(config, SimpleNamespace(files_lost=lambda: True))
    finish_request(config, worker)
    assert not worker.alive
    os.close(worker.statm)
