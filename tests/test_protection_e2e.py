"""End to end, with the Procfile's gunicorn: slow clients and floods do not take the service down."""

import json
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from bench.service import start_service, worker_pids
from tests.drawing import draw_digit, encode, photo_of_digit

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

READ_TIMEOUT = 1.5  # seconds, short so that the test is quick


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    """2 guarded sync workers with a short read deadline and a small queue."""
    environment = {"WEB_CONCURRENCY": "2", "REQUEST_READ_TIMEOUT": str(READ_TIMEOUT), "MAX_QUEUE_PER_WORKER": "2"}
    with start_service(tmp_path_factory.mktemp("gunicorn") / "output.log", environment) as running:
        yield running


def open_connection(url: str) -> socket.socket:
    """A raw TCP connection to the service."""
    host, port = url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=10)


def read_answer(connection: socket.socket) -> tuple[int, dict, dict]:
    """Status, headers and JSON body of the answer on a raw connection (read to its end)."""
    data = b""
    while chunk := connection.recv(65536):
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {name.lower(): value.strip() for name, _, value in (line.partition(":") for line in header_lines)}
    return int(status_line.split()[1]), headers, json.loads(body)


def test_slow_clients_do_not_hold_the_workers(service):
    workers = worker_pids(service.process.pid)
    # more slow clients than workers, each sending its request head a few bytes at a time
    slow = [open_connection(service.url) for _ in range(4)]
    for connection in slow:
        connection.sendall(b"POST /recognize.json HTTP/1.1\r\nHost: x\r\n")
    started = time.monotonic()
    answer = requests.post(
        service.url + "/recognize.json",
        data=encode(draw_digit(4, background=None)),
        headers={"Content-Type": "image/png"},
        timeout=30,
    )
    waited = time.monotonic() - started
    assert answer.status_code == 200 and answer.json()["digit"] == 4
    # each slow connection held a worker for the read deadline at most, not gunicorn's 30 s timeout
    assert waited < 2 * READ_TIMEOUT + 2.0
    for connection in slow:
        connection.settimeout(5)
        assert connection.recv(1024) == b""  # closed by the service: the deadline passed
        connection.close()
    assert worker_pids(service.process.pid) == workers  # nobody was killed or restarted
    assert "WORKER TIMEOUT" not in service.log.read_text()


def test_a_body_that_stops_arriving_gets_408(service):
    with open_connection(service.url) as connection:
        connection.sendall(
            b"POST /recognize.json HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\nContent-Length: 5000\r\n\r\n"
            + b"\x89PNG" * 25
        )
        started = time.monotonic()
        status, headers, body = read_answer(connection)
    assert time.monotonic() - started < READ_TIMEOUT + 2.0
    assert status == 408 and body["error"]["code"] == "request_timeout"
    assert headers["x-request-id"]


def test_a_flood_gets_only_answers_and_refusals(service):
    photo = encode(photo_of_digit(3, seed=5), "JPEG", quality=90)  # tens of ms each: a queue builds up

    def post(_: int) -> requests.Response:
        return requests.post(
            service.url + "/recognize.json", data=photo, headers={"Content-Type": "image/jpeg"}, timeout=60
        )

    with ThreadPoolExecutor(64) as pool:
        answers = list(pool.map(post, range(64)))  # a connection error would raise here
    statuses = [answer.status_code for answer in answers]
    assert set(statuses) == {200, 503}, statuses
    for answer in answers:
        if answer.status_code == 503:
            assert answer.json()["error"]["code"] == "overloaded" and answer.headers["Retry-After"] == "1"
        else:
            assert answer.json()["digit"] == 3
    assert requests.get(service.url + "/healthz", timeout=5).status_code == 200
    metrics = requests.get(service.url + "/metrics", timeout=5).text
    assert f"digits_overload_rejections_total {float(statuses.count(503))}" in metrics


def test_many_slow_clients_leave_the_workers_free(tmp_path):
    # a long deadline, so that only parking (not the deadline) can keep the workers free
    environment = {"WEB_CONCURRENCY": "2", "REQUEST_READ_TIMEOUT": "30"}
    with start_service(tmp_path / "output.log", environment) as running:
        stop = threading.Event()

        def trickle(connection: socket.socket, request: bytes) -> None:
            """Send the request a few bytes at a time, slower than anyone would."""
            for start in range(0, len(request), 4):
                if stop.wait(0.2):
                    return
                connection.sendall(request[start : start + 4])

        upload = encode(draw_digit(6, background=None))
        slow_request = (
            b"POST /recognize.json HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\nContent-Length: %d\r\n\r\n"
            % len(upload)
            + upload
        )
        slow = [open_connection(running.url) for _ in range(12)]  # six per worker
        senders = [threading.Thread(target=trickle, args=(connection, slow_request)) for connection in slow]
        for sender in senders:
            sender.start()
        try:
            time.sleep(0.5)  # every slow client connected and sending
            seconds = []
            for _ in range(20):
                started = time.monotonic()
                answer = requests.post(
                    running.url + "/recognize.json", data=upload, headers={"Content-Type": "image/png"}, timeout=30
                )
                seconds.append(time.monotonic() - started)
                assert answer.status_code == 200 and answer.json()["digit"] == 6
            assert max(seconds) < 1.0, seconds  # without parking, each would wait for the slow ones: 30 s
        finally:
            stop.set()
            for sender in senders:
                sender.join()
            for connection in slow:
                connection.close()


def test_past_the_parking_limit_the_oldest_slow_client_is_answered_at_once(tmp_path):
    from web.worker import MAX_PARKED

    environment = {"WEB_CONCURRENCY": "1", "REQUEST_READ_TIMEOUT": "30"}
    with start_service(tmp_path / "output.log", environment) as running:
        head = b"POST /recognize.json HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\nContent-Length: 1000\r\n\r\n"
        slow = [open_connection(running.url) for _ in range(MAX_PARKED + 1)]
        for connection in slow:
            connection.sendall(head + b"\x89PNG")  # a body that stops short
            time.sleep(0.1)  # parked one after the other, the first is the oldest
        started = time.monotonic()
        status, _, body = read_answer(slow[0])
        assert time.monotonic() - started < 5.0  # not its 30 s deadline
        assert status == 408 and body["error"]["code"] == "request_timeout"
        assert requests.get(running.url + "/healthz", timeout=5).status_code == 200
        for connection in slow:
            connection.close()


def test_parked_uploads_hold_at_most_two_uploads_worth_of_memory(tmp_path):
    limit = 300_000  # MAX_UPLOAD_BYTES: the parked bytes of a worker stay under 2 x this
    environment = {"WEB_CONCURRENCY": "1", "REQUEST_READ_TIMEOUT": "30", "MAX_UPLOAD_BYTES": str(limit)}
    with start_service(tmp_path / "output.log", environment) as running:
        head = (
            b"POST /recognize.json HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\nContent-Length: %d\r\n\r\n" % limit
        )
        uploads = [open_connection(running.url) for _ in range(3)]
        for connection in uploads:
            connection.sendall(head + b"\0" * (limit * 3 // 4))  # three quarters of each body, then nothing
            time.sleep(0.3)
        # 2.25 uploads' worth parked is over the bound: the fullest (the first) is answered at once, not in 30 s
        started = time.monotonic()
        status, _, body = read_answer(uploads[0])
        assert time.monotonic() - started < 5.0
        assert status == 408 and body["error"]["code"] == "request_timeout"
        assert requests.get(running.url + "/healthz", timeout=5).status_code == 200
        for connection in uploads:
            connection.close()
