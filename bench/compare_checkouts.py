"""Did a change make the service slower? Two checkouts served side by side, loaded in turn, many rounds.

    git worktree add ../before <commit>
    python -m bench.compare_checkouts ../before --data ../shared/data/mnist.npz [--rounds 6] [--duration 8]

Starts this checkout and the other one each as its own Procfile starts it (same Python, same
workers), both at once, then loads them in turn with `wrk` (1 and 8 clients, the MNIST upload of
`bench.throughput`) for several rounds, each checkout first in every other round, so that both
meet the machine in the same state. One run of `bench.throughput` after another differs by up to
20 % on a busy two-core machine; the mean over alternating rounds is the figure to compare.
Prints each round, each mean and the difference in percent.
"""

import argparse
import contextlib
import statistics
import sys
import tempfile
from pathlib import Path

from bench.service import PROJECT_ROOT, start_service
from bench.throughput import run_wrk, write_mnist_upload, wrk_missing

THIS = "this checkout"
OTHER = "other checkout"


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(prog="python -m bench.compare_checkouts", description=__doc__.split("\n")[0])
    parser.add_argument("other", type=Path, help="the other checkout's folder, e.g. a git worktree of the old commit")
    parser.add_argument("--data", help="path to an npz in Keras's mnist.npz layout (default: the Keras download)")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers for both (default: %(default)s)")
    parser.add_argument(
        "--rounds", type=int, default=6, help="alternating rounds per concurrency (default: %(default)s)"
    )
    parser.add_argument("--duration", type=int, default=8, help="seconds of load per run (default: %(default)s)")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 8], help="concurrencies (default: 1 8)")
    arguments = parser.parse_args(argv)
    if wrk_missing():
        return 2

    environment = {"WEB_CONCURRENCY": str(arguments.workers)}
    with tempfile.TemporaryDirectory() as name, contextlib.ExitStack() as stack:
        folder = Path(name)
        payload, script, _ = write_mnist_upload(folder, arguments.data)
        services = {
            THIS: stack.enter_context(start_service(folder / "this.log", environment, directory=PROJECT_ROOT)),
            OTHER: stack.enter_context(
                start_service(folder / "other.log", environment, directory=arguments.other.resolve())
            ),
        }
        for service in services.values():
            run_wrk(service.url + "/recognize.json", script, payload, 8, 2)  # warm-up, not reported
        for clients in arguments.clients:
            rates: dict[str, list[float]] = {THIS: [], OTHER: []}
            for round_number in range(1, arguments.rounds + 1):
                # each goes first in every other round: whichever runs second may meet a warmer (or busier) machine
                order = list(services) if round_number % 2 else list(reversed(services))
                for name_of in order:
                    service = services[name_of]
                    load = run_wrk(service.url + "/recognize.json", script, payload, clients, arguments.duration)
                    if load.errors:
                        print(f"{name_of}: {load.errors} errors", file=sys.stderr)
                        return 1
                    rates[name_of].append(load.requests_per_second)
                print(
                    f"{clients} client(s), round {round_number}: "
                    + ", ".join(f"{name_of} {rates[name_of][-1]:.0f}" for name_of in services)
                    + " requests/s",
                    flush=True,
                )
            this, other = statistics.mean(rates[THIS]), statistics.mean(rates[OTHER])
            print(
                f"{clients} client(s), mean of {arguments.rounds}: {THIS} {this:.0f}, {OTHER} {other:.0f} requests/s, "
                f"difference {100 * (this - other) / other:+.1f} %\n",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
