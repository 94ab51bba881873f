"""gunicorn settings beside the Procfile's flags: the worker class, and Prometheus metrics shared by the workers.

gunicorn reads this file from the working directory (and the Procfile names it). Before the
workers start, the master gives them an empty folder in PROMETHEUS_MULTIPROC_DIR; each worker
writes its metric values there and GET /metrics adds up all the files (web/metrics.py). When a
worker exits, its live gauges (requests in flight) are dropped; its counters stay counted.
"""

import os
import shutil
import tempfile

# Sync workers with a read deadline per connection and a view of the accept queue (web/worker.py);
# gthread workers when WEB_THREADS asks for threads (gunicorn's --threads alone would pick gthread).
worker_class = "web.worker.GuardedSyncWorker" if int(os.environ.get("WEB_THREADS", "1")) <= 1 else "gthread"

# The folder this master made (and removes at exit), when the operator did not name one.
created_folder: str | None = None


def on_starting(server):
    """Give the workers an empty metrics folder: a fresh one, or the operator's own, emptied."""
    global created_folder
    folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if folder:
        os.makedirs(folder, exist_ok=True)
        for name in os.listdir(folder):
            if name.endswith(".db"):
                os.remove(os.path.join(folder, name))
    else:
        created_folder = tempfile.mkdtemp(prefix="digit-recognition-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = created_folder


def child_exit(server, worker):
    """Drop the live gauges of a worker that has exited (or was killed)."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server):
    """Remove the metrics folder this master made."""
    if created_folder:
        shutil.rmtree(created_folder, ignore_errors=True)
