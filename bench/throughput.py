"""Throughput, latency, memory and cold start: this service beside the usual pattern, in one run.

    python -m bench.throughput --data ../shared/data/mnist.npz [--workers 2] [--duration 10]

Starts on this machine (1) this service exactly as its Procfile starts it, default settings,
and (2) the usual pattern (`bench/usual_pattern.py`: Flask plus one `model.predict` per
request, the same trained network), both with the same number of gunicorn workers. `wrk`
(Debian package `wrk`, written in C, one thread) loads them in turn, first one then the other
at each concurrency (1, 8 and 32 clients), so that both meet the machine in the same state.
Each request posts an MNIST test digit as a multipart PNG upload, with a fresh multipart
boundary per request as curl and browsers send. It prints requests/s, p50/p99, errors, total
RSS (master + workers) and cold start (launch -> first 200), then this service's
RSS once 10,000 requests have been served and after 10,000 more, the throughput of batch
requests and of a 280x280 transparent canvas drawing (which the usual pattern would read as
all black, so it is not compared), and whether the goals of "Fast and small" are met.
"""

import argparse
import base64
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests

from bench.footprint import rss_megabytes, total_rss_megabytes
from bench.service import RunningService, start_service, worker_pids
from model.decoding import encode_png
from tests.drawing import draw_digit, encode
from training.data import load_mnist

USUAL_PATTERN_COMMAND = "gunicorn 'bench.usual_pattern:app' --bind 0.0.0.0:$PORT"
OURS = "this service (Procfile)"
USUAL = "usual pattern"

# wrk script: a multipart upload of $WRK_IMAGE with a new boundary per request; JSON summary at the end
UPLOAD_SCRIPT = r"""
local file = io.open(os.getenv("WRK_IMAGE"), "rb")
local image = file:read("*all")
file:close()
local counter = 0
request = function()
  counter = counter + 1
  local boundary = string.format("----------------wrk%08x%08x", math.random(0, 0x7fffffff), counter)
  local body = "--" .. boundary .. "\r\nContent-Disposition: form-data; name=\"image\"; filename=\"digit.png\"\r\n"
    .. "Content-Type: image/png\r\n\r\n" .. image .. "\r\n--" .. boundary .. "--\r\n"
  return wrk.format("POST", nil, {["Content-Type"] = "multipart/form-data; boundary=" .. boundary}, body)
end
"""
# wrk script: the same JSON body (a batch) on every request
JSON_SCRIPT = r"""
local file = io.open(os.getenv("WRK_IMAGE"), "rb")
wrk.body = file:read("*all")
file:close()
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
"""
SUMMARY = r"""
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '\nSUMMARY {"requests": %d, "seconds": %f, "p50_ms": %f, "p99_ms": %f, "connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}\n',
    summary.requests, summary.duration / 1e6, latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    e.connect, e.read, e.write, e.status, e.timeout))
end
"""


@dataclass(frozen=True)
class Load:
    """What wrk measured at one concurrency."""

    clients: int
    requests: int
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    errors: int  # non-2xx answers, connection failures, timeouts


def run_wrk(url: str, script: Path, payload: Path, clients: int, seconds: float) -> Load:
    """Load `url` with wrk for `seconds` at `clients` connections (one wrk thread, 30 s timeout)."""
    output = subprocess.run(
        ["wrk", "-t1", f"-c{clients}", f"-d{max(1, round(seconds))}s", "--timeout", "30s", "-s", str(script), url],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "WRK_IMAGE": str(payload)},
    ).stdout
    summary = json.loads(output.split("SUMMARY ", 1)[1])
    errors = sum(summary[kind] for kind in ("connect", "read", "write", "status", "timeout"))
    return Load(
        clients,
        summary["requests"],
        summary["requests"] / summary["seconds"],
        summary["p50_ms"],
        summary["p99_ms"],
        errors,
    )


def wrk_missing() -> bool:
    """True, with a line on stderr saying how to install it, when `wrk` is not on the PATH."""
    if shutil.which("wrk") is not None:
        return False
    print("wrk is not installed: apt-get install wrk (Debian/Ubuntu) or brew install wrk", file=sys.stderr)
    return True


def write_mnist_upload(folder: Path, data: str | None) -> tuple[Path, Path, int]:
    """The load of the benchmarks: MNIST test digit 0 dark on white paper as a 28x28 PNG in `folder`, the wrk script
    that uploads it, and its digit."""
    dataset = load_mnist(data)
    payload = folder / "digit.png"
    payload.write_bytes(encode_png(255 - dataset.x_test[0]))
    script = folder / "upload.lua"
    script.write_text(UPLOAD_SCRIPT + SUMMARY)
    return payload, script, int(dataset.y_test[0])


