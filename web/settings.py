"""Every setting of the service: its environment variable, default, what values are allowed and what it means.

The one source for them: `current_settings()` reads them from the environment once per process, and the
app (web/app.py), gunicorn.conf.py (workers, threads, port) and the worker (its read deadline and upload
limit) all take theirs from it; the README's configuration table is checked against this table by the
tests. Each value is checked at start:

    python -m web.settings      # the Procfile runs this before gunicorn: a bad setting stops the
                                # service with one line naming the variable, its value and what is allowed
"""

import functools
import os
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from model import DEFAULT_MODEL_PATH, served_file, tflite_path_for
from model.limits import (
    DEFAULT_MAX_DECODED_BYTES,
    DEFAULT_MAX_GROUPS,
    DEFAULT_MAX_PIXELS,
    DEFAULT_MAX_READ_PIXELS,
    DEFAULT_MAX_REQUEST_PIXELS,
)
from model.machine import CGROUP, processes_that_fit

# Seconds a connection has to deliver its request (head and body): REQUEST_READ_TIMEOUT's default.
DEFAULT_READ_TIMEOUT = 10.0
# Seconds a request may take before gunicorn aborts its worker (the client gets 504): gunicorn.conf.py's `timeout`,
# Heroku's router limit; the latency histogram's last bucket (web/metrics.py).
REQUEST_TIME_LIMIT = 30
# The largest request body: MAX_UPLOAD_BYTES's default.
DEFAULT_MAX_UPLOAD_BYTES = 10 * 1024 * 1024
# The largest MAX_UPLOAD_BYTES allowed: a worker holds up to two parked uploads and one being read.
MOST_UPLOAD_BYTES = 32 * 1024 * 1024
# Values read as "on" and "off" for yes/no settings.
TRUE_WORDS = ("1", "true", "yes", "on")
FALSE_WORDS = ("0", "false", "no", "off", "")
# Logging levels a LOG_LEVEL may name.
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
# A browser origin: scheme, host and an optional port, no path.
ORIGIN = re.compile(r"^https?://[A-Za-z0-9.-]+(:\d{1,5})?$")
# An API key: visible ASCII, no comma (the separator) and no space (it travels in a header).
API_KEY = re.compile(r"^[!-+\--~]+$")
# A Sentry DSN: scheme://public_key@host[:port]/[path/]project_id.
SENTRY_DSN = re.compile(r"^https?://[^@/\s]+@[^/\s]+/(\S+/)?\d+$")
# WEB_CONCURRENCY when the operator did not choose it: one worker per core, as many as the memory holds at their peak
# (docs/PERFORMANCE.md, "Memory and dyno sizes": the master holds about 27 MB; a worker rests at about 111-114 MB with
# LiteRT, about 550 MB with Keras; a request at the limits adds up to about 110 MB while it runs, one per thread).
MASTER_BYTES = 30 * 2**20
WORKER_RESTING_BYTES = MappingProxyType({"litert": 115 * 2**20, "keras": 600 * 2**20})
REQUEST_PEAK_BYTES = 110 * 2**20
# The most workers WEB_CONCURRENCY may ask for.
MOST_WORKERS = 32


class SettingError(ValueError):
    """A setting's value is not allowed; the message names the variable, the value and what is allowed."""


@dataclass(frozen=True)
class Setting:
    """One environment variable: its name, default (a value, or a function of the environment), parser and meaning."""

    name: str
    default: Any
    parse: Callable[[str], Any]
    allowed: str
    meaning: str
    key: str = ""  # the app.config key, when it is not the variable's name
    secret: bool = False  # never shown: a bad value is named, not printed
    # who set the variable when a platform did, not the operator ("" for the operator): such a value is read as unset
    set_by_platform: Callable[[Mapping[str, str]], str] | None = None

    @property
    def config_key(self) -> str:
        """The key of app.config that holds this setting's value."""
        return self.key or self.name

    # The default also stands for a value a platform set (`set_by_platform`), as if the variable were unset.
    def read(self, environ: Mapping[str, str]) -> Any:
        """The value from the environment, or the default; SettingError for a value that is not allowed."""
        if self.name not in environ or (self.set_by_platform is not None and self.set_by_platform(environ)):
            return self.default(environ) if callable(self.default) else self.default
        text = environ[self.name]
        try:
            return self.parse(text.strip())
        except (ValueError, TypeError):
            shown = "(value not shown)" if self.secret else repr(text)
            raise SettingError(f"{self.name}={shown} is not allowed: {self.allowed}.") from None


