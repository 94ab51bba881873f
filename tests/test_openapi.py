"""The OpenAPI description matches the real app: every route, every input style, every answer's shape; it names its
operations, version and licence for generated clients, and /docs renders it cleanly."""

import ast
import base64
import io
import json
import re
import tomllib

import pytest
from jsonschema import Draft202012Validator
from PIL import Image
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from bench.slug_size import SLUGIGNORE, ignore_patterns, ignored
from server import create_app
from tests.drawing import encode
from tests.helpers import CANVAS_SEVEN, PROJECT_ROOT, data_url, generate_client
from web.errors import CODE_BY_STATUS, ERRORS
from web.openapi import markdown_html
from web.version import VERSION
from web.worker import REFUSALS

# The routes Flask adds itself, and the methods it answers on every route.
IGNORED_ENDPOINTS = {"static"}
AUTOMATIC_METHODS = {"HEAD", "OPTIONS"}
# Where the validators find the document, so that its "#/components/..." references resolve in it.
DOCUMENT_URI = "urn:digit-recognition:openapi"
# The headers the service sets on purpose on some answers: each must be described where it is sent.
DELIBERATE_HEADERS = ("X-Request-ID", "Retry-After", "WWW-Authenticate")
# A code at the start of a line of an error response's description ("`code`: meaning").
LISTED_CODE = re.compile(r"^(?:- )?`(\w+)`:", re.MULTILINE)


def documented_routes(document: dict) -> dict[str, set[str]]:
    """{path: methods} of the document."""
    return {path: {method.upper() for method in operations} for path, operations in document["paths"].items()}


def app_routes(app) -> dict[str, set[str]]:
    """{path: methods} of the real app."""
    routes: dict[str, set[str]] = {}
    for rule in app.url_map.iter_rules():
        if rule.endpoint not in IGNORED_ENDPOINTS:
            routes.setdefault(rule.rule, set()).update(rule.methods - AUTOMATIC_METHODS)
    return routes


def validator(document: dict, *pointer: str) -> Draft202012Validator:
    """A JSON Schema 2020-12 validator of the schema at `pointer` (its keys) in the document, whose $refs resolve in
    the document itself (as OpenAPI 3.1 reads them), through a registry."""
    resource = Resource.from_contents(document, default_specification=DRAFT202012)
    escaped = "/".join(key.replace("~", "~0").replace("/", "~1") for key in pointer)
    registry = Registry().with_resource(DOCUMENT_URI, resource)
    return Draft202012Validator({"$ref": f"{DOCUMENT_URI}#/{escaped}"}, registry=registry)


def listed_codes(response: dict) -> list[str]:
    """The error codes a described response lists."""
    return [code for code in LISTED_CODE.findall(response["description"]) if code in ERRORS]


def assert_matches_document(document: dict, path: str, method: str, response) -> None:
    """The answer's status, content type, headers and body are as the document describes them."""
    described = document["paths"][path][method]["responses"]
    assert str(response.status_code) in described, (
        f"{method.upper()} {path} answered {response.status_code}, not documented"
    )
    answer = described[str(response.status_code)]
    assert response.mimetype in answer["content"], (response.mimetype, list(answer["content"]))
    assert response.headers["X-Request-ID"]
    sent = [name for name in DELIBERATE_HEADERS if name in response.headers]
    assert set(sent) <= set(answer["headers"]), (path, response.status_code, sent, list(answer["headers"]))
    if response.mimetype == "application/json":
        body = response.get_json()
        status = str(response.status_code)
        validator(
            document, "paths", path, method, "responses", status, "content", "application/json", "schema"
        ).validate(body)
        if "error" in body:
            assert body["error"]["code"] in listed_codes(answer), (path, status, body)


def codes_the_worker_answers() -> set[str]:
    """Every error code web/worker.py names, each a string literal: its REFUSALS and the answers it writes itself
    (a body cut short, a failure, a restart, the time limit)."""
    tree = ast.parse((PROJECT_ROOT / "web" / "worker.py").read_text())
    named = {node.value for node in ast.walk(tree) if isinstance(node, ast.Constant) and node.value in ERRORS}
    assert {code for _, code, _ in REFUSALS} <= named and {"overloaded", "worker_timeout"} <= named
    return named


@pytest.fixture(params=[{}, {"API_KEYS": ("k1",), "ENABLE_DEBUG_ROUTES": True}], ids=["default", "keys-and-debug"])
def app_and_document(request, classifier):
    """An app and the document it serves, with and without keys and debug routes."""
    app = create_app({"TESTING": True, "PROPAGATE_EXCEPTIONS": False, "CLASSIFIER": classifier, **request.param})
    client = app.test_client()
    response = client.get("/openapi.json")
    assert response.status_code == 200 and response.mimetype == "application/json"
    return app, response.get_json()


