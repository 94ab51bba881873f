"""The web service around the `model` package: the Flask app, its settings, errors, access rules, metrics and worker.

Every way of running the service (server.py, gunicorn.conf.py, `python -m web.settings`) imports this package first,
so this is where the process is set up before NumPy loads.
"""

import os

# NumPy's OpenBLAS splits even the decoding's tiny matrix products over every core, and its threads spin: 4-5x slower
# than one thread, and it halves the other gunicorn workers' speed (a 280x280 canvas: 43 -> 92 requests/s). An
# operator's own value wins.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
