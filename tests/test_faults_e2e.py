"""End to end, with the Procfile's gunicorn: bad settings, well-formed logs, nothing private in Sentry, and faults
(the metrics folder removed, a worker killed by the system, a full /tmp) that never stop recognition."""

import base64
import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from bench.service import PROJECT_ROOT, free_port, procfile_command, start_service, worker_pids
from tests.drawing import draw_digit, encode

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

SEVEN = encode(draw_digit(7, background=None))
API_KEY = "operators-own-key-4f1c2d9e8b7a"
# The commit a Heroku dyno's HEROKU_BUILD_COMMIT names.
HEROKU_COMMIT = "4f1c2d9e8b7a4f1c2d9e8b7a4f1c2d9e8b7a4f1c"
# A line gunicorn writes: "[2026-12-04 21:58:53 +0000] [8416] [INFO] Starting gunicorn 27.0.1".
GUNICORN_LINE = re.compile(
    r"^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d [+-]\d{4}\] \[\d+\] \[(DEBUG|INFO|WARNING|ERROR|CRITICAL)\] \S"
)
# A line the app writes: "2026-12-04 21:58:54,552 INFO model.classifier: loaded model ...".
APP_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (DEBUG|INFO|WARNING|ERROR|CRITICAL) [\w.]+: \S")
# A line of a traceback under an ERROR record.
TRACEBACK_LINE = re.compile(
    r"^(Traceback \(most recent call last\):|\s+\S.*|\s*\^+|During handling of the above exception.*|"
    r"The above exception was the direct cause.*|[\w.]+(Error|Exception|Exit)(: .*)?|)$"
)
# What LiteRT's XNNPACK prints once per network load, outside Python's logging.
LITERT_LINE = "INFO: Created TensorFlow Lite XNNPACK delegate for CPU."


def recognize(url: str) -> requests.Response:
    """POST the canvas seven to /recognize.json."""
    return requests.post(url + "/recognize.json", data=SEVEN, headers={"Content-Type": "image/png"}, timeout=30)


def assert_reads_seven(url: str) -> None:
    """The service answers a recognition with the right digit."""
    response = recognize(url)
    assert response.status_code == 200 and response.json()["digit"] == 7, response.text[:300]