def check_answer(service: RunningService, payload: bytes, digit: int) -> None:
    """One request by hand first: the service must read the benchmark's digit right."""
    response = requests.post(
        service.url + "/recognize.json", files={"image": ("digit.png", payload, "image/png")}, timeout=60
    )
    if response.status_code != 200 or response.json().get("digit") != digit:
        raise RuntimeError(f"unexpected answer {response.status_code}: {response.text[:200]}")


@dataclass
class Measured:
    """Everything measured of one service."""

    name: str
    loads: list[Load]
    cold_start_seconds: float
    rss: float  # MB, master + workers, after the loads
    rss_parts: str
    soak: list[tuple[int, float, int]] = field(default_factory=list)  # (requests so far, RSS MB, errors on the way)
    batch: Load | None = None
    canvas: list[Load] = field(default_factory=list)  # a 280x280 drawing exported from a <canvas>


def memory(service: RunningService) -> tuple[float, str]:
    """Total RSS of gunicorn's master and workers, and its parts."""
    master = service.process.pid
    workers = ", ".join(f"{rss_megabytes(pid):.0f}" for pid in worker_pids(master))
    return total_rss_megabytes(master), f"master {rss_megabytes(master):.0f} MB + workers {workers} MB"


def compare(
    services: dict[str, RunningService], payload: Path, digit: int, script: Path, arguments
) -> dict[str, Measured]:
    """Load the services in turn at each concurrency, so that both see the machine in the same state."""
    for service in services.values():
        check_answer(service, payload.read_bytes(), digit)
        run_wrk(service.url + "/recognize.json", script, payload, 8, 2)  # warm-up, not reported
    loads: dict[str, list[Load]] = {name: [] for name in services}
    for clients in arguments.clients:
        for name, service in services.items():
            loads[name].append(run_wrk(service.url + "/recognize.json", script, payload, clients, arguments.duration))
    return {
        name: Measured(name, loads[name], service.cold_start_seconds, *memory(service))
        for name, service in services.items()
    }


def measure_more(
    measured: Measured, service: RunningService, payload: Path, canvas: Path, scripts: dict, arguments, folder: Path
) -> None:
    """This service only: memory over 20,000 requests, batch requests and canvas uploads."""
    url = service.url + "/recognize.json"
    if not arguments.no_soak:
        measured.soak = soak(
            url, scripts["upload"], payload, service, arguments.duration, sum(load.requests for load in measured.loads)
        )
    batch_file = folder / "batch.json"
    batch_file.write_text(
        json.dumps({"images": ["data:image/png;base64," + base64.b64encode(payload.read_bytes()).decode()] * 64})
    )
    measured.batch = run_wrk(url, scripts["json"], batch_file, 1, arguments.duration)
    measured.canvas = [run_wrk(url, scripts["upload"], canvas, clients, arguments.duration) for clients in (1, 8)]


def soak(
    url: str, script: Path, payload: Path, service: RunningService, seconds: int, done: int
) -> list[tuple[int, float, int]]:
    """Keep loading at 8 clients: RSS once 10,000 requests have been served, then after 10,000 more."""
    readings = []
    target = 10_000
    for _ in range(2):
        errors = 0
        while done < target:
            load = run_wrk(url, script, payload, 8, seconds)
            done += load.requests
            errors += load.errors
        readings.append((done, total_rss_megabytes(service.process.pid), errors))
        target = done + 10_000
    return readings


