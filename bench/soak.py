"""Soak test: mixed valid and invalid traffic for a long while; every answer right, none lost, memory flat.

    python -m bench.soak --data ../shared/data/mnist.npz [--duration 600] [--clients 16] [--workers 2]

Starts this service exactly as its Procfile starts it (`bench.service.start_service`,
WEB_CONCURRENCY = --workers) on a free port, with MAX_UPLOAD_BYTES = 1 MiB so that an
oversized upload can be part of the mix. `wrk` (Debian package `wrk`, one thread, --clients
connections, 30 s timeout) then sends, for --duration seconds in rounds of --round seconds,
requests taken in turn from a deck of 200 shuffled once at start (seed 0); each kind of request
has its expected answer:

    share  request                                                          expected answer
    55 %   multipart PNG upload, 10 MNIST test digits (one of each class,   200, that digit
           dark on white as scanned), a fresh boundary per request
     5 %   JSON {"image": base64}, 2 MNIST test digits (light on dark)       200, that digit
     5 %   JSON {"image": data URL}, 2 MNIST test digits                     200, that digit
     5 %   JSON {"images": [8 data URLs]}                                   200, the 8 digits in order
     5 %   multipart 280x280 transparent canvas PNG, 2 drawn digits          200, that digit
   3.5 %   text bytes sent as Content-Type image/png                        400 invalid_image
   3.5 %   multipart PNG cut in half (truncated)                            400 invalid_image
     3 %   JSON that is not an object (a list)                              400 invalid_json
     3 %   JSON {"image": "this is not base64!"}                             400 invalid_image
     3 %   JSON data URL of a blank 280x280 transparent canvas              422 no_digit
     3 %   text/plain body                                                  415 unsupported_media_type
     3 %   multipart upload of 1.5 MB (over MAX_UPLOAD_BYTES)               413 too_large
     3 %   GET /no-such-page                                                404 not_found

The Lua script counts the requests sent of each kind and the answers by status and detail
(error code, digit, or the digits of a batch). wrk cannot tell which request an answer belongs
to, so an answer is "unexpected" when there are more answers of its status (or of its status
and detail) than requests sent that call for it. After each round the script stops sending and
waits up to 5 s for the answers in flight, so that a request sent and not answered within 5 s
is lost; wrk's socket errors (connect, read, write, timeout) are lost responses too.

Memory (RSS of gunicorn's master plus workers) is read after a 5 s warm-up with the same mix
and after every round, when /healthz must answer 200. It prints a table per round and the
totals, then whether each goal is met: no 5xx, no lost response, no unexpected status (nor
error code or digit), RSS flat (end within 5 % or 10 MB of the start, whichever is larger).
Exit status 0 when all are met, 1 otherwise.
"""

import argparse
import base64
import json
import math
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import requests
from PIL import Image

from bench.footprint import total_rss_megabytes
from bench.service import RunningService, start_service, worker_pids
from model.decoding import encode_png
from tests.drawing import draw_digit, encode
from training.data import load_mnist

PATH = "/recognize.json"
MAX_UPLOAD_BYTES = 1024 * 1024  # the service's limit for this run
OVERSIZED_BYTES = 1536 * 1024  # the body of the 413 request
ROUND_SECONDS = 30
WARMUP_SECONDS = 5
DRAIN_SECONDS = 5  # after a round, how long answers in flight are awaited (must stay under wrk's 30 s timeout)
WRK_TIMEOUT = "30s"
HEALTH_TIMEOUT_SECONDS = 10
RSS_GROWTH_SHARE = 0.05  # "flat": the end within 5 % ...
RSS_GROWTH_MEGABYTES = 10.0  # ... or 10 MB of the start, whichever is larger
CANVAS_SIZE = (280, 280)
CANDIDATES = 80  # MNIST test images probed to pick ones the service reads right
SEED = 0
BOUNDARY = "----------------soakprobe"

