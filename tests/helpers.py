"""What many test modules share: the project's folder, a canvas drawing to upload, the API's two answer shapes and a
client generated from its OpenAPI description."""

import base64
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.drawing import draw_digit, encode

PROJECT_ROOT = Path(__file__).resolve().parent.parent
# The README, whose examples the tests run, and a fenced block of markdown: its language and its text.
README = PROJECT_ROOT / "README.md"
FENCE = re.compile(r"^```(?P<language>[\w-]*)\n(?P<text>.*?)^```\n?", re.M | re.S)

CANVAS_SEVEN = encode(draw_digit(7, background=None))

# The package name of a client generated from the OpenAPI description (from the document's title).
CLIENT_PACKAGE = "digit_recognition_client"
# The client generator's settings: no post-hooks (they run ruff over the generated code, which importing it does not need).
CLIENT_GENERATOR_CONFIG = "post_hooks: []\n"

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


def generate_client(document: dict, folder: Path) -> Path:
    """Generate the client package of `document` into folder/CLIENT_PACKAGE with openapi-python-client; any warning
    fails (tests/test_openapi.py and tests/test_generated_client_e2e.py share it)."""
    (folder / "openapi.json").write_text(json.dumps(document))
    (folder / "generator.yaml").write_text(CLIENT_GENERATOR_CONFIG)
    command = [sys.executable, "-m", "openapi_python_client", "generate", "--path", str(folder / "openapi.json")]
    command += ["--output-path", str(folder / CLIENT_PACKAGE), "--meta", "none"]
    command += ["--config", str(folder / "generator.yaml"), "--fail-on-warning"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    output = result.stdout + result.stderr
    assert result.returncode == 0 and "warning" not in output.lower(), output
    return folder / CLIENT_PACKAGE


def cgroup(folder: Path, memory: int | None = None, quota: str = "max 100000", version: int = 2) -> Path:
    """A cgroup's files as the kernel writes them: its memory limit (None: none) and CPU quota, v2 or v1."""
    folder.mkdir(parents=True, exist_ok=True)
    if version == 2:
        (folder / "memory.max").write_text(f"{memory if memory is not None else 'max'}\n")
        (folder / "cpu.max").write_text(quota + "\n")
    else:
        (folder / "memory").mkdir(exist_ok=True)
        (folder / "memory" / "memory.limit_in_bytes").write_text(f"{memory or 9223372036854771712}\n")
        (folder / "cpu").mkdir(exist_ok=True)
        quota_us, period_us = quota.replace("max", "-1").split()
        (folder / "cpu" / "cpu.cfs_quota_us").write_text(quota_us + "\n")
        (folder / "cpu" / "cpu.cfs_period_us").write_text(period_us + "\n")
    return folder
