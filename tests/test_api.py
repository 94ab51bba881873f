"""The HTTP API through Flask's test client: every input style and every error."""

import base64
import hashlib
import io
import re

import numpy as np
import pytest
from PIL import Image

from model import DEFAULT_MODEL_PATH, tflite_path_for
from server import create_app
from tests.drawing import draw_digit, encode, photo_of_digit
from tests.helpers import CANVAS_SEVEN, assert_answer, assert_error, data_url
from web.settings import read_settings as settings_from_environment

# --- the three input styles -------------------------------------------------------------------


def test_multipart_file_upload(client):
    response = client.post("/recognize.json", data={"image": (io.BytesIO(CANVAS_SEVEN), "seven.png")})
    assert_answer(response, 7)


def test_json_base64(client):
    response = client.post("/recognize.json", json={"image": base64.b64encode(CANVAS_SEVEN).decode()})
    assert_answer(response, 7)


def test_json_data_url_from_a_canvas(client):
    response = client.post("/recognize.json", json={"image": data_url(CANVAS_SEVEN)})
    assert_answer(response, 7)


def test_json_url_safe_base64_without_padding(client):
    response = client.post(
        "/recognize.json", json={"image": base64.urlsafe_b64encode(CANVAS_SEVEN).decode().rstrip("=")}
    )
    assert_answer(response, 7)


@pytest.mark.parametrize("media_type", ["image/png", "application/octet-stream"])
def test_raw_body(client, media_type):
    response = client.post("/recognize.json", data=CANVAS_SEVEN, content_type=media_type)
    assert_answer(response, 7)


def test_form_field_holding_a_data_url(client):
    response = client.post("/recognize.json", data={"image": data_url(CANVAS_SEVEN)})
    assert_answer(response, 7)


@pytest.mark.parametrize("digit", range(10))
def test_each_digit_drawn_on_a_transparent_canvas(client, digit):
    response = client.post("/recognize.json", json={"image": data_url(encode(draw_digit(digit, background=None)))})
    assert_answer(response, digit)


def test_photo_of_a_sticky_note(client):
    photo = encode(photo_of_digit(3, seed=4), "JPEG", quality=85)
    response = client.post("/recognize.json", data=photo, content_type="image/jpeg")
    assert_answer(response, 3)


def test_mnist_test_digits_posted_as_png(client, mnist):
    correct = 0
    for index in range(100):
        png = encode(Image.fromarray(mnist["x_test"][index]))
        response = client.post("/recognize.json", data={"image": (io.BytesIO(png), f"{index}.png")})
        correct += response.get_json()["digit"] == int(mnist["y_test"][index])
    assert correct >= 98


# --- errors -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {"data": {"picture": (io.BytesIO(CANVAS_SEVEN), "seven.png")}},
        {"data": {"image": (io.BytesIO(b""), "")}},
        {"json": {"img": "abc"}},
        {"data": b"", "content_type": "image/png"},
        {},
    ],
    ids=["other_field", "no_file_chosen", "json_without_image", "empty_raw_body", "no_body"],
)
def test_missing_image(client, kwargs):
    assert_error(client.post("/recognize.json", **kwargs), 400, "missing_image")


@pytest.mark.parametrize(
    "body", ["{not json", "[1, 2]", '"image"', "null"], ids=["malformed", "array", "string", "null"]
)
def test_json_that_is_not_an_object(client, body):
    assert_error(client.post("/recognize.json", data=body, content_type="application/json"), 400, "invalid_json")