# wrk script; Python prepends `local kinds = {...}` and `local deck = {...}` (see lua_table)
SOAK_SCRIPT = r"""
local ffi = require("ffi")
ffi.cdef[[
typedef struct { long tv_sec; long tv_nsec; } soak_timespec;
int clock_gettime(int clock_id, soak_timespec *tp);
]]
local clock = ffi.new("soak_timespec")
local function now()
  ffi.C.clock_gettime(1, clock)  -- CLOCK_MONOTONIC
  return tonumber(clock.tv_sec) + tonumber(clock.tv_nsec) / 1e9
end

for _, kind in ipairs(kinds) do
  local file = assert(io.open(kind.file, "rb"))
  kind.body = file:read("*all")
  file:close()
end

sent = {}     -- kind index -> requests sent
answers = {}  -- "status detail" -> answers received
local deadline = math.huge
local position = 0
local counter = 0

init = function(args)
  deadline = now() + tonumber(args[1])
end

-- after the deadline no new request: the connections wait while the answers in flight arrive
delay = function()
  if now() >= deadline then return 3600000 end
  return 0
end

request = function()
  position = position % #deck + 1
  local index = deck[position]
  local kind = kinds[index]
  if thread_number == 1 and not checked then
    checked = true  -- wrk calls request() once on its first thread to check the script: never sent
  else
    sent[index] = (sent[index] or 0) + 1
  end
  local headers, body = {}, kind.body
  if kind.filename then
    counter = counter + 1
    local boundary = string.format("----------------wrk%08x%08x", math.random(0, 0x7fffffff), counter)
    body = "--" .. boundary .. "\r\nContent-Disposition: form-data; name=\"image\"; filename=\"" .. kind.filename .. "\"\r\n"
      .. "Content-Type: " .. kind.part_type .. "\r\n\r\n" .. body .. "\r\n--" .. boundary .. "--\r\n"
    headers["Content-Type"] = "multipart/form-data; boundary=" .. boundary
  elseif kind.content_type ~= "" then
    headers["Content-Type"] = kind.content_type
  end
  if kind.method == "GET" then body = nil end
  return wrk.format(kind.method, kind.path, headers, body)
end

response = function(status, headers, body)
  local detail
  if status == 200 and body:find('"results"', 1, true) then
    local digits = {}
    for digit in body:gmatch('"digit"%s*:%s*(%d+)') do digits[#digits + 1] = digit end
    detail = "results=" .. table.concat(digits, ",")
  elseif status == 200 then
    detail = "digit=" .. (body:match('"digit"%s*:%s*(%d+)') or "?")
  else
    detail = body:match('"code"%s*:%s*"([%w_]+)"') or "?"
  end
  local key = status .. " " .. detail
  answers[key] = (answers[key] or 0) + 1
end

local threads = {}
setup = function(thread)
  threads[#threads + 1] = thread
  thread:set("thread_number", #threads)
end

local function encode(map)
  local parts = {}
  for key, value in pairs(map) do parts[#parts + 1] = string.format('"%s": %d', tostring(key), value) end
  return "{" .. table.concat(parts, ", ") .. "}"
end

done = function(summary, latency, requests)
  local all_sent, all_answers = {}, {}
  for _, thread in ipairs(threads) do
    for key, value in pairs(thread:get("sent")) do all_sent[key] = (all_sent[key] or 0) + value end
    for key, value in pairs(thread:get("answers")) do all_answers[key] = (all_answers[key] or 0) + value end
  end
  local e = summary.errors
  io.write(string.format(
    '\nSOAK {"requests": %d, "seconds": %f, "p50_ms": %f, "p99_ms": %f, "max_ms": %f, '
      .. '"connect": %d, "read": %d, "write": %d, "timeout": %d, "sent": %s, "answers": %s}\n',
    summary.requests, summary.duration / 1e6, latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    latency.max / 1000, e.connect, e.read, e.write, e.timeout, encode(all_sent), encode(all_answers)))
end
"""


