"""gunicorn's settings for the service (the Procfile names this file): workers, time limits, logs, shared metrics.

The values come from web/settings.py's `current_settings()`, which the Procfile has already checked
(`python -m web.settings`).
Before the workers start, the master gives them an empty folder in PROMETHEUS_MULTIPROC_DIR; each
worker writes its metric values there and GET /metrics adds up all the files (web/metrics.py).
When a worker exits, its live gauges (requests in flight) are dropped; its counters stay counted.
"""

import ctypes
import ctypes.util
import os
import shutil
import tempfile

from gunicorn.arbiter import Arbiter
from gunicorn.glogging import Logger

from model.machine import core_count, memory_limit
from web.logs import log_value
from web.settings import REQUEST_TIME_LIMIT, concurrency_set_by, current_settings, fitting_workers

# Heroku's router gives up on a request after 30 s: a worker busy longer than this is aborted (its client gets a JSON
# 504, web/worker.py). The budgets keep every answer far below it; this is the last line.
timeout = REQUEST_TIME_LIMIT
# On SIGTERM (each deploy, the daily restart) a worker finishes its request and answers what waits within this; Heroku
# sends SIGKILL 30 s after SIGTERM.
graceful_timeout = 20
# One request per connection, so that a free worker takes the next connection.
keepalive = 0
bind = [f"0.0.0.0:{current_settings()['PORT']}"]
workers = current_settings()["WEB_CONCURRENCY"]
threads = current_settings()["WEB_THREADS"]
# Sync workers with a read deadline per connection and a view of the accept queue (web/worker.py); gthread workers when
# WEB_THREADS asks for threads, which answer refusals in the same JSON shape and log line, without the slow-client guards.
worker_class = "web.worker.GuardedSyncWorker" if threads <= 1 else "web.worker.GuardedThreadWorker"
errorlog = "-"


class OneLinePerRequest(Logger):
    """gunicorn's logger without its access log: the app writes one logfmt line per request (web/hooks.py), and the
    worker a line for each request it answers itself (web/worker.py), so gunicorn's own access line would be a second.

    Heroku's classic Python buildpack sets GUNICORN_CMD_ARGS="--access-logfile -", which gunicorn applies over this
    file; a logger class is what that leaves in force.
    """

    def access(self, resp, req, environ, request_time) -> None:
        """Write no access line."""


logger_class = OneLinePerRequest
# Never take SCRIPT_NAME or PATH_INFO from a request's headers: the service is served at the root, and Heroku's
# classic buildpack trusts every peer's forwarding headers (FORWARDED_ALLOW_IPS='*', so that X-Forwarded-Proto from the
# router counts), which would let any client send a SCRIPT_NAME that gunicorn fails on.
forwarder_headers = ""
# No control socket ($HOME/.gunicorn/gunicorn.ctl): nothing here uses it, and two services on one machine would share it.
control_socket_disable = True
# The workers' heartbeat files on a memory filesystem where there is one: a full or slow disk does not stall them.
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None

# A worker whose resident memory stays this many times what it held at rest, after a request and after giving freed
# memory back, restarts after that request: a burst of big pictures leaves nothing behind.
WORKER_GROWTH_LIMIT = 1.25
# glibc's malloc, to give memory back: malloc_trim returns the free pages of its heap to the system. (A fixed mmap
# threshold, so that every big buffer is its own mapping, gave back a little more but made every array over it a fresh
# mapping to fault in: a canvas took twice as long.)
LIBC = ctypes.CDLL(ctypes.util.find_library("c") or None)

# The folder this master made (and removes at exit), when the operator did not name one.
created_folder: str | None = None


def on_starting(server):
    """Give the workers an empty metrics folder: a fresh one, or the operator's own, emptied."""
    global created_folder
    folder = current_settings()["PROMETHEUS_MULTIPROC_DIR"]
    try:
        if folder:
            os.makedirs(folder, exist_ok=True)
            for name in os.listdir(folder):
                if name.endswith(".db"):
                    os.remove(os.path.join(folder, name))
        else:
            created_folder = folder = tempfile.mkdtemp(prefix="digit-recognition-metrics-")
    except OSError as error:
        # the workers then keep their metrics in memory, and /metrics says why (web/metrics.py); recognition goes on
        folder = folder or os.path.join(tempfile.gettempdir(), f"digit-recognition-metrics-{os.getpid()}")
        server.log.warning("cannot prepare the metrics folder %s: %s", folder, error.strerror or error)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = folder
    current_settings.cache_clear()  # the workers read their settings again, this folder among them


def when_ready(server: Arbiter) -> None:
    """Say how many workers start, and who chose that: the operator (WEB_CONCURRENCY), or the service for this machine."""
    count, cores, megabytes = server.num_workers, core_count(), memory_limit() // 2**20
    set_by = concurrency_set_by(os.environ)
    if "WEB_CONCURRENCY" in os.environ and not set_by:
        fit = fitting_workers(os.environ)
        if count > fit:
            message = "workers: %d (WEB_CONCURRENCY), more than fit this machine (%d: %d cores, %d MB of memory)"
            server.log.warning(message, count, fit, cores, megabytes)
        else:
            server.log.info("workers: %d (WEB_CONCURRENCY)", count)
        return
    # unset (Fir's buildpack, a local run) or the buildpack's choice, which is named but not used
    unused = (
        f"; the WEB_CONCURRENCY={os.environ['WEB_CONCURRENCY'].strip()} that {set_by} set is not used" if set_by else ""
    )
    message = "workers: %d, one per core, as many as the memory holds (%d cores, %d MB)%s"
    server.log.info(message, count, cores, megabytes, unused)


def resident_bytes(statm: int) -> int:
    """The resident memory of the process whose /proc/PID/statm is open as `statm`; 0 where unknown."""
    try:
        return int(os.pread(statm, 128, 0).split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def post_worker_init(worker):
    """Note the worker's memory at rest, its networks loaded and warmed up, for post_request and the metrics."""
    # kept open: reading it again costs about a microsecond a request, opening it ten
    worker.statm = os.open(f"/proc/{os.getpid()}/statm", os.O_RDONLY) if os.path.exists("/proc/self/statm") else None
    worker.resting_bytes = resident_bytes(worker.statm) if worker.statm is not None else 0
    metrics = getattr(worker.wsgi, "extensions", {}).get("metrics")
    if metrics is not None and worker.resting_bytes:
        metrics.observe_memory(worker.resting_bytes)


def post_request(worker, req, environ, resp):
    """Restart the worker after this request if its metrics files were lost, or if it kept memory a request took."""
    metrics = getattr(worker.wsgi, "extensions", {}).get("metrics")
    if metrics is not None and metrics.files_lost():
        worker.alive = False
        return
    limit = WORKER_GROWTH_LIMIT * getattr(worker, "resting_bytes", 0)
    if not limit:
        return
    held = resident_bytes(worker.statm)
    if held > limit and hasattr(LIBC, "malloc_trim"):
        LIBC.malloc_trim(0)
        held = resident_bytes(worker.statm)
    if metrics is not None:
        metrics.observe_memory(held)
    if held > limit:
        worker.log.info(
            "worker holds %d MB after %s %s (%d MB at rest): restarting it to give the memory back",
            held // 2**20,
            req.method,
            log_value(req.path),
            worker.resting_bytes // 2**20,
        )
        worker.alive = False


def child_exit(server, worker):
    """Drop the live gauges of a worker that has exited (or was killed)."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server):
    """Remove the metrics folder this master made."""
    if created_folder:
        shutil.rmtree(created_folder, ignore_errors=True)
