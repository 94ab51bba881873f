"""Scaling: throughput, latency and memory per number of gunicorn workers, for sizing dynos and replicas.

    python -m bench.scaling --data ../shared/data/mnist.npz [--workers 1 2 4] [--clients 8 16] [--duration 10]

Starts this service exactly as its Procfile starts it with WEB_CONCURRENCY set to each of --workers
in turn, and loads each with `wrk` (one thread, as in `bench.throughput`) at each of --clients
concurrent clients: every request a multipart upload of an MNIST test digit as a PNG with a fresh
boundary. Prints requests/s, p50/p99, errors and total RSS (master + workers) per worker count, and
the requests/s against one worker's. A worker reads one image at a time on one core, so the
figures grow with the workers up to the cores the service may use (`core_count()`, printed: the CPU
affinity, fewer under a cgroup CPU quota; wrk takes part of one), and no further: more dynos or replicas, each with its own cores, are how to go past that
(docs/PERFORMANCE.md, "Scaling out").
"""

import argparse
import sys
import tempfile
import time
from pathlib import Path

from bench.service import start_service
from bench.throughput import Load, check_answer, memory, run_wrk, write_mnist_upload, wrk_missing
from model.machine import core_count

# seconds of load at 8 clients after a start and before measuring, not reported
WARM_UP_SECONDS = 2


def measure(
    workers: int, clients: list[int], seconds: float, script: Path, payload: Path, digit: int, folder: Path
) -> tuple[list[Load], float, str]:
    """Start the Procfile service with `workers` workers and load it at each concurrency: the loads, RSS and its parts."""
    with start_service(folder / f"workers-{workers}.log", {"WEB_CONCURRENCY": str(workers)}) as service:
        check_answer(service, payload.read_bytes(), digit)
        url = service.url + "/recognize.json"
        run_wrk(url, script, payload, 8, WARM_UP_SECONDS)
        loads = [run_wrk(url, script, payload, count, seconds) for count in clients]
        rss, parts = memory(service)
    return loads, rss, parts


def report(results: dict[int, tuple[list[Load], float, str]]) -> None:
    """One row per worker count and concurrency; speed-up: requests/s against the fewest workers' at the same clients."""
    print(
        f"{'workers':>7} {'clients':>7} {'requests/s':>11} {'speed-up':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7} {'RSS MB':>7}"
    )
    fewest = results[min(results)][0]
    for workers, (loads, rss, _) in results.items():
        for load, base in zip(loads, fewest, strict=True):
            print(
                f"{workers:>7} {load.clients:>7} {load.requests_per_second:>11,.1f} {load.requests_per_second / base.requests_per_second:>8.2f}x "
                f"{load.p50_ms:>8.1f} {load.p99_ms:>8.1f} {load.errors:>7} {rss:>7.0f}"
            )
    print()
    for workers, (_, _, parts) in results.items():
        print(f"{workers} worker{'s' if workers > 1 else ''}: RSS after the loads = {parts}")


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(prog="python -m bench.scaling", description=__doc__.split("\n")[0])
    parser.add_argument("--data", help="path to an npz in Keras's mnist.npz layout (default: the Keras download)")
    parser.add_argument(
        "--workers", type=int, nargs="+", default=[1, 2, 4], help="WEB_CONCURRENCY values, in turn (default: 1 2 4)"
    )
    parser.add_argument("--clients", type=int, nargs="+", default=[8, 16], help="concurrencies (default: 8 16)")
    parser.add_argument(
        "--duration", type=int, default=10, help="seconds of load per concurrency (default: %(default)s)"
    )
    arguments = parser.parse_args(argv)
    if wrk_missing():
        return 2

    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        payload, script, digit = write_mnist_upload(folder, arguments.data)
        print(
            f"{time.strftime('%Y-%m-%d %H:%M')}, {core_count()} cores for the service, {arguments.duration} s per load, "
            f"payload: MNIST test digit {digit} as a {payload.stat().st_size}-byte 28x28 PNG\n",
            flush=True,
        )
        results = {}
        for workers in sorted(set(arguments.workers)):
            results[workers] = measure(workers, arguments.clients, arguments.duration, script, payload, digit, folder)
            print(f"{workers} worker{'s' if workers > 1 else ''}: measured", flush=True)
        print()
        report(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
