"""The README's client examples, run as written against the Procfile's gunicorn: the Python one (`requests`) in a
fresh interpreter, the JavaScript one (`fetch`) in Chromium on a page of another origin, allowed by CORS_ORIGINS.

Each example names the service and, in Python, the picture in one assignment each (`API = ...`, `IMAGE = ...`):
the tests change those values and nothing else.
"""

import base64
import json
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from bench.service import RunningService, start_service
from tests.helpers import FENCE, PROJECT_ROOT, README

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

EXAMPLES = PROJECT_ROOT / "examples"
# Bytes that are no image, posted as a file: the examples must show the error answer's code.
NOT_AN_IMAGE = b"a shopping list, not a picture\n"
# A confident reading of a digit, as the examples print it: "digit 3, 100% sure, is_digit=True" and "3, 100% sure".
SURE = r"(9\d|100)% sure"


def readme_block(language: str) -> str:
    """The README's one fenced block in this language."""
    blocks = [block["text"] for block in FENCE.finditer(README.read_text()) if block["language"] == language]
    assert len(blocks) == 1, f"the README should have one {language} block, not {len(blocks)}"
    return blocks[0]


def with_values(code: str, values: dict[str, str], declaration: str = "") -> str:
    """The example with each `NAME = ...` line (after `declaration`, such as "const ") given another value."""
    for name, value in values.items():
        line = f"{declaration}{name} = {json.dumps(value)}"
        code, count = re.subn(rf"^{declaration}{name} = .*$", lambda _, line=line: line, code, flags=re.M)
        assert count == 1, f"the example has no single line {declaration}{name} = ..."
    return code


class ClientPage:
    """Another web app's page on its own origin (a local port), from which the JavaScript example calls the service."""

    def __init__(self) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                body = b"<!doctype html><meta charset=utf-8><title>Another app</title><input type=file>"
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.origin = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture(scope="module")
def client_page() -> Iterator[ClientPage]:
    """The other app's page, served while the module runs."""
    page = ClientPage()
    yield page
    page.server.shutdown()


@pytest.fixture(scope="module")
def service(tmp_path_factory, client_page) -> Iterator[RunningService]:
    """The service as the Procfile starts it, letting the other app's page call it."""
    log = tmp_path_factory.mktemp("gunicorn") / "output.log"
    with start_service(log, {"WEB_CONCURRENCY": "1", "CORS_ORIGINS": client_page.origin}) as running:
        yield running


def run_python_example(service: RunningService, image: Path) -> str:
    """What the README's Python example prints, run in a fresh interpreter against the service, posting `image`."""
    code = with_values(readme_block("python"), {"API": service.url, "IMAGE": str(image)})
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0 and done.stderr == "", done.stderr
    return done.stdout


def test_the_python_example_prints_the_digit_its_confidence_and_is_digit(service):
    assert re.fullmatch(rf"digit 3, {SURE}, is_digit=True\n", run_python_example(service, EXAMPLES / "three.png"))


def test_the_python_example_shows_a_picture_that_is_no_digit(service):
    assert re.fullmatch(r"digit \d, \d+% sure, is_digit=False\n", run_python_example(service, EXAMPLES / "star.png"))


def test_the_python_example_prints_an_error_answers_status_and_code(service, tmp_path):
    upload = tmp_path / "list.txt"
    upload.write_bytes(NOT_AN_IMAGE)
    assert re.fullmatch(r"error 400 invalid_image: .{10,}\n", run_python_example(service, upload))


@pytest.mark.browser
def test_the_javascript_example_reads_uploads_from_a_page_of_another_origin(chromium, service, client_page):
    page = chromium.new_page()
    try:
        page.goto(client_page.origin + "/")
        page.add_script_tag(content=with_values(readme_block("js"), {"API": service.url}, declaration="const "))

        def read(name: str, media_type: str, data: bytes) -> str:
            """What the example's readDigit gives for this file, or the message of what it threw."""
            return page.evaluate(
                """async ([name, type, data]) => {
                    const file = new File([Uint8Array.from(atob(data), (c) => c.charCodeAt(0))], name, { type });
                    try { return await readDigit(file); } catch (error) { return `thrown ${error.message}`; }
                }""",
                [name, media_type, base64.b64encode(data).decode()],
            )

        assert re.fullmatch(rf"3, {SURE}", read("three.png", "image/png", (EXAMPLES / "three.png").read_bytes()))
        assert read("star.png", "image/png", (EXAMPLES / "star.png").read_bytes()) == "not a digit"
        assert re.fullmatch(r"thrown invalid_image: .{10,}", read("list.txt", "text/plain", NOT_AN_IMAGE))
    finally:
        page.close()
