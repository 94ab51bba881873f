"""End to end, with the Procfile's gunicorn: chunked bodies, 100-continue, gunicorn's own refusals, its time limit
and SIGTERM, over raw sockets (web/worker.py)."""

import json
import re
import signal
import socket
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests

from bench.service import procfile_command, start_service, worker_pids
from tests.drawing import draw_digit, draw_number, encode

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

READ_TIMEOUT = 3.0  # seconds (REQUEST_READ_TIMEOUT), short so that a body cut short is answered soon
UPLOAD_LIMIT = 3 * 1024 * 1024  # MAX_UPLOAD_BYTES: a 2 MB upload is within it
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
HARD_TIMEOUT = 3  # gunicorn's --timeout for the time limit test, seconds


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    """The Procfile's gunicorn: 2 guarded sync workers, a short read deadline, debug routes on."""
    environment = {
        "WEB_CONCURRENCY": "2",
        "REQUEST_READ_TIMEOUT": str(READ_TIMEOUT),
        "MAX_UPLOAD_BYTES": str(UPLOAD_LIMIT),
        "ENABLE_DEBUG_ROUTES": "1",
    }
    with start_service(tmp_path_factory.mktemp("gunicorn") / "output.log", environment) as running:
        yield running


def connect(url: str, timeout: float = 20.0) -> socket.socket:
    """A raw TCP connection to the service."""
    address = urlsplit(url)
    return socket.create_connection((address.hostname, address.port), timeout=timeout)


