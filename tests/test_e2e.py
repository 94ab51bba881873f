"""End to end: the Procfile's gunicorn on a free port, real files over real HTTP, real Sentry SDK."""

import base64
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from bench.service import PROJECT_ROOT, free_port, start_service, worker_pids
from tests.drawing import NOT_DIGIT_STROKES, draw_digit, encode, photo_of_digit

pytestmark = [pytest.mark.slow, pytest.mark.e2e]


@pytest.fixture(scope="module")
def service(sentry, tmp_path_factory):
    """The service as Heroku starts it: the Procfile command with PORT and the environment set."""
    environment = {
        "WEB_CONCURRENCY": "2",
        "SENTRY_DSN": f"http://publickey@127.0.0.1:{sentry.port}/1",
        "SENTRY_ENVIRONMENT": "e2e",
        "SENTRY_RELEASE": "e2e-release",
        "HEROKU_BUILD_COMMIT": "0123456789abcdef0123456789abcdef01234567",  # SENTRY_RELEASE wins over it
        "ENABLE_DEBUG_ROUTES": "1",
        "MAX_UPLOAD_BYTES": str(2 * 1024 * 1024),
    }
    with start_service(tmp_path_factory.mktemp("gunicorn") / "output.log", environment) as running:
        yield {"url": running.url, "process": running.process, "log": running.log}


def test_curl_style_multipart_upload_of_a_real_file(service, tmp_path):
    path = tmp_path / "three.png"
    path.write_bytes(encode(draw_digit(3, background=None)))
    with open(path, "rb") as handle:
        response = requests.post(service["url"] + "/recognize.json", files={"image": handle}, timeout=10)
    assert response.status_code == 200
    body = response.json()
    assert body["digit"] == 3 and body["confidence"] == max(body["probabilities"])


def test_json_data_url_and_raw_jpeg(service):
    canvas = encode(draw_digit(2, background=None))
    response = requests.post(
        service["url"] + "/recognize.json",
        json={"image": "data:image/png;base64," + base64.b64encode(canvas).decode()},
        timeout=10,
    )
    assert response.status_code == 200 and response.json()["digit"] == 2
    photo = encode(photo_of_digit(5, seed=2), "JPEG", quality=85)
    response = requests.post(
        service["url"] + "/recognize.json", data=photo, headers={"Content-Type": "image/jpeg"}, timeout=10
    )
    assert response.status_code == 200 and response.json()["digit"] == 5


def test_a_number_and_a_mark_that_is_no_digit_over_http(service):
    with open(PROJECT_ROOT / "examples" / "number.png", "rb") as handle:
        response = requests.post(service["url"] + "/recognize/number.json", files={"image": handle}, timeout=10)
    assert response.status_code == 200
    body = response.json()
    assert body["number"] == "2024" and [entry["digit"] for entry in body["digits"]] == [2, 0, 2, 4]
    star = encode(draw_digit(0, strokes=NOT_DIGIT_STROKES["star"], box=(50, 50, 180, 180), stroke_width=16))
    response = requests.post(
        service["url"] + "/recognize.json", data=star, headers={"Content-Type": "image/png"}, timeout=10
    )
    assert response.status_code == 200 and response.json()["is_digit"] is False
    time.sleep(0.5)
    assert re.search(r"path=/recognize/number\.json status=200 .* number=2024\n", service["log"].read_text())


def test_batch_request_over_http(service):
    images = [
        "data:image/png;base64," + base64.b64encode(encode(draw_digit(digit, background=None))).decode()
        for digit in (1, 8)
    ]
    response = requests.post(service["url"] + "/recognize.json", json={"images": images + ["%%%"]}, timeout=10)
    assert response.status_code == 200
    results = response.json()["results"]
    assert [results[0]["digit"], results[1]["digit"], results[2]["error"]["code"]] == [1, 8, "invalid_image"]


