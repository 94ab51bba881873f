"""End to end: hostile requests against the Procfile's gunicorn; the workers survive and nothing reaches Sentry."""

import base64
import io
import json
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import numpy as np
import pytest
import requests
from PIL import Image, ImageDraw

from bench.service import start_service, worker_pids
from tests.drawing import draw_digit, draw_number, encode
from tests.hostile_requests import HOSTILE

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

UPLOAD_LIMIT = 2 * 1024 * 1024
NUMBER_GROUPS = 800
DECLARED_LENGTH = 50 * 1024 * 1024
# What the client sends of the 50 MB it declares before it waits for the answer.
SENT_BEFORE_READING = 64 * 1024
# gunicorn's --timeout in the Procfile: a worker that read the whole body would still be waiting then.
GUNICORN_TIMEOUT = 30.0


@pytest.fixture(scope="module")
def service(sentry, tmp_path_factory):
    """The Procfile's gunicorn: two sync workers, a 2 MB upload limit, Sentry on."""
    environment = {
        "WEB_CONCURRENCY": "2",
        "MAX_UPLOAD_BYTES": str(UPLOAD_LIMIT),
        "SENTRY_DSN": f"http://publickey@127.0.0.1:{sentry.port}/1",
        "SENTRY_ENVIRONMENT": "hostile-e2e",
        # below the default: a page of hundreds of strokes reaches it in a second or two
        "MAX_NUMBER_GROUPS": str(NUMBER_GROUPS),
    }
    with start_service(tmp_path_factory.mktemp("gunicorn") / "output.log", environment) as running:
        yield running


