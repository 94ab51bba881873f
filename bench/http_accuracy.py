"""MNIST's 10,000 test images posted one by one as PNG files to the running service, as a client would.

    python -m bench.http_accuracy --data ../shared/data/mnist.npz [--url http://127.0.0.1:5000] [--clients 4]

Without --url it starts the service from the Procfile on a free port and stops it afterwards.
"""

import argparse
import contextlib
import logging
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import requests

from bench.service import start_service
from model.decoding import encode_png
from training.data import load_mnist

logger = logging.getLogger("bench.http_accuracy")


def post_all(url: str, images: np.ndarray, clients: int) -> tuple[list[int | None], list[int], list[float]]:
    """POST each image as `curl -F image=@N.png` would; return digits, statuses and latencies (s)."""
    local = threading.local()  # one keep-alive session per client thread

    def post(index: int) -> tuple[int | None, int, float]:
        session = local.__dict__.setdefault("session", requests.Session())
        started = time.perf_counter()
        response = session.post(
            url + "/recognize.json",
            files={"image": (f"{index}.png", encode_png(images[index]), "image/png")},
            timeout=30,
        )
        elapsed = time.perf_counter() - started
        digit = response.json().get("digit") if response.status_code == 200 else None
        return digit, response.status_code, elapsed

    with ThreadPoolExecutor(clients) as pool:
        results = list(pool.map(post, range(len(images))))
    return [r[0] for r in results], [r[1] for r in results], [r[2] for r in results]


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(prog="python -m bench.http_accuracy", description=__doc__.split("\n")[0])
    parser.add_argument("--data", help="path to an npz in Keras's mnist.npz layout (default: the Keras download)")
    parser.add_argument("--url", help="a running service (default: start one from the Procfile)")
    parser.add_argument("--clients", type=int, default=4, help="concurrent clients (default: %(default)s)")
    parser.add_argument("--limit", type=int, help="only the first N test images")
    arguments = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr)

    dataset = load_mnist(arguments.data)
    images, labels = dataset.x_test[: arguments.limit], dataset.y_test[: arguments.limit]
    with contextlib.ExitStack() as stack:
        url = arguments.url
        if url is None:
            log = Path(stack.enter_context(tempfile.TemporaryDirectory())) / "service.log"
            service = stack.enter_context(start_service(log))
            url = service.url
            logger.info("started the Procfile service at %s in %.1f s", url, service.cold_start_seconds)
        started = time.monotonic()
        digits, statuses, latencies = post_all(url, images, arguments.clients)
        elapsed = time.monotonic() - started

    correct = sum(digit == label for digit, label in zip(digits, labels, strict=False))
    milliseconds = np.array(latencies) * 1000
    print(f"service:   {url if arguments.url else 'Procfile command on a free port'}")
    print(
        f"posted:    {len(images)} MNIST test images as PNG files (multipart field 'image'), {arguments.clients} clients"
    )
    print(f"statuses:  {dict(sorted(Counter(statuses).items()))}")
    print(f"accuracy:  {100 * correct / len(images):.2f}% ({correct}/{len(images)})")
    print(
        f"latency:   p50 {np.percentile(milliseconds, 50):.1f} ms, p99 {np.percentile(milliseconds, 99):.1f} ms; "
        f"{len(images) / elapsed:.0f} requests/s"
    )
    return 0 if all(status == 200 for status in statuses) else 1


if __name__ == "__main__":
    sys.exit(main())
