"""gunicorn.conf.py: a worker that keeps a request's memory, or lost its metrics files, restarts after it; no access line;
the master says who chose the worker count."""

import importlib.util
import logging
import os
import re
from types import SimpleNamespace

import pytest

from tests.helpers import NEEDS_PROC, PROJECT_ROOT


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


@NEEDS_PROC
def test_a_worker_at_its_resting_size_goes_on(config):
    worker = booted_worker(config)
    assert worker.resting_bytes > 10 * 2**20  # this very process, read from /proc
    finish_request(config, worker)
    assert worker.alive


@NEEDS_PROC
def test_a_worker_that_keeps_a_requests_memory_restarts_after_it(config, caplog):
    worker = booted_worker(config)
    held = bytearray(int(worker.resting_bytes * config.WORKER_GROWTH_LIMIT))  # more than the growth allowed, in use
    held[::4096] = b"\1" * len(held[::4096])  # touched, so resident
    with caplog.at_level(logging.INFO):
        finish_request(config, worker)
    assert not worker.alive
    assert "restarting it to give the memory back" in caplog.text
    del held


@NEEDS_PROC
def test_memory_freed_before_the_check_keeps_the_worker(config):
    worker = booted_worker(config)
    held = bytearray(int(worker.resting_bytes * config.WORKER_GROWTH_LIMIT))
    held[::4096] = b"\1" * len(held[::4096])
    del held  # given back (a big buffer is its own mapping)
    finish_request(config, worker)
    assert worker.alive


def test_a_worker_whose_metrics_files_were_lost_restarts_after_its_request(config):
    worker = booted_worker(config, SimpleNamespace(files_lost=lambda: True, observe_memory=lambda resident: None))
    finish_request(config, worker)
    assert not worker.alive
    if worker.statm is not None:  # None where there is no /proc: the check does not need it
        os.close(worker.statm)


def memory_gauge(metrics) -> float | None:
    """The worker memory gauge's value on /metrics (outside gunicorn's multiprocess mode), or None when not shown."""
    found = re.search(r"^digits_worker_resident_memory_bytes (\S+)$", metrics.exposition()[0].decode(), re.M)
    return float(found.group(1)) if found else None


@NEEDS_PROC
def test_the_workers_memory_gauge_is_set_at_its_start_and_after_each_request(config, monkeypatch):
    from web.metrics import Metrics

    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    metrics = Metrics({"model": "test"})
    assert memory_gauge(metrics) is None  # no reading yet: not shown, rather than a 0
    worker = booted_worker(config, metrics)
    assert memory_gauge(metrics) == worker.resting_bytes > 10 * 2**20  # before the first request
    held = bytearray(min(8 * 2**20, int(worker.resting_bytes * (config.WORKER_GROWTH_LIMIT - 1) / 2)))
    held[::4096] = b"\1" * len(held[::4096])  # touched, so resident; within the growth allowed
    finish_request(config, worker)
    assert worker.alive
    after = memory_gauge(metrics)
    assert after == pytest.approx(config.resident_bytes(worker.statm), abs=2**20)
    assert after > worker.resting_bytes + len(held) / 2
    del held
    os.close(worker.statm)


def test_the_latency_histogram_reaches_gunicorns_time_limit(config):
    from web.metrics import LATENCY_BUCKETS

    assert LATENCY_BUCKETS[-1] == config.timeout  # a request past it is aborted, so no bucket is needed beyond


def test_the_logger_writes_no_access_line_even_when_an_access_log_is_asked_for(config, capsys):
    from gunicorn.config import Config

    settings = Config()
    settings.set("accesslog", "-")  # what Heroku's GUNICORN_CMD_ARGS="--access-logfile -" sets
    logger = config.OneLinePerRequest(settings)
    logger.access(SimpleNamespace(status="200 OK"), SimpleNamespace(method="GET"), {}, None)
    assert capsys.readouterr() == ("", "")
    assert config.logger_class is config.OneLinePerRequest and config.forwarder_headers == ""


def master(workers: int) -> SimpleNamespace:
    """A stand-in for gunicorn's arbiter, as when_ready sees it."""
    return SimpleNamespace(num_workers=workers, log=logging.getLogger("test.master"))


def test_the_master_says_who_chose_the_worker_count(config, monkeypatch, caplog):
    monkeypatch.delenv("WEB_CONCURRENCY", raising=False)  # unset, as on Fir or a laptop: the service's own choice
    monkeypatch.delenv("WEB_CONCURRENCY_SET_BY", raising=False)
    with caplog.at_level(logging.INFO):
        config.when_ready(master(2))
    assert caplog.records[-1].getMessage().startswith("workers: 2, one per core, as many as the memory holds (")
    assert "not used" not in caplog.text
    caplog.clear()
    monkeypatch.setenv("WEB_CONCURRENCY", "17")
    monkeypatch.setenv("WEB_CONCURRENCY_SET_BY", "heroku/python")
    with caplog.at_level(logging.INFO):
        config.when_ready(master(2))
    assert "workers: 2, one per core, as many as the memory holds" in caplog.text
    assert "the WEB_CONCURRENCY=17 that heroku/python set is not used" in caplog.text
    caplog.clear()
    monkeypatch.delenv("WEB_CONCURRENCY_SET_BY")
    too_many = config.fitting_workers({}) + 1
    monkeypatch.setenv("WEB_CONCURRENCY", str(too_many))
    with caplog.at_level(logging.INFO):
        config.when_ready(master(too_many))  # the operator's own choice: obeyed, with a warning when it does not fit
    assert [record.levelname for record in caplog.records] == ["WARNING"]
    message = caplog.records[0].getMessage()
    assert message.startswith(f"workers: {too_many} (WEB_CONCURRENCY), more than fit this machine")