@pytest.mark.parametrize(
    "method, path, kwargs, status, code",
    [
        (
            "post",
            "/recognize.json",
            {"data": b"not an image", "headers": {"Content-Type": "image/png"}},
            400,
            "invalid_image",
        ),
        ("post", "/recognize.json", {"files": {"other": b"x"}}, 400, "missing_image"),
        (
            "post",
            "/recognize.json",
            {"data": b"x" * (3 * 1024 * 1024), "headers": {"Content-Type": "image/png"}},
            413,
            "too_large",
        ),
        (
            "post",
            "/recognize.json",
            {"data": "hi", "headers": {"Content-Type": "text/plain"}},
            415,
            "unsupported_media_type",
        ),
        (
            "post",
            "/recognize.json",
            {
                "data": encode(draw_digit(1, background=None).crop((0, 0, 20, 20))),
                "headers": {"Content-Type": "image/png"},
            },
            422,
            "no_digit",
        ),
        ("get", "/recognize.json", {}, 405, "method_not_allowed"),
        ("get", "/no/such/page", {}, 404, "not_found"),
    ],
    ids=["invalid_image", "missing_image", "too_large", "unsupported", "no_digit", "wrong_method", "wrong_path"],
)
def test_errors_are_json_with_their_status(service, method, path, kwargs, status, code):
    response = getattr(requests, method)(service["url"] + path, timeout=10, **kwargs)
    assert response.status_code == status
    assert response.headers["Content-Type"] == "application/json"
    assert response.json()["error"]["code"] == code


def test_model_card_and_health(service):
    assert requests.get(service["url"] + "/healthz", timeout=5).json() == {"status": "ok"}
    card = requests.get(service["url"] + "/model.json", timeout=5).json()
    assert len(card["sha256"]) == 64 and card["parameters"] == 1_199_882


def test_crash_reaches_sentry_with_request_context_and_client_errors_do_not(service, sentry):
    # client errors first: had they been reported, they would arrive before the crash's event
    requests.post(service["url"] + "/recognize.json", data=b"junk", headers={"Content-Type": "image/png"}, timeout=10)
    requests.get(service["url"] + "/missing", timeout=10)
    response = requests.get(service["url"] + "/_debug/error", headers={"X-Request-ID": "crash-e2e-1"}, timeout=10)
    assert response.status_code == 500 and response.json()["error"]["code"] == "internal"
    assert response.headers["X-Request-ID"] == "crash-e2e-1"
    events = sentry.wait_for_events(1)
    assert len(events) >= 1
    time.sleep(1.0)  # anything else in flight has arrived by now
    exceptions = [event for event in sentry.events if "exception" in event]
    assert len(exceptions) == 1, [event.get("message") or event.get("exception") for event in sentry.events]
    event = exceptions[0]
    assert event["exception"]["values"][-1]["type"] == "RuntimeError"
    assert event["request"]["url"].endswith("/_debug/error") and event["request"]["method"] == "GET"
    assert event["environment"] == "e2e" and event["release"] == "e2e-release"
    assert event["tags"]["request_id"] == "crash-e2e-1"  # the same id as in the answer and the log line
    # SENTRY_TRACES_SAMPLE_RATE unset: no tracing, so not one transaction for all the requests above
    assert "transaction" not in sentry.item_types and "span" not in sentry.item_types, sentry.item_types


def test_a_crash_sends_sentry_its_method_path_and_id_and_nothing_else_the_client_sent(service, sentry):
    secret = "client-secret"
    url = service["url"]
    host, port = url.removeprefix("http://").split(":")
    # requests the workers refuse themselves, with a path of the client's: their log lines are no breadcrumbs
    for _ in range(4):
        with socket.create_connection((host, int(port)), timeout=10) as connection:
            connection.sendall(
                f"POST /{secret}-path HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"
                "abc".encode()
            )
            assert connection.recv(65536).startswith(b"HTTP/1.1 400 ")
    response = requests.get(
        url + f"/_debug/error?token={secret}",
        headers={"X-Secret-Thing": secret, "User-Agent": f"{secret}-agent", "X-Request-ID": "crash-e2e-private"},
        cookies={"session": secret},
        timeout=10,
    )
    assert response.status_code == 500 and response.headers["X-Request-ID"] == "crash-e2e-private"

    def the_crash() -> list[dict]:
        return [
            event
            for event in sentry.events
            if "exception" in event and event.get("tags", {}).get("request_id") == "crash-e2e-private"
        ]

    deadline = time.monotonic() + 15
    while not the_crash() and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(1.0)  # anything else the SDK was sending has arrived
    [event] = the_crash()
    assert event["request"] == {"method": "GET", "url": url + "/_debug/error"}
    assert "user" not in event
    sent = b"".join(sentry.envelopes)
    for text in (secret, "X-Secret-Thing", "x-secret-thing"):
        assert text.encode() not in sent, text
    assert "transaction" not in sentry.item_types and "span" not in sentry.item_types, sentry.item_types
    # the log has the crash's line and the refusals', without the query string or the headers
    log = service["log"].read_text()
    assert "method=GET path=/_debug/error status=500 " in log and f"token={secret}" not in log
    assert f"{secret}-agent" not in log and "X-Secret-Thing" not in log