def report(ours: Measured, usual: Measured | None) -> None:
    """The table, the memory readings, batch throughput and the goals of the issue."""
    print(
        f"{'service':<24} {'clients':>7} {'requests/s':>11} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7} {'RSS MB':>7} {'cold start':>10}"
    )
    for measured in [ours, usual] if usual else [ours]:
        for load in measured.loads:
            print(
                f"{measured.name:<24} {load.clients:>7} {load.requests_per_second:>11,.1f} {load.p50_ms:>8.1f} {load.p99_ms:>8.1f} "
                f"{load.errors:>7} {measured.rss:>7.0f} {measured.cold_start_seconds:>9.1f}s"
            )
    print()
    for measured in [ours, usual] if usual else [ours]:
        print(f"{measured.name}: RSS after the loads = {measured.rss_parts}")
    for done, rss, errors in ours.soak:
        print(f"{ours.name}: RSS after {done:,} requests: {rss:.0f} MB ({errors} errors on the way)")
    if ours.batch:
        print(
            f"{ours.name}: batches of 64 images in one JSON request, 1 client: {ours.batch.requests_per_second * 64:,.0f} images/s, "
            f"p50 {ours.batch.p50_ms:.1f} ms per request, {ours.batch.errors} errors"
        )
    for load in ours.canvas:
        print(
            f"{ours.name}: 280x280 canvas PNG, {load.clients} client{'s' if load.clients > 1 else ''}: "
            f"{load.requests_per_second:,.1f} requests/s, p50 {load.p50_ms:.1f} ms, p99 {load.p99_ms:.1f} ms, {load.errors} errors"
        )
    goals = [
        ("no errors under any load", sum(load.errors for load in ours.loads) == 0 and all(s[2] == 0 for s in ours.soak))
    ]
    goals.append(("cold start <= 5 s", ours.cold_start_seconds <= 5.0))
    if ours.soak:
        goals.append(("RSS <= 512 MB after 10,000 requests", ours.soak[0][1] <= 512))
        goals.append(("no RSS growth over the next 10,000 (within 2 %)", ours.soak[1][1] <= ours.soak[0][1] * 1.02))
    if usual:
        print()
        by_clients = {load.clients: load for load in usual.loads}
        for load in ours.loads:
            base = by_clients[load.clients]
            print(
                f"{load.clients:>2} clients: {load.requests_per_second / base.requests_per_second:5.1f}x the usual pattern's requests/s, "
                f"p50 1/{base.p50_ms / load.p50_ms:.0f} of its"
            )
        if 8 in by_clients and 1 in by_clients:
            eight = next(load for load in ours.loads if load.clients == 8)
            one = next(load for load in ours.loads if load.clients == 1)
            goals.append(
                (
                    "throughput at 8 clients >= 40x the usual pattern's",
                    eight.requests_per_second >= 40 * by_clients[8].requests_per_second,
                )
            )
            goals.append(("p50 at 1 client <= 1/25 of the usual pattern's", one.p50_ms * 25 <= by_clients[1].p50_ms))
    print()
    for goal, met in goals:
        print(f"[{'met' if met else 'NOT MET'}] {goal}")


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(prog="python -m bench.throughput", description=__doc__.split("\n")[0])
    parser.add_argument("--data", help="path to an npz in Keras's mnist.npz layout (default: the Keras download)")
    parser.add_argument(
        "--workers", type=int, default=2, help="gunicorn workers for both, WEB_CONCURRENCY (default: %(default)s)"
    )
    parser.add_argument(
        "--duration", type=int, default=10, help="seconds of load per concurrency (default: %(default)s)"
    )
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 8, 32], help="concurrencies (default: 1 8 32)")
    parser.add_argument("--skip-usual", action="store_true", help="measure this service only")
    parser.add_argument("--no-soak", action="store_true", help="skip the 20,000-request memory check")
    arguments = parser.parse_args(argv)
    if wrk_missing():
        return 2

    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        payload, upload_script, digit = write_mnist_upload(folder, arguments.data)
        scripts = {"upload": upload_script, "json": folder / "json.lua"}
        scripts["json"].write_text(JSON_SCRIPT + SUMMARY)
        print(
            f"{time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} CPUs, {arguments.workers} gunicorn workers each, "
            f"{arguments.duration} s per load, payload: MNIST test digit {digit} as a {payload.stat().st_size}-byte 28x28 PNG\n",
            flush=True,
        )
        canvas = folder / "canvas.png"
        canvas.write_bytes(encode(draw_digit(digit, background=None)))  # strokes on a transparent canvas
        environment = {"WEB_CONCURRENCY": str(arguments.workers)}
        with contextlib.ExitStack() as stack:
            services = {OURS: stack.enter_context(start_service(folder / "ours.log", environment))}
            if not arguments.skip_usual:
                services[USUAL] = stack.enter_context(
                    start_service(folder / "usual.log", environment, command=USUAL_PATTERN_COMMAND)
                )
            measured = compare(services, payload, digit, scripts["upload"], arguments)
            ours, usual = measured[OURS], measured.get(USUAL)
            measure_more(ours, services[OURS], payload, canvas, scripts, arguments, folder)
        report(ours, usual)
    return 0


if __name__ == "__main__":
    sys.exit(main())