@pytest.mark.parametrize(
    "kwargs",
    [
        {"data": b"just some text", "content_type": "image/png"},
        {"data": CANVAS_SEVEN[: len(CANVAS_SEVEN) // 2], "content_type": "image/png"},
        {"data": {"image": (io.BytesIO(b""), "empty.png")}},
        {"json": {"image": "this is not base64!"}},
        {"json": {"image": "data:image/png;base64,@@@@"}},
        {"json": {"image": "data:image/png,rawbytes"}},
        {"json": {"image": 12345}},
        {"json": {"image": ""}},
    ],
    ids=[
        "not_an_image",
        "truncated",
        "empty_file",
        "bad_base64",
        "bad_base64_in_data_url",
        "data_url_not_base64",
        "not_a_string",
        "empty_string",
    ],
)
def test_invalid_image(client, kwargs):
    assert_error(client.post("/recognize.json", **kwargs), 400, "invalid_image")


def test_body_over_the_upload_limit(classifier):
    client = create_app({"TESTING": True, "CLASSIFIER": classifier, "MAX_CONTENT_LENGTH": 50_000}).test_client()
    big = encode(Image.fromarray(np.random.default_rng(0).integers(0, 255, (300, 300), dtype=np.uint8)))
    assert len(big) > 50_000
    assert_error(client.post("/recognize.json", data=big, content_type="image/png"), 413, "too_large")
    assert_error(client.post("/recognize.json", data={"image": (io.BytesIO(big), "big.png")}), 413, "too_large")


def test_image_over_the_pixel_limit(classifier):
    client = create_app({"TESTING": True, "CLASSIFIER": classifier, "MAX_IMAGE_PIXELS": 100_000}).test_client()
    wide = encode(draw_digit(7, size=(400, 300)))
    assert_error(client.post("/recognize.json", data=wide, content_type="image/png"), 413, "too_large")


@pytest.mark.parametrize(
    "kwargs",
    [
        {"data": "hello", "content_type": "text/plain"},
        {"data": CANVAS_SEVEN, "content_type": "application/pdf"},
        {"json": {"image": data_url(b"hello", "text/plain")}},
    ],
    ids=["text_body", "pdf_type", "data_url_of_text"],
)
def test_unsupported_media_type(client, kwargs):
    assert_error(client.post("/recognize.json", **kwargs), 415, "unsupported_media_type")


@pytest.mark.parametrize(
    "picture",
    [Image.new("RGBA", (280, 280), (0, 0, 0, 0)), Image.new("RGB", (280, 280), "white")],
    ids=["empty_canvas", "blank_paper"],
)
def test_nothing_drawn(client, picture):
    assert_error(client.post("/recognize.json", json={"image": data_url(encode(picture))}), 422, "no_digit")


def test_unknown_path_is_json_404(client):
    assert_error(client.get("/nothing-here"), 404, "not_found")


def test_wrong_method_is_json_405(client):
    response = client.get("/recognize.json")
    assert_error(response, 405, "method_not_allowed")
    assert "POST" in response.headers["Allow"]


def test_a_bug_is_json_500(client, classifier, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(classifier, "read_digit", broken)
    assert_error(client.post("/recognize.json", data=CANVAS_SEVEN, content_type="image/png"), 500, "internal")


# --- health, model card, debug route, settings ------------------------------------------------


def test_healthz(client):
    response = client.get("/healthz")
    assert response.status_code == 200 and response.get_json() == {"status": "ok"}


def test_model_card_names_the_served_file(client):
    card = client.get("/model.json").get_json()
    # the tests' classifier runs LiteRT, as the service does by default: it serves the .keras file's TensorFlow Lite export
    assert card["runtime"] == "litert"
    assert card["sha256"] == hashlib.sha256(tflite_path_for(DEFAULT_MODEL_PATH).read_bytes()).hexdigest()
    assert card["parameters"] == 1_199_882
    assert card["test_accuracy"] >= 0.994
    assert {"architecture", "data", "training", "validation_accuracy", "trained_at"} <= set(card)
    assert card["calibration"]["temperature"] > 0 and "ece_after" in card["calibration"]["test"]
    assert card["digitness"]["name"] == "digitness_cnn" and 0 < card["digitness"]["threshold"] < 1
    assert (
        card["wholeness"]["name"] == "wholeness_cnn"
        and card["wholeness"]["exports"]["tflite"]["file"] == "wholeness.tflite"
    )
    assert (
        card["line_reader"]["name"] == "line_cnn" and card["line_reader"]["exports"]["tflite"]["file"] == "lines.tflite"
    )
    assert card["line_reader"]["validation"]["lines_read_right"] >= 0.9


def test_debug_route_is_off_by_default(client):
    assert_error(client.get("/_debug/error"), 404, "not_found")


def test_debug_route_raises_when_enabled(classifier):
    app = create_app(
        {"TESTING": True, "PROPAGATE_EXCEPTIONS": False, "CLASSIFIER": classifier, "ENABLE_DEBUG_ROUTES": True}
    )
    assert_error(app.test_client().get("/_debug/error"), 500, "internal")


def test_settings_come_from_the_environment_with_defaults():
    defaults = settings_from_environment({})
    assert defaults["MAX_CONTENT_LENGTH"] == 10 * 1024 * 1024
    assert defaults["MAX_IMAGE_PIXELS"] == 50_000_000
    assert defaults["SENTRY_DSN"] == "" and defaults["ENABLE_DEBUG_ROUTES"] is False
    assert defaults["PORT"] == 5000 and defaults["MODEL_RUNTIME"] == "litert"
    assert defaults["MAX_BATCH_IMAGES"] == 64
    assert defaults["MICRO_BATCH_SIZE"] == 1 and defaults["MICRO_BATCH_WAIT_MS"] == 2.0  # off: sync workers, see README
    tuned = settings_from_environment({"MICRO_BATCH_SIZE": "16", "MICRO_BATCH_WAIT_MS": "1.5"})
    assert tuned["MICRO_BATCH_SIZE"] == 16 and tuned["MICRO_BATCH_WAIT_MS"] == 1.5
    configured = settings_from_environment(
        {"MAX_UPLOAD_BYTES": "1000", "ENABLE_DEBUG_ROUTES": "1", "HEROKU_BUILD_COMMIT": "abc123", "PORT": "8080"}
    )
    assert configured["MAX_CONTENT_LENGTH"] == 1000 and configured["ENABLE_DEBUG_ROUTES"] is True
    assert configured["SENTRY_RELEASE"] == "" and configured["PORT"] == 8080  # Heroku's variable: the SDK reads it
    assert settings_from_environment({"SENTRY_RELEASE": "v7", "HEROKU_BUILD_COMMIT": "abc"})["SENTRY_RELEASE"] == "v7"


# --- batch requests ---------------------------------------------------------------------------


def test_batch_answers_each_image_in_order_and_one_bad_image_does_not_fail_the_batch(client):
    drawings = {digit: data_url(encode(draw_digit(digit, background=None))) for digit in (7, 2, 5)}
    images = [
        drawings[7],
        "not base64 at all!",
        drawings[2],
        data_url(encode(Image.new("RGB", (50, 50), "white"))),
        12345,
        data_url(b"hello", "text/plain"),
        drawings[5],
    ]
    response = client.post("/recognize.json", json={"images": images})
    assert response.status_code == 200
    results = response.get_json()["results"]
    assert [result.get("digit", result.get("error", {}).get("code")) for result in results] == [
        7,
        "invalid_image",
        2,
        "no_digit",
        "invalid_image",
        "unsupported_media_type",
        5,
    ]
    # each answer is exactly what the image alone gets
    alone = client.post("/recognize.json", json={"image": drawings[2]}).get_json()
    assert results[2]["digit"] == alone["digit"]
    assert results[2]["probabilities"] == pytest.approx(alone["probabilities"], abs=1e-6)


def test_batch_of_only_bad_images(client):
    results = client.post("/recognize.json", json={"images": ["@@@", ""]}).get_json()["results"]
    assert [result["error"]["code"] for result in results] == ["invalid_image", "invalid_image"]


def test_batch_over_the_limit(classifier):
    client = create_app({"TESTING": True, "CLASSIFIER": classifier, "MAX_BATCH_IMAGES": 2}).test_client()
    assert_error(client.post("/recognize.json", json={"images": [data_url(CANVAS_SEVEN)] * 3}), 413, "too_large")
    assert client.post("/recognize.json", json={"images": [data_url(CANVAS_SEVEN)] * 2}).status_code == 200


@pytest.mark.parametrize(
    "images, status, code", [("abc", 400, "invalid_json"), ({"a": 1}, 400, "invalid_json"), ([], 400, "missing_image")]
)
def test_batch_that_is_not_a_list_of_images(client, images, status, code):
    assert_error(client.post("/recognize.json", json={"images": images}), status, code)


# --- multipart bodies as clients really send them -----------------------------------------------


def test_multipart_bodies_from_http_libraries_are_split_without_werkzeug():
    import requests
    from urllib3 import encode_multipart_formdata

    from web.uploads import split_multipart

    prepared = requests.Request(
        "POST", "http://x/", files={"image": ("seven.png", CANVAS_SEVEN, "image/png")}, data={"note": "hi"}
    ).prepare()
    boundary = prepared.headers["Content-Type"].split("boundary=")[1].encode()
    assert split_multipart(prepared.body, boundary) == {"image": ("seven.png", CANVAS_SEVEN), "note": (None, b"hi")}
    body, content_type = encode_multipart_formdata({"image": ("", b""), "other": "x"})
    assert split_multipart(body, content_type.split("boundary=")[1].encode())["image"] == ("", b"")


def test_unusual_multipart_bodies_fall_back_to_werkzeug(client):
    from web.uploads import split_multipart

    boundary = "b0undary"
    lf_only = (
        (
            f'--{boundary}\nContent-Disposition: form-data; name="image"; filename="7.png"\nContent-Type: image/png\n\n'
        ).encode()
        + CANVAS_SEVEN
        + f"\n--{boundary}--\n".encode()
    )
    assert split_multipart(lf_only, boundary.encode()) is None
    response = client.post("/recognize.json", data=lf_only, content_type=f"multipart/form-data; boundary={boundary}")
    assert_answer(response, 7)
    truncated = lf_only.replace(b"\n", b"\r\n")[:-40]
    assert split_multipart(truncated, boundary.encode()) is None
    response = client.post("/recognize.json", data=truncated, content_type=f"multipart/form-data; boundary={boundary}")
    assert_error(response, 400, "missing_image")


def test_werkzeug_keeps_big_form_parts_in_memory_so_a_full_disk_does_not_matter(client, monkeypatch, tmp_path):
    import tempfile

    # a digit on noisy paper: a PNG of a few MB, over the 500 kB past which Werkzeug would spool a part to disk
    paper = np.random.default_rng(0).integers(200, 256, (900, 900, 3), dtype=np.uint8)
    paper[300:600, 440:470] = 0
    upload = encode(Image.fromarray(paper, "RGB"))
    assert len(upload) > 1_000_000
    boundary = "b0undary"
    lf_only = (
        (
            f'--{boundary}\nContent-Disposition: form-data; name="image"; filename="1.png"\nContent-Type: image/png\n\n'
        ).encode()
        + upload
        + f"\n--{boundary}--\n".encode()
    )
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "no-such-folder"))  # any temporary file would fail
    response = client.post("/recognize.json", data=lf_only, content_type=f"multipart/form-data; boundary={boundary}")
    assert_answer(response, 1)


def test_multipart_text_field_with_a_data_url_and_a_new_boundary_per_request(client):
    for boundary in ("----WebKitFormBoundaryA1b2C3", "------------------------d74496d66958873e"):
        body = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="image"\r\n\r\n{data_url(CANVAS_SEVEN)}'
            f"\r\n--{boundary}--\r\n"
        ).encode()
        assert_answer(
            client.post("/recognize.json", data=body, content_type=f"multipart/form-data; boundary={boundary}"), 7
        )


