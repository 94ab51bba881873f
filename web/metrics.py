"""Prometheus metrics of the service, correct across gunicorn's worker processes, and never a reason to fail a request.

Under gunicorn, `gunicorn.conf.py` gives the workers a shared folder in PROMETHEUS_MULTIPROC_DIR
before they start: every worker writes its values there, and `GET /metrics`, whichever worker
answers it, adds up the files of all of them (prometheus_client's multiprocess mode). Without
that variable (`python server.py`, tests) the metrics live in the process, one registry per app.

The shared files are memory maps: a write to one whose disk is full kills the process (SIGBUS).
So each worker reserves its files' space first; where it cannot (a full /tmp, a folder that
cannot be made), it keeps its metrics in memory, goes on answering, and /metrics says what is
wrong. A folder removed under running workers is made again, and each worker restarts after its
next request to write fresh files there (its counts start again from zero).
"""

import logging
import os

from flask import Flask
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
    values,
)

from web.settings import REQUEST_TIME_LIMIT

logger = logging.getLogger(__name__)

# Request latency buckets, seconds: a 28x28 upload takes milliseconds, a phone photo a tenth of a second, a page of
# numbers seconds; up to the longest a request may take before gunicorn aborts it.
LATENCY_BUCKETS = (0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, float(REQUEST_TIME_LIMIT))
# Network call buckets, seconds: one image takes about a millisecond, a batch of 64 some tens.
INFERENCE_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25)
# Images per network call: 1 for a single upload, up to the batch limit.
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128)
# The files a worker writes in the shared folder, by the prefix prometheus_client gives each kind of metric.
SHARED_FILE_PREFIXES = ("counter", "histogram", "gauge_livesum", "gauge_max", "gauge_liveall")
# Bytes reserved on disk for each of them: far more than this service's few label values take (prometheus_client
# would grow a fuller file, which could then meet a full disk).
SHARED_FILE_BYTES = 1024 * 1024
# Methods kept as label values; anything else is counted as "other", so labels stay few.
KNOWN_METHODS = frozenset({"GET", "POST", "HEAD", "OPTIONS", "PUT", "PATCH", "DELETE"})


def init_app(app: Flask) -> None:
    """The app's metrics, labelled with the model it serves and told of each of its classifier's network calls."""
    classifier = app.extensions["classifier"]
    metrics = Metrics(
        {
            "model": classifier.card.get("name", "unknown"),
            "runtime": classifier.runtime_name,
            "sha256": classifier.model_sha256[:12],
        }
    )
    classifier.on_inference = metrics.observe_inference
    app.extensions["metrics"] = metrics


def multiprocess_folder() -> str | None:
    """The folder shared by gunicorn's workers, or None when the metrics stay in this process."""
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def shared_files(folder: str, pid: int) -> list[str]:
    """The paths of the files a process writes its metric values to in the shared folder."""
    return [os.path.join(folder, f"{prefix}_{pid}.db") for prefix in SHARED_FILE_PREFIXES]


def reserve_shared_files(folder: str) -> str | None:
    """Make the folder and reserve this process's files' space in it; what went wrong, or None when all is ready."""
    try:
        os.makedirs(folder, exist_ok=True)
        for path in shared_files(folder, os.getpid()):
            descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                if os.fstat(descriptor).st_size < SHARED_FILE_BYTES:
                    os.posix_fallocate(descriptor, 0, SHARED_FILE_BYTES)
            finally:
                os.close(descriptor)
    except OSError as error:
        for path in shared_files(folder, os.getpid()):  # a file left empty would break the sum of everyone's files
            if os.path.exists(path) and os.path.getsize(path) < SHARED_FILE_BYTES:
                os.remove(path)
        return f"the metrics folder {folder} cannot hold this worker's files ({error.strerror or error})"
    return None


