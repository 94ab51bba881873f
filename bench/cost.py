"""Cost battery: hostile inputs (bench/hostile.py) against the Procfile's gunicorn, two at a time; memory, time, survival.

    python -m bench.cost [--only PATTERN] [--repeat N] [--cap-mb 4096]

Starts the Procfile's web command with the service's default settings and only WEB_CONCURRENCY=2
set, as on the 512 MB dyno (bench.service.start_service), warms both workers with an ordinary digit
and number, and waits until it is idle. Then for each case and route (PATTERN: a regular expression
matched against "name route", e.g. 'limit-.*number', 'batch' or '^(?!fit-)'), two clients post the
same body at once (one per worker) while a thread reads the resident memory (VmRSS) of the master
and of every worker every 20 ms, re-reading the master's children each time. Per case the table
gives the answers (status and error code; a batch's results counted by outcome), the seconds of the
slower answer, the peak of the total RSS, the sum of the processes' own peaks (VmHWM, reset before
the case through /proc/PID/clear_refs: a spike shorter than a sample still shows there), the total
~1 s after the answers, the growth of the fuller worker still there over its idle RSS, how many
workers worked, the workers replaced ("died": timed out, killed or crashed; "recycled": exited by
themselves after their request, as the service does with a worker that kept a request's memory)
and the service log's alarms (WORKER TIMEOUT, Traceback, Logging error, a killed or failed worker).

Goals, each case: total RSS <= 512 MB, both as sampled and as the sum of the processes' own peaks
(what the dyno holds when the two requests' peaks coincide, as two clients can arrange), both
answers within 10 s, JSON answers of 200 or the right error (413 too_large, 422 no_digit or
too_many_marks; a batch's results likewise), never a 5xx nor HTML, no worker died, each worker
still there within 25 % of its idle RSS, no alarm in the log. A case whose total passes --cap-mb
has the master and its workers killed (SIGKILL, by pid) at once, so that it cannot take the machine
down, and fails; the service is started again for the next case. The summary line gives the peaks
of all cases, the slowest answer and PASS or FAIL; the exit status is 1 on FAIL (after the whole
table).
"""

import argparse
import math
import os
import re
import signal
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import requests
from PIL import Image

from bench.hostile import CASES, DIGIT_ROUTE, NUMBER_ROUTE, Bodies, Case
from bench.service import RunningService, start_service, worker_pids
from tests.drawing import draw_digit, encode
from web.errors import ERRORS
from web.settings import SETTINGS

# The dyno's deploy: the Procfile's gunicorn with two workers, nothing else set.
WORKERS = 2
ENVIRONMENT = {"WEB_CONCURRENCY": str(WORKERS)}
# Clients posting each case at once: one per worker.
CLIENTS = WORKERS
GOAL_MEGABYTES = 512.0
GOAL_SECONDS = 10.0
# A worker is "back" when its RSS after a case is within this share above its idle RSS.
GOAL_IDLE_GROWTH = 0.25
# The errors a hostile but valid input may rightly get, besides 200.
ACCEPTED_ERRORS = ("too_large", "no_digit", "too_many_marks")
SAMPLE_SECONDS = 0.02
SETTLE_SECONDS = 1.0
# Each client waits this long for its answer (gunicorn kills a worker after the Procfile's 30 s).
CLIENT_TIMEOUT = 40.0
# Past this total RSS the service is killed: no case may take the machine down.
CAP_MEGABYTES = 4096.0
# Idle: over one interval, no process's RSS moves by more than IDLE_MEGABYTES nor uses IDLE_CPU_SECONDS of CPU.
IDLE_INTERVAL = 1.0
IDLE_MEGABYTES = 1.0
IDLE_CPU_SECONDS = 0.05
IDLE_TIMEOUT = 90.0
# A worker that used this much CPU during a case took part in it.
BUSY_CPU_SECONDS = 0.05
# Rounds of warm-up pairs (each route) before the idle RSS is read.
WARMUP_ROUNDS = 3
# Service log lines that must not appear, with the tag the table shows.
LOG_ALARMS = {
    "WORKER TIMEOUT": "timeout",
    "Traceback": "traceback",
    "Logging error": "logging",
    "was sent SIG": "killed",
    "exited with code": "exited",
}
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
ROUTE_LABELS = {DIGIT_ROUTE: "digit", NUMBER_ROUTE: "number"}


