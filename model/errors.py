"""Domain errors of the model package, and the one JSON shape of every error; the web layer maps each to an HTTP
status."""


def error_answer(code: str, message: str) -> dict:
    """The one JSON shape of every error, the API's and the offline reader's: {"error": {"code", "message"}}."""
    return {"error": {"code": code, "message": message}}


class RecognitionError(Exception):
    """Base of every error a client can cause; `code` is the API's snake_case error code."""

    code = "invalid_request"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidImageError(RecognitionError):
    """The bytes are not a readable image: not an image at all, corrupted or truncated."""

    code = "invalid_image"


class ImageTooLargeError(RecognitionError):
    """The image has more pixels than the service is configured to decode."""

    code = "too_large"


class UnsupportedImageTypeError(RecognitionError):
    """The upload declares a media type that is not an image."""

    code = "unsupported_media_type"


class NoDigitError(RecognitionError):
    """The image is readable but holds no ink: blank, uniform or only noise."""

    code = "no_digit"


class TooManyMarksError(RecognitionError):
    """Reading the number(s) would take more of the networks' reads than a request may use (a page of hundreds of
    strokes, a line of touching scribbles): a worker is never held for long by one upload."""

    code = "too_many_marks"