class Metrics:
    """The service's metrics: requests, latency, network calls, batch sizes, requests in flight, memory, the model."""

    def __init__(self, model: dict[str, str]) -> None:
        self.folder = multiprocess_folder()
        # why the metrics are not shared across the workers, when they should be and are not
        self.problem = reserve_shared_files(self.folder) if self.folder else None
        if self.problem:
            logger.warning("metrics stay in this worker: %s", self.problem)
            values.ValueClass = values.MutexValue  # in memory: no file to write, so no full disk to fail on
        # in multiprocess mode the values go to files, and /metrics reads them through a fresh registry
        self.registry = None if self.folder and not self.problem else CollectorRegistry()
        # set once this worker should restart to share its metrics again (the folder was lost, or has room again)
        self.restart_wanted = False
        registry = self.registry
        self.requests = Counter(
            "digits_http_requests",
            "HTTP requests answered, by method, route and status.",
            ["method", "route", "status"],
            registry=registry,
        )
        self.latency = Histogram(
            "digits_http_request_duration_seconds",
            "Time to answer a request, by route.",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.in_flight = Gauge(
            "digits_http_requests_in_flight",
            "Requests being answered right now.",
            registry=registry,
            multiprocess_mode="livesum",
        )
        self.inference = Histogram(
            "digits_inference_duration_seconds",
            "Time of one call of the network.",
            buckets=INFERENCE_BUCKETS,
            registry=registry,
        )
        self.batch_size = Histogram(
            "digits_inference_batch_size",
            "Images per call of the network.",
            buckets=BATCH_BUCKETS,
            registry=registry,
        )
        self.rejections = Counter(
            "digits_overload_rejections",
            "Recognition requests refused with 503 because the queue was full.",
            registry=registry,
        )
        self.worker_timeouts = Counter(
            "digits_worker_timeouts",
            "Requests whose worker passed gunicorn's hard time limit and was restarted (answered 504).",
            registry=registry,
        )
        self.worker_starts = Counter(
            "digits_worker_starts",
            "Workers started: the first ones, then each replacement (after a timeout, a kill by "
            "the system, or a restart to give memory back); gunicorn's log says why each one went.",
            registry=registry,
        )
        self.worker_starts.inc()
        self.model = Gauge(
            "digits_model_info",
            "The served model (always 1): its name, runtime and file checksum.",
            list(model),
            registry=registry,
            multiprocess_mode="max",
        )
        self.model.labels(**model).set(1)
        # the worker's resident memory, made at its first reading (gunicorn.conf.py's hooks: at the worker's start,
        # then after each request), so that no 0 stands in for it before, nor in a process outside gunicorn
        self.memory: Gauge | None = None
        # (method, route, status) -> the labelled counter and histogram: few, since routes are patterns
        self._children: dict[tuple[str, str, int], tuple] = {}

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        """Count one answered request and its latency."""
        key = (method if method in KNOWN_METHODS else "other", route, status)
        children = self._children.get(key)
        if children is None:  # first time for these labels (prometheus_client's own lookup costs more)
            children = self._children[key] = (
                self.requests.labels(key[0], route, str(status)),
                self.latency.labels(route),
            )
        children[0].inc()
        children[1].observe(seconds)

    def observe_memory(self, resident_bytes: int) -> None:
        """Record this worker's resident memory, in bytes."""
        if self.memory is None:
            self.memory = Gauge(
                "digits_worker_resident_memory_bytes",
                "Resident memory of each worker (a series per live worker, by pid), at its start and after each request.",
                registry=self.registry,
                multiprocess_mode="liveall",
            )
        self.memory.set(resident_bytes)

    def observe_inference(self, images: int, seconds: float) -> None:
        """Record one call of the network: how many images and how long it took."""
        self.inference.observe(seconds)
        self.batch_size.observe(images)

    def files_lost(self) -> bool:
        """Whether this worker's shared files are gone (their folder was removed): it then wants a restart."""
        if (
            self.folder
            and not self.problem
            and not self.restart_wanted
            and not os.path.exists(shared_files(self.folder, os.getpid())[0])
        ):
            logger.warning(
                "the metrics folder %s lost this worker's files: restarting the worker to write new ones", self.folder
            )
            self.restart_wanted = True
        return self.restart_wanted

    def unavailable(self) -> str | None:
        """What keeps /metrics from adding up every worker's values right now, or None when it can."""
        if not self.folder:
            return None
        if self.problem:
            if reserve_shared_files(self.folder) is None:  # there is room again: a fresh worker will share
                self.restart_wanted = True
                return f"{self.problem}; there is room again, and this worker restarts to share its metrics"
            return f"{self.problem}; this worker keeps its metrics in memory, and recognition is not affected"
        if self.files_lost():
            os.makedirs(self.folder, exist_ok=True)
            return (
                f"the metrics folder {self.folder} was removed; it is made again and each worker restarts after its "
                "next request to write there (counts start again from zero)"
            )
        return None

    def exposition(self) -> tuple[bytes, str]:
        """The Prometheus text format of every metric (all workers' under gunicorn) and its content type."""
        if self.registry is not None:
            return generate_latest(self.registry), CONTENT_TYPE_LATEST
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
