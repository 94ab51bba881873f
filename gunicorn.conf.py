"""gunicorn's settings for the service (the Procfile names this file): workers, time limits, and shared metrics.

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

from web.settings import current_settings

# Heroku's router gives up on a request after 30 s: a worker busy longer than this is aborted (its client gets a JSON
# 504, web/worker.py). The budgets keep every answer far below it; this is the last line.
timeout = 30
# On SIGTERM (each deploy, the daily restart) a worker finishes its request and answers what waits within this; Heroku
# sends SIGKILL 30 s after SIGTERM.
graceful_timeout = 20
# One request per connection, so that a free worker takes the next connection.
keepalive = 0
bind = [f"0.0.0.0:{current_settings()['PORT']}"]
workers = current_settings()["WEB_CONCURRENCY"]
threads = current_settings()["WEB_THREADS"]
# Sync workers with a read deadline per connection and a view of the accept queue (web/worker.py); gthread workers when
# WEB_THREADS asks for threads.
worker_class = "web.worker.GuardedSyncWorker" if threads <= 1 else "gthread"
errorlog = "-"
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


def resident_bytes(statm: int) -> int:
    """The resident memory of the process whose /proc/PID/statm is open as `statm`; 0 where unknown."""
    try:
        return int(os.pread(statm, 128, 0).split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def post_worker_init(worker):
    """Note the worker's memory at rest, its networks loaded and warmed up, for post_request to compare with."""
    # kept open: reading it again costs about a microsecond a request, opening it ten
    worker.statm = os.open(f"/proc/{os.getpid()}/statm", os.O_RDONLY) if os.path.exists("/proc/self/statm") else None
    worker.resting_bytes = resident_bytes(worker.statm) if worker.statm is not None else 0


def post_request(worker, req, environ, resp):
    """Restart the worker after this request if its metrics files were lost, or if it kept memory a request took."""
    metrics = getattr(worker.wsgi, "extensions", {}).get("metrics")
    if metrics is not None and metrics.files_lost():
        worker.alive = False
        return
    limit = WORKER_GROWTH_LIMIT * getattr(worker, "resting_bytes", 0)
    if not limit or resident_bytes(worker.statm) <= limit:
        return
    if hasattr(LIBC, "malloc_trim"):
        LIBC.malloc_trim(0)
    held = resident_bytes(worker.statm)
    if held > limit:
        worker.log.info(
            "worker holds %d MB after %s %s (%d MB at rest): restarting it to give the memory back",
            held // 2**20,
            req.method,
            req.path,
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
