"""Micro-batching: concurrent requests in one process share one call of the network.

Request threads hand their preprocessed 28x28 image to a `MicroBatcher` and wait. One batching
thread takes every image already waiting (up to `max_batch`) and runs them through the network
together, as TF Serving and Triton do. It waits up to `max_wait` seconds for more only while
other requests of this process are still being preprocessed, so a lone request never waits.
"""

import collections
import contextlib
import os
import queue
import threading
import time
from collections.abc import Callable, Iterator

import numpy as np

# A batch's most images and how long a forming batch waits for late ones, where the caller names none; the service
# names its own (web/settings.py: MICRO_BATCH_SIZE, off by default, and MICRO_BATCH_WAIT_MS, 2 ms). Micro-batching helps
# little on 2 cores: LiteRT takes 0.5 ms for one image and 0.36 ms per image in a batch of 8, and at 8 clients 2 workers
# of 4 / 2 threads batching up to 16 served 444 / 425 requests/s against 497 for sync workers (docs/PERFORMANCE.md).
DEFAULT_MAX_BATCH = 32
DEFAULT_MAX_WAIT_SECONDS = 0.002
# While a batch waits for late images, it looks for them this often (seconds): a quarter of the default wait. No trial
# of another value is recorded.
POLL_SECONDS = 0.0005
# The latest batches whose sizes are kept for the metrics. No trial of another value is recorded.
RECENT_BATCHES = 1000


class _Job:
    """One image waiting for its row of probabilities."""

    __slots__ = ("image", "done", "probabilities", "error")

    def __init__(self, image: np.ndarray) -> None:
        self.image = image
        self.done = threading.Event()
        self.probabilities: np.ndarray | None = None
        self.error: BaseException | None = None


class Ticket:
    """A request on its way: counted by the batcher until its image is queued or it gives up."""

    __slots__ = ("queued",)

    def __init__(self) -> None:
        self.queued = False


class MicroBatcher:
    """Gathers images from concurrent threads into batches for one `predict(batch) -> probabilities` function."""

    def __init__(
        self,
        predict: Callable[[np.ndarray], np.ndarray],
        max_batch: int = DEFAULT_MAX_BATCH,
        max_wait: float = DEFAULT_MAX_WAIT_SECONDS,
    ) -> None:
        self.predict = predict
        self.max_batch = max(1, max_batch)
        self.max_wait = max(0.0, max_wait)
        self.batch_sizes: collections.deque[int] = collections.deque(maxlen=RECENT_BATCHES)  # the latest batches' sizes
        self._jobs: queue.SimpleQueue[_Job] = queue.SimpleQueue()
        self._preparing = 0  # requests of this process between "arrived" and "image ready"
        self._lock = threading.Lock()
        self._thread_pid: int | None = None

    @contextlib.contextmanager
    def preparing(self) -> Iterator[Ticket]:
        """Count a request as on its way (being decoded) until it queues its image, so that a forming batch waits for it."""
        ticket = Ticket()
        with self._lock:
            self._preparing += 1
        try:
            yield ticket
        finally:
            if not ticket.queued:  # it failed before queueing an image
                with self._lock:
                    self._preparing -= 1

    def probabilities(self, image: np.ndarray, ticket: Ticket | None = None) -> np.ndarray:
        """The network's output row for one image, computed in a batch with whatever else is waiting.

        With the ticket of `preparing()`, the request stops counting as on its way only once its
        image is in the queue, so the batching thread never sees it as neither.
        """
        self._start()
        job = _Job(image)
        self._jobs.put(job)
        if ticket is not None and not ticket.queued:
            ticket.queued = True
            with self._lock:
                self._preparing -= 1
        job.done.wait()
        if job.error is not None:
            raise job.error
        return job.probabilities

    def _start(self) -> None:
        """Start the batching thread once per process (a forked worker starts its own)."""
        if self._thread_pid == os.getpid():
            return
        with self._lock:
            if self._thread_pid != os.getpid():
                threading.Thread(target=self._run, name="micro-batcher", daemon=True).start()
                self._thread_pid = os.getpid()

    def _gather(self) -> list[_Job]:
        """The next batch: the first waiting job, all others already queued, and late ones while worth waiting."""
        jobs = [self._jobs.get()]
        deadline = time.monotonic() + self.max_wait
        while len(jobs) < self.max_batch:
            try:
                jobs.append(self._jobs.get_nowait())
                continue
            except queue.Empty:
                pass
            remaining = deadline - time.monotonic()
            if self._preparing == 0 or remaining <= 0:
                break  # nobody else is on the way, or we waited long enough
            try:
                jobs.append(self._jobs.get(timeout=min(remaining, POLL_SECONDS)))
            except queue.Empty:
                continue
        return jobs

    def _run(self) -> None:
        """The batching thread: forever gather, predict, hand out rows."""
        while True:
            jobs = self._gather()
            try:
                rows = self.predict(np.stack([job.image for job in jobs]))
                for job, row in zip(jobs, rows, strict=False):
                    job.probabilities = row
            except BaseException as error:  # the callers re-raise it in their own threads
                for job in jobs:
                    job.error = error
            self.batch_sizes.append(len(jobs))
            for job in jobs:
                job.done.set()
