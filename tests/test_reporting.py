"""Sentry's options (web/reporting.py): the operator's SENTRY_* settings, else the SDK's own conventions, and nothing a
client sent. What the installed SDK makes of them is checked with its own option resolution here, and end to end (the
Procfile's gunicorn, the real SDK, a local receiver) in tests/test_e2e.py and tests/test_faults_e2e.py."""

import warnings

import pytest
from sentry_sdk.client import _get_options
from sentry_sdk.tracing_utils import has_tracing_enabled

from web.reporting import DATA_COLLECTION, no_request_lines, only_our_request, sentry_options
from web.settings import read_settings

DSN = "https://publickey@sentry.example.com/1"
# What the SDK reads by itself, and the service must not read in its stead.
SDK_VARIABLES = ("SENTRY_RELEASE", "SENTRY_ENVIRONMENT", "HEROKU_BUILD_COMMIT", "HEROKU_SLUG_COMMIT", "SOURCE_VERSION")


@pytest.fixture
def dyno(monkeypatch):
    """An environment like a Heroku dyno's: none of the SDK's variables, and no .git (a slug has none)."""
    for name in SDK_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("GIT_DIR", "/nonexistent")  # the SDK's first guess at a release, `git rev-parse HEAD`, fails
    return monkeypatch


def resolved(environ: dict[str, str]) -> dict:
    """The options the installed SDK ends with for the service's options from `environ` (and os.environ)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)  # nothing the SDK calls deprecated
        return _get_options(**sentry_options(read_settings({"SENTRY_DSN": DSN, **environ})))


def test_unset_settings_are_not_passed_so_the_sdk_decides():
    options = sentry_options(read_settings({"SENTRY_DSN": DSN}))
    assert options == {
        "dsn": DSN,
        "data_collection": DATA_COLLECTION,
        "before_send": only_our_request,
        "before_send_transaction": only_our_request,
        "before_breadcrumb": no_request_lines,
    }


def test_the_operators_settings_are_passed_tracing_only_when_asked():
    environ = {"SENTRY_DSN": DSN, "SENTRY_RELEASE": "v7", "SENTRY_ENVIRONMENT": "staging"}
    options = sentry_options(read_settings({**environ, "SENTRY_TRACES_SAMPLE_RATE": "0.25"}))
    assert options["release"] == "v7" and options["environment"] == "staging" and options["traces_sample_rate"] == 0.25
    assert sentry_options(read_settings({**environ, "SENTRY_TRACES_SAMPLE_RATE": "0"}))["traces_sample_rate"] == 0.0


def test_on_a_dyno_the_sdk_takes_herokus_build_commit_its_default_environment_and_no_tracing(dyno):
    dyno.setenv("HEROKU_BUILD_COMMIT", "abc123")
    options = resolved({})
    assert options["release"] == "abc123" and options["environment"] == "production"
    assert options["traces_sample_rate"] is None and not has_tracing_enabled(options)
    collected = options["data_collection"]
    assert collected["provided_by_user"] and collected["user_info"] is False and collected["http_bodies"] == []
    assert collected["cookies"] == collected["url_query_params"] == {"mode": "off"}
    assert collected["http_headers"] == {"request": {"mode": "off"}} and collected["stack_frame_variables"] is False
    assert options["send_default_pii"] is None  # not passed: deprecated, and data_collection wins over it


def test_sentry_release_and_environment_win_over_what_the_sdk_would_choose(dyno):
    dyno.setenv("HEROKU_BUILD_COMMIT", "abc123")
    dyno.setenv("SENTRY_RELEASE", "v7")
    dyno.setenv("SENTRY_ENVIRONMENT", "staging")
    options = resolved({"SENTRY_RELEASE": "v7", "SENTRY_ENVIRONMENT": "staging"})
    assert options["release"] == "v7" and options["environment"] == "staging"


def test_tracing_is_on_when_the_operator_sets_a_rate(dyno):
    assert has_tracing_enabled(resolved({"SENTRY_TRACES_SAMPLE_RATE": "0.1"}))


def test_an_events_request_keeps_only_its_method_and_url_without_query():
    event = {
        "request": {
            "method": "POST",
            "url": "https://my-digits.example/recognize.json?token=client-secret#part",
            "query_string": "token=client-secret",
            "headers": {"User-Agent": "client-secret-agent", "X-Secret-Thing": "client-secret"},
            "cookies": {"session": "client-secret"},
            "data": "client-secret",
            "env": {"SERVER_NAME": "client-secret", "REMOTE_ADDR": "203.0.113.9"},
        },
        "user": {"ip_address": "203.0.113.9"},
        "tags": {"request_id": "crash-1"},
    }
    kept = only_our_request(event, {})
    assert kept["request"] == {"method": "POST", "url": "https://my-digits.example/recognize.json"}
    assert "user" not in kept and kept["tags"] == {"request_id": "crash-1"}
    assert only_our_request({"message": "no request"}, {}) == {"message": "no request"}


def test_the_request_lines_are_no_breadcrumbs_other_log_lines_are():
    line = {"category": "digit_recognition.requests", "message": "method=GET path=/x status=404"}
    assert no_request_lines(line, {}) is None
    other = {"category": "digit_recognition", "message": "metrics stay in this worker"}
    assert no_request_lines(other, {}) is other