@dataclass(frozen=True)
class Kind:
    """One kind of request in the mix and the answer it calls for."""

    name: str
    weight: int  # copies in the deck of 200
    expect: str  # "status detail", as the Lua script classifies answers
    body: bytes
    method: str = "POST"
    path: str = PATH
    content_type: str = ""  # the Content-Type header of a plain body ("" = none)
    filename: str | None = None  # a multipart upload of `body` in a field 'image' with this file name
    part_type: str = "image/png"

    @property
    def status(self) -> int:
        """The expected HTTP status."""
        return int(self.expect.split()[0])


@dataclass(frozen=True)
class Round:
    """What one wrk run measured, and the service's state after it."""

    seconds: int
    answered: int
    p50_ms: float
    p99_ms: float
    max_ms: float
    socket_errors: dict[str, int]  # connect, read, write, timeout
    sent: Counter  # kind index -> requests sent
    answers: Counter  # "status detail" -> answers
    expected: Counter  # "status detail" -> answers the requests sent call for
    rss: float = 0.0
    workers: tuple[int, ...] = ()
    healthy: bool = True

    @property
    def unanswered(self) -> int:
        """Requests sent and not answered before wrk stopped."""
        return sum(self.sent.values()) - sum(self.answers.values())

    @property
    def lost(self) -> int:
        """Requests sent and not answered, plus connections that could not even be made."""
        return max(0, self.unanswered) + self.socket_errors["connect"]

    @property
    def server_errors(self) -> int:
        """Answers with a 5xx status."""
        return sum(count for key, count in self.answers.items() if int(key.split()[0]) >= 500)

    @property
    def unexpected_statuses(self) -> int:
        """Answers beyond what the requests sent call for, by status alone."""
        return surplus(by_status(self.answers), by_status(self.expected))

    @property
    def unexpected_details(self) -> int:
        """Answers beyond what the requests sent call for, by status and error code or digit."""
        return surplus(self.answers, self.expected)


@dataclass
class Soak:
    """The whole run: the mix, the memory at the start and each round."""

    kinds: list[Kind]
    start_rss: float
    start_workers: tuple[int, ...]
    rounds: list[Round] = field(default_factory=list)
    log_errors: list[str] = field(default_factory=list)


def by_status(counts: Counter) -> Counter:
    """Counts by "status detail" folded into counts by status."""
    folded: Counter = Counter()
    for key, count in counts.items():
        folded[int(key.split()[0])] += count
    return folded


def surplus(observed: Counter, expected: Counter) -> int:
    """How many observed items exceed what was expected, key by key."""
    return sum(max(0, count - expected.get(key, 0)) for key, count in observed.items())


def multipart(kind: Kind, boundary: str = BOUNDARY) -> tuple[bytes, str]:
    """The body and Content-Type that the Lua script sends for a multipart kind."""
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="{kind.filename}"\r\n'
        f"Content-Type: {kind.part_type}\r\n\r\n"
    ).encode()
    return head + kind.body + f"\r\n--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def classify(status: int, body: bytes) -> str:
    """An answer as "status detail", the way the Lua script counts it."""
    try:
        answer = json.loads(body)
    except ValueError:
        return f"{status} ?"
    if status == 200 and "results" in answer:
        return f"{status} results=" + ",".join(str(item.get("digit", "?")) for item in answer["results"])
    if status == 200:
        return f"{status} digit={answer.get('digit', '?')}"
    return f"{status} {answer.get('error', {}).get('code', '?')}"


def probe(url: str, kind: Kind) -> str:
    """Send one request of `kind` by hand and classify the answer."""
    if kind.filename:
        body, content_type = multipart(kind)
    else:
        body, content_type = kind.body, kind.content_type
    headers = {"Content-Type": content_type} if content_type else {}
    response = requests.request(
        kind.method, url + kind.path, data=body if kind.method != "GET" else None, headers=headers, timeout=60
    )
    return classify(response.status_code, response.content)


def data_url(png: bytes) -> str:
    """A PNG as canvas.toDataURL() gives it."""
    return "data:image/png;base64," + base64.b64encode(png).decode()


