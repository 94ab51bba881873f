"""A Python client generated from the running service's own GET /openapi.json reads digits and numbers from it.

openapi-python-client (requirements_tests.txt) writes the client into a temporary folder, never into the repository;
the client then talks to the Procfile's gunicorn over real HTTP, with an API key, in every documented body type.
The examples of GET /docs run here as written, and each worker's start-up line names the version.
"""

import base64
import html
import importlib
import io
import json
import re
import subprocess
import sys
import time
from types import ModuleType

import pytest
import requests

from bench.service import PROJECT_ROOT, start_service
from tests.helpers import CLIENT_PACKAGE, generate_client
from web.version import VERSION

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

# The API key the service is started with; the generated AuthenticatedClient sends it as a bearer token.
API_KEY = "e2e-client-key"
# The pictures the examples post: a 3, and the number 2024.
THREE = (PROJECT_ROOT / "examples" / "three.png").read_bytes()
NUMBER = (PROJECT_ROOT / "examples" / "number.png").read_bytes()


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    """The service as Heroku starts it, with two workers and an API key."""
    environment = {"WEB_CONCURRENCY": "2", "API_KEYS": API_KEY}
    with start_service(tmp_path_factory.mktemp("gunicorn") / "output.log", environment) as running:
        yield running


@pytest.fixture(scope="module")
def generated(service, tmp_path_factory):
    """The client generated from the service's GET /openapi.json, importable for this module's tests only."""
    document = requests.get(service.url + "/openapi.json", timeout=10)
    assert document.status_code == 200
    folder = tmp_path_factory.mktemp("generated")
    generate_client(document.json(), folder)
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(folder))
        yield importlib.import_module(CLIENT_PACKAGE)
    for name in [name for name in sys.modules if name == CLIENT_PACKAGE or name.startswith(CLIENT_PACKAGE + ".")]:
        del sys.modules[name]


def module(name: str) -> ModuleType:
    """A module of the generated package, e.g. "api.recognition.recognize_digit"."""
    return importlib.import_module(f"{CLIENT_PACKAGE}.{name}")


@pytest.fixture
def client(generated, service):
    """The generated client, authenticated with the service's key."""
    return generated.AuthenticatedClient(base_url=service.url, token=API_KEY, raise_on_unexpected_status=True)


def png_file(data: bytes, name: str):
    """The generated File type holding a PNG."""
    return module("types").File(payload=io.BytesIO(data), file_name=name, mime_type="image/png")


def test_the_generated_client_reads_a_digit_in_every_documented_body_type(client):
    models, recognize_digit = module("models"), module("api.recognition.recognize_digit")
    encoded = base64.b64encode(THREE).decode()
    bodies = {
        "a multipart file": models.ImageFileForm(image=png_file(THREE, "three.png")),
        "a multipart text field": models.ImageFileForm(image="data:image/png;base64," + encoded),
        "a urlencoded form": models.ImageTextForm(image=encoded),
        "JSON": models.ImageJson(image="data:image/png;base64," + encoded),
        "a raw body": png_file(THREE, "three.png"),
    }
    for how, body in bodies.items():
        response = recognize_digit.sync_detailed(client=client, body=body, x_request_id="generated-client")
        assert response.status_code == 200 and response.headers["X-Request-ID"] == "generated-client", how
        prediction = response.parsed
        assert isinstance(prediction, models.Prediction), (how, response.content[:200])
        assert prediction.digit == 3 and prediction.is_digit and prediction.confidence > 0.9, how
        assert len(prediction.probabilities) == 10 and prediction.confidence == max(prediction.probabilities)
    # the generated field is `input_` (`input` is a Python builtin)
    seen = recognize_digit.sync(
        client=client, body=models.ImageJson(image=encoded), include=models.RecognizeDigitInclude.INPUT
    )
    assert seen.digit == 3 and seen.input_.startswith("data:image/png;base64,")


