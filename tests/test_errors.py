"""web/errors.py's ERRORS is the one table of error codes: every code the model, the app and the worker raise is
in it."""

import ast

from model.errors import RecognitionError
from tests.helpers import PROJECT_ROOT
from web.errors import CODE_BY_STATUS, ERRORS
from web.worker import REFUSALS

# The web layer's modules, whose ApiError(...) and refuse(...) calls name their code as a literal.
WEB_FILES = [PROJECT_ROOT / "server.py", *sorted((PROJECT_ROOT / "web").glob("*.py"))]


def subclasses(cls: type) -> list[type]:
    """Every subclass of `cls`, however deep."""
    return [sub for direct in cls.__subclasses__() for sub in (direct, *subclasses(direct))]


def codes_named_in(path, function: str, position: int) -> list[str | None]:
    """The code argument (at `position`) of every call of `function` in the file: its text, None if not a literal."""
    codes = []
    for node in ast.walk(ast.parse(path.read_text())):
        if not isinstance(node, ast.Call):
            continue
        name = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", None)
        if name != function or len(node.args) <= position:
            continue
        argument = node.args[position]
        codes.append(argument.value if isinstance(argument, ast.Constant) and isinstance(argument.value, str) else None)
    return codes


def test_every_recognition_error_of_the_model_has_a_code_of_the_table():
    raised = subclasses(RecognitionError)
    assert len(raised) >= 5  # InvalidImageError, ImageTooLargeError, UnsupportedImageTypeError, NoDigitError, ...
    assert all(cls.code in ERRORS for cls in raised), {cls.__name__: cls.code for cls in raised}


def test_every_api_error_the_web_layer_raises_names_a_code_of_the_table():
    codes = [code for path in WEB_FILES for code in codes_named_in(path, "ApiError", 0)]
    assert len(codes) >= 10  # the scan finds the app's refusals
    assert None not in codes, "an ApiError's code must be written out, so that this test can check it"
    assert set(codes) <= set(ERRORS), set(codes) - set(ERRORS)


def test_every_refusal_of_the_worker_names_a_code_of_the_table():
    refused = [code for code in codes_named_in(PROJECT_ROOT / "web" / "worker.py", "refuse", 1) if code is not None]
    assert refused and set(refused) <= set(ERRORS), set(refused) - set(ERRORS)
    assert {code for _, code, _ in REFUSALS} <= set(ERRORS)
    assert set(CODE_BY_STATUS.values()) <= set(ERRORS)
    assert all(ERRORS[code].status == status for status, code in CODE_BY_STATUS.items())
