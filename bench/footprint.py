"""Memory and cold start of the service per runtime, started as the Procfile starts it.

    python -m bench.footprint [--workers 2] [--requests 1000] [--numbers 200 --data ../shared/data/mnist.npz]

For each runtime: launch of the Procfile command -> first 200 from /healthz (cold start), then
N recognitions of a 280x280 canvas PNG, then the RSS of the gunicorn master plus its workers;
then M numbers composed from MNIST test digits read by /recognize/number.json, and the RSS again
(the number splitter reads hundreds of candidate digits in one network call).
"""

import argparse
import sys
import tempfile
import time
from pathlib import Path

import requests

from bench.service import start_service, worker_pids
from model.classifier import RUNTIMES
from model.decoding import encode_png
from tests.drawing import draw_digit, encode
from training.data import load_mnist
from training.numbers import number_set


def rss_megabytes(pid: int) -> float:
    """Resident memory of one process, in MB."""
    return int(Path(f"/proc/{pid}/status").read_text().split("VmRSS:")[1].split()[0]) / 1024


def total_rss_megabytes(master: int) -> float:
    """Resident memory of a process and its direct children (gunicorn's master and workers), in MB."""
    return sum(rss_megabytes(pid) for pid in [master, *worker_pids(master)])


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(prog="python -m bench.footprint", description=__doc__.split("\n")[0])
    parser.add_argument("--workers", type=int, default=2, help="WEB_CONCURRENCY (default: %(default)s)")
    parser.add_argument(
        "--requests", type=int, default=1000, help="recognitions before measuring (default: %(default)s)"
    )
    parser.add_argument(
        "--numbers", type=int, default=200, help="numbers read after the digits (default: %(default)s; 0: none)"
    )
    parser.add_argument(
        "--data", help="mnist.npz whose test digits the numbers are made of (default: the Keras download)"
    )
    arguments = parser.parse_args(argv)

    canvas = encode(draw_digit(7, background=None))
    numbers = []
    if arguments.numbers:
        dataset = load_mnist(arguments.data)
        numbers = [
            encode_png(number.picture) for number in number_set(dataset.x_test, dataset.y_test, arguments.numbers)
        ]
    print(
        f"{'runtime':<8}  {'workers':>7}  {'cold start':>10}  {'RSS after ' + str(arguments.requests) + ' requests':>24}  {'ms/request':>10}"
        f"  {'RSS after ' + str(len(numbers)) + ' numbers':>22}  {'ms/number':>9}"
    )
    with tempfile.TemporaryDirectory() as folder:
        for runtime in RUNTIMES:
            environment = {"MODEL_RUNTIME": runtime, "WEB_CONCURRENCY": str(arguments.workers)}
            with start_service(Path(folder) / f"{runtime}.log", environment) as service, requests.Session() as session:
                started = time.perf_counter()
                for _ in range(arguments.requests):
                    response = session.post(
                        service.url + "/recognize.json", data=canvas, headers={"Content-Type": "image/png"}, timeout=30
                    )
                    if response.status_code != 200 or response.json()["digit"] != 7:
                        raise RuntimeError(f"{runtime}: unexpected answer {response.status_code} {response.text[:200]}")
                per_request = (time.perf_counter() - started) / arguments.requests * 1000
                rss = total_rss_megabytes(service.process.pid)
                started = time.perf_counter()
                for number in numbers:
                    response = session.post(
                        service.url + "/recognize/number.json",
                        data=number,
                        headers={"Content-Type": "image/png"},
                        timeout=60,
                    )
                    if response.status_code != 200 or "number" not in response.json():
                        raise RuntimeError(f"{runtime}: unexpected answer {response.status_code} {response.text[:200]}")
                per_number = (time.perf_counter() - started) / max(len(numbers), 1) * 1000
                number_rss = total_rss_megabytes(service.process.pid)
                print(
                    f"{runtime:<8}  {arguments.workers:>7}  {service.cold_start_seconds:>9.1f}s  {rss:>21.0f} MB  {per_request:>10.1f}"
                    f"  {number_rss:>19.0f} MB  {per_number:>9.0f}"
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
