"""gunicorn settings beside the Procfile's flags: the workers share their Prometheus metrics.

gunicorn reads this file from the working directory (and the Procfile names it). Before the
workers start, the master gives them an empty folder in PROMETHEUS_MULTIPROC_DIR; each worker
writes its metric values there and GET /metrics adds up all the files (web/metrics.py). When a
worker exits, its live gauges (requests in flight) are dropped; its counters stay counted.
"""

import os
import shutil
import tempfile

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