@pytest.mark.parametrize(
    "content_type",
    [
        "multipart/form-data; boundary*=utf-8''%E2%82%AC",  # a boundary outside latin-1
        "multipart/form-data",  # no boundary at all
        "multipart/form-data; boundary=" + "x" * 300,
    ],
)
def test_odd_multipart_boundaries_are_client_errors(client, content_type):
    assert_error(
        client.post("/recognize.json", data=b"--x\r\n\r\n--x--\r\n", content_type=content_type), 400, "missing_image"
    )


def test_one_structured_log_line_per_request_and_no_forged_lines(client, caplog):
    with caplog.at_level("INFO", logger="digit_recognition.requests"):
        client.post(
            "/recognize.json", data=CANVAS_SEVEN, content_type="image/png", headers={"X-Request-ID": "upload-1"}
        )
        client.get("/nowhere%0AINFO%20forged")
    messages = [record.getMessage() for record in caplog.records if record.name == "digit_recognition.requests"]
    assert len(messages) == 2
    assert re.fullmatch(
        r"method=POST path=/recognize\.json status=200 duration_ms=[0-9.]+ request_id=upload-1 digit=7", messages[0]
    )
    assert re.fullmatch(
        r'method=GET path="/nowhere\\nINFO forged" status=404 duration_ms=[0-9.]+ request_id=[0-9a-f]{32}', messages[1]
    )