def test_the_document_is_well_formed(app_and_document):
    _, document = app_and_document
    assert document["openapi"].startswith("3.1")
    json.dumps(document)  # plain JSON
    for schema in document["components"]["schemas"].values():
        Draft202012Validator.check_schema(schema)
    refs = set(re.findall(r'"#/components/(\w+)/(\w+)"', json.dumps(document)))
    assert refs and all(name in document["components"][kind] for kind, name in refs)


def test_every_route_is_described_and_nothing_else(app_and_document):
    app, document = app_and_document
    assert documented_routes(document) == app_routes(app)


def test_security_is_described_exactly_when_keys_are_required(app_and_document):
    app, document = app_and_document
    protected = [op for path, ops in document["paths"].items() for op in ops.values() if "security" in op]
    if app.config["API_KEYS"]:
        assert "apiKey" in document["components"]["securitySchemes"]
        assert {
            path for path, ops in document["paths"].items() if "security" not in ops["get" if "get" in ops else "post"]
        } == {"/", "/healthz", "/openapi.json", "/docs"}
    else:
        assert not protected and "securitySchemes" not in document["components"]


def test_every_error_code_the_app_can_answer_is_in_the_document():
    assert set(CODE_BY_STATUS.values()) <= set(ERRORS)


def upload_bodies() -> dict:
    """Requests of each documented body type carrying the canvas 7 (fresh file objects on each call)."""
    encoded = base64.b64encode(CANVAS_SEVEN).decode()
    return {
        "multipart/form-data": [
            {"data": {"image": (io.BytesIO(CANVAS_SEVEN), "seven.png")}},
            {"data": {"image": data_url(CANVAS_SEVEN)}, "content_type": "multipart/form-data"},
        ],
        "application/x-www-form-urlencoded": [
            {"data": {"image": data_url(CANVAS_SEVEN)}},
            {"data": {"image": encoded}},
        ],
        "application/json": [
            {"json": {"image": encoded}},
            {"json": {"image": data_url(CANVAS_SEVEN)}},
            {"json": {"images": [encoded, data_url(CANVAS_SEVEN)]}},
        ],
        "application/octet-stream": [{"data": CANVAS_SEVEN, "content_type": "application/octet-stream"}],
    }


def as_instance(arguments: dict):
    """A request body as JSON Schema sees it under OpenAPI 3.1: JSON as is; a form as an object of its fields; a
    file's bytes (a form's file part, a raw body) as a string."""
    if "json" in arguments:
        return arguments["json"]
    if isinstance(arguments["data"], bytes):
        return arguments["data"].decode("latin-1")
    fields = arguments["data"].items()
    return {
        name: value[0].getvalue().decode("latin-1") if isinstance(value, tuple) else value for name, value in fields
    }


@pytest.mark.parametrize(
    "path, field, expected", [("/recognize.json", "digit", 7), ("/recognize/number.json", "number", "7")]
)
def test_each_documented_request_body_works(client, path, field, expected):
    document = client.get("/openapi.json").get_json()
    content = document["paths"][path]["post"]["requestBody"]["content"]
    assert set(content) == set(upload_bodies())
    for media_type, variants in upload_bodies().items():
        described = validator(document, "paths", path, "post", "requestBody", "content", media_type, "schema")
        for arguments in variants:
            # what is sent is valid under its media type's schema (the message leaves the file's bytes out)
            errors = [error.message[-160:] for error in described.iter_errors(as_instance(arguments))]
            assert not errors, (path, media_type, errors)
            response = client.post(path, **arguments)
            assert response.status_code == 200, media_type
            answer = response.get_json()
            assert (answer["results"][0] if "images" in arguments.get("json", {}) else answer)[field] == expected
            assert_matches_document(document, path, "post", response)


def test_the_request_body_schemas_refuse_what_the_service_refuses(client):
    """The body schemas are not vacuous: a body without its image, of the wrong type, or an empty or oversized batch
    is invalid under them (the service answers each with a 400 or 413)."""
    document = client.get("/openapi.json").get_json()
    too_many = ["x"] * (client.application.config["MAX_BATCH_IMAGES"] + 1)
    invalid = {
        "multipart/form-data": [{}, {"image": 5}, {"picture": "x"}],
        "application/x-www-form-urlencoded": [{}, {"image": ["x"]}],
        "application/json": [{}, {"image": 5}, {"images": []}, {"images": too_many}, {"images": "x"}, [1]],
        "application/octet-stream": [5, None],
    }
    for path in ("/recognize.json", "/recognize/number.json"):
        for media_type, bodies in invalid.items():
            described = validator(document, "paths", path, "post", "requestBody", "content", media_type, "schema")
            for body in bodies:
                assert not described.is_valid(body), (path, media_type, body)