# --- the process tree -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ProcessFigures:
    """One look at a process: resident memory now and its peak (VmHWM) in MB, CPU seconds used so far."""

    rss: float
    peak: float
    cpu: float


def process_figures(pid: int) -> ProcessFigures | None:
    """A process's memory (from /proc/PID/status) and CPU time (/proc/PID/stat); None when it is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        rss, peak = (int(status.split(name + ":")[1].split()[0]) / 1024 for name in ("VmRSS", "VmHWM"))
    except (OSError, IndexError):  # gone, or a zombie without memory
        return None
    return ProcessFigures(rss, peak, (int(stat[11]) + int(stat[12])) / CLOCK_TICKS)


def tree_figures(master: int) -> dict[int, ProcessFigures]:
    """The master and each of its children now, by pid (empty when the master is gone)."""
    try:
        pids = [master, *worker_pids(master)]
    except OSError:
        return {}
    figures = {pid: process_figures(pid) for pid in pids}
    return {pid: value for pid, value in figures.items() if value is not None}


def tree_megabytes(master: int) -> dict[int, float]:
    """The resident memory of the master and each of its children now, by pid, in MB."""
    return {pid: figures.rss for pid, figures in tree_figures(master).items()}


def reset_peaks(pids: list[int]) -> None:
    """Reset the processes' VmHWM to their RSS now (Linux's clear_refs 5)."""
    for pid in pids:
        try:
            Path(f"/proc/{pid}/clear_refs").write_text("5")
        except OSError:
            pass


class TreeSampler:
    """Reads the total RSS of a master and its children every SAMPLE_SECONDS in a thread; kills them all past a cap."""

    def __init__(self, master: int, cap_megabytes: float = CAP_MEGABYTES, interval: float = SAMPLE_SECONDS) -> None:
        self.master = master
        self.cap_megabytes = cap_megabytes
        self.interval = interval
        self.peak_megabytes = 0.0
        self.last: dict[int, ProcessFigures] = {}  # each process's figures when last seen
        self.samples = 0
        self.capped = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def __enter__(self) -> "TreeSampler":
        self.sample()
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while True:
            started = time.monotonic()
            self.sample()
            if self._stop.wait(max(0.0, self.interval - (time.monotonic() - started))):
                self.sample()  # one last look as the case ends
                return

    def sample(self) -> None:
        """Read the tree once: keep the peak and each process's figures, kill everything past the cap."""
        figures = tree_figures(self.master)
        if not figures:
            return
        total = sum(value.rss for value in figures.values())
        self.samples += 1
        self.last.update(figures)
        self.peak_megabytes = max(self.peak_megabytes, total)
        if total > self.cap_megabytes and not self.capped:
            self.capped = True
            kill_tree(list(figures))


def kill_tree(pids: list[int]) -> None:
    """SIGKILL these processes, by pid, the master (first) before its workers so that none is replaced."""
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


# --- answers --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    """One client's answer: status (None: none came), seconds, whether it was JSON, and what it said in short."""

    status: int | None
    seconds: float
    is_json: bool
    code: str | None  # the error code of an error answer
    label: str  # e.g. "200", "422 too_many_marks", "200 [52 too_many_marks, 12 ok]", "no answer (timeout)"
    acceptable: bool  # a 200, or a JSON error this input may rightly get (ACCEPTED_ERRORS); a batch's results too


def error_code(payload: object) -> str | None:
    """The code of an {"error": {"code": ...}} body or result, if it is one."""
    if isinstance(payload, dict) and isinstance(payload.get("error"), dict):
        return payload["error"].get("code")
    return None


