"""What operators rely on: API keys, CORS, request ids and Prometheus metrics (in process)."""

import base64
import logging
import re

import pytest

from server import create_app
from tests.helpers import CANVAS_SEVEN, assert_answer, assert_error
from web.access import bearer_token, key_is_valid
from web.settings import REQUEST_TIME_LIMIT

KEYS = ("first-key-0123456789", "second-key-9876543210")


@pytest.fixture
def locked_client(classifier):
    """A client of an app that requires API keys."""
    return create_app({"TESTING": True, "CLASSIFIER": classifier, "API_KEYS": KEYS}).test_client()


def upload(client, **headers):
    """POST the canvas seven as a raw PNG body."""
    return client.post("/recognize.json", data=CANVAS_SEVEN, content_type="image/png", headers=headers)


# --- API keys ---------------------------------------------------------------------------------


def test_the_api_is_open_by_default(client):
    assert_answer(upload(client), 7)


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "",
        "Bearer",
        "Bearer wrong-key",
        "Basic Zmlyc3Qta2V5",
        "first-key-0123456789",
        "Bearer first-key-012345678",
    ],
)
def test_without_a_valid_key_the_answer_is_401(locked_client, authorization):
    headers = {} if authorization is None else {"Authorization": authorization}
    response = upload(locked_client, **headers)
    assert_error(response, 401, "unauthorized")
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize("key", KEYS)
def test_any_configured_key_opens_the_api(locked_client, key):
    assert_answer(upload(locked_client, Authorization=f"Bearer {key}"), 7)
    assert locked_client.get("/model.json", headers={"Authorization": f"bearer  {key} "}).status_code == 200


@pytest.mark.parametrize("path", ["/model.json", "/metrics", "/nowhere"])
def test_other_routes_need_the_key_too(locked_client, path):
    assert_error(locked_client.get(path), 401, "unauthorized")


@pytest.mark.parametrize("path", ["/", "/healthz", "/openapi.json", "/docs"])
def test_page_health_and_description_stay_open(locked_client, path):
    assert locked_client.get(path).status_code == 200


def test_keys_are_never_logged(locked_client, caplog):
    with caplog.at_level(logging.DEBUG):
        upload(locked_client, Authorization=f"Bearer {KEYS[0]}")
        upload(locked_client, Authorization="Bearer a-wrong-key-that-was-typed")
    assert len([record for record in caplog.records if record.name == "digit_recognition.requests"]) == 2
    assert not any(KEYS[0] in record.getMessage() or "a-wrong-key" in record.getMessage() for record in caplog.records)


def test_key_helpers():
    assert bearer_token("Bearer abc") == bearer_token("bearer   abc  ") == "abc"
    assert bearer_token("Token abc") is None and bearer_token(None) is None and bearer_token("Bearer ") is None
    assert key_is_valid("abc", ["x", "abc"]) and not key_is_valid("ab", ["abc"]) and not key_is_valid("", [""])
    assert not key_is_valid(None, ["abc"]) and not key_is_valid("abc", [])


def test_api_keys_setting_is_a_comma_separated_list():
    from web.settings import read_settings as settings_from_environment

    assert settings_from_environment({"API_KEYS": " one, two ,,"})["API_KEYS"] == ("one", "two")
    assert settings_from_environment({})["API_KEYS"] == ()


# --- CORS ---------------------------------------------------------------------------------------


@pytest.fixture
def cors_client(classifier):
    """A client of an app that lets one origin call it from browsers, and requires keys."""
    settings = {"TESTING": True, "CLASSIFIER": classifier, "CORS_ORIGINS": ("https://draw.example",), "API_KEYS": KEYS}
    return create_app(settings).test_client()


def preflight(client, origin: str):
    """A browser's CORS preflight for a JSON POST with a key."""
    return client.options(
        "/recognize.json",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )


def test_no_cross_origin_access_by_default(client):
    response = preflight(client, "https://draw.example")
    assert "Access-Control-Allow-Origin" not in response.headers
    assert "Access-Control-Allow-Origin" not in upload(client, Origin="https://draw.example").headers