def test_a_form_with_thousands_of_parts_is_refused_quickly(client):
    boundary = "manyparts"
    parts = "".join(
        f'--{boundary}\r\nContent-Disposition: form-data; name="f{index}"\r\n\r\nx\r\n' for index in range(5000)
    )
    body = (parts + f"--{boundary}--\r\n").encode()
    body_error = assert_error(
        client.post("/recognize.json", data=body, content_type=f"multipart/form-data; boundary={boundary}"),
        413,
        "too_large",
    )
    assert "too many parts" in body_error["error"]["message"]


# --- what the network saw -----------------------------------------------------------------------


def input_image(answer: dict) -> np.ndarray:
    """The 28x28 image of an answer's "input" data URL."""
    assert answer["input"].startswith("data:image/png;base64,")
    image = Image.open(io.BytesIO(base64.b64decode(answer["input"].partition(",")[2])))
    assert image.size == (28, 28) and image.mode == "L"
    return np.asarray(image)


def test_include_input_adds_the_image_the_network_read(client):
    from model.decoding import preprocess

    plain = assert_answer(client.post("/recognize.json", data=CANVAS_SEVEN, content_type="image/png"), 7)
    assert "input" not in plain
    answer = assert_answer_with_input(
        client.post("/recognize.json?include=input", data=CANVAS_SEVEN, content_type="image/png")
    )
    seen = input_image(answer)
    np.testing.assert_allclose(seen / 255.0, preprocess(CANVAS_SEVEN), atol=0.5 / 255 + 1e-6)
    assert seen[:4].max() == 0 and seen[10:18, 10:18].max() > 200  # white digit centred on black, as MNIST


def assert_answer_with_input(response) -> dict:
    """A 200 answer with the digit fields and "input"."""
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert list(body) == ["digit", "confidence", "is_digit", "probabilities", "input"]
    return body


def test_include_input_in_a_batch(client):
    images = [data_url(CANVAS_SEVEN), "not base64!"]
    results = client.post("/recognize.json?include=input", json={"images": images}).get_json()["results"]
    assert results[0]["digit"] == 7 and input_image(results[0]).shape == (28, 28)
    assert results[1]["error"]["code"] == "invalid_image"


def test_include_takes_only_known_extras(client):
    body = assert_error(
        client.post("/recognize.json?include=input,secrets", data=CANVAS_SEVEN, content_type="image/png"),
        400,
        "bad_request",
    )
    assert "secrets" in body["error"]["message"]
