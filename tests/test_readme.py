"""The README and docs/ kept true: their example answers are the service's real answers, their relative links resolve,
and the README stays a front door.

An example is a fenced `sh` block of curl commands against http://127.0.0.1:5000 that post files of examples/,
followed at once by a fenced `json` block: the answer every one of those commands gets. Each command is sent to the
app as curl would send it, and the answer must match: the same keys in the same order, the same digits, flags, numbers,
boxes and error codes, and every decimal number equal to the real one to the decimals printed (the docs print 4; the
service sends full floats).
"""

import base64
import io
import itertools
import json
import re
import shlex
from pathlib import Path

import pytest

from tests.helpers import FENCE, PROJECT_ROOT, README
from web.errors import ERRORS

DOCS = sorted((PROJECT_ROOT / "docs").glob("*.md"))
# The files whose links must resolve: the README, the docs, and the trials log they link to.
LINKED_FILES = [README, *DOCS, PROJECT_ROOT / "bench" / "TRIALS.md"]
# The README is the front door: what the service is, how to start it, the API at a glance, settings, deploy, links.
README_MAX_BYTES = 15 * 1024
# The local service the examples' curl commands talk to (`python server.py`).
SERVICE_URL = "http://127.0.0.1:5000"
# A shell substitution the examples use to put a file's base64 into a JSON body.
BASE64_OF_FILE = re.compile(r"\$\(base64 -w0 (?P<path>[\w./-]+)\)")
# A markdown link or image: its target (no spaces), after the text in brackets.
LINK = re.compile(r"\[[^\]\n]*\]\((?P<target>[^)\s]+)\)")


class Example:
    """One documented example: where it is, its curl commands and the JSON answer printed after them."""

    def __init__(self, path: Path, line: int, commands: list[str], answer: str) -> None:
        self.path, self.line, self.commands, self.answer = path, line, commands, answer

    def __repr__(self) -> str:
        return f"{self.path.relative_to(PROJECT_ROOT)}:{self.line}"


def curl_commands(script: str) -> list[str]:
    """The curl commands of a shell block that talk to the local service, continuation lines joined."""
    lines = script.replace("\\\n", " ").splitlines()
    return [line.strip() for line in lines if line.strip().startswith("curl ") and SERVICE_URL in line]


def examples_in(path: Path) -> list[Example]:
    """Every example of a markdown file: a sh block of curl commands to the local service, then at once a json block."""
    text = path.read_text()
    blocks = list(FENCE.finditer(text))
    found = []
    for block, following in itertools.pairwise(blocks):
        commands = curl_commands(block["text"]) if block["language"] == "sh" else []
        if commands and following["language"] == "json" and not text[block.end() : following.start()].strip():
            found.append(Example(path, text.count("\n", 0, block.start()) + 1, commands, following["text"]))
    return found


EXAMPLES = [example for path in (README, *DOCS) for example in examples_in(path)]


def file_bytes(name: str) -> bytes:
    """A file the examples post: one of examples/, named from the repository root."""
    path = (PROJECT_ROOT / name).resolve()
    assert path.parent == PROJECT_ROOT / "examples" and path.is_file(), name
    return path.read_bytes()


def send(client, command: str):
    """Send one curl command to the app as curl would send it: a form upload (-F), a body (-d, --data-binary; curl's
    default type for it is a form's), or a GET."""
    command = BASE64_OF_FILE.sub(lambda match: base64.b64encode(file_bytes(match["path"])).decode(), command)
    arguments = iter(shlex.split(command, comments=True)[1:])
    headers, form, body, path = {}, {}, None, None
    for argument in arguments:
        if argument in ("-F", "--form"):
            name, _, value = next(arguments).partition("=")
            assert value.startswith("@"), f"a form field that is not a file: {argument} {value}"
            form[name] = (io.BytesIO(file_bytes(value[1:])), Path(value[1:]).name)
        elif argument in ("-H", "--header"):
            name, _, value = next(arguments).partition(":")
            headers[name.strip()] = value.strip()
        elif argument in ("-d", "--data", "--data-binary"):
            value = next(arguments)
            body = file_bytes(value[1:]) if value.startswith("@") else value.encode()
        elif argument.startswith(SERVICE_URL):
            path = argument[len(SERVICE_URL) :]
        else:
            raise AssertionError(f"a curl option this test does not know: {argument!r} in {command!r}")
    assert path, f"no URL of the local service in {command!r}"
    content_type = headers.pop("Content-Type", None)
    if form:
        return client.post(path, data=form, content_type="multipart/form-data", headers=headers)
    if body is not None:
        return client.post(
            path, data=body, content_type=content_type or "application/x-www-form-urlencoded", headers=headers
        )
    return client.get(path, headers=headers)