def test_an_allowed_origin_gets_the_cors_headers(cors_client):
    response = preflight(cors_client, "https://draw.example")
    assert response.status_code == 200  # a preflight needs no key
    assert response.headers["Access-Control-Allow-Origin"] == "https://draw.example"
    assert "POST" in response.headers["Access-Control-Allow-Methods"]
    assert {"authorization", "content-type"} <= {
        name.strip().lower() for name in response.headers["Access-Control-Allow-Headers"].split(",")
    }
    assert "Origin" in response.headers["Vary"]
    answer = upload(cors_client, Origin="https://draw.example", Authorization=f"Bearer {KEYS[1]}")
    assert_answer(answer, 7)
    assert answer.headers["Access-Control-Allow-Origin"] == "https://draw.example"
    assert "X-Request-ID" in answer.headers["Access-Control-Expose-Headers"]
    # errors carry the headers too, so the page's script can read them
    assert (
        upload(cors_client, Origin="https://draw.example").headers["Access-Control-Allow-Origin"]
        == "https://draw.example"
    )


@pytest.mark.parametrize("origin", ["https://evil.example", "https://draw.example.evil", "null", "http://draw.example"])
def test_an_origin_not_on_the_list_gets_none(cors_client, origin):
    for response in (
        preflight(cors_client, origin),
        upload(cors_client, Origin=origin, Authorization=f"Bearer {KEYS[0]}"),
    ):
        assert not any(name.startswith("Access-Control-") for name in response.headers.keys())


# --- request ids --------------------------------------------------------------------------------


def test_a_request_id_is_made_or_taken_and_echoed(client):
    made = upload(client).headers["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{32}", made) and made != upload(client).headers["X-Request-ID"]
    assert upload(client, **{"X-Request-ID": "app-42.retry:1"}).headers["X-Request-ID"] == "app-42.retry:1"
    # errors carry it as well
    assert client.get("/nowhere", headers={"X-Request-ID": "lost-1"}).headers["X-Request-ID"] == "lost-1"


@pytest.mark.parametrize("unsafe", ["has space", "x" * 129, 'quote"d', "semi;colon", "ünïcode"])
def test_an_unsafe_request_id_is_replaced(client, unsafe):
    echoed = client.get("/healthz", headers={"X-Request-ID": unsafe.encode().decode("latin-1")}).headers["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{32}", echoed)


# --- metrics ------------------------------------------------------------------------------------


def metric_value(text: str, name: str, **labels: str) -> float:
    """The value of one sample in Prometheus text format (0 when absent)."""
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            sample_labels = dict(re.findall(r'(\w+)="([^"]*)"', line.partition("}")[0]))
            if all(sample_labels.get(key) == value for key, value in labels.items()):
                return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_metrics_count_requests_latency_inference_and_the_model(classifier):
    client = create_app({"TESTING": True, "CLASSIFIER": classifier}).test_client()
    for _ in range(3):
        upload(client)
    client.post("/recognize.json", data=b"not an image", content_type="image/png")
    client.post("/recognize.json", json={"images": [base64.b64encode(CANVAS_SEVEN).decode()] * 4})
    client.get("/nowhere/at/all")
    response = client.get("/metrics")
    assert response.status_code == 200 and response.mimetype == "text/plain"
    text = response.get_data(as_text=True)
    assert metric_value(text, "digits_http_requests_total", method="POST", route="/recognize.json", status="200") == 4
    assert metric_value(text, "digits_http_requests_total", method="POST", route="/recognize.json", status="400") == 1
    assert metric_value(text, "digits_http_requests_total", method="GET", route="unmatched", status="404") == 1
    assert metric_value(text, "digits_http_request_duration_seconds_count", route="/recognize.json") == 5
    assert metric_value(text, "digits_inference_duration_seconds_count") == 4  # 3 single images, 1 batch
    assert metric_value(text, "digits_inference_batch_size_sum") == 7
    assert metric_value(text, "digits_inference_batch_size_bucket", le="1.0") == 3
    assert metric_value(text, "digits_http_requests_in_flight") == 1  # the /metrics request itself
    # the latency buckets reach the longest a request may take (gunicorn's timeout), and no further
    buckets = re.findall(
        r'^digits_http_request_duration_seconds_bucket\{le="([^"]+)",route="/recognize.json"\}', text, re.M
    )
    assert buckets[-2:] == [f"{float(REQUEST_TIME_LIMIT)}", "+Inf"]
    # outside gunicorn no hook reads the worker's memory: the gauge is left out rather than shown as 0
    assert "digits_worker_resident_memory_bytes" not in text
    assert (
        metric_value(text, "digits_model_info", runtime=classifier.runtime_name, sha256=classifier.model_sha256[:12])
        == 1
    )


