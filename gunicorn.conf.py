"""gunicorn's settings for the service (the Procfile names this file): workers, time limits, and shared metrics.

The values come from web/settings.py, which the Procfile has already checked (`python -m web.settings`).
Before the workers start, the master gives them an empty folder in PROMETHEUS_MULTIPROC_DIR; each
worker writes its metric values there and GET /metrics adds up all the files (web/metrics.py).
When a worker exits, its live gauges (requests in flight) are dropped; its counters stay counted.
"""

import os
import shutil
import tempfile

from web.settings import setting

# Heroku's router gives up on a request after 30 s: a worker busy longer than this is aborted (its client gets a JSON
# 504, web/worker.py). The budgets keep every answer far below it; this is the last line.
timeout = 30
# On SIGTERM (each deploy, the daily restart) a worker finishes its request and answers what waits within this; Heroku
# sends SIGKILL 30 s after SIGTERM.
graceful_timeout = 20
# One request per connection, so that a free worker takes the next connection.
keepalive = 0
bind = [f"0.0.0.0:{setting('PORT')}"]
workers = setting("WEB_CONCURRENCY")
threads = setting("WEB_THREADS")
# Sync workers with a read deadline per connection and a view of the accept queue (web/worker.py); gthread workers when
# WEB_THREADS asks for threads.
worker_class = "web.worker.GuardedSyncWorker" if threads <= 1 else "gthread"
errorlog = "-"
# The workers' heartbeat files on a memory filesystem where there is one: a full or slow disk does not stall them.
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None

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