class Printed(float):
    """A decimal number as the docs print it, with the precision it was printed to."""

    def __new__(cls, text: str) -> "Printed":
        number = super().__new__(cls, text)
        mantissa, _, exponent = text.lower().partition("e")
        number.unit = 10.0 ** (int(exponent or 0) - len(mantissa.partition(".")[2]))
        return number


def assert_matches(printed, real, where: str = "answer") -> None:
    """The printed answer is the real one: the same structure and keys in order, the same values, and each printed
    decimal the real number rounded to the decimals shown."""
    if isinstance(printed, dict):
        assert isinstance(real, dict) and list(printed) == list(real), (where, list(printed), real)
        for key in printed:
            assert_matches(printed[key], real[key], f"{where}.{key}")
    elif isinstance(printed, list):
        assert isinstance(real, list) and len(printed) == len(real), (where, printed, real)
        for index, (item, real_item) in enumerate(zip(printed, real, strict=True)):
            assert_matches(item, real_item, f"{where}[{index}]")
    elif isinstance(printed, Printed):
        assert isinstance(real, float), (where, printed, real)
        assert abs(real - printed) <= printed.unit / 2 + 1e-12, (where, f"printed {printed}, really {real!r}")
    else:
        assert type(printed) is type(real) and printed == real, (where, printed, real)


def error_codes(answer) -> list[str]:
    """The error codes anywhere in an answer (a batch's items may each have one)."""
    if isinstance(answer, dict):
        own = [answer["error"]["code"]] if isinstance(answer.get("error"), dict) else []
        return own + [code for value in answer.values() for code in error_codes(value)]
    if isinstance(answer, list):
        return [code for item in answer for code in error_codes(item)]
    return []


def test_the_docs_have_examples_to_check():
    in_readme = [example for example in EXAMPLES if example.path == README]
    assert len(in_readme) >= 5 and len(EXAMPLES) > len(in_readme), EXAMPLES
    # every route that reads images is shown with a real answer
    commands = " ".join(command for example in in_readme for command in example.commands)
    assert "/recognize.json" in commands and "/recognize/number.json" in commands


@pytest.mark.parametrize("example", EXAMPLES, ids=repr)
def test_an_example_answer_is_the_services_real_answer(client, example):
    printed = json.loads(example.answer, parse_float=Printed)
    for command in example.commands:
        response = send(client, command)
        assert response.mimetype == "application/json", command
        real = response.get_json()
        assert_matches(printed, real)
        codes = [real["error"]["code"]] if "error" in real else []
        assert response.status_code == (ERRORS[codes[0]].status if codes else 200), (command, response.status_code)
        assert all(code in ERRORS for code in error_codes(real))


def headings(path: Path) -> set[str]:
    """The anchors of a markdown file's headings, as GitHub makes them (lower case, punctuation dropped, spaces to
    hyphens, a repeated one numbered)."""
    anchors: set[str] = set()
    text = FENCE.sub("", path.read_text())
    for heading in re.findall(r"^#{1,6}\s+(.+?)\s*#*$", text, re.M):
        anchor = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        numbered, count = anchor, 0
        while numbered in anchors:
            count += 1
            numbered = f"{anchor}-{count}"
        anchors.add(numbered)
    return anchors


def relative_links(path: Path) -> list[str]:
    """The targets of a markdown file's links that are not web addresses, outside code blocks and code spans."""
    text = re.sub(r"`[^`\n]*`", "", FENCE.sub("", path.read_text()))
    return [
        target
        for target in (match["target"] for match in LINK.finditer(text))
        if not re.match(r"^[a-z][a-z0-9+.-]*:", target)
    ]


@pytest.mark.parametrize("path", LINKED_FILES, ids=lambda path: str(path.relative_to(PROJECT_ROOT)))
def test_every_relative_link_leads_to_a_file_and_heading_that_exist(path):
    assert path.is_file(), path
    for target in relative_links(path):
        file_part, _, anchor = target.partition("#")
        linked = (path.parent / file_part).resolve() if file_part else path
        assert linked.exists(), f"{path.name}: {target} leads nowhere"
        if anchor:
            assert linked.suffix == ".md", f"{path.name}: {target}: an anchor in a file that is not markdown"
            assert anchor in headings(linked), f"{path.name}: {target}: no such heading in {linked.name}"


def test_the_readme_is_a_front_door():
    assert README.stat().st_size <= README_MAX_BYTES, f"README.md is {README.stat().st_size:,} bytes"
    # the quick start's test command is CI's (.ci/run runs the README's test command)
    assert ".venv/bin/python -m pytest" in README.read_text()
    assert ".venv/bin/python -m pytest" in (PROJECT_ROOT / ".ci" / "run").read_text()
    for doc in ("API", "NUMBERS", "OPERATIONS", "ACCURACY", "PERFORMANCE", "ARCHITECTURE"):
        assert f"](docs/{doc}.md)" in README.read_text(), doc