def answer_from(response: requests.Response, seconds: float) -> Answer:
    """Classify an HTTP answer."""
    status = response.status_code
    is_json = response.headers.get("Content-Type", "").startswith("application/json")
    try:
        payload = response.json() if is_json else None
    except ValueError:
        is_json, payload = False, None
    code = error_code(payload)
    label = (
        f"{status}"
        + (f" {code}" if code else "")
        + ("" if is_json else f" {response.headers.get('Content-Type', '?').split(';')[0]}")
    )
    accepted = {(ERRORS[name].status, name) for name in ACCEPTED_ERRORS}
    acceptable = is_json and (status == 200 or (status, code) in accepted)
    if status == 200 and isinstance(payload, dict) and isinstance(payload.get("results"), list):
        # a batch: its results counted by outcome; each must be an answer or an accepted error
        outcomes = Counter(error_code(result) or "ok" for result in payload["results"])
        label += " [" + ", ".join(f"{count} {outcome}" for outcome, count in outcomes.most_common()) + "]"
        acceptable = acceptable and set(outcomes) <= {"ok", *ACCEPTED_ERRORS}
    return Answer(status, seconds, is_json, code, label, acceptable)


def post(url: str, body: bytes, content_type: str, timeout: float = CLIENT_TIMEOUT) -> Answer:
    """POST a body and classify the answer; a timeout or a dropped connection is an answer with no status."""
    started = time.perf_counter()
    try:
        response = requests.post(url, data=body, headers={"Content-Type": content_type}, timeout=timeout)
    except requests.Timeout:
        return Answer(None, time.perf_counter() - started, False, None, "no answer (timeout)", False)
    except requests.ConnectionError:
        return Answer(None, time.perf_counter() - started, False, None, "no answer (closed)", False)
    return answer_from(response, time.perf_counter() - started)


def post_together(
    url: str, body: bytes, content_type: str, clients: int = CLIENTS, timeout: float = CLIENT_TIMEOUT
) -> list[Answer]:
    """The same body posted by `clients` clients at the same moment; their answers."""
    start = threading.Barrier(clients)

    def one(_: int) -> Answer:
        start.wait()
        return post(url, body, content_type, timeout)

    with ThreadPoolExecutor(clients) as pool:
        return list(pool.map(one, range(clients)))


# --- the service ----------------------------------------------------------------------------------


def ordinary_bodies() -> dict[str, bytes]:
    """An ordinary request per route (a drawn 7; a drawn 3 and 8 side by side), for warming the workers."""
    three, eight = draw_digit(3), draw_digit(8)
    number = Image.new("RGB", (three.width * 2, three.height), "white")
    number.paste(three, (0, 0))
    number.paste(eight, (three.width, 0))
    return {DIGIT_ROUTE: encode(draw_digit(7)), NUMBER_ROUTE: encode(number)}


class Service:
    """The Procfile's gunicorn with the default settings and WEB_CONCURRENCY=2, warmed; started again after a kill."""

    def __init__(self, folder: Path, cap_megabytes: float = CAP_MEGABYTES) -> None:
        self.folder = Path(folder)
        self.cap_megabytes = cap_megabytes
        self.starts = 0
        self.running: RunningService | None = None
        self.idle: dict[int, float] = {}  # idle RSS by pid (master and workers), MB
        self._stack: ExitStack | None = None
        self._warmup = ordinary_bodies()

    def __enter__(self) -> "Service":
        self.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()

    @property
    def master(self) -> int:
        """The gunicorn master's pid."""
        return self.running.process.pid

    @property
    def url(self) -> str:
        """The service's base URL."""
        return self.running.url

    @property
    def log(self) -> Path:
        """The current gunicorn's output."""
        return self.running.log

    def workers(self) -> list[int]:
        """The workers' pids now, sorted (empty when the master is gone)."""
        try:
            return sorted(worker_pids(self.master))
        except OSError:
            return []

    def start(self) -> None:
        """Start gunicorn, warm both workers and read the idle RSS."""
        self.starts += 1
        self._stack = ExitStack()
        self.running = self._stack.enter_context(
            start_service(self.folder / f"gunicorn-{self.starts}.log", ENVIRONMENT)
        )
        self.settle()

    def stop(self) -> None:
        """Stop gunicorn (a killed one is only reaped)."""
        if self._stack is not None:
            self._stack.close()
            self._stack = None

    def settle(self) -> None:
        """Wait for all workers, warm them with ordinary requests, wait until idle and note the new processes' idle RSS."""
        deadline = time.monotonic() + IDLE_TIMEOUT
        while len(self.workers()) < WORKERS and time.monotonic() < deadline:
            time.sleep(0.1)
        for _ in range(WARMUP_ROUNDS):
            for route, body in self._warmup.items():
                post_together(self.url + route, body, "image/png", timeout=CLIENT_TIMEOUT)
        idle = wait_until_idle(self.master)
        self.idle = {pid: self.idle.get(pid, megabytes) for pid, megabytes in idle.items()}

    def ready(self) -> None:
        """Make sure a whole, idle service is there: started again if it was killed, settled if a worker was replaced."""
        if self.running.process.poll() is not None:
            self.stop()
            self.start()
        elif set(self.workers()) - set(self.idle) or len(self.workers()) < WORKERS:
            self.settle()

    def idle_reference(self, pid: int) -> float:
        """The idle RSS a worker should come back to: its own, or the mean of the first workers' for a new one."""
        workers = [megabytes for known, megabytes in self.idle.items() if known != self.master]
        return self.idle.get(pid, statistics.mean(workers) if workers else 0.0)

    def log_size(self) -> int:
        """The log's length now, in bytes."""
        return self.log.stat().st_size

    def log_since(self, offset: int) -> str:
        """What the current gunicorn wrote after `offset`."""
        with open(self.log, "rb") as log:
            log.seek(offset)
            return log.read().decode(errors="replace")


