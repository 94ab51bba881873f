"""Answers: the JSON bodies of the recognition routes, for a digit, a number, or each item of a batch."""

import base64

from flask import Request

from model.answers import number_answer
from model.classifier import NumberDigit, Prediction
from model.decoding import encode_png
from model.errors import RecognitionError
from web.access import split_list
from web.errors import ApiError, error_body

# What ?include= may add to an answer: "input", the 28x28 image the network read.
INCLUDABLE = frozenset({"input"})


def included_extras(incoming: Request) -> set[str]:
    """The extras asked for with ?include=... (comma-separated); only "input" exists."""
    extras = set(split_list(incoming.args.get("include", "")))
    if extras - INCLUDABLE:
        unknown = ", ".join(sorted(extras - INCLUDABLE))
        raise ApiError("bad_request", f"?include= takes {', '.join(sorted(INCLUDABLE))}, not {unknown}.")
    return extras


def answer_body(prediction: Prediction, include_input: bool) -> dict:
    """The answer for one image; with include_input, also the 28x28 image the network read, as a PNG data URL."""
    body = prediction.as_dict()
    if include_input and prediction.model_input is not None:
        body["input"] = "data:image/png;base64," + base64.b64encode(encode_png(prediction.model_input)).decode()
    return body


def number_body(digits: list[NumberDigit], include_input: bool) -> dict:
    """The answer for a number: the digits read (non-digit marks left out), per line, and every mark with its box."""
    return number_answer(digits, lambda prediction: answer_body(prediction, include_input))


def result_body(result: Prediction | list[NumberDigit] | RecognitionError, include_input: bool) -> dict:
    """One item of a batch answer: the single-image (or number) answer, or that image's error."""
    if isinstance(result, RecognitionError):
        return error_body(result.code, result.message)
    return number_body(result, include_input) if isinstance(result, list) else answer_body(result, include_input)


def batch_body(results: list[Prediction | list[NumberDigit] | RecognitionError], include_input: bool) -> dict:
    """The answer for a batch: each image's answer or error, in order."""
    return {"results": [result_body(result, include_input) for result in results]}