def read_until_closed(connection: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (a reset after the answer ends it too)."""
    received = b""
    while True:
        try:
            chunk = connection.recv(65536)
        except ConnectionResetError:
            return received
        if not chunk:
            return received
        received += chunk


def parse_answer(answer: bytes) -> tuple[int, dict[str, str], bytes]:
    """Status, lower-cased headers and body of a raw HTTP/1.1 answer."""
    head, _, body = answer.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {name.strip().lower(): value.strip() for name, _, value in (line.partition(":") for line in header_lines)}
    return int(status_line.split()[1]), headers, body


def open_request(url: str, headers: str) -> socket.socket:
    """A connection to the service with a POST /recognize.json head sent (its body still to come)."""
    address = urlsplit(url)
    connection = socket.create_connection((address.hostname, address.port), timeout=GUNICORN_TIMEOUT + 10)
    connection.sendall(f"POST /recognize.json HTTP/1.1\r\nHost: {address.netloc}\r\n{headers}\r\n".encode())
    return connection


def post_declaring_50_mb(url: str, content_type: str) -> tuple[bytes, float]:
    """Declare a 50 MB body, send its first 64 kB only, then read the answer: (answer, seconds it took)."""
    started = time.monotonic()
    with open_request(url, f"Content-Type: {content_type}\r\nContent-Length: {DECLARED_LENGTH}\r\n") as connection:
        connection.sendall(b"\0" * SENT_BEFORE_READING)
        answer = read_until_closed(connection)
    return answer, time.monotonic() - started


def post_chunked(url: str, total: int) -> bytes:
    """Stream `total` bytes as a chunked image/png body (no Content-Length) while reading the answer."""
    piece = b"\0" * 65536

    def send(connection: socket.socket) -> None:
        try:
            for _ in range(total // len(piece)):
                connection.sendall(b"%x\r\n%b\r\n" % (len(piece), piece))
            connection.sendall(b"0\r\n\r\n")
        except OSError:  # the server answered and closed before the end
            pass

    with open_request(url, "Content-Type: image/png\r\nTransfer-Encoding: chunked\r\n") as connection:
        sender = threading.Thread(target=send, args=(connection,))
        sender.start()
        answer = read_until_closed(connection)
        sender.join()
    return answer


def as_requests_arguments(test_client_arguments: dict) -> dict:
    """The keyword arguments of Flask's test client post() as the requests library takes them."""
    if "json" in test_client_arguments:
        return {"json": test_client_arguments["json"]}
    data = test_client_arguments["data"]
    if isinstance(data, dict):
        stream, filename = data["image"]
        return {"files": {"image": (filename, stream.read() if isinstance(stream, io.BytesIO) else stream)}}
    body = data.encode() if isinstance(data, str) else data
    content_type = test_client_arguments.get("content_type")
    return {"data": body, "headers": {"Content-Type": content_type} if content_type else {}}


@pytest.mark.parametrize("content_type", ["image/png", "multipart/form-data; boundary=x", "application/json"])
def test_a_declared_50_mb_body_is_refused_without_reading_it(service, content_type):
    answer, seconds = post_declaring_50_mb(service.url, content_type)
    status, headers, body = parse_answer(answer)
    assert status == 413, answer[:300]
    assert headers["content-type"] == "application/json"
    assert json.loads(body)["error"]["code"] == "too_large"
    # only 64 kB of the 50 MB were sent: a server reading the whole body would still be waiting
    assert seconds < 5.0 < GUNICORN_TIMEOUT


def test_workers_survive_a_burst_of_hostile_requests_and_nothing_reaches_sentry(service, sentry):
    url = service.url + "/recognize.json"
    workers = sorted(worker_pids(service.process.pid))
    assert len(workers) == 2
    for case in HOSTILE:
        make_request, status, code = case.values
        response = requests.post(url, timeout=GUNICORN_TIMEOUT, **as_requests_arguments(make_request()))
        assert (response.status_code, response.json()["error"]["code"]) == (status, code), case.id
    for content_type in ("image/png", "multipart/form-data; boundary=x"):
        status, _, body = parse_answer(post_declaring_50_mb(service.url, content_type)[0])
        assert (status, json.loads(body)["error"]["code"]) == (413, "too_large")
    # a chunked body (no Content-Length) over the limit
    assert parse_answer(post_chunked(service.url, 3 * UPLOAD_LIMIT))[0] == 413
    # eight clients at once, more than the two workers: each still gets its 413
    with ThreadPoolExecutor(8) as pool:
        statuses = list(
            pool.map(lambda _: parse_answer(post_declaring_50_mb(service.url, "image/png")[0])[0], range(8))
        )
    assert statuses == [413] * 8

    assert sorted(worker_pids(service.process.pid)) == workers
    response = requests.post(
        url, data=encode(draw_digit(4, background=None)), headers={"Content-Type": "image/png"}, timeout=10
    )
    assert response.status_code == 200 and response.json()["digit"] == 4
    time.sleep(1.0)  # anything the SDK was sending has arrived
    assert [event for event in sentry.events if "exception" in event or event.get("level") == "error"] == []
    log = service.log.read_text()
    assert "Traceback" not in log and "WORKER TIMEOUT" not in log and "unhandled error" not in log


def test_a_page_of_hundreds_of_strokes_sent_as_a_number_is_refused_before_it_holds_a_worker_long(service, sentry):
    rng = np.random.default_rng(0)
    page = Image.new("L", (960, 960), 255)
    pen = ImageDraw.Draw(page)
    for _ in range(300):
        x, y = rng.uniform(0, 960, 2)
        pen.line([(x, y), (x + rng.uniform(-60, 60), y + rng.uniform(-60, 60))], fill=0, width=6)
    url = service.url + "/recognize/number.json"
    workers = sorted(worker_pids(service.process.pid))
    started = time.perf_counter()
    response = requests.post(url, data=encode(page), headers={"Content-Type": "image/png"}, timeout=GUNICORN_TIMEOUT)
    seconds = time.perf_counter() - started
    assert response.status_code == 422 and response.json()["error"]["code"] == "too_many_marks"
    assert f"{NUMBER_GROUPS:,}" in response.json()["error"]["message"]
    assert seconds < GUNICORN_TIMEOUT / 3
    # in a batch, a number read first keeps its answer; the page after it gets the error
    number, _ = draw_number("38")
    batch = {"images": [base64.b64encode(encode(number)).decode(), base64.b64encode(encode(page)).decode()]}
    first, second = requests.post(url, json=batch, timeout=GUNICORN_TIMEOUT).json()["results"]
    assert first["number"] == "38" and second["error"]["code"] == "too_many_marks"
    assert sorted(worker_pids(service.process.pid)) == workers
    assert "WORKER TIMEOUT" not in service.log.read_text()
    assert [event for event in sentry.events if "exception" in event or event.get("level") == "error"] == []
