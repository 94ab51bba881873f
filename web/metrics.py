"""Prometheus metrics of the service, correct across gunicorn's worker processes.

Under gunicorn, `gunicorn.conf.py` gives the workers a shared folder in PROMETHEUS_MULTIPROC_DIR
before they start: every worker writes its values there, and `GET /metrics`, whichever worker
answers it, adds up the files of all of them (prometheus_client's multiprocess mode). Without
that variable (`python server.py`, tests) the metrics live in the process, one registry per app.
"""

import os

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest, multiprocess

# Request latency buckets, seconds: a 28x28 upload takes milliseconds, a phone photo a tenth of a second.
LATENCY_BUCKETS = (0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# Network call buckets, seconds: one image takes about a millisecond, a batch of 64 some tens.
INFERENCE_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25)
# Images per network call: 1 for a single upload, up to the batch limit.
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128)
# Methods kept as label values; anything else is counted as "other", so labels stay few.
KNOWN_METHODS = frozenset({"GET", "POST", "HEAD", "OPTIONS", "PUT", "PATCH", "DELETE"})


def multiprocess_folder() -> str | None:
    """The folder shared by gunicorn's workers, or None when the metrics stay in this process."""
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


class Metrics:
    """The service's metrics: requests, latency, network calls, batch sizes, requests in flight, the model."""

    def __init__(self, model: dict[str, str]) -> None:
        shared = multiprocess_folder() is not None
        # in multiprocess mode the values go to files, and /metrics reads them through a fresh registry
        self.registry = None if shared else CollectorRegistry()
        registry = self.registry
        self.requests = Counter(
            "digits_http_requests", "HTTP requests answered, by method, route and status.",
            ["method", "route", "status"], registry=registry,
        )
        self.latency = Histogram(
            "digits_http_request_duration_seconds", "Time to answer a request, by route.",
            ["route"], buckets=LATENCY_BUCKETS, registry=registry,
        )
        self.in_flight = Gauge(
            "digits_http_requests_in_flight", "Requests being answered right now.",
            registry=registry, multiprocess_mode="livesum",
        )
        self.inference = Histogram(
            "digits_inference_duration_seconds", "Time of one call of the network.",
            buckets=INFERENCE_BUCKETS, registry=registry,
        )
        self.batch_size = Histogram(
            "digits_inference_batch_size", "Images per call of the network.",
            buckets=BATCH_BUCKETS, registry=registry,
        )
        self.rejections = Counter(
            "digits_overload_rejections", "Recognition requests refused with 503 because the queue was full.",
            registry=registry,
        )
        self.worker_timeouts = Counter(
            "digits_worker_timeouts", "Requests whose worker passed gunicorn's hard time limit and was restarted (answered 504).",
            registry=registry,
        )
        self.model = Gauge(
            "digits_model_info", "The served model (always 1): its name, runtime and file checksum.",
            list(model), registry=registry, multiprocess_mode="max",
        )
        self.model.labels(**model).set(1)
        # (method, route, status) -> the labelled counter and histogram: few, since routes are patterns
        self._children: dict[tuple[str, str, int], tuple] = {}

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        """Count one answered request and its latency."""
        key = (method if method in KNOWN_METHODS else "other", route, status)
        children = self._children.get(key)
        if children is None:  # first time for these labels (prometheus_client's own lookup costs more)
            children = self._children[key] = (self.requests.labels(key[0], route, str(status)), self.latency.labels(route))
        children[0].inc()
        children[1].observe(seconds)

    def observe_inference(self, images: int, seconds: float) -> None:
        """Record one call of the network: how many images and how long it took."""
        self.inference.observe(seconds)
        self.batch_size.observe(images)

    def exposition(self) -> tuple[bytes, str]:
        """The Prometheus text format of every metric (all workers' under gunicorn) and its content type."""
        if self.registry is not None:
            return generate_latest(self.registry), CONTENT_TYPE_LATEST
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST

