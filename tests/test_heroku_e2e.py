"""Heroku as it is now, both generations: the files it reads (.python-version and no runtime.txt, app.json,
.slugignore), and the Procfile's service started from what the slug keeps, under the environment Heroku's classic
Python buildpack gives a dyno (Heroku itself cannot be reached from here): one log line per request, and a worker
count that fits the machine, not the one the buildpack chose."""

import json
import re
import socket
import time
import tomllib
import uuid
from pathlib import Path

import pytest
import requests

from bench.service import PROJECT_ROOT, start_service, worker_pids
from bench.slug_size import SLUGIGNORE, copy_slug, ignore_patterns, ignored
from model.machine import core_count
from web.settings import SETTING, fitting_workers, read_settings

# The Pythons Heroku's buildpacks support (devcenter.heroku.com/articles/python-support), as of 2026.
HEROKU_PYTHONS = ("3.10", "3.11", "3.12", "3.13", "3.14")
# What Heroku's classic Python buildpack exports at a dyno's boot (its profile.d scripts: vendor/WEB_CONCURRENCY.sh
# and python.gunicorn.sh) and what dyno metadata adds; start_service sets PORT. Its worker count is 2 x cores + 1 (17
# on a performance-L dyno), more workers than the machine's cores, whatever machine the tests run on.
BUILDPACK_WORKERS = str(max(17, 2 * core_count() + 1))
BUILDPACK_ENVIRONMENT = {
    "GUNICORN_CMD_ARGS": "--access-logfile -",
    "FORWARDED_ALLOW_IPS": "*",
    "WEB_CONCURRENCY": BUILDPACK_WORKERS,
    "WEB_CONCURRENCY_SET_BY": "heroku/python",
    "DYNO_RAM": "14336",
    "PYTHONUNBUFFERED": "true",
    "DYNO": "web.1",
    "HEROKU_APP_ID": "9daa2797-e49b-4624-932f-ec3f9688e3da",
    "HEROKU_APP_NAME": "my-digits",
    "HEROKU_DYNO_ID": "1vac4117-c29f-4312-521e-ba4d8638c1ac",
    "HEROKU_RELEASE_CREATED_AT": "2026-01-12T09:00:00Z",
    "HEROKU_RELEASE_VERSION": "v42",
    "HEROKU_SLUG_COMMIT": "2c3a0b24069af49b3de35b8e8c26765c1dba9ff0",
    "HEROKU_SLUG_DESCRIPTION": "Deploy 2c3a0b2",
}
# gunicorn's access log line (its default format): `"GET /healthz HTTP/1.1" 200 ...`.
GUNICORN_ACCESS_LINE = re.compile(r'"[A-Z]+ \S+ HTTP/\d\.\d" \d{3} ')
# Files the slug must keep: what the build reads and what the service reads at run time.
NEEDED = (
    ".python-version",
    "Procfile",
    "requirements.txt",
    "pyproject.toml",
    "gunicorn.conf.py",
    "server.py",
    "app.json",
    "project.toml",
    "examples/three.png",
)


def test_python_version_alone_names_a_python_heroku_supports_with_its_patch_updates():
    assert not (PROJECT_ROOT / "runtime.txt").exists()  # the classic buildpack would pin it, Fir's fail on it
    lines = [line.strip() for line in (PROJECT_ROOT / ".python-version").read_text().splitlines()]
    versions = [line for line in lines if line and not line.startswith("#")]
    assert len(versions) == 1 and re.fullmatch(r"3\.\d+", versions[0]), versions  # major.minor: the latest patch
    assert versions[0] in HEROKU_PYTHONS
    pyproject = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())
    assert pyproject["tool"]["ruff"]["target-version"] == "py" + versions[0].replace(".", "")


def test_app_json_deploys_the_service_with_no_setting_required(client):
    app = json.loads((PROJECT_ROOT / "app.json").read_text())
    assert app["buildpacks"] == [{"url": "heroku/python"}] and app["formation"]["web"]["quantity"] == 1
    assert set(app["env"]) <= set(SETTING) and not any(entry.get("required", True) for entry in app["env"].values())
    for environment in app.get("environments", {}).values():
        read_settings(environment.get("env", {}))  # every value it sets is allowed
    assert client.get(app["success_url"]).status_code == 200


def test_firs_project_descriptor_leaves_out_what_the_slugignore_does():
    descriptor = tomllib.loads((PROJECT_ROOT / "project.toml").read_text())
    assert descriptor["_"]["schema-version"] == "0.2"
    assert descriptor["io"]["buildpacks"]["exclude"] == ignore_patterns(PROJECT_ROOT / SLUGIGNORE)


def test_the_ignore_patterns_read_as_git_and_heroku_read_them():
    assert ignored("tests/test_x.py", ["/tests"]) and not ignored("web/tests.py", ["/tests"])
    assert ignored("a/b/__pycache__/x.pyc", ["__pycache__/"], is_folder=False)
    assert ignored("__pycache__", ["__pycache__/"], is_folder=True) and not ignored("x", ["x/"])
    assert ignored("model/digits.keras", ["/model/digits.keras"]) and not ignored("model/lines.keras", ["*.tflite"])
    assert ignored("deep/er/file.pyc", ["*.pyc"]) and not ignored("model/x.keras", ["/x.keras"])


def test_the_slug_leaves_out_tests_benchmarks_and_training_and_keeps_what_the_service_needs():
    patterns = ignore_patterns(PROJECT_ROOT / SLUGIGNORE)
    keras_files = [path.relative_to(PROJECT_ROOT).as_posix() for path in PROJECT_ROOT.glob("model/*.keras")]
    assert len(keras_files) == 4
    for left_out in ("tests/test_heroku_e2e.py", "bench/slug_size.py", "training/harness.py", *keras_files):
        assert ignored(left_out, patterns), left_out
    served = [path.relative_to(PROJECT_ROOT).as_posix() for path in PROJECT_ROOT.glob("model/*.tflite")]
    cards = [path.relative_to(PROJECT_ROOT).as_posix() for path in PROJECT_ROOT.glob("model/*.json")]
    code = [path.relative_to(PROJECT_ROOT).as_posix() for path in PROJECT_ROOT.glob("[mw]*/**/*.py")]
    templates = [path.relative_to(PROJECT_ROOT).as_posix() for path in PROJECT_ROOT.glob("web/templates/*")]
    for needed in (*NEEDED, *served, *cards, *code, *templates):
        assert not ignored(needed, patterns), needed


@pytest.fixture(scope="module")
def slug(tmp_path_factory) -> Path:
    """A copy of the app files Heroku's slug holds: what git would commit, less what .slugignore names."""
    folder = tmp_path_factory.mktemp("slug") / "app"
    copy_slug(PROJECT_ROOT, folder)
    assert not (folder / "tests").exists() and not list((folder / "model").glob("*.keras"))
    return folder


@pytest.fixture(scope="module")
def dyno(slug, tmp_path_factory):
    """The Procfile's service started from the slug, in the classic buildpack's environment."""
    log = tmp_path_factory.mktemp("gunicorn") / "output.log"
    with start_service(log, BUILDPACK_ENVIRONMENT, directory=slug) as running:
        yield running


def lines_with(log: Path, text: str) -> list[str]:
    """The lines of a service's log that hold `text`."""
    return [line for line in log.read_text().splitlines() if text in line]


@pytest.mark.e2e
@pytest.mark.slow
def test_the_slug_serves_every_network_with_litert(dyno, slug):
    answer = requests.get(dyno.url + "/model.json", timeout=10).json()
    assert answer["runtime"] == "litert"
    assert answer["digitness"] and answer["wholeness"] and answer["line_reader"]
    with open(slug / "examples" / "number.png", "rb") as image:
        response = requests.post(dyno.url + "/recognize/number.json", files={"image": image}, timeout=10)
    assert response.status_code == 200 and response.json()["number"] == "2024"
    assert not lines_with(dyno.log, "no digit detector") and not lines_with(dyno.log, "no line reader")
    assert lines_with(dyno.log, f"{slug}/model/digits.tflite")  # the slug's networks, not the checkout's