def has_tensorflow(pid: int) -> bool:
    """Whether TensorFlow's library is mapped into the process."""
    return "tensorflow" in Path(f"/proc/{pid}/maps").read_text()


def test_default_deploy_runs_litert_without_tensorflow(service):
    master = service["process"].pid
    workers = worker_pids(master)
    assert len(workers) == 2
    assert not any(has_tensorflow(pid) for pid in [master, *workers])
    assert requests.get(service["url"] + "/model.json", timeout=5).json()["runtime"] == "litert"


@pytest.mark.needs_tensorflow
def test_keras_runtime_loads_tensorflow_in_workers_not_in_the_master(tmp_path):
    environment = {"MODEL_RUNTIME": "keras", "WEB_CONCURRENCY": "1"}
    with start_service(tmp_path / "keras.log", environment) as running:
        master = running.process.pid
        workers = worker_pids(master)
        assert len(workers) == 1
        assert not has_tensorflow(master) and has_tensorflow(workers[0])
        response = requests.post(
            running.url + "/recognize.json",
            data=encode(draw_digit(6, background=None)),
            headers={"Content-Type": "image/png"},
            timeout=10,
        )
        assert response.status_code == 200 and response.json()["digit"] == 6
        assert requests.get(running.url + "/model.json", timeout=5).json()["runtime"] == "keras"


def test_default_workers_are_guarded_sync_and_each_request_gets_its_own_connection(service):
    assert "Using worker: web.worker.GuardedSyncWorker" in service["log"].read_text()
    response = requests.get(service["url"] + "/healthz", timeout=5)
    assert response.headers["Connection"].lower() == "close"  # so a free worker takes the next request


