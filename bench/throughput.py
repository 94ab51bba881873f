"""Throughput, latency, memory and cold start: this service beside the usual pattern, in one run.

    python -m bench.throughput --data ../shared/data/mnist.npz [--workers 2] [--duration 10]

Starts, one after the other on this machine, (1) this service exactly as its Procfile starts
it, default settings, and (2) the usual pattern (`bench/usual_pattern.py`: Flask plus one
`model.predict` per request, the same trained network), both with the same number of gunicorn
workers. Each is loaded by `wrk` (Debian package `wrk`, written in C, one thread) at 1, 8 and
32 concurrent clients posting an MNIST test digit as a multipart PNG upload, with a fresh
multipart boundary per request as curl and browsers send. It prints requests/s, p50/p99,
errors, total RSS (master + workers) and cold start (launch -> first 200), then this service's
RSS after 10,000 and 20,000 requests, batch throughput, and the issue's goals.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import requests

from bench.accuracy import encode_png
from bench.footprint import total_rss_megabytes
from bench.service import RunningService, start_service
from model.data import load_mnist

USUAL_PATTERN_COMMAND = "gunicorn 'bench.usual_pattern:app' --bind 0.0.0.0:$PORT"

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
        capture_output=True, text=True, check=True, env={**os.environ, "WRK_IMAGE": str(payload)},
    ).stdout
    summary = json.loads(output.split("SUMMARY ", 1)[1])
    errors = sum(summary[kind] for kind in ("connect", "read", "write", "status", "timeout"))
    return Load(clients, summary["requests"], summary["requests"] / summary["seconds"], summary["p50_ms"], summary["p99_ms"], errors)


def check_answer(service: RunningService, payload: bytes, digit: int) -> None:
    """One request by hand first: the service must read the benchmark's digit right."""
    response = requests.post(service.url + "/recognize.json", files={"image": ("digit.png", payload, "image/png")}, timeout=60)
    if response.status_code != 200 or response.json().get("digit") != digit:
        raise RuntimeError(f"unexpected answer {response.status_code}: {response.text[:200]}")


def measure(
    name: str, command: str | None, workers: int, payload: Path, digit: int, scripts: dict, arguments, folder: Path
) -> tuple[list[Load], float, float, list[str]]:
    """Start one service, load it at each concurrency; return loads, cold start, RSS and extra report lines."""
    extra: list[str] = []
    with start_service(folder / f"{name}.log", {"WEB_CONCURRENCY": str(workers)}, command=command) as service:
        url = service.url + "/recognize.json"
        check_answer(service, payload.read_bytes(), digit)
        run_wrk(url, scripts["upload"], payload, 8, min(2.0, arguments.duration))  # warm-up, not reported
        loads = [run_wrk(url, scripts["upload"], payload, clients, arguments.duration) for clients in arguments.clients]
        rss = total_rss_megabytes(service.process.pid)
        if command is None and not arguments.no_soak:
            extra += soak(url, scripts["upload"], payload, service, arguments.duration, sum(load.requests for load in loads))
        if command is None:
            batch_file = folder / "batch.json"
            batch_file.write_text(json.dumps({"images": ["data:image/png;base64," + _base64(payload)] * 64}))
            batch = run_wrk(url, scripts["json"], batch_file, 1, arguments.duration)
            extra.append(
                f"Batch of 64 images in one JSON request, 1 client: {batch.requests_per_second * 64:,.0f} images/s, "
                f"p50 {batch.p50_ms:.1f} ms per request, {batch.errors} errors"
            )
    return loads, service.cold_start_seconds, rss, extra


def soak(url: str, script: Path, payload: Path, service: RunningService, seconds: float, done: int) -> list[str]:
    """Keep loading at 8 clients: RSS once 10,000 requests have been served, then after 10,000 more."""
    lines = []
    for target in (10_000, 20_000):
        errors = 0
        while done < target:
            load = run_wrk(url, script, payload, 8, seconds)
            done += load.requests
            errors += load.errors
        lines.append(f"RSS after {done:,} requests: {total_rss_megabytes(service.process.pid):.0f} MB ({errors} errors on the way)")
    return lines


def _base64(path: Path) -> str:
    """A file's bytes as base64 text."""
    import base64

    return base64.b64encode(path.read_bytes()).decode()


def print_table(rows: list[tuple[str, list[Load], float, float]]) -> None:
    """One line per service and concurrency."""
    print(f"{'service':<22} {'clients':>7} {'requests/s':>11} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7} {'RSS MB':>7} {'cold start':>10}")
    for name, loads, cold_start, rss in rows:
        for load in loads:
            print(
                f"{name:<22} {load.clients:>7} {load.requests_per_second:>11,.1f} {load.p50_ms:>8.1f} {load.p99_ms:>8.1f} "
                f"{load.errors:>7} {rss:>7.0f} {cold_start:>9.1f}s"
            )


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(prog="python -m bench.throughput", description=__doc__.split("\n")[0])
    parser.add_argument("--data", help="path to an npz in Keras's mnist.npz layout (default: the Keras download)")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers for both, WEB_CONCURRENCY (default: %(default)s)")
    parser.add_argument("--duration", type=int, default=10, help="seconds of load per concurrency (default: %(default)s)")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 8, 32], help="concurrencies (default: 1 8 32)")
    parser.add_argument("--skip-usual", action="store_true", help="measure this service only")
    parser.add_argument("--no-soak", action="store_true", help="skip the 20,000-request memory check")
    arguments = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        print("wrk is not installed: apt-get install wrk (Debian/Ubuntu) or brew install wrk", file=sys.stderr)
        return 2

    dataset = load_mnist(arguments.data)
    digit = int(dataset.y_test[0])
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        payload = folder / "digit.png"
        payload.write_bytes(encode_png(255 - dataset.x_test[0]))  # a dark digit on white paper, 28x28
        scripts = {"upload": folder / "upload.lua", "json": folder / "json.lua"}
        scripts["upload"].write_text(UPLOAD_SCRIPT + SUMMARY)
        scripts["json"].write_text(JSON_SCRIPT + SUMMARY)

        print(f"{time.strftime('%Y-%m-%d %H:%M')}, {arguments.workers} workers each, {arguments.duration:g} s per load, payload: "
              f"MNIST test digit {digit} as a {payload.stat().st_size}-byte 28x28 PNG", flush=True)
        ours, cold, rss, extra = measure("this service", None, arguments.workers, payload, digit, scripts, arguments, folder)
        rows = [("this service (Procfile)", ours, cold, rss)]
        if not arguments.skip_usual:
            usual = measure("usual pattern", USUAL_PATTERN_COMMAND, arguments.workers, payload, digit, scripts, arguments, folder)
            rows.append(("usual pattern", usual[0], usual[1], usual[2]))
        print_table(rows)
        for line in extra:
            print(line)
        if not arguments.skip_usual:
            by_clients = {load.clients: load for load in usual[0]}
            for load in ours:
                base = by_clients[load.clients]
                print(
                    f"{load.clients:>2} clients: {load.requests_per_second / base.requests_per_second:5.1f}x the usual pattern's "
                    f"requests/s; p50 {load.p50_ms / base.p50_ms:.3f} of its (1/{base.p50_ms / load.p50_ms:.0f})"
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