@pytest.mark.e2e
@pytest.mark.slow
def test_each_request_logs_exactly_one_line_although_the_buildpack_asks_gunicorn_for_an_access_log(dyno, slug):
    ids = {}
    with open(slug / "examples" / "three.png", "rb") as image:
        three = image.read()
    calls = [
        ("POST", "/recognize.json", {"data": three, "headers": {"Content-Type": "image/png"}}),
        ("GET", "/healthz", {}),
        ("GET", "/model.json", {}),
        ("GET", "/no-such-page", {}),
        ("POST", "/recognize.json", {"data": b"not an image", "headers": {"Content-Type": "image/png"}}),
    ]
    for method, path, arguments in calls:
        request_id = uuid.uuid4().hex
        headers = {"X-Request-ID": request_id, **arguments.pop("headers", {})}
        response = requests.request(method, dyno.url + path, headers=headers, timeout=10, **arguments)
        assert response.headers["X-Request-ID"] == request_id
        ids[request_id] = (method, path, response.status_code)
    # a request gunicorn's parser refuses never reaches the app: the worker answers it, and logs it once, in the same
    # format, without the client's text (here a bad method token)
    token = uuid.uuid4().hex
    port = int(dyno.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        connection.sendall(f"bad{token} / HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        refused = connection.recv(65536)
    assert refused.startswith(b"HTTP/1.1 400 ")
    refused_id = re.search(rb"\r\nX-Request-ID: ([0-9a-f]+)\r\n", refused)[1].decode()
    time.sleep(0.5)  # the workers' lines reach the log file
    for request_id, (method, path, status) in ids.items():
        lines = lines_with(dyno.log, request_id)
        assert len(lines) == 1 and f"method={method} path={path} status={status} " in lines[0], (path, lines)
    lines = lines_with(dyno.log, refused_id)
    assert len(lines) == 1 and "method=- path=- status=400 " in lines[0] and lines[0].endswith(" code=bad_request")
    assert not lines_with(dyno.log, token)
    assert not [line for line in dyno.log.read_text().splitlines() if GUNICORN_ACCESS_LINE.search(line)]


@pytest.mark.e2e
@pytest.mark.slow
def test_the_workers_fit_the_machine_and_not_the_buildpacks_choice(dyno):
    expected = fitting_workers(BUILDPACK_ENVIRONMENT)
    assert 1 <= expected <= core_count() < int(BUILDPACK_WORKERS)
    deadline = time.monotonic() + 30
    while len(worker_pids(dyno.process.pid)) != expected and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(1.0)  # none more comes
    assert len(worker_pids(dyno.process.pid)) == expected
    assert lines_with(dyno.log, f"workers: {expected}, one per core, as many as the memory holds")
    assert lines_with(dyno.log, f"the WEB_CONCURRENCY={BUILDPACK_WORKERS} that heroku/python set is not used")


@pytest.mark.e2e
@pytest.mark.slow
def test_behind_the_router_the_docs_say_https_and_no_header_moves_the_apps_root(dyno):
    page = requests.get(dyno.url + "/docs", headers={"X-Forwarded-Proto": "https"}, timeout=10).text
    assert f"https://{dyno.url.removeprefix('http://')}/recognize.json" in page  # FORWARDED_ALLOW_IPS='*'
    # gunicorn would take SCRIPT_NAME from a trusted peer's header, and fail (500) on a path outside it
    response = requests.get(dyno.url + "/healthz", headers={"SCRIPT_NAME": "/elsewhere"}, timeout=10)
    assert response.status_code == 200


@pytest.mark.e2e
@pytest.mark.slow
def test_an_operators_worker_count_is_obeyed_under_the_buildpack(slug, tmp_path):
    environment = {**BUILDPACK_ENVIRONMENT, "WEB_CONCURRENCY": "1"}
    del environment["WEB_CONCURRENCY_SET_BY"]  # `heroku config:set WEB_CONCURRENCY=1`: the buildpack leaves it
    with start_service(tmp_path / "output.log", environment, directory=slug) as running:
        time.sleep(1.0)
        assert len(worker_pids(running.process.pid)) == 1
        assert lines_with(running.log, "workers: 1 (WEB_CONCURRENCY)")


@pytest.mark.e2e
@pytest.mark.slow
def test_with_no_worker_count_set_as_on_fir_the_service_starts_one_worker_per_core(slug, tmp_path, monkeypatch):
    for name in ("WEB_CONCURRENCY", "WEB_CONCURRENCY_SET_BY", "GUNICORN_CMD_ARGS", "FORWARDED_ALLOW_IPS"):
        monkeypatch.delenv(name, raising=False)  # Fir's buildpack sets none of these
    environment = {"DYNO": "web.1", "PYTHONUNBUFFERED": "true"}
    with start_service(tmp_path / "output.log", environment, directory=slug) as running:
        expected = fitting_workers({})
        deadline = time.monotonic() + 30
        while len(worker_pids(running.process.pid)) != expected and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(worker_pids(running.process.pid)) == expected
        assert lines_with(running.log, f"workers: {expected}, one per core, as many as the memory holds (")
        with open(slug / "examples" / "three.png", "rb") as image:
            response = requests.post(running.url + "/recognize.json", files={"image": image}, timeout=10)
        assert response.status_code == 200 and response.json()["digit"] == 3