def wait_until_idle(master: int, timeout: float = IDLE_TIMEOUT) -> dict[int, float]:
    """Wait until no process of the tree moves its RSS or uses CPU over IDLE_INTERVAL; the RSS by pid then."""
    deadline = time.monotonic() + timeout
    before = tree_figures(master)
    while True:
        time.sleep(IDLE_INTERVAL)
        now = tree_figures(master)
        steady = (
            set(now) == set(before)
            and len(now) == WORKERS + 1
            and all(
                abs(now[pid].rss - before[pid].rss) <= IDLE_MEGABYTES
                and now[pid].cpu - before[pid].cpu <= IDLE_CPU_SECONDS
                for pid in now
            )
        )
        if steady or time.monotonic() > deadline:
            return {pid: figures.rss for pid, figures in now.items()}
        before = now


# --- one case -------------------------------------------------------------------------------------


def alarms_in(log: str) -> list[str]:
    """The alarm tags (LOG_ALARMS) of a stretch of the service's log."""
    return sorted({tag for line in log.splitlines() for alarm, tag in LOG_ALARMS.items() if alarm in line})


def recycled_in(log: str, pid: int) -> bool:
    """Whether a worker that is gone left by itself (gunicorn's "Worker exiting"), not timed out, killed or crashed."""
    died = (f"WORKER TIMEOUT (pid:{pid})", f"Worker (pid:{pid}) was sent", f"Worker (pid:{pid}) exited with code")
    return f"Worker exiting (pid: {pid})" in log and not any(line in log for line in died)


@dataclass
class CaseResult:
    """What one case cost: its answers, time, memory, and what became of the workers."""

    name: str
    route: str
    body_bytes: int
    answers: list[Answer]
    seconds: float  # the slower answer's
    peak_megabytes: float  # the sampled total RSS's peak during the case
    peak_sum_megabytes: float  # the sum of each process's own peak (VmHWM) during the case
    after_megabytes: float  # the total RSS once the case settled (nan when the service was killed)
    worker_growth: float  # the largest (RSS after / idle RSS - 1) of the workers still there after the case (nan: none)
    busy_workers: int  # workers that used CPU during the case
    died: int  # workers that timed out, were killed or crashed (or all, when the service was killed at the cap)
    recycled: int  # workers that exited by themselves after their request (the service's own restart of a worker)
    alarms: list[str]  # the log's alarm tags
    capped: bool  # the total passed the cap and the service was killed
    samples: int = 0
    failures: list[str] = field(default_factory=list)

    @property
    def worst_megabytes(self) -> float:
        """The larger of the sampled peak and the sum of the processes' own peaks: what the dyno sees at worst."""
        return max(self.peak_megabytes, self.peak_sum_megabytes)

    @property
    def same_workers(self) -> bool:
        """Whether the workers after the case are the ones before it."""
        return not self.died and not self.recycled

    def assess(self) -> list[str]:
        """The goals this case missed (and keep them)."""
        failures = []
        if self.capped:
            failures.append("capped")
        if self.worst_megabytes > GOAL_MEGABYTES:
            failures.append("memory")
        if self.seconds > GOAL_SECONDS:
            failures.append("slow")
        if any(answer.status is None for answer in self.answers):
            failures.append("no answer")
        if any(answer.status is not None and answer.status >= 500 for answer in self.answers):
            failures.append("5xx")
        if any(answer.status is not None and not answer.is_json for answer in self.answers):
            failures.append("not JSON")
        if any(
            answer.status is not None and answer.status < 500 and answer.is_json and not answer.acceptable
            for answer in self.answers
        ):
            failures.append("status")
        if self.died:
            failures.append("died")
        if self.worker_growth > GOAL_IDLE_GROWTH:  # nan (no worker left to compare) is not
            failures.append("not back")
        if self.alarms:
            failures.append("log")
        self.failures = failures
        return failures


def measure_case(service: Service, case: Case, route: str, body: bytes) -> CaseResult:
    """Post a case's body from two clients at once and measure what it costs the service."""
    service.ready()
    master = service.master
    workers = service.workers()
    reset_peaks([master, *workers])
    log_offset = service.log_size()
    with TreeSampler(master, service.cap_megabytes) as sampler:
        before = dict(sampler.last)
        answers = post_together(service.url + route, body, case.content_type)
    busy = sum(
        1
        for pid in workers
        if pid in before and pid in sampler.last and sampler.last[pid].cpu - before[pid].cpu >= BUSY_CPU_SECONDS
    )
    time.sleep(SETTLE_SECONDS)
    after = tree_megabytes(master)
    log = service.log_since(log_offset)
    gone = [pid for pid in workers if pid not in after]
    recycled = 0 if sampler.capped else sum(recycled_in(log, pid) for pid in gone)
    result = CaseResult(
        name=case.name,
        route=route,
        body_bytes=len(body),
        answers=answers,
        seconds=max(answer.seconds for answer in answers),
        peak_megabytes=sampler.peak_megabytes,
        peak_sum_megabytes=sum(sampler.last[pid].peak for pid in [master, *workers] if pid in sampler.last),
        after_megabytes=sum(after.values()) if after else float("nan"),
        worker_growth=max(
            (after[pid] / service.idle_reference(pid) - 1.0 for pid in workers if pid in after), default=float("nan")
        ),
        busy_workers=busy,
        died=len(gone) - recycled,
        recycled=recycled,
        alarms=alarms_in(log),
        capped=sampler.capped,
        samples=sampler.samples,
    )
    result.assess()
    return result


# --- the table ------------------------------------------------------------------------------------

HEADER = (
    f"{'case':<26} {'route':<6} {'bytes':>9}  {'answers':<40} {'s':>6} {'peak MB':>8} {'peaks MB':>8} {'after MB':>8}"
    f" {'worker':>6} {'busy':>4}  {'replaced':<11} {'log':<14} verdict"
)


def answers_label(answers: list[Answer]) -> str:
    """The answers in short: one label with a count when they agree."""
    labels = [answer.label for answer in answers]
    return f"{labels[0]} x{len(labels)}" if len(set(labels)) == 1 else " | ".join(labels)


def replaced_label(result: CaseResult) -> str:
    """How many workers died or were recycled during the case."""
    parts = [f"{result.died} died"] * bool(result.died) + [f"{result.recycled} recycled"] * bool(result.recycled)
    return ", ".join(parts) or "no"


def row(result: CaseResult) -> str:
    """One line of the table."""
    growth = "-" if math.isnan(result.worker_growth) else f"{result.worker_growth:+.0%}"
    after = "-" if math.isnan(result.after_megabytes) else f"{result.after_megabytes:.0f}"
    peak = f">{result.peak_megabytes:.0f}" if result.capped else f"{result.peak_megabytes:.0f}"
    verdict = "FAIL: " + ", ".join(result.failures) if result.failures else "ok"
    return (
        f"{result.name:<26} {ROUTE_LABELS.get(result.route, result.route):<6} {result.body_bytes:>9,}  {answers_label(result.answers):<40}"
        f" {result.seconds:>6.2f} {peak:>8} {result.peak_sum_megabytes:>8.0f} {after:>8} {growth:>6} {result.busy_workers:>2}/{WORKERS}"
        f"  {replaced_label(result):<11} {','.join(result.alarms) or '-':<14} {verdict}"
    )