def test_a_raw_body_of_any_image_type_is_still_read_and_the_description_says_so(client):
    """Raw bodies are described as application/octet-stream only (client generators do not handle a range such as
    image/*), but every image/* type is read as before, and the body's description says so."""
    document = client.get("/openapi.json").get_json()
    for path, field, expected in [("/recognize.json", "digit", 7), ("/recognize/number.json", "number", "7")]:
        assert "any `image/*` type" in document["paths"][path]["post"]["requestBody"]["description"]
        for media_type in ("image/png", "image/jpeg", "image/x-anything"):
            response = client.post(path, data=CANVAS_SEVEN, content_type=media_type)
            assert response.status_code == 200 and response.get_json()[field] == expected, media_type


def test_real_answers_match_the_document(classifier):
    app = create_app(
        {
            "TESTING": True,
            "PROPAGATE_EXCEPTIONS": False,
            "CLASSIFIER": classifier,
            "MAX_CONTENT_LENGTH": 200_000,
            "ENABLE_DEBUG_ROUTES": True,
        }
    )
    client = app.test_client()
    document = client.get("/openapi.json").get_json()
    blank = encode(Image.new("L", (28, 28), 255))
    calls = [
        ("/recognize.json", "post", {"data": CANVAS_SEVEN, "content_type": "image/png"}, 200),
        ("/recognize.json", "post", {"json": {"images": [data_url(CANVAS_SEVEN), "not base64!"]}}, 200),
        ("/recognize.json", "post", {"data": b"", "content_type": "image/png"}, 400),
        ("/recognize.json", "post", {"data": b"%PDF-1.4", "content_type": "image/png"}, 400),
        ("/recognize.json", "post", {"data": b"[1]", "content_type": "application/json"}, 400),
        ("/recognize.json", "post", {"data": b"x" * 300_000, "content_type": "image/png"}, 413),
        ("/recognize.json", "post", {"data": b"text", "content_type": "text/plain"}, 415),
        ("/recognize.json", "post", {"data": blank, "content_type": "image/png"}, 422),
        ("/healthz", "get", {}, 200),
        ("/model.json", "get", {}, 200),
        ("/metrics", "get", {}, 200),
        ("/openapi.json", "get", {}, 200),
        ("/docs", "get", {}, 200),
        ("/", "get", {}, 200),
        ("/recognize.json?include=input", "post", {"data": CANVAS_SEVEN, "content_type": "image/png"}, 200),
        ("/recognize/number.json", "post", {"data": CANVAS_SEVEN, "content_type": "image/png"}, 200),
        ("/recognize/number.json", "post", {"json": {"images": [data_url(CANVAS_SEVEN), "not base64!"]}}, 200),
        ("/recognize/number.json", "post", {"data": b"%PDF-1.4", "content_type": "image/png"}, 400),
        ("/recognize/number.json", "post", {"data": blank, "content_type": "image/png"}, 422),
        ("/_debug/error", "get", {}, 500),
        ("/_debug/error", "post", {"data": b"x" * 300_000, "content_type": "image/png"}, 413),
        ("/_debug/sleep?seconds=-1", "get", {}, 400),
    ]
    for path, method, arguments, status in calls:
        response = client.open(path, method=method.upper(), **arguments)
        assert response.status_code == status, (path, response.get_data(as_text=True)[:200])
        assert_matches_document(document, path.partition("?")[0], method, response)
    assert_matches_document(document, "/healthz", "get", client.post("/healthz"))  # 405
    # a 404 has no documented path: it still has the error shape of every error
    missing = client.get("/nowhere")
    Draft202012Validator({**document["components"]["schemas"]["Error"], "components": document["components"]}).validate(
        missing.get_json()
    )


def test_a_401_matches_the_document_with_its_www_authenticate_header(classifier):
    client = create_app({"TESTING": True, "CLASSIFIER": classifier, "API_KEYS": ("k1",)}).test_client()
    document = client.get("/openapi.json").get_json()
    for path, method in [("/recognize.json", "post"), ("/model.json", "get"), ("/metrics", "get")]:
        response = client.open(path, method=method.upper())
        assert response.status_code == 401 and response.headers["WWW-Authenticate"].startswith("Bearer ")
        assert_matches_document(document, path, method, response)