def read_until_closed(connection: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection; a reset fails the test (it would lose the answer)."""
    received = b""
    while chunk := connection.recv(65536):
        received += chunk
    return received


def parse_answer(answer: bytes) -> tuple[int, dict[str, str], dict]:
    """Status, lower-cased headers and JSON body of a raw HTTP/1.1 answer (after any 100 Continue)."""
    while answer.startswith(CONTINUE):
        answer = answer[len(CONTINUE) :]
    head, separator, body = answer.partition(b"\r\n\r\n")
    assert separator, f"not a whole HTTP answer: {answer[:200]!r}"
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {name.strip().lower(): value.strip() for name, _, value in (line.partition(":") for line in header_lines)}
    assert len(body) == int(headers["content-length"]), answer[:300]
    return int(status_line.split()[1]), headers, json.loads(body)


def assert_error(answer: bytes, status: int, code: str) -> dict:
    """The answer is the JSON error of this status and code, in the shared shape; its body."""
    got_status, headers, body = parse_answer(answer)
    assert (got_status, body["error"]["code"]) == (status, code), answer[:400]
    assert headers["content-type"] == "application/json" and set(body) == {"error"} and body["error"]["message"]
    assert headers["x-request-id"]
    return body


def request_lines(log: Path, request_id: str, timeout: float = 2.0) -> list[str]:
    """The log lines of the request with this id (web/logs.py's format), once there is one (or after `timeout`)."""
    ends = time.monotonic() + timeout
    while True:
        lines = [line for line in log.read_text().splitlines() if f" request_id={request_id} " in line + " "]
        if lines or time.monotonic() > ends:
            return lines
        time.sleep(0.05)


def assert_logged_once(log: Path, answer: bytes, method: str = "-", path: str = "-") -> str:
    """The worker's answer has exactly one log line: its request id, method, path, status and code; that line."""
    status, headers, body = parse_answer(answer)
    lines = request_lines(log, headers["x-request-id"])
    assert len(lines) == 1, lines
    assert f"INFO digit_recognition.requests: method={method} path={path} status={status} duration_ms=" in lines[0]
    assert lines[0].endswith(f" code={body['error']['code']}"), lines[0]
    return lines[0]


def accept_queue(port: int) -> int:
    """How many connections wait in the accept queue of the socket listening on `port` (Linux: /proc/net/tcp)."""
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            _, local, _, state, queues, *_ = line.split()
            if state == "0A" and int(local.rpartition(":")[2], 16) == port:  # 0A: LISTEN; rx_queue: the accept queue
                return int(queues.partition(":")[2], 16)
    raise LookupError(f"nothing listens on port {port}")


def wait_for_accept_queue(port: int, length: int, timeout: float = 10.0) -> None:
    """Wait until the accept queue holds `length` connections (0: the workers took every one)."""
    ends = time.monotonic() + timeout
    while accept_queue(port) != length:
        assert time.monotonic() < ends, f"the accept queue holds {accept_queue(port)}, not {length}"
        time.sleep(0.01)


def post_head(path: str, headers: str, host: str = "x") -> bytes:
    """A POST request head."""
    return f"POST {path} HTTP/1.1\r\nHost: {host}\r\n{headers}\r\n".encode()


def chunked(body: bytes, size: int) -> list[bytes]:
    """A body framed as chunks of `size` bytes (with an extension on the first), then the last chunk."""
    pieces = [body[start : start + size] for start in range(0, len(body), size)]
    framed = [
        b"%x%s\r\n%s\r\n" % (len(piece), b";part=1" if index == 0 else b"", piece) for index, piece in enumerate(pieces)
    ]
    return framed + [b"0\r\n\r\n"]


def test_trickled_chunked_bodies_are_parked_and_read(service):
    upload = encode(draw_digit(6, background=None))
    head = post_head("/recognize.json", "Content-Type: image/png\r\nTransfer-Encoding: chunked\r\n")
    answered = threading.Event()
    answers: list[bytes] = []

    def trickle() -> None:
        """Send half a chunked image a chunk every 0.1 s, the rest once the other upload is answered; read the answer."""
        pieces = chunked(upload, len(upload) // 8 + 1)
        with connect(service.url) as connection:
            connection.sendall(head)
            for piece in pieces[: len(pieces) // 2]:
                time.sleep(0.1)
                connection.sendall(piece)
            answered.wait(READ_TIMEOUT)
            connection.sendall(b"".join(pieces[len(pieces) // 2 :]))
            answers.append(read_until_closed(connection))

    trickling = [threading.Thread(target=trickle) for _ in range(2)]  # as many as workers
    for thread in trickling:
        thread.start()
    time.sleep(0.2)  # both connected, parked and trickling
    started = time.monotonic()
    answer = requests.post(
        service.url + "/recognize.json", data=upload, headers={"Content-Type": "image/png"}, timeout=30
    )
    waited = time.monotonic() - started
    answered.set()
    for thread in trickling:
        thread.join()
    assert answer.status_code == 200 and answer.json()["digit"] == 6
    assert waited < 0.8, waited  # not held behind the trickling bodies (it used to wait for the read deadline)
    assert len(answers) == 2
    for chunked_answer in answers:
        status, _, body = parse_answer(chunked_answer)
        assert status == 200 and body["digit"] == 6  # the parked bodies were read in full, through their framing


@pytest.mark.parametrize(
    "body",
    [
        b"zz\r\n",  # not hexadecimal
        b"5 x\r\nabcde\r\n",  # junk after the size
        b"5;=\r\nabcde\r\n",  # a malformed extension
        b"5\r\nabcdeXY0\r\n\r\n",  # no CRLF after the data
        b"5\r\nabcde\r\n0\r\nHost: y\r\n\r\n",  # a trailer field that may not be a trailer
    ],
    ids=["size", "size-junk", "extension", "missing-crlf", "trailer"],
)
def test_a_malformed_chunked_body_gets_a_json_400_at_once(service, body):
    with connect(service.url) as connection:
        # the head and a good first chunk, then the malformed part (the body never ends properly)
        connection.sendall(
            post_head("/recognize.json", "Content-Type: image/png\r\nTransfer-Encoding: chunked\r\n") + b"3\r\nabc\r\n"
        )
        time.sleep(0.1)  # parked by now: the malformed part is found while parked
        started = time.monotonic()
        connection.sendall(body)
        answer = read_until_closed(connection)
    assert time.monotonic() - started < 1.0  # not at the read deadline
    assert "malformed" in assert_error(answer, 400, "bad_request")["error"]["message"]
    assert_logged_once(service.log, answer, "POST", "/recognize.json")


def test_a_chunked_body_gunicorns_reader_refuses_is_answered_in_json_not_by_the_app(service):
    # framing the worker accepts, with a trailer line longer than gunicorn reads: it refuses it while decoding the
    # body, which the worker does before the app runs (while the app read it, it was the app's 500)
    body = b"".join(chunked(b"\x89PNG" * 10, 16)).removesuffix(b"\r\n") + b"X-Long: " + b"a" * 9000 + b"\r\n\r\n"
    with connect(service.url) as connection:
        connection.sendall(
            post_head("/recognize.json", "Content-Type: image/png\r\nTransfer-Encoding: chunked\r\n") + body
        )
        answer = read_until_closed(connection)
    assert_error(answer, 431, "headers_too_large")
    assert "unhandled error" not in service.log.read_text()
    assert_logged_once(service.log, answer, "POST", "/recognize.json")


def test_a_chunked_body_cut_short_gets_a_json_408_at_the_deadline(service):
    with connect(service.url) as connection:
        started = time.monotonic()
        connection.sendall(
            post_head("/recognize.json", "Content-Type: image/png\r\nTransfer-Encoding: chunked\r\n")
            + b"100\r\n\x89PNG"
        )
        answer = read_until_closed(connection)
    assert READ_TIMEOUT - 0.5 < time.monotonic() - started < READ_TIMEOUT + 2.0
    assert_error(answer, 408, "request_timeout")
    line = assert_logged_once(service.log, answer, "POST", "/recognize.json")
    assert float(re.search(r" duration_ms=([\d.]+) ", line)[1]) >= (READ_TIMEOUT - 0.5) * 1000  # from its accept


# What the client sends in the requests gunicorn refuses, which the log must not show.
CLIENT_TEXT = b"client-text-5e1d"


@pytest.mark.parametrize(
    "request_bytes, status, code, logged",
    [
        (b"GARBAGE-%s\r\n\r\n" % CLIENT_TEXT, 400, "bad_request", "method=- path=-"),
        (
            b"GET /healthz HTTP/1.1\r\nHost: x\r\nBad Header: %s\r\n\r\n" % CLIENT_TEXT,
            400,
            "bad_request",
            "method=- path=-",  # gunicorn's parser gives up on the header without handing over the request line
        ),
        (
            b"POST /recognize.json HTTP/1.1\r\nHost: x\r\nX-Request-ID: client-chosen-1\r\nContent-Length: 3\r\n"
            b"Transfer-Encoding: chunked\r\n\r\nabc",
            400,
            "bad_request",
            "method=POST path=/recognize.json",  # the headers were read: the client's plain X-Request-ID is kept
        ),
        (b"GET /" + CLIENT_TEXT * 600 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414, "uri_too_long", "method=- path=-"),
        (
            b"GET /healthz HTTP/1.1\r\n" + b"".join(b"X-%d: 1\r\n" % n for n in range(150)) + b"\r\n",
            431,
            "headers_too_large",
            "method=- path=-",
        ),
        (
            b"POST /recognize.json HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: %s, chunked\r\n\r\n0\r\n\r\n"
            % CLIENT_TEXT,
            501,
            "not_implemented",
            "method=- path=-",
        ),
        (
            b"POST /recognize.json HTTP/1.1\r\nHost: x\r\nExpect: %s\r\nContent-Length: 0\r\n\r\n" % CLIENT_TEXT,
            417,
            "expectation_failed",
            "method=- path=-",
        ),
    ],
    ids=[
        "request-line",
        "header-name",
        "length-and-chunked",
        "uri-too-long",
        "too-many-headers",
        "transfer-coding",
        "expect",
    ],
)
def test_gunicorns_own_refusals_are_json_and_logged_in_one_line_without_the_clients_text(
    service, request_bytes, status, code, logged
):
    with connect(service.url) as connection:
        connection.sendall(request_bytes)
        answer = read_until_closed(connection)
    assert b"<html" not in answer.lower()
    assert_error(answer, status, code)
    method, path = (value.partition("=")[2] for value in logged.split())
    assert_logged_once(service.log, answer, method, path)
    if b"X-Request-ID: client-chosen-1" in request_bytes:
        assert parse_answer(answer)[1]["x-request-id"] == "client-chosen-1"
    log = service.log.read_text()
    assert CLIENT_TEXT.decode() not in log and "Invalid request" not in log and "<html" not in log.lower()


def test_expect_100_continue_is_answered_when_the_head_arrives(service):
    body = b"\0" * (2 * 1024 * 1024)  # within the limit, not an image: a 400 once read
    with connect(service.url) as connection:
        connection.sendall(
            post_head(
                "/recognize.json", f"Content-Type: image/png\r\nContent-Length: {len(body)}\r\nExpect: 100-continue\r\n"
            )
        )
        connection.settimeout(0.5)  # the interim answer comes at once, before any of the body is sent
        interim = connection.recv(len(CONTINUE))
        assert interim == CONTINUE
        connection.settimeout(20)
        connection.sendall(body)
        answer = interim + read_until_closed(connection)
    assert answer.count(b"100 Continue") == 1  # gunicorn's own, after the body, is not sent again
    assert_error(answer, 400, "invalid_image")


def test_expect_100_continue_over_the_limit_gets_its_413_and_no_100(service):
    with connect(service.url) as connection:
        started = time.monotonic()
        connection.sendall(
            post_head(
                "/recognize.json",
                f"Content-Type: image/png\r\nContent-Length: {50 * 1024 * 1024}\r\nExpect: 100-continue\r\n",
            )
        )
        answer = read_until_closed(connection)
    assert time.monotonic() - started < 1.0
    assert b"100 Continue" not in answer
    assert_error(answer, 413, "too_large")


def test_curl_sends_a_big_upload_without_waiting_for_100_continue(service, tmp_path):
    upload = tmp_path / "digit.png"
    upload.write_bytes(encode(draw_digit(3, background=None)) + b"\0" * (1536 * 1024))  # over 1 MB: curl sends Expect
    result = subprocess.run(
        [
            "curl",
            "-sS",
            "-v",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code} %{time_total}",
            "-H",
            "Content-Type: image/png",
            "--data-binary",
            f"@{upload}",
            service.url + "/recognize.json",
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    status, seconds = result.stdout.split()
    assert "Expect: 100-continue" in result.stderr and "HTTP/1.1 100 Continue" in result.stderr
    assert "Done waiting for 100-continue" not in result.stderr  # curl did not give up waiting (1 s) for it
    assert status == "200" and float(seconds) < 1.0, result.stdout


def test_a_request_past_the_hard_time_limit_gets_a_json_504(tmp_path):
    environment = {"WEB_CONCURRENCY": "2", "ENABLE_DEBUG_ROUTES": "1"}
    command = f"{procfile_command()} --timeout {HARD_TIMEOUT}"  # the command line's flag wins over the config file
    with start_service(tmp_path / "output.log", environment, command=command) as running:
        workers = set(worker_pids(running.process.pid))
        started = time.monotonic()
        answer = requests.get(running.url + "/_debug/sleep", params={"seconds": 30}, timeout=30)
        seconds = time.monotonic() - started
        assert HARD_TIMEOUT - 0.5 < seconds < HARD_TIMEOUT + 3.0, seconds
        assert answer.status_code == 504 and answer.headers["Content-Type"] == "application/json"
        assert answer.json()["error"]["code"] == "worker_timeout" and answer.headers["X-Request-ID"]
        # the service goes on: the other worker answers at once, and a new one replaces the aborted one
        recognized = requests.post(
            running.url + "/recognize.json",
            data=encode(draw_digit(2, background=None)),
            headers={"Content-Type": "image/png"},
            timeout=10,
        )
        assert recognized.status_code == 200 and recognized.json()["digit"] == 2
        metrics = requests.get(running.url + "/metrics", timeout=10).text
        assert re.search(r"^digits_worker_timeouts_total 1\.0$", metrics, re.MULTILINE), metrics
        deadline = time.monotonic() + 15
        while len(set(worker_pids(running.process.pid)) - workers) < 1 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(set(worker_pids(running.process.pid)) - workers) == 1
        log = running.log.read_text()
        request_id = answer.headers["X-Request-ID"]
        line = re.search(
            rf"ERROR\] Request GET /_debug/sleep passed the 3 s time limit after (\d+\.\d) s \(request_id={request_id}\)"
            r": answered 504",
            log,
        )
        assert line and float(line.group(1)) >= HARD_TIMEOUT - 0.5, log[-2000:]
        # and the request's one line, as for any answer
        lines = request_lines(running.log, request_id)
        assert len(lines) == 1 and "method=GET path=/_debug/sleep status=504 " in lines[0], lines
        assert lines[0].endswith(" code=worker_timeout") and "seconds=30" not in log  # no query string
        assert "<html" not in log.lower() and "Internal Server Error" not in log


def test_a_worker_timeout_reaches_sentry_without_the_clients_text(tmp_path, sentry):
    secret = "client-secret-3b7e"
    environment = {
        "WEB_CONCURRENCY": "1",  # one worker: it logs the refusals below, then times out
        "ENABLE_DEBUG_ROUTES": "1",
        "SENTRY_DSN": f"http://publickey@127.0.0.1:{sentry.port}/1",
    }
    command = f"{procfile_command()} --timeout {HARD_TIMEOUT}"
    with start_service(tmp_path / "output.log", environment, command=command) as running:
        # the worker's log lines for requests it refuses itself, with a path of the client's: the ERROR line of the
        # timeout is an event outside any request, which would carry the worker's earlier lines as breadcrumbs
        refused = b"POST /%s HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\nabc"
        for _ in range(3):
            with connect(running.url) as connection:
                connection.sendall(refused % secret.encode())
                assert_error(read_until_closed(connection), 400, "bad_request")
        answer = requests.get(
            running.url + "/_debug/sleep",
            params={"seconds": 30, "token": secret},
            headers={"User-Agent": f"{secret}-agent", "X-Secret-Thing": secret},
            timeout=30,
        )
        assert answer.status_code == 504
        request_id = answer.headers["X-Request-ID"]
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and not any(request_id in json.dumps(event) for event in sentry.events):
            time.sleep(0.1)
        time.sleep(1.0)  # anything else the SDK was sending has arrived
    timeouts = [event for event in sentry.events if "time limit" in json.dumps(event.get("logentry", {}))]
    assert timeouts and request_id in json.dumps(timeouts), [event.get("logentry") for event in sentry.events]
    for event in sentry.events:
        assert set(event.get("request", {})) <= {"method", "url"}, event["request"]
    sent = b"".join(sentry.envelopes)
    assert secret.encode() not in sent and b"X-Secret-Thing" not in sent


def test_sigterm_answers_every_connection_before_the_workers_exit(tmp_path):
    environment = {"WEB_CONCURRENCY": "2", "ENABLE_DEBUG_ROUTES": "1", "REQUEST_READ_TIMEOUT": "30"}
    number = encode(draw_number("3852")[0])
    with start_service(tmp_path / "output.log", environment) as running:
        host, port = urlsplit(running.url).netloc, urlsplit(running.url).port

        def exchange(connection: socket.socket, request_bytes: bytes) -> bytes:
            """Send a request (or its start) and read the whole answer; a reset fails the test."""
            with connection:
                connection.sendall(request_bytes)
                return read_until_closed(connection)

        with ThreadPoolExecutor(16) as pool:
            # a slow upload, parked by a worker: its head and half its body, then nothing
            parked = pool.submit(
                exchange,
                connect(running.url),
                post_head(
                    "/recognize/number.json", f"Content-Type: image/png\r\nContent-Length: {len(number)}\r\n", host
                )
                + number[: len(number) // 2],
            )
            wait_for_accept_queue(port, 0)
            time.sleep(0.1)  # past the worker's first wait: parked
            # one request in flight in each worker
            sleep_request = f"GET /_debug/sleep?seconds=1.5 HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()
            in_flight = [pool.submit(exchange, connect(running.url), sleep_request) for _ in range(2)]
            wait_for_accept_queue(port, 0)
            # eight uploads at once: they wait in the accept queue
            upload = (
                post_head(
                    "/recognize/number.json", f"Content-Type: image/png\r\nContent-Length: {len(number)}\r\n", host
                )
                + number
            )
            queued = [pool.submit(exchange, connect(running.url), upload) for _ in range(8)]
            wait_for_accept_queue(port, 8)
            started = time.monotonic()
            running.process.send_signal(signal.SIGTERM)
            answers = [future.result(timeout=30) for future in [parked, *in_flight, *queued]]
            running.process.wait(timeout=30)
            exited_after = time.monotonic() - started
    for answer in answers[1:3]:  # the requests in flight finish with their result
        status, _, body = parse_answer(answer)
        assert status == 200 and body == {"slept": 1.5}
    for answer in [answers[0], *answers[3:]]:  # the parked and the queued are told to come back
        body = assert_error(answer, 503, "overloaded")
        assert "restarting" in body["error"]["message"] and parse_answer(answer)[1]["retry-after"] == "1"
    assert exited_after < 20  # within the graceful timeout: nobody was killed
    log = running.log.read_text()
    assert "Worker exiting: answered 503 to" in log
    # each answer the workers wrote on their way out has its one line; the parked upload's head had been read
    assert_logged_once(running.log, answers[0], "POST", "/recognize/number.json")
    for answer in answers[3:]:
        assert_logged_once(running.log, answer, "POST", "/recognize/number.json")