def whole(lowest: int, highest: int) -> Callable[[str], int]:
    """A parser of whole numbers from `lowest` to `highest`."""

    def parse(text: str) -> int:
        value = int(text.replace("_", ""))
        if not lowest <= value <= highest:
            raise ValueError(text)
        return value

    return parse


def number(lowest: float, highest: float, lowest_included: bool = True) -> Callable[[str], float]:
    """A parser of decimal numbers from `lowest` (included or not) to `highest`."""

    def parse(text: str) -> float:
        value = float(text)
        if not (lowest <= value if lowest_included else lowest < value) or not value <= highest:
            raise ValueError(text)
        return value

    return parse


def one_of(*choices: str) -> Callable[[str], str]:
    """A parser of one of a few words, in any case."""

    def parse(text: str) -> str:
        if text.lower() not in choices:
            raise ValueError(text)
        return text.lower()

    return parse


def yes_or_no(text: str) -> bool:
    """A parser of on/off words."""
    if text.lower() in TRUE_WORDS:
        return True
    if text.lower() in FALSE_WORDS:
        return False
    raise ValueError(text)


def matching_list(pattern: re.Pattern) -> Callable[[str], tuple[str, ...]]:
    """A parser of comma-separated items (trimmed, empty ones dropped), each matching `pattern`."""

    def parse(text: str) -> tuple[str, ...]:
        items = tuple(item.strip() for item in text.split(",") if item.strip())
        if not all(pattern.match(item) for item in items):
            raise ValueError(text)
        return items

    return parse


def matching(pattern: re.Pattern) -> Callable[[str], str]:
    """A parser of text matching `pattern`, or empty."""

    def parse(text: str) -> str:
        if text and not pattern.match(text):
            raise ValueError(text)
        return text

    return parse


def plain_text(text: str) -> str:
    """Any text on one line."""
    if "\n" in text or "\r" in text:
        raise ValueError(text)
    return text


# Which of the two files must be there depends on MODEL_RUNTIME: read_settings checks that one (served_file), so that a
# slug without the .keras files (.slugignore) serves with LiteRT.
def model_file(text: str) -> str:
    """A model's .keras path where a runtime's file lies: the .keras itself or its TensorFlow Lite export beside it."""
    if not Path(text).is_file() and not tflite_path_for(text).is_file():
        raise ValueError(text)
    return text


def fitting_workers(environ: Mapping[str, str], cgroup: Path = CGROUP) -> int:
    """WEB_CONCURRENCY's default: one worker per core, no more than the memory holds at their peak, at least one."""
    try:
        runtime, threads = SETTING["MODEL_RUNTIME"].read(environ), SETTING["WEB_THREADS"].read(environ)
    except SettingError:  # read_settings names the bad value itself
        runtime, threads = "litert", 1
    worker = WORKER_RESTING_BYTES[runtime] + threads * REQUEST_PEAK_BYTES
    return min(processes_that_fit(worker, MASTER_BYTES, cgroup), MOST_WORKERS)


# Heroku's buildpacks write their name (e.g. heroku/python) into WEB_CONCURRENCY_SET_BY beside the value they chose for
# the dyno; an operator's WEB_CONCURRENCY has no such mark.
def concurrency_set_by(environ: Mapping[str, str]) -> str:
    """Who set WEB_CONCURRENCY when a buildpack did, not the operator (its WEB_CONCURRENCY_SET_BY); "" otherwise."""
    return environ.get("WEB_CONCURRENCY_SET_BY", "").strip() if "WEB_CONCURRENCY" in environ else ""


def log_level(text: str) -> str:
    """A logging level's name."""
    if text.upper() not in LOG_LEVELS:
        raise ValueError(text)
    return text.upper()