def test_a_503_of_a_full_queue_matches_the_document_with_its_retry_after_header(classifier):
    client = create_app({"TESTING": True, "CLASSIFIER": classifier, "WAITING_PER_WORKER": lambda: 10**6}).test_client()
    document = client.get("/openapi.json").get_json()
    for path in ("/recognize.json", "/recognize/number.json"):
        response = client.post(path, data=CANVAS_SEVEN, content_type="image/png")
        assert response.status_code == 503 and response.headers["Retry-After"]
        assert_matches_document(document, path, "post", response)


def test_every_answer_the_worker_gives_itself_is_documented_on_every_operation(app_and_document):
    """The gunicorn worker answers before or around the app, whatever the route (a malformed request, a body cut
    short, a restart, the time limit): a generated client must know each of those statuses on every operation."""
    app, document = app_and_document
    worker_codes = codes_the_worker_answers()
    assert len(worker_codes) >= 8  # the scan finds the worker's answers
    for path, operations in document["paths"].items():
        for method, op in operations.items():
            for code in worker_codes:
                response = op["responses"].get(str(ERRORS[code].status))
                assert response and code in listed_codes(response), (method, path, code)
            assert "Retry-After" in op["responses"]["503"]["headers"], (method, path)
            if "security" in op:
                assert "WWW-Authenticate" in op["responses"]["401"]["headers"], (method, path)
            else:
                assert "401" not in op["responses"], (method, path)


def test_each_operation_lists_only_the_codes_its_route_can_give(app_and_document):
    """Besides the worker's answers, routing's 404 and 405 and the 401 of the keys, each route lists its own codes
    only: no upload errors where nothing is uploaded, too_many_marks for numbers, metrics_unavailable for /metrics."""
    app, document = app_and_document
    keys = {"unauthorized"} if app.config["API_KEYS"] else set()
    everywhere = codes_the_worker_answers() | {"not_found", "method_not_allowed"}
    upload = {code for code, error in ERRORS.items() if error.status in (400, 408, 413, 415)}
    expected = {
        ("/recognize.json", "post"): everywhere | keys | upload | {"no_digit", "overloaded"},
        ("/recognize/number.json", "post"): everywhere | keys | upload | {"no_digit", "too_many_marks", "overloaded"},
        ("/model.json", "get"): everywhere | keys,
        ("/metrics", "get"): everywhere | keys | {"metrics_unavailable"},
        ("/healthz", "get"): everywhere,
        ("/openapi.json", "get"): everywhere,
        ("/docs", "get"): everywhere,
        ("/", "get"): everywhere,
        ("/_debug/error", "get"): everywhere | keys,
        ("/_debug/error", "post"): everywhere | keys | upload,
        ("/_debug/sleep", "get"): everywhere | keys | {"bad_request", "worker_timeout"},
    }
    for path, operations in document["paths"].items():
        for method, op in operations.items():
            errors = {status: response for status, response in op["responses"].items() if not status.startswith("2")}
            listed = [code for response in errors.values() for code in listed_codes(response)]
            assert sorted(listed) == sorted(expected[path, method]), (method, path)  # each once
            assert all(str(ERRORS[code].status) == status for status, r in errors.items() for code in listed_codes(r))
            assert list(op["responses"]) == sorted(op["responses"], key=int)


def test_the_docs_page_shows_every_route_and_needs_nothing_from_elsewhere(client):
    page = client.get("/docs")
    assert page.status_code == 200 and page.mimetype == "text/html"
    html = page.get_data(as_text=True)
    for path in client.get("/openapi.json").get_json()["paths"]:
        assert f"<code>{path}</code>" in html
    assert not re.search(r'<(script|link|img|iframe)\b[^>]*(src|href)="(https?:)?//', html)
    assert "@import" not in html and "<script" not in html


def test_every_operation_is_named_and_tagged_for_generated_clients(app_and_document):
    _, document = app_and_document
    operations = [op for ops in document["paths"].values() for op in ops.values()]
    names = [op["operationId"] for op in operations]
    assert len(set(names)) == len(names) and all(re.fullmatch(r"[a-z][A-Za-z]+", name) for name in names)
    declared = [tag["name"] for tag in document["tags"]]
    assert all(len(op["tags"]) == 1 and op["tags"][0] in declared for op in operations)
    assert set(declared) == {op["tags"][0] for op in operations}  # no tag without operations
    assert {
        document["paths"][path]["post"]["operationId"] for path in ("/recognize.json", "/recognize/number.json")
    } == {
        "recognizeDigit",
        "recognizeNumber",
    }