# --- overload -----------------------------------------------------------------------------------


def test_recognition_is_refused_with_503_while_the_queue_is_full(classifier):
    waiting = {"now": 40.0}
    app = create_app(
        {
            "TESTING": True,
            "CLASSIFIER": classifier,
            "MAX_QUEUE_PER_WORKER": 32,
            "WAITING_PER_WORKER": lambda: waiting["now"],
        }
    )
    client = app.test_client()
    response = upload(client)
    assert_error(response, 503, "overloaded")
    assert response.headers["Retry-After"] == "1"
    assert client.get("/healthz").status_code == 200  # health checks and metrics are still answered
    assert metric_value(client.get("/metrics").get_data(as_text=True), "digits_overload_rejections_total") == 1
    waiting["now"] = 32.0  # at the limit, not over it
    assert_answer(upload(client), 7)


def test_outside_the_guarded_worker_nothing_is_refused(client):
    from web.worker import waiting_per_worker

    assert waiting_per_worker() is None  # no gunicorn listener in this process
    assert_answer(upload(client), 7)


def test_accept_queue_length_is_read_from_the_kernel():
    import socket

    from web.worker import accept_queue_length

    with socket.create_server(("127.0.0.1", 0), backlog=16) as listener:
        assert accept_queue_length(listener) == 0
        clients = [socket.create_connection(listener.getsockname()) for _ in range(3)]
        assert accept_queue_length(listener) == 3
        listener.accept()[0].close()
        assert accept_queue_length(listener) == 2
        for connection in clients:
            connection.close()


def test_a_body_shorter_than_its_content_length_is_a_408(client):
    # what gunicorn hands the app when web/worker.py's read deadline cut the body short
    response = client.post(
        "/recognize.json",
        data=CANVAS_SEVEN[:100],
        content_type="image/png",
        environ_overrides={"CONTENT_LENGTH": str(len(CANVAS_SEVEN)), "wsgi.input_terminated": True},
    )
    body = assert_error(response, 408, "request_timeout")
    assert f"100 of {len(CANVAS_SEVEN):,} bytes" in body["error"]["message"]


@pytest.mark.parametrize(
    "received, complete",
    [
        (b"GET /healthz HTTP/1.1\r\nHost: x\r\n", False),
        (b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", True),
        (b"POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nabc", False),
        (b"POST / HTTP/1.1\r\ncontent-LENGTH:  5 \r\n\r\nabcde", True),
        (b"POST / HTTP/1.1\r\nContent-Length: 999999999\r\n\r\n", True),  # refused from the head: no need to wait
        (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab", False),  # a chunk still arriving
        (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nabcde\r\n0\r\n\r\n", True),  # the last chunk came
        (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", True),  # malformed: nothing more to wait for
        (b"GET /" + b"x" * 70_000, True),  # an overlong head goes to gunicorn's parser, which refuses it
    ],
)
def test_when_a_request_has_arrived_in_full(received, complete):
    from web.worker import request_is_complete

    assert request_is_complete(received, max_body=1_000_000) is complete
