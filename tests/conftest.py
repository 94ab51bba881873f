"""Shared fixtures: the committed classifier (loaded once, in each runtime), the app and its test client, MNIST,
headless Chromium, a stand-in Sentry; and the markers' one rule: whatever needs TensorFlow, starts gunicorn or a
browser, or trains, is slow."""

import gzip
import json
import os
import shutil
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from server import create_app
from tests.helpers import PROJECT_ROOT

# Keras's mnist.npz: $MNIST_PATH, else ../shared/data/mnist.npz beside the repository (where CI has it)
MNIST_PATH = Path(os.environ.get("MNIST_PATH") or PROJECT_ROOT.parent / "shared" / "data" / "mnist.npz")
# set to 1 (.ci/run does), a browser test without Chromium fails instead of skipping: CI must run them all
REQUIRE_BROWSER = "REQUIRE_BROWSER"
# markers that make a test slow (pyproject.toml describes them): `python -m pytest -m "not slow"` leaves them out
SLOW_MARKERS = ("e2e", "browser", "training", "needs_tensorflow")


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items):
    """A test with one of SLOW_MARKERS is slow too: the quick run never needs TensorFlow, gunicorn or Chromium."""
    for item in items:
        if any(item.get_closest_marker(name) for name in SLOW_MARKERS) and not item.get_closest_marker("slow"):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def classifier():
    """The committed model in the production runtime (LiteRT, no TensorFlow), loaded once for the whole session."""
    from model.classifier import Classifier

    return Classifier.load(runtime="litert")


@pytest.fixture(scope="session")
def keras_classifier():
    """The committed model in the Keras runtime (imports TensorFlow: only for tests marked needs_tensorflow)."""
    from model.classifier import Classifier

    return Classifier.load(runtime="keras")


@pytest.fixture
def app(classifier):
    """The Flask app with the shared classifier and exceptions turned into 500 answers."""
    return create_app({"TESTING": True, "PROPAGATE_EXCEPTIONS": False, "CLASSIFIER": classifier})


@pytest.fixture
def client(app):
    """Flask's test client for the app."""
    return app.test_client()


@pytest.fixture(scope="session")
def mnist():
    """Keras's MNIST npz at MNIST_PATH, which CI provides; skipped where there is none."""
    import numpy as np

    if not MNIST_PATH.exists():
        pytest.skip(f"MNIST not found at {MNIST_PATH}: set MNIST_PATH to Keras's mnist.npz (README, Quick start)")
    with np.load(MNIST_PATH) as arrays:
        return {name: arrays[name] for name in arrays.files}


def no_browser(reason: str) -> None:
    """A browser test without its browser: skipped here, failed where REQUIRE_BROWSER=1 (CI)."""
    if os.environ.get(REQUIRE_BROWSER) == "1":
        pytest.fail(f"{reason}, and {REQUIRE_BROWSER}=1 demands the browser tests")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def chromium():
    """Headless Chromium through Playwright: the system's (Debian's `chromium`, as CI installs it), else the one
    `python -m playwright install chromium` downloaded; Playwright itself downloads nothing."""
    import playwright.sync_api as playwright_api

    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    with playwright_api.sync_playwright() as playwright:
        if executable is None and not Path(playwright.chromium.executable_path).exists():
            no_browser(
                "no Chromium: apt-get install chromium (Debian, Ubuntu) or python -m playwright install chromium (macOS)"
            )
        launched = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        yield launched
        launched.close()


class SentryReceiver:
    """A small HTTP server standing in for Sentry: it keeps every event the SDK sends, and every envelope whole."""

    def __init__(self) -> None:
        self.events: list[dict] = []
        self.envelopes: list[bytes] = []  # everything sent, events or not (transactions, sessions, ...)
        self.item_types: list[str] = []  # the type of each item of each envelope: "event", "transaction", ...
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                receiver.take_envelope(body)
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def take_envelope(self, body: bytes) -> None:
        """An envelope is a header line, then item header / payload line pairs; keep the events."""
        self.envelopes.append(body)
        lines = body.split(b"\n")
        for header, payload in zip(lines[1::2], lines[2::2], strict=False):
            kind = json.loads(header).get("type")
            self.item_types.append(kind)
            if kind == "event":
                self.events.append(json.loads(payload))

    def wait_for_events(self, count: int, timeout: float = 15.0) -> list[dict]:
        """Wait until `count` events arrived."""
        deadline = time.monotonic() + timeout
        while len(self.events) < count and time.monotonic() < deadline:
            time.sleep(0.1)
        return self.events


@pytest.fixture(scope="module")
def sentry():
    """A stand-in Sentry for one test module's service: it keeps every event the SDK sends."""
    receiver = SentryReceiver()
    yield receiver
    receiver.server.shutdown()