def test_the_document_names_its_version_licence_and_servers(app_and_document):
    _, document = app_and_document
    with open(PROJECT_ROOT / "pyproject.toml", "rb") as file:
        project = tomllib.load(file)["project"]
    assert document["info"]["version"] == VERSION == project["version"] and re.fullmatch(r"\d+\.\d+\.\d+", VERSION)
    assert document["info"]["license"] == {"name": "MIT", "identifier": "MIT"} and project["license"] == "MIT"
    licence = (PROJECT_ROOT / "LICENSE").read_text()
    assert licence.startswith("MIT License") and "Copyright (c) 2026 the digit-recognition authors" in licence
    assert document["servers"][0]["url"] == "/"  # relative: the deployment that serves the document
    # the service reads its version from pyproject.toml at start (web/version.py): Heroku's slug must keep the file
    assert not ignored("pyproject.toml", ignore_patterns(PROJECT_ROOT / SLUGIGNORE))


def test_the_changelog_has_an_entry_for_this_version():
    changelog = (PROJECT_ROOT / "CHANGELOG.md").read_text()
    assert "[Keep a Changelog](https://keepachangelog.com/en/1.1.0/)" in changelog
    assert re.search(rf"^## \[{re.escape(VERSION)}\] - \d{{4}}-\d{{2}}-\d{{2}}$", changelog, re.MULTILINE)


def test_the_model_card_names_the_service_version(client):
    card = client.get("/model.json").get_json()
    assert card["service_version"] == VERSION and card["name"] != VERSION


def test_every_request_body_type_is_a_named_schema(app_and_document):
    _, document = app_and_document
    for path, operations in document["paths"].items():
        for op in operations.values():
            for media_type, content in op.get("requestBody", {}).get("content", {}).items():
                schemas = content["schema"].get("oneOf", [content["schema"]])
                for schema in schemas:
                    assert list(schema) == ["$ref"], (path, media_type)
                    assert schema["$ref"].removeprefix("#/components/schemas/") in document["components"]["schemas"]


@pytest.mark.slow
def test_a_python_client_generates_from_the_document_without_a_warning(app_and_document, tmp_path):
    _, document = app_and_document
    package = generate_client(document, tmp_path)
    for ops in document["paths"].values():
        for op in ops.values():
            name = re.sub(r"(?<!^)(?=[A-Z])", "_", op["operationId"]).lower()
            assert (package / "api" / op["tags"][0] / f"{name}.py").is_file(), name
    for name in ("image_file_form", "image_text_form", "image_json", "image_batch_json", "prediction", "number"):
        assert (package / "models" / f"{name}.py").is_file(), name


def test_markdown_is_rendered_and_everything_else_escaped():
    assert markdown_html("One `code` and **strong**.\n\n- `a`: x\n- b <i>") == (
        "<p>One <code>code</code> and <strong>strong</strong>.</p>\n<ul><li><code>a</code>: x</li><li>b &lt;i&gt;</li></ul>"
    )
    assert (
        markdown_html("`<script>` & <b>**x</b>**")
        == "<p><code>&lt;script&gt;</code> &amp; &lt;b&gt;<strong>x&lt;/b&gt;</strong></p>"
    )


def test_the_docs_page_shows_no_raw_markdown_and_its_examples_post_files_that_exist(app_and_document):
    app, document = app_and_document
    html = app.test_client().get("/docs", headers={"Host": "digits.example"}).get_data(as_text=True)
    assert "`" not in html and "**" not in html
    assert f"<small>{VERSION}</small>" in html and "licence MIT" in html
    assert "<li><code>missing_image</code>: No image in the request.</li>" in html  # one error per line
    examples = re.search(r'<h2 id="try-it">.*?<pre>(.*?)</pre>', html, re.DOTALL)[1]
    files = re.findall(r"@(\S+) ", examples)
    assert set(files) == {"examples/three.png", "examples/number.png"}
    assert all((PROJECT_ROOT / name).is_file() for name in files)
    assert "http://digits.example/recognize.json" in examples
    assert ("$API_KEY" in examples) == bool(app.config["API_KEYS"])
    for name in document["components"]["schemas"]:
        assert f'id="schema-{name}"' in html
    # the multipart field is a file or a text field; a 503 says when to retry, a 401 how to authenticate
    image_field = re.search(r"<tr><td><code>image</code> \(required\)</td><td>(.*?)</td>", html)[1]
    assert image_field == (
        '<a href="#schema-ImageFile"><code>ImageFile</code></a> or <a href="#schema-ImageString"><code>ImageString</code></a>'
    )
    assert "With <code>Retry-After</code>." in html
    assert ("With <code>WWW-Authenticate</code>." in html) == bool(app.config["API_KEYS"])