def test_the_generated_client_reads_a_batch_and_an_error(client):
    models, recognize_digit = module("models"), module("api.recognition.recognize_digit")
    batch = recognize_digit.sync(
        client=client, body=models.ImageBatchJson(images=[base64.b64encode(THREE).decode(), "not base64"])
    )
    assert isinstance(batch, models.BatchResult)
    first, second = batch.results
    assert isinstance(first, models.Prediction) and first.digit == 3
    assert isinstance(second, models.Error) and second.error.code == models.ErrorErrorCode.INVALID_IMAGE
    response = recognize_digit.sync_detailed(client=client, body=models.ImageJson(image="not base64"))
    assert response.status_code == 400 and response.parsed.error.code == models.ErrorErrorCode.INVALID_IMAGE


def test_the_generated_client_reads_a_number(client):
    models, recognize_number = module("models"), module("api.recognition.recognize_number")
    for body in (models.ImageFileForm(image=png_file(NUMBER, "number.png")), png_file(NUMBER, "number.png")):
        number = recognize_number.sync(client=client, body=body)
        assert isinstance(number, models.Number) and number.number == "2024" and number.lines == ["2024"]
        assert [mark.digit for mark in number.digits] == [2, 0, 2, 4]
        boxes = [mark.box for mark in number.digits]
        assert all(box.width > 0 and box.height > 0 for box in boxes)
        assert [box.x for box in boxes] == sorted(box.x for box in boxes)
    batch = recognize_number.sync(
        client=client, body=models.ImageBatchJson(images=[base64.b64encode(NUMBER).decode(), "not base64"])
    )
    assert isinstance(batch, models.NumberBatchResult) and batch.results[0].number == "2024"
    assert isinstance(batch.results[1], models.Error)


def test_the_generated_client_needs_the_key_and_reads_the_model_card(generated, client, service):
    models = module("models")
    anonymous = generated.Client(base_url=service.url)
    refused = module("api.recognition.recognize_digit").sync_detailed(
        client=anonymous, body=png_file(THREE, "three.png")
    )
    assert refused.status_code == 401 and refused.parsed.error.code == models.ErrorErrorCode.UNAUTHORIZED
    card = module("api.service.get_model_card").sync(client=client)
    assert isinstance(card, models.ModelCard)
    assert card.service_version == VERSION and card.runtime == models.ModelCardRuntime.LITERT
    assert card["parameters"] == 1_199_882  # the card's own fields, beyond the described ones
    assert module("api.service.get_health").sync(client=anonymous).status == "ok"


def test_the_generated_client_reads_an_answer_the_worker_gives_itself(generated, service):
    """The worker's own answers are documented on every operation: a request with too many headers, which gunicorn
    refuses with 431 before any route, is parsed as an Error, not raised as an unexpected status."""
    models = module("models")
    crowded = generated.Client(
        base_url=service.url,
        headers={f"X-Filler-{number}": "x" for number in range(150)},
        raise_on_unexpected_status=True,
    )
    refused = module("api.service.get_health").sync_detailed(client=crowded)
    assert refused.status_code == 431 and isinstance(refused.parsed, models.Error), refused.content[:200]
    assert refused.parsed.error.code == models.ErrorErrorCode.HEADERS_TOO_LARGE


def test_the_docs_examples_run_as_written(service):
    page = requests.get(service.url + "/docs", timeout=10)
    assert page.status_code == 200
    examples = re.search(r'<h2 id="try-it">.*?<pre>(.*?)</pre>', page.text, re.DOTALL)
    commands = html.unescape(examples[1]).splitlines()
    assert len(commands) == 4 and all(command.startswith("curl ") for command in commands)
    for command in commands:
        result = subprocess.run(
            ["bash", "-c", command],
            cwd=PROJECT_ROOT,
            env={"PATH": "/usr/bin:/bin", "API_KEY": API_KEY},
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert result.returncode == 0, (command, result.stderr)
        answer = json.loads(result.stdout)
        if "number.json" in command:
            assert answer["number"] == "2024", command
        else:
            assert answer["digit"] == 3 and answer["is_digit"], command


def test_each_worker_names_the_version_at_start(service):
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        started = re.findall(rf"digit-recognition {re.escape(VERSION)} ready in process (\d+)", service.log.read_text())
        if len(started) == 2:
            break
        time.sleep(0.1)
    assert len(set(started)) == 2, service.log.read_text()[-2000:]