def summary(results: list[CaseResult]) -> tuple[str, bool]:
    """The closing line (peak of all cases, slowest answer, counts of each failure) and whether all goals are met."""
    if not results:
        return "no case run", False
    highest = max(results, key=lambda result: result.peak_megabytes)
    highest_sum = max(results, key=lambda result: result.peak_sum_megabytes)
    slowest = max(results, key=lambda result: result.seconds)
    failed = [result for result in results if result.failures]
    counts = Counter(failure for result in results for failure in result.failures)
    recycling = sum(1 for result in results if result.recycled)
    text = (
        f"peak {'>' if highest.capped else ''}{highest.peak_megabytes:.0f} MB ({highest.name} {ROUTE_LABELS[highest.route]}),"
        f" sum of peaks {highest_sum.peak_sum_megabytes:.0f} MB ({highest_sum.name} {ROUTE_LABELS[highest_sum.route]}),"
        f" slowest {slowest.seconds:.1f} s ({slowest.name} {ROUTE_LABELS[slowest.route]}); workers recycled in {recycling} cases;"
        f" goals: peak and sum of peaks <= {GOAL_MEGABYTES:.0f} MB, answers <= {GOAL_SECONDS:.0f} s, JSON 200/413/422, no 5xx, no worker died,"
        f" workers within {GOAL_IDLE_GROWTH:.0%} of idle -> "
        + (
            "PASS"
            if not failed
            else f"FAIL ({len(failed)} of {len(results)} cases: "
            + ", ".join(f"{name} {count}" for name, count in counts.most_common())
            + ")"
        )
    )
    return text, not failed


def idle_line(service: Service) -> str:
    """The service's idle RSS: total, master and each worker."""
    master = service.idle.get(service.master, 0.0)
    workers = [megabytes for pid, megabytes in sorted(service.idle.items()) if pid != service.master]
    return (
        f"idle RSS: {master + sum(workers):.1f} MB (master {master:.1f} MB, workers "
        + " + ".join(f"{megabytes:.1f}" for megabytes in workers)
        + f" MB); cold start {service.running.cold_start_seconds:.1f} s"
    )


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(prog="python -m bench.cost", description=__doc__.split("\n")[0])
    parser.add_argument("--only", help="regular expression matched against 'name route' (route: digit or number)")
    parser.add_argument("--repeat", type=int, default=1, help="times each case is run (default: %(default)s)")
    parser.add_argument(
        "--cap-mb",
        type=float,
        default=CAP_MEGABYTES,
        help="total RSS at which the service is killed (default: %(default)s)",
    )
    arguments = parser.parse_args(argv)

    pairs = [
        (case, route)
        for case in CASES
        for route in case.routes
        if arguments.only is None or re.search(arguments.only, f"{case.name} {ROUTE_LABELS[route]}")
    ]
    if not pairs:
        print("no case matches", arguments.only)
        return 1
    overrides = [item.name for item in SETTINGS if item.name in os.environ and item.name not in ("PORT", *ENVIRONMENT)]
    if overrides:
        print(
            "warning: this environment sets the service's",
            ", ".join(overrides),
            "(the battery is meant for the defaults)",
        )
    started = time.monotonic()
    results: list[CaseResult] = []
    with tempfile.TemporaryDirectory(prefix="cost-") as folder:
        bodies = Bodies(Path(folder))
        for case in dict.fromkeys(case for case, _ in pairs):
            bodies.path(case)
        print(
            f"made {len(bodies.seconds)} bodies in {sum(bodies.seconds.values()):.1f} s; {len(pairs)} case-routes x {arguments.repeat}",
            flush=True,
        )
        with Service(Path(folder), arguments.cap_mb) as service:
            print(idle_line(service), flush=True)
            print(HEADER, flush=True)
            for _ in range(arguments.repeat):
                for case, route in pairs:
                    starts = service.starts
                    result = measure_case(service, case, route, bodies.body(case))
                    results.append(result)
                    print(row(result), flush=True)
                    if result.capped:
                        service.ready()
                    if service.starts != starts:
                        print(f"  (service started again) {idle_line(service)}", flush=True)
    text, passed = summary(results)
    print(text)
    print(f"battery: {time.monotonic() - started:.0f} s")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