SETTINGS = (
    Setting("PORT", 5000, whole(1, 65535), "a port number from 1 to 65535", "port to listen on (Heroku sets it)"),
    Setting(
        "HOST",
        "127.0.0.1",
        plain_text,
        "a host name or address",
        "interface for `python server.py` (gunicorn binds `0.0.0.0`)",
    ),
    Setting(
        "WEB_CONCURRENCY",
        fitting_workers,
        whole(1, MOST_WORKERS),
        f"a whole number of workers from 1 to {MOST_WORKERS}",
        "gunicorn worker processes, each with its own copy of the networks (unset, or set by Heroku's buildpack: one "
        "per core, as many as the memory holds)",
        set_by_platform=concurrency_set_by,
    ),
    Setting(
        "WEB_THREADS",
        1,
        whole(1, 64),
        "a whole number from 1 to 64",
        "threads per worker: `1` runs the guarded sync workers (fastest, see Performance), more runs `gthread`",
    ),
    Setting(
        "MICRO_BATCH_SIZE",
        1,
        whole(1, 256),
        "a whole number from 1 to 256",
        "with `WEB_THREADS` > 1: concurrent requests of a worker share network calls, up to this many images (`1`: off)",
    ),
    Setting(
        "MICRO_BATCH_WAIT_MS",
        2.0,
        number(0.0, 1000.0),
        "a number of milliseconds from 0 to 1000",
        "how long a forming batch waits for requests of the same worker that are still being decoded",
    ),
    Setting(
        "MODEL_PATH",
        str(DEFAULT_MODEL_PATH),
        model_file,
        "a .keras model path with the file its runtime serves: the .keras itself, or for litert the .tflite beside it",
        "the model to serve; its card (`.json`) and TensorFlow Lite export (`.tflite`) lie beside it",
    ),
    Setting(
        "MODEL_RUNTIME",
        "litert",
        one_of("litert", "keras"),
        "litert or keras",
        "`litert`: the `.tflite` export run by LiteRT, no TensorFlow in the server; `keras`: the `.keras` file in TensorFlow",
    ),
    Setting(
        "MAX_UPLOAD_BYTES",
        DEFAULT_MAX_UPLOAD_BYTES,
        whole(1, MOST_UPLOAD_BYTES),
        f"a whole number of bytes from 1 to {MOST_UPLOAD_BYTES:,}",
        "largest request body",
        key="MAX_CONTENT_LENGTH",
    ),
    Setting(
        "MAX_IMAGE_PIXELS",
        DEFAULT_MAX_PIXELS,
        whole(1, 200_000_000),
        "a whole number of pixels from 1 to 200,000,000",
        "largest image, in pixels (width × height), checked from its header before decoding",
    ),
    Setting(
        "MAX_DECODED_BYTES",
        DEFAULT_MAX_DECODED_BYTES,
        whole(1, 1024 * 2**20),
        "a whole number of bytes from 1 to 1,073,741,824",
        "most memory decoding one image may take (the picture and the decoder's buffers), told from its header "
        "before decoding; past it, `413 too_large`",
    ),
    Setting(
        "MAX_REQUEST_PIXELS",
        DEFAULT_MAX_REQUEST_PIXELS,
        whole(1, 10**10),
        "a whole number of pixels from 1 to 10,000,000,000",
        "most pixels one request may decode, shared in order by a batch's images; past it, `413 too_large` "
        "(in a batch, for that image and each one after it)",
    ),
    Setting(
        "MAX_BATCH_IMAGES",
        64,
        whole(1, 1000),
        "a whole number from 1 to 1000",
        'most images in one `{"images": [...]}` request',
    ),
    Setting(
        "MAX_NUMBER_GROUPS",
        DEFAULT_MAX_GROUPS,
        whole(1, 1_000_000),
        "a whole number from 1 to 1,000,000",
        "most groups of strokes the networks may read for one request to `/recognize/number.json` "
        "(a batch's numbers share them); past it, `422 too_many_marks`",
    ),
    Setting(
        "MAX_NUMBER_READ_PIXELS",
        DEFAULT_MAX_READ_PIXELS,
        whole(1, 10**11),
        "a whole number of pixels from 1 to 100,000,000,000",
        "most pixels the reads of one request's numbers may work on (a batch's numbers share them); past it, "
        "`422 too_many_marks`",
    ),
    Setting(
        "MAX_QUEUE_PER_WORKER",
        32,
        whole(0, 100_000),
        "a whole number from 0 to 100,000",
        "recognition answers `503` while more connections than this per worker wait to be accepted",
    ),
    Setting(
        "REQUEST_READ_TIMEOUT",
        DEFAULT_READ_TIMEOUT,
        number(0.0, 300.0, lowest_included=False),
        "a number of seconds above 0 and at most 300",
        "seconds a connection has, from its accept, to deliver its whole request (slow ones wait parked, not in a worker)",
    ),
    Setting(
        "SENTRY_DSN",
        "",
        matching(SENTRY_DSN),
        "empty, or a Sentry DSN such as https://<key>@<host>/<project>",
        "turns on error reporting to Sentry",
        secret=True,
    ),
    Setting(
        "SENTRY_ENVIRONMENT",
        "",
        plain_text,
        "a name on one line",
        "Sentry environment (unset: the SDK's own, `production`)",
    ),
    Setting(
        "SENTRY_RELEASE",
        "",
        plain_text,
        "a name on one line",
        "Sentry release (unset: the SDK's own choice, on Heroku `$HEROKU_BUILD_COMMIT`)",
    ),
    Setting(
        "SENTRY_TRACES_SAMPLE_RATE",
        None,
        number(0.0, 1.0),
        "a number from 0 to 1",
        "share of requests traced for Sentry performance (unset: no tracing)",
    ),
    Setting(
        "API_KEYS",
        (),
        matching_list(API_KEY),
        "comma-separated keys of visible characters, without spaces",
        "comma-separated keys; when set, every route but `/`, `/healthz`, `/openapi.json` and `/docs` needs "
        "`Authorization: Bearer <key>`",
        secret=True,
    ),
    Setting(
        "CORS_ORIGINS",
        (),
        matching_list(ORIGIN),
        "comma-separated origins such as https://app.example.com",
        "comma-separated origins whose pages may call the API from a browser (unset: none)",
    ),
    Setting(
        "PROMETHEUS_MULTIPROC_DIR",
        "",
        plain_text,
        "a folder's path",
        "where the workers write their metrics (unset: a fresh temporary folder; emptied at start, gunicorn.conf.py)",
    ),
    Setting(
        "ENABLE_DEBUG_ROUTES",
        False,
        yes_or_no,
        "1, true, yes, on, 0, false, no or off",
        "`1` adds the `/_debug/` routes",
    ),
    Setting(
        "LOG_LEVEL",
        "INFO",
        log_level,
        "one of " + ", ".join(LOG_LEVELS),
        "logging level; logs go to stderr, one logfmt line per request",
    ),
)


# Each setting by its variable's name.
SETTING = MappingProxyType({setting.name: setting for setting in SETTINGS})


def read_settings(environ: Mapping[str, str]) -> dict[str, Any]:
    """Every setting from the environment, checked, keyed as app.config has them; SettingError names the first bad one."""
    settings = {setting.config_key: setting.read(environ) for setting in SETTINGS}
    if not served_file(settings["MODEL_PATH"], settings["MODEL_RUNTIME"]).is_file():
        raise SettingError(
            f"MODEL_PATH={settings['MODEL_PATH']!r} is not allowed with MODEL_RUNTIME={settings['MODEL_RUNTIME']}: "
            f"{SETTING['MODEL_PATH'].allowed}."
        )
    return settings


@functools.cache
def current_settings() -> Mapping[str, Any]:
    """This process's settings, read from os.environ once and frozen: what the app, gunicorn.conf.py and the worker use."""
    return MappingProxyType(read_settings(os.environ))


def main() -> int:
    """Check every setting; print the first bad one on one line and fail, so the Procfile never starts gunicorn with it."""
    try:
        read_settings(os.environ)
    except SettingError as error:
        print(f"digit-recognition: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