def wait_for(condition, timeout: float = 20.0, step: float = 0.1):
    """Poll `condition` until it returns something true, and return that; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(step)
    raise AssertionError(f"not within {timeout} s: {condition}")


def assert_every_line_well_formed(log: str) -> None:
    """Every line starts a record of gunicorn's or the app's format (or is LiteRT's note), or continues an ERROR record's
    traceback; no logging error at all."""
    assert "--- Logging error ---" not in log, log[-3000:]
    in_error = False
    for line in log.splitlines():
        record = GUNICORN_LINE.match(line) or APP_LINE.match(line)
        if record:
            in_error = record[1] in ("ERROR", "CRITICAL")
        else:
            assert line == LITERT_LINE or (in_error and TRACEBACK_LINE.match(line)), line


# --- settings ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("variable", "value", "shown"),
    [
        ("MAX_UPLOAD_BYTES", "abc", "'abc'"),
        ("REQUEST_READ_TIMEOUT", "0", "'0'"),
        ("MAX_IMAGE_PIXELS", "-5", "'-5'"),
        ("WEB_CONCURRENCY", "two", "'two'"),
        ("MODEL_RUNTIME", "tensorflow", "'tensorflow'"),
        ("API_KEYS", "a key with spaces", "(value not shown)"),
    ],
)
def test_a_bad_setting_stops_the_service_with_one_line_naming_it(variable, value, shown):
    environment = {
        **os.environ,
        "PORT": str(free_port()),
        variable: value,
        "PATH": f"{Path(os.sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
    }
    started = time.monotonic()
    finished = subprocess.run(
        ["bash", "-c", procfile_command()],
        cwd=PROJECT_ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert finished.returncode != 0
    assert time.monotonic() - started < 10  # it never got as far as loading the networks
    lines = (finished.stdout + finished.stderr).splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"digit-recognition: {variable}={shown} is not allowed: "), lines[0]
    if variable == "API_KEYS":
        assert value not in lines[0]


# --- logs and privacy ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def service(sentry, tmp_path_factory):
    """Two workers, Sentry on (to a local receiver, with the SDK's defaults, as on a Heroku dyno), API keys required,
    the debug routes on."""
    environment = {
        "WEB_CONCURRENCY": "2",
        "SENTRY_DSN": f"http://publickey@127.0.0.1:{sentry.port}/1",
        # Heroku's build metadata (runtime-dyno-build-metadata); no .git, as in a slug, so that the SDK's first guess
        # at the release (`git rev-parse HEAD`) finds nothing
        "HEROKU_BUILD_COMMIT": HEROKU_COMMIT,
        "GIT_DIR": "/nonexistent",
        "API_KEYS": API_KEY,
        "ENABLE_DEBUG_ROUTES": "1",
    }
    with start_service(tmp_path_factory.mktemp("gunicorn") / "output.log", environment) as running:
        yield running


def test_a_crash_on_a_data_url_upload_sends_neither_the_image_nor_the_key_to_sentry_or_the_log(service, sentry):
    payload = base64.b64encode(SEVEN).decode()
    body = {"image": "data:image/png;base64," + payload}
    response = requests.post(
        service.url + "/_debug/error", json=body, headers={"Authorization": f"Bearer {API_KEY}"}, timeout=10
    )
    assert response.status_code == 500 and response.json()["error"]["code"] == "internal"
    # and a form, with a field of the client's own beside the picture
    note = "client-note-7f3a9c1e5b2d"
    response = requests.post(
        service.url + "/_debug/error",
        files={"image": ("seven.png", SEVEN, "image/png")},
        data={"note": note},
        headers={"Authorization": f"Bearer {API_KEY}"},
        timeout=10,
    )
    assert response.status_code == 500

    def both_crashes():
        crashes = [event for event in sentry.events if "exception" in event]
        return len(crashes) >= 2 and crashes

    events = wait_for(both_crashes)
    for event in events:
        assert event["exception"]["values"][-1]["type"] == "RuntimeError"
        assert event["request"]["method"] == "POST" and event["request"]["url"].endswith("/_debug/error")
        assert not event["request"].get("data")  # the body, which the SDK would send up to 10 kB by default
        assert set(event["request"]) == {"method", "url"}  # no headers (the key's among them), cookies or env
        # the SDK's own conventions: the release from Heroku's variable, its default environment
        assert event["release"] == HEROKU_COMMIT and event["environment"] == "production"
        frames = [frame for value in event["exception"]["values"] for frame in value["stacktrace"]["frames"]]
        assert frames and not any("vars" in frame for frame in frames)
    assert "transaction" not in sentry.item_types, sentry.item_types  # no tracing without SENTRY_TRACES_SAMPLE_RATE
    sent = json.dumps(sentry.events) + b"".join(sentry.envelopes).decode("utf-8", "replace")
    # not the image, nor any stretch of its base64 or its bytes (local variables would hold them), nor the key, nor
    # the form's field or the file's name
    for secret in (payload[:24], payload[len(payload) // 2 :][:24], API_KEY, repr(SEVEN[:16])[2:-1], note, "seven.png"):
        assert secret not in sent, secret
    log = service.log.read_text()
    assert payload[:24] not in log and API_KEY not in log


def test_every_line_gunicorn_or_the_app_writes_is_well_formed(service):
    # a request line the worker refuses itself: its one line is the app's format, without what the client sent
    with contextlib.closing(
        __import__("socket").create_connection(("127.0.0.1", int(service.url.rsplit(":", 1)[1])))
    ) as raw:
        raw.sendall(b"NOT A REQUEST client-text-91c4\r\n\r\n")
        raw.settimeout(5)
        answer = b""
        while chunk := raw.recv(65536):
            answer += chunk
    refused_id = re.search(rb"\r\nX-Request-ID: (\w+)\r\n", answer)[1].decode()
    lines = [line for line in service.log.read_text().splitlines() if refused_id in line]
    assert len(lines) == 1 and APP_LINE.match(lines[0]), lines
    assert " INFO digit_recognition.requests: method=- path=- status=400 " in lines[0]
    assert "client-text-91c4" not in service.log.read_text()
    assert requests.get(service.url + "/healthz", timeout=5).status_code == 200
    response = requests.post(
        service.url + "/recognize.json",
        data=SEVEN,
        timeout=10,
        headers={"Content-Type": "image/png", "Authorization": f"Bearer {API_KEY}"},
    )
    assert response.status_code == 200
    assert_every_line_well_formed(service.log.read_text())


def test_the_log_stays_well_formed_through_a_shutdown(tmp_path):
    with start_service(tmp_path / "output.log", {"WEB_CONCURRENCY": "2"}) as running:
        assert_reads_seven(running.url)
        running.process.send_signal(signal.SIGTERM)
        running.process.wait(timeout=30)
    log = (tmp_path / "output.log").read_text()
    assert log.count("Worker exiting") == 2 and "Shutting down: Master" in log
    assert_every_line_well_formed(log)


# --- faults ---------------------------------------------------------------------------------


def metrics_answer(url: str) -> requests.Response:
    """GET /metrics."""
    return requests.get(url + "/metrics", timeout=10)


def test_losing_the_metrics_folder_and_then_a_worker_keeps_the_service_up(tmp_path):
    folder = tmp_path / "metrics"
    with start_service(
        tmp_path / "output.log", {"WEB_CONCURRENCY": "2", "PROMETHEUS_MULTIPROC_DIR": str(folder)}
    ) as running:
        assert_reads_seven(running.url)
        shutil.rmtree(folder)
        # a worker killed by the system (as the OOM killer does): its replacement must boot without the folder
        victim = worker_pids(running.process.pid)[0]
        os.kill(victim, signal.SIGKILL)
        wait_for(lambda: len(worker_pids(running.process.pid)) == 2 and victim not in worker_pids(running.process.pid))
        for _ in range(6):
            assert_reads_seven(running.url)
        assert running.process.poll() is None  # the master did not shut the service down
        # /metrics says what is wrong until every worker writes to the folder again, then adds them up
        answers = [metrics_answer(running.url) for _ in range(8)]
        for answer in answers:
            if answer.status_code == 503:
                assert answer.json()["error"]["code"] == "metrics_unavailable"
                assert "removed" in answer.json()["error"]["message"]
            else:
                assert answer.status_code == 200

        def recovered():
            for _ in range(4):
                assert_reads_seven(running.url)
            answer = metrics_answer(running.url)
            return answer.status_code == 200 and answer

        text = wait_for(recovered).text
        assert 'digits_http_requests_total{method="POST",route="/recognize.json",status="200"}' in text
        assert float(re.search(r"^digits_worker_starts_total (\S+)$", text, re.M).group(1)) >= 1
    log = (tmp_path / "output.log").read_text()
    assert "was sent SIGKILL" in log  # gunicorn's master says why the worker went
    assert "Worker failed to boot" not in log


@contextlib.contextmanager
def full_filesystem(folder: Path, size: str = "16m") -> Iterator[Path]:
    """A small tmpfs mounted at `folder` and filled to the last byte; unmounted after."""
    folder.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)], check=True)
    try:
        filler = os.open(folder / "filler", os.O_WRONLY | os.O_CREAT)
        with contextlib.suppress(OSError):
            while True:
                os.write(filler, b"\0" * 4096)
        os.close(filler)
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=True)


def test_a_full_tmp_never_stops_recognition_and_metrics_say_why(tmp_path):
    with full_filesystem(tmp_path / "tmp") as full:
        environment = {"WEB_CONCURRENCY": "2", "TMPDIR": str(full), "PROMETHEUS_MULTIPROC_DIR": str(full / "metrics")}
        with start_service(tmp_path / "output.log", environment) as running:
            for _ in range(4):
                assert_reads_seven(running.url)
            answer = metrics_answer(running.url)
            assert answer.status_code == 503 and answer.json()["error"]["code"] == "metrics_unavailable"
            assert "No space left on device" in answer.json()["error"]["message"]
            # room again: the workers restart to share their metrics, and /metrics recovers
            (full / "filler").unlink()

            def recovered():
                answer = metrics_answer(running.url)
                assert_reads_seven(running.url)
                return answer.status_code == 200 and answer

            assert "digits_http_requests_total" in wait_for(recovered).text
            assert running.process.poll() is None


def test_a_metrics_folder_that_cannot_be_made_never_stops_recognition(tmp_path):
    environment = {"WEB_CONCURRENCY": "1", "PROMETHEUS_MULTIPROC_DIR": "/proc/no-such-metrics-folder"}
    with start_service(tmp_path / "output.log", environment) as running:
        assert_reads_seven(running.url)
        answer = metrics_answer(running.url)
        assert answer.status_code == 503 and answer.json()["error"]["code"] == "metrics_unavailable"
        assert "/proc/no-such-metrics-folder" in answer.json()["error"]["message"]
    assert "cannot prepare the metrics folder" in (tmp_path / "output.log").read_text()
