"""A number reading's answer as a JSON-ready dict: the shape the API and the offline reader give (errors: model/errors.py)."""

from collections.abc import Callable

from model.classifier import NumberDigit, Prediction, number_text


def number_answer(digits: list[NumberDigit], mark_answer: Callable[[Prediction], dict] = Prediction.as_dict) -> dict:
    """A number's answer: the digits read (non-digit marks left out), per line, and every mark (`mark_answer`) with its box."""
    marks = []
    for item in digits:
        x, y, width, height = item.box
        marks.append(
            {
                **mark_answer(item.prediction),
                "read_in_line": item.read_in_line,
                "line": item.line,
                "box": {"x": x, "y": y, "width": width, "height": height},
            }
        )
    last_line = max(item.line for item in digits)
    lines = [number_text([item for item in digits if item.line == line]) for line in range(last_line + 1)]
    return {"number": "".join(lines), "lines": lines, "digits": marks}
