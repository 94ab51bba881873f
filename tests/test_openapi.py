"""The OpenAPI description matches the real app: every route, every input style, every answer's shape; it names its
operations, version and licence for generated clients, and /docs renders it cleanly."""

import base64
import io
import json
import re
import tomllib

import pytest
from jsonschema import Draft202012Validator
from PIL import Image

from bench.slug_size import SLUGIGNORE, ignore_patterns, ignored
from server import create_app
from tests.drawing import encode
from tests.helpers import CANVAS_SEVEN, PROJECT_ROOT, data_url
from tests.test_generated_client_e2e import generate_client
from web.errors import CODE_BY_STATUS, ERRORS
from web.openapi import markdown_html
from web.version import VERSION

# The routes Flask adds itself, and the methods it answers on every route.
IGNORED_ENDPOINTS = {"static"}
AUTOMATIC_METHODS = {"HEAD", "OPTIONS"}


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


def assert_matches_document(document: dict, path: str, method: str, response) -> None:
    """The answer's status, content type, headers and body are as the document describes them."""
    described = document["paths"][path][method]["responses"]
    assert str(response.status_code) in described, (
        f"{method.upper()} {path} answered {response.status_code}, not documented"
    )
    answer = described[str(response.status_code)]
    assert response.mimetype in answer["content"], (response.mimetype, list(answer["content"]))
    assert "X-Request-ID" in answer["headers"] and response.headers["X-Request-ID"]
    if response.mimetype == "application/json":
        schema = {**answer["content"]["application/json"]["schema"], "components": document["components"]}
        Draft202012Validator(schema).validate(response.get_json())


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
        "application/x-www-form-urlencoded": [{"data": {"image": data_url(CANVAS_SEVEN)}}],
        "application/json": [{"json": {"image": encoded}}, {"json": {"images": [encoded]}}],
        "application/octet-stream": [{"data": CANVAS_SEVEN, "content_type": "application/octet-stream"}],
    }


@pytest.mark.parametrize(
    "path, field, expected", [("/recognize.json", "digit", 7), ("/recognize/number.json", "number", "7")]
)
def test_each_documented_request_body_works(client, path, field, expected):
    document = client.get("/openapi.json").get_json()
    content = document["paths"][path]["post"]["requestBody"]["content"]
    assert set(content) == set(upload_bodies())
    for media_type, variants in upload_bodies().items():
        for arguments in variants:
            response = client.post(path, **arguments)
            assert response.status_code == 200, media_type
            answer = response.get_json()
            assert (answer["results"][0] if "images" in arguments.get("json", {}) else answer)[field] == expected
            assert_matches_document(document, path, "post", response)
            if "json" in arguments:  # what was sent is exactly one of the described JSON bodies
                schema = {**content[media_type]["schema"], "components": document["components"]}
                Draft202012Validator(schema).validate(arguments["json"])


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


def test_a_401_matches_the_document(classifier):
    client = create_app({"TESTING": True, "CLASSIFIER": classifier, "API_KEYS": ("k1",)}).test_client()
    document = client.get("/openapi.json").get_json()
    for path, method in [("/recognize.json", "post"), ("/model.json", "get"), ("/metrics", "get")]:
        response = client.open(path, method=method.upper())
        assert response.status_code == 401
        assert_matches_document(document, path, method, response)


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
