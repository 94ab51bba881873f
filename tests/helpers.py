"""What many test modules share: the project's folder, a canvas drawing to upload, and the API's two answer shapes."""

import base64
from pathlib import Path

import pytest

from tests.drawing import draw_digit, encode

PROJECT_ROOT = Path(__file__).resolve().parent.parent

CANVAS_SEVEN = encode(draw_digit(7, background=None))

# Tests that read a process's memory from Linux's /proc (as the workers do): skipped, with this reason, elsewhere.
NEEDS_PROC = pytest.mark.skipif(not Path("/proc/self/statm").exists(), reason="reads memory from Linux's /proc")


def data_url(data: bytes, media_type: str = "image/png") -> str:
    """A data URL like the one canvas.toDataURL() returns."""
    return f"data:{media_type};base64," + base64.b64encode(data).decode()


def assert_answer(response, digit: int) -> dict:
    """A 200 JSON answer naming `digit`, with a consistent probability distribution."""
    assert response.status_code == 200, response.get_json()
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert list(body) == ["digit", "confidence", "is_digit", "probabilities"]
    assert body["is_digit"] is True
    assert body["digit"] == digit
    assert len(body["probabilities"]) == 10
    assert sum(body["probabilities"]) == pytest.approx(1.0, abs=1e-6)
    assert body["confidence"] == body["probabilities"][digit] == max(body["probabilities"])
    return body


def assert_error(response, status: int, code: str) -> dict:
    """An error answer in the one JSON shape: {"error": {"code", "message"}}."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert list(body) == ["error"] and body["error"]["code"] == code
    assert isinstance(body["error"]["message"], str) and len(body["error"]["message"]) > 10
    return body