def test_threaded_workers_with_micro_batching_answer_concurrent_clients(tmp_path):
    environment = {"WEB_CONCURRENCY": "1", "WEB_THREADS": "8", "MICRO_BATCH_SIZE": "8"}
    uploads = [encode(draw_digit(digit, background=None)) for digit in range(10)]

    def post(index: int) -> requests.Response:
        files = {"image": (f"{index}.png", uploads[index % 10], "image/png")}
        return requests.post(running.url + "/recognize.json", files=files, timeout=30)

    with start_service(tmp_path / "threads.log", environment) as running, ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(post, range(64)))
        assert "Using worker: web.worker.GuardedThreadWorker" in running.log.read_text()
        # what gunicorn's parser refuses: a JSON answer (not gunicorn's HTML page) and one log line without the client's text
        port = int(running.url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
            connection.sendall(b"bad-client-token / HTTP/1.1\r\nHost: x\r\nX-Request-ID: threadrefusal1\r\n\r\n")
            refused = b""
            while chunk := connection.recv(65536):
                refused += chunk
        time.sleep(0.5)  # the worker's line reaches the log file
        log = running.log.read_text()
    assert [answer.status_code for answer in answers] == [200] * 64
    assert [answer.json()["digit"] for answer in answers] == [index % 10 for index in range(64)]
    head, _, body = refused.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 ") and b"application/json" in head
    assert json.loads(body)["error"]["code"] == "bad_request"
    assert "bad-client-token" not in log
    assert len([line for line in log.splitlines() if "status=400" in line and "code=bad_request" in line]) == 1


def test_each_request_is_logged_in_one_line(service):
    requests.get(service["url"] + "/healthz", timeout=5)
    requests.post(
        service["url"] + "/recognize.json",
        data=encode(draw_digit(5, background=None)),
        headers={"Content-Type": "image/png"},
        timeout=10,
    )
    time.sleep(0.5)
    lines = service["log"].read_text().splitlines()
    assert any(
        re.search(
            r"INFO digit_recognition\.requests: method=GET path=/healthz status=200 duration_ms=[0-9.]+ request_id=\w+$",
            line,
        )
        for line in lines
    )
    assert any(
        re.search(
            r"digit_recognition\.requests: method=POST path=/recognize\.json status=200 duration_ms=[0-9.]+ request_id=\w+ digit=5$",
            line,
        )
        for line in lines
    )


def scrape(url: str) -> dict[tuple[str, str], float]:
    """The request counters of GET /metrics, as {(route, status): count}."""
    text = requests.get(url + "/metrics", timeout=5).text
    return {
        (route, status): float(value)
        for route, status, value in re.findall(
            r'^digits_http_requests_total\{method="\w+",route="([^"]+)",status="(\d+)"\} (\S+)$', text, re.M
        )
    }


def test_metrics_add_up_every_workers_requests(service):
    before = scrape(service["url"])
    with ThreadPoolExecutor(8) as pool:  # concurrent, so both workers answer some
        answers = list(
            pool.map(
                lambda digit: requests.post(
                    service["url"] + "/recognize.json",
                    data=encode(draw_digit(digit % 10, background=None)),
                    headers={"Content-Type": "image/png"},
                    timeout=10,
                ),
                range(40),
            )
        )
    assert [answer.status_code for answer in answers] == [200] * 40
    # whichever worker answers the scrape, it counts the requests of both
    for _ in range(6):
        counts = scrape(service["url"])
        assert counts[("/recognize.json", "200")] - before.get(("/recognize.json", "200"), 0) == 40
    text = requests.get(service["url"] + "/metrics", timeout=5).text
    assert re.search(
        r'^digits_model_info\{model="digit_cnn",runtime="litert",sha256="[0-9a-f]{12}"\} 1\.0$', text, re.M
    )
    assert re.search(r"^digits_http_requests_in_flight 1\.0$", text, re.M)  # the scrape itself, in one worker


def memory_series(url: str) -> dict[int, float]:
    """The workers' resident memory on GET /metrics, as {pid: bytes}."""
    text = requests.get(url + "/metrics", timeout=5).text
    found = re.findall(r'^digits_worker_resident_memory_bytes\{pid="(\d+)"\} (\S+)$', text, re.M)
    return {int(pid): float(value) for pid, value in found}


def resident_now(pid: int) -> float:
    """A process's resident memory right now, in bytes, as the kernel tells it."""
    return float(Path(f"/proc/{pid}/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def every_worker_shown(running, leaving: int = 0) -> tuple[list[int], dict[int, float]]:
    """Wait until GET /metrics shows the memory of exactly the master's two workers (`leaving` no longer among them)."""
    deadline = time.monotonic() + 60
    while True:
        workers = worker_pids(running.process.pid)
        series = memory_series(running.url)
        if len(workers) == 2 and leaving not in workers and set(series) == set(workers):
            return workers, series
        assert time.monotonic() < deadline, (workers, series)
        time.sleep(0.2)


def test_metrics_show_each_live_workers_memory_from_its_start(tmp_path):
    with start_service(tmp_path / "memory.log", {"WEB_CONCURRENCY": "2"}) as running:
        workers, series = every_worker_shown(running)  # each worker's, set as it starts (tests/test_gunicorn_conf.py)
        for pid, resident in series.items():
            assert 20 * 2**20 < resident < 600 * 2**20, (pid, resident)  # tens of MB to a few hundred
            assert resident == pytest.approx(resident_now(pid), rel=0.25)
        # a worker killed by the system: its series goes with it, and its replacement's comes at its start
        victim = workers[0]
        os.kill(victim, signal.SIGKILL)
        workers, series = every_worker_shown(running, leaving=victim)
        assert victim not in series and set(series) == set(workers), (victim, series, workers)
        assert all(20 * 2**20 < resident < 600 * 2**20 for resident in series.values()), series


def test_request_id_over_http(service):
    response = requests.get(service["url"] + "/healthz", headers={"X-Request-ID": "probe-7"}, timeout=5)
    assert response.headers["X-Request-ID"] == "probe-7"
    time.sleep(0.3)
    lines = service["log"].read_text().splitlines()
    assert any(
        re.search(r"method=GET path=/healthz status=200 duration_ms=[0-9.]+ request_id=probe-7$", line)
        for line in lines
    )


def test_python_server_py_serves_locally(tmp_path):
    port = free_port()
    environment = {**os.environ, "PORT": str(port)}
    with open(tmp_path / "server.log", "wb") as output:
        process = subprocess.Popen(
            [sys.executable, "server.py"], cwd=PROJECT_ROOT, env=environment, stdout=output, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and process.poll() is None:
            try:
                response = requests.post(
                    f"http://127.0.0.1:{port}/recognize.json",
                    data=encode(draw_digit(4, background=None)),
                    headers={"Content-Type": "image/png"},
                    timeout=5,
                )
                break
            except requests.RequestException:
                time.sleep(0.25)
        else:
            pytest.fail("python server.py did not serve:\n" + (tmp_path / "server.log").read_text()[-3000:])
        assert response.status_code == 200 and response.json()["digit"] == 4
    finally:
        process.terminate()
        process.wait(timeout=30)