def readable_digits(url: str, dataset) -> list[tuple[int, int]]:
    """(test index, label) of MNIST test images that the service reads right, uploaded as scans."""
    right = []
    for index in range(CANDIDATES):
        label = int(dataset.y_test[index])
        kind = Kind("probe", 0, f"200 digit={label}", encode_png(255 - dataset.x_test[index]), filename="digit.png")
        if probe(url, kind) == kind.expect:
            right.append((index, label))
    return right


def build_mix(url: str, dataset) -> list[Kind]:
    """The kinds of request in the mix, with MNIST digits and canvases that the service reads right."""
    right = readable_digits(url, dataset)
    first_of_class = {}
    for index, label in right:
        first_of_class.setdefault(label, index)
    if len(first_of_class) < 10:
        raise RuntimeError(
            f"the service misreads every probed MNIST test image of some class: {sorted(first_of_class)}"
        )
    others = [(index, label) for index, label in right if first_of_class[label] != index]
    kinds = [
        Kind(
            f"upload MNIST {label} (#{index})",
            11,
            f"200 digit={label}",
            encode_png(255 - dataset.x_test[index]),
            filename=f"{index}.png",
        )
        for label, index in sorted(first_of_class.items())
    ]
    for index, label in others[0:2]:
        image = base64.b64encode(encode_png(dataset.x_test[index])).decode()
        kinds.append(
            Kind(
                f"JSON base64 {label} (#{index})",
                5,
                f"200 digit={label}",
                json.dumps({"image": image}).encode(),
                content_type="application/json",
            )
        )
    for index, label in others[2:4]:
        body = json.dumps({"image": data_url(encode_png(dataset.x_test[index]))}).encode()
        kinds.append(
            Kind(f"JSON data URL {label} (#{index})", 5, f"200 digit={label}", body, content_type="application/json")
        )
    batch = others[4:12]
    body = json.dumps({"images": [data_url(encode_png(dataset.x_test[index])) for index, _ in batch]}).encode()
    labels = ",".join(str(label) for _, label in batch)
    kinds.append(
        Kind(f"JSON batch of {len(batch)}", 10, f"200 results={labels}", body, content_type="application/json")
    )
    canvases = [
        Kind(
            f"canvas 280x280 {digit}",
            5,
            f"200 digit={digit}",
            encode(draw_digit(digit, background=None)),
            filename="canvas.png",
        )
        for digit in range(10)
    ]
    kinds += [canvas for canvas in canvases if probe(url, canvas) == canvas.expect][:2]

    png = encode_png(255 - dataset.x_test[first_of_class[7]])
    blank = data_url(encode(Image.new("RGBA", CANVAS_SIZE, (0, 0, 0, 0))))
    rng = np.random.default_rng(SEED)
    kinds += [
        Kind(
            "text bytes as image/png",
            7,
            "400 invalid_image",
            b"this is not a picture of a digit\n" * 8,
            content_type="image/png",
        ),
        Kind("truncated PNG", 7, "400 invalid_image", png[: len(png) // 2], filename="cut.png"),
        Kind(
            "JSON not an object",
            6,
            "400 invalid_json",
            json.dumps([data_url(png)]).encode(),
            content_type="application/json",
        ),
        Kind(
            "JSON image not base64",
            6,
            "400 invalid_image",
            b'{"image": "this is not base64!"}',
            content_type="application/json",
        ),
        Kind(
            "blank canvas data URL",
            6,
            "422 no_digit",
            json.dumps({"image": blank}).encode(),
            content_type="application/json",
        ),
        Kind("text/plain body", 6, "415 unsupported_media_type", b"7", content_type="text/plain"),
        Kind(
            "upload of 1.5 MB",
            6,
            "413 too_large",
            rng.integers(0, 256, OVERSIZED_BYTES, dtype=np.uint8).tobytes(),
            filename="photo.png",
        ),
        Kind("GET unknown path", 6, "404 not_found", b"", method="GET", path="/no-such-page"),
    ]
    total = sum(kind.weight for kind in kinds)
    if total != 200:
        raise RuntimeError(f"the deck holds {total} requests, not 200 (a canvas or MNIST digit missing?)")
    return kinds


def lua_table(kinds: list[Kind], folder: Path) -> str:
    """Lua declarations of the kinds (bodies in files under `folder`) and of the shuffled deck."""
    lines = ["local kinds = {"]
    for number, kind in enumerate(kinds, start=1):
        body = folder / f"kind{number:02d}.bin"
        body.write_bytes(kind.body)
        fields = {
            "method": kind.method,
            "path": kind.path,
            "content_type": kind.content_type,
            "file": str(body),
            "part_type": kind.part_type,
        }
        if kind.filename:
            fields["filename"] = kind.filename
        for value in fields.values():
            if not value.isascii() or any(character in value for character in '"\\\n'):
                raise ValueError(f"cannot quote {value!r} in Lua")
        lines.append("  {" + ", ".join(f'{name} = "{value}"' for name, value in fields.items()) + "},")
    lines.append("}")
    deck = [number for number, kind in enumerate(kinds, start=1) for _ in range(kind.weight)]
    random.Random(SEED).shuffle(deck)
    lines.append("local deck = {" + ", ".join(map(str, deck)) + "}")
    return "\n".join(lines) + "\n"


def run_wrk(url: str, script: Path, clients: int, seconds: int, kinds: list[Kind]) -> Round:
    """One round: wrk sends the mix for `seconds`, then waits DRAIN_SECONDS for the answers in flight."""
    output = subprocess.run(
        [
            "wrk",
            "-t1",
            f"-c{clients}",
            f"-d{seconds + DRAIN_SECONDS}s",
            "--timeout",
            WRK_TIMEOUT,
            "-s",
            str(script),
            url,
            "--",
            str(seconds),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    summary = json.loads(output.split("SOAK ", 1)[1])
    sent = Counter({int(index): count for index, count in summary["sent"].items()})
    expected: Counter = Counter()
    for index, count in sent.items():
        expected[kinds[index - 1].expect] += count
    return Round(
        seconds,
        summary["requests"],
        summary["p50_ms"],
        summary["p99_ms"],
        summary["max_ms"],
        {kind: summary[kind] for kind in ("connect", "read", "write", "timeout")},
        sent,
        Counter(summary["answers"]),
        expected,
    )


def healthy(url: str) -> bool:
    """GET /healthz answers 200."""
    try:
        return requests.get(url + "/healthz", timeout=HEALTH_TIMEOUT_SECONDS).status_code == 200
    except requests.RequestException:
        return False


def log_errors(log: Path, workers: int) -> list[str]:
    """Lines of the service's log that tell of an error, a crash or a worker started after the first ones."""
    markers = ("Traceback", " ERROR ", "[ERROR]", "CRITICAL", "WORKER TIMEOUT", "Worker exiting")
    found, boots = [], 0
    for line in log.read_text(errors="replace").splitlines():
        boots += "Booting worker" in line
        if any(marker in line for marker in markers) or ("Booting worker" in line and boots > workers):
            found.append(line)
    return found


def soak(service: RunningService, kinds: list[Kind], script: Path, arguments) -> Soak:
    """Warm up, read the memory, then run the rounds, reading the memory and /healthz after each."""
    url = service.url + "/"
    master = service.process.pid
    run_wrk(url, script, arguments.clients, WARMUP_SECONDS, kinds)  # not counted
    result = Soak(kinds, total_rss_megabytes(master), tuple(worker_pids(master)))
    rounds = max(1, math.ceil(arguments.duration / arguments.round))
    for number in range(rounds):
        seconds = arguments.duration // rounds + (1 if number < arguments.duration % rounds else 0)
        measured = run_wrk(url, script, arguments.clients, seconds, kinds)
        ok = healthy(service.url)
        result.rounds.append(
            replace(measured, rss=total_rss_megabytes(master), workers=tuple(worker_pids(master)), healthy=ok)
        )
    return result


def report(result: Soak, arguments) -> bool:
    """The table per round, the totals and the goals; True when every goal is met."""
    print(
        f"{'round':<6} {'seconds':>7} {'requests':>9} {'req/s':>7} {'p50 ms':>7} {'p99 ms':>7} {'max ms':>7} {'5xx':>4} {'unexpected':>10} {'lost':>5} {'RSS MB':>7} {'/healthz':>8}"
    )
    print(f"{'start':<6} {'(after a ' + str(WARMUP_SECONDS) + ' s warm-up)':>72} {result.start_rss:>7.1f}")
    for number, measured in enumerate(result.rounds, start=1):
        print(
            f"{number:<6} {measured.seconds:>7} {measured.answered:>9,} {measured.answered / measured.seconds:>7.1f} {measured.p50_ms:>7.1f} "
            f"{measured.p99_ms:>7.1f} {measured.max_ms:>7.1f} {measured.server_errors:>4} {measured.unexpected_details:>10} {measured.lost:>5} "
            f"{measured.rss:>7.1f} {'200' if measured.healthy else 'FAILED':>8}"
        )
    rounds = result.rounds
    seconds = sum(measured.seconds for measured in rounds)
    answered = sum(measured.answered for measured in rounds)
    sent = sum(sum(measured.sent.values()) for measured in rounds)
    answers = sum((measured.answers for measured in rounds), Counter())
    expected = sum((measured.expected for measured in rounds), Counter())
    statuses, expected_statuses = by_status(answers), by_status(expected)
    server_errors = sum(measured.server_errors for measured in rounds)
    unexpected_statuses = sum(measured.unexpected_statuses for measured in rounds)
    unexpected_details = sum(measured.unexpected_details for measured in rounds)
    lost = sum(measured.lost for measured in rounds)
    unanswered = sum(max(0, measured.unanswered) for measured in rounds)
    socket_errors = {
        kind: sum(measured.socket_errors[kind] for measured in rounds)
        for kind in ("connect", "read", "write", "timeout")
    }
    end_rss = rounds[-1].rss
    growth = max(measured.rss for measured in rounds) - result.start_rss
    allowed = max(RSS_GROWTH_SHARE * result.start_rss, RSS_GROWTH_MEGABYTES)
    restarts = sum(
        1
        for before, after in zip(
            [result.start_workers] + [m.workers for m in rounds], [m.workers for m in rounds], strict=False
        )
        if before != after
    )
    health_failures = sum(1 for measured in rounds if not measured.healthy)
    valid = sum(kind.weight for kind in result.kinds if kind.status < 400) / 2

    print()
    print(
        f"{'duration':<24} {seconds} s in {len(rounds)} round{'s' if len(rounds) > 1 else ''} of up to {arguments.round} s "
        f"(after each, {DRAIN_SECONDS} s for the answers in flight), "
        f"{arguments.clients} clients, {arguments.workers} workers"
    )
    print(
        f"{'traffic mix':<24} {len(result.kinds)} kinds of request, {valid:.0f} % valid, {100 - valid:.0f} % invalid (module docstring)"
    )
    print(f"{'requests':<24} {answered:,} answered of {sent:,} sent")
    print(f"{'requests/s':<24} {answered / seconds:,.1f}")
    print(
        f"{'by status (expected)':<24} "
        + "   ".join(
            f"{status}: {statuses[status]:,} ({expected_statuses[status]:,})"
            for status in sorted(statuses | expected_statuses)
        )
    )
    print(f"{'5xx':<24} {server_errors}")
    print(f"{'unexpected statuses':<24} {unexpected_statuses}")
    print(
        f"{'unexpected codes/digits':<24} {unexpected_details}"
        + (
            "  (surplus: "
            + ", ".join(
                f"{key} x{count - expected.get(key, 0)}"
                for key, count in sorted(answers.items())
                if count > expected.get(key, 0)
            )
            + ")"
            if unexpected_details
            else ""
        )
    )
    print(
        f"{'lost responses':<24} {lost} ({unanswered} sent and not answered within {DRAIN_SECONDS} s of the round's end; wrk socket errors: "
        + ", ".join(f"{kind} {count}" for kind, count in socket_errors.items())
        + ")"
    )
    print(
        f"{'p50 latency':<24} {statistics.median(measured.p50_ms for measured in rounds):.1f} ms (median of the rounds)"
    )
    print(
        f"{'p99 latency':<24} {max(measured.p99_ms for measured in rounds):.1f} ms (worst round); max {max(measured.max_ms for measured in rounds):.1f} ms"
    )
    print(
        f"{'RSS (master + workers)':<24} start {result.start_rss:.1f} MB, end {end_rss:.1f} MB ({end_rss - result.start_rss:+.1f} MB), max growth {growth:+.1f} MB"
    )
    print(
        f"{'worker restarts':<24} {restarts} (rounds after which the worker pids changed); /healthz failures {health_failures}"
    )
    print(
        f"{'server log':<24} {len(result.log_errors)} error, crash or restart lines"
        + "".join(f"\n{'':<24} {line[:150]}" for line in result.log_errors[:5])
    )

    basis = (
        f"{RSS_GROWTH_SHARE:.0%} of the start"
        if RSS_GROWTH_SHARE * result.start_rss >= RSS_GROWTH_MEGABYTES
        else f"{RSS_GROWTH_MEGABYTES:.0f} MB, more than {RSS_GROWTH_SHARE:.0%}"
    )
    goals = [
        ("0 5xx", server_errors == 0),
        (
            "0 lost responses (no socket error, every request sent answered)",
            lost == 0 and sum(socket_errors.values()) == 0,
        ),
        ("0 unexpected statuses", unexpected_statuses == 0),
        ("0 unexpected error codes or digits", unexpected_details == 0),
        (
            f"RSS flat: end within {allowed:.1f} MB ({basis}) of the start, {end_rss - result.start_rss:+.1f} MB",
            abs(end_rss - result.start_rss) <= allowed,
        ),
    ]
    print()
    for goal, met in goals:
        print(f"[{'met' if met else 'NOT MET'}] {goal}")
    return all(met for _, met in goals)


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__.split("\n")[0])
    parser.add_argument("--data", help="path to an npz in Keras's mnist.npz layout (default: the Keras download)")
    parser.add_argument("--duration", type=int, default=600, help="seconds of load in all (default: %(default)s)")
    parser.add_argument("--clients", type=int, default=16, help="concurrent connections (default: %(default)s)")
    parser.add_argument(
        "--workers", type=int, default=2, help="gunicorn workers, WEB_CONCURRENCY (default: %(default)s)"
    )
    parser.add_argument(
        "--round",
        type=int,
        default=ROUND_SECONDS,
        help="seconds per round, memory read after each (default: %(default)s)",
    )
    arguments = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        print("wrk is not installed: apt-get install wrk (Debian/Ubuntu) or brew install wrk", file=sys.stderr)
        return 2
    if arguments.duration < 1 or arguments.round < 1 or arguments.clients < 1:
        parser.error("--duration, --round and --clients must be at least 1")

    dataset = load_mnist(arguments.data)
    environment = {"WEB_CONCURRENCY": str(arguments.workers), "MAX_UPLOAD_BYTES": str(MAX_UPLOAD_BYTES)}
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        with start_service(folder / "service.log", environment) as service:
            kinds = build_mix(service.url, dataset)
            script = folder / "soak.lua"
            script.write_text(lua_table(kinds, folder) + SOAK_SCRIPT)
            print(
                f"{time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} CPUs, this service as its Procfile starts it "
                f"(WEB_CONCURRENCY={arguments.workers}, MAX_UPLOAD_BYTES={MAX_UPLOAD_BYTES:,}), {arguments.clients} wrk clients, "
                f"{arguments.duration} s of mixed traffic\n",
                flush=True,
            )
            result = soak(service, kinds, script, arguments)
            result.log_errors = log_errors(folder / "service.log", arguments.workers)  # before the service stops
    return 0 if report(result, arguments) else 1


if __name__ == "__main__":
    sys.exit(main())
