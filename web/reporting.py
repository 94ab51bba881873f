"""Error reporting: unhandled exceptions, with their request but nothing the client sent, go to Sentry (with a DSN).

The SDK's own conventions hold: without SENTRY_RELEASE or SENTRY_ENVIRONMENT it picks the release itself (a Heroku
dyno's HEROKU_BUILD_COMMIT, among others; see `sentry_sdk.utils.get_default_release`) and the environment
`production`; tracing stays off unless SENTRY_TRACES_SAMPLE_RATE asks for it.

Of a request an event keeps its method and its URL without the query string; the request's id is its `request_id`
tag (web/hooks.py). The SDK is told to collect nothing else (its `data_collection` option), and `only_our_request`
drops whatever an integration would add all the same: headers, query string, cookies, body, environ, user.
"""

from collections.abc import Mapping
from typing import Any

from flask import Flask

from web.logs import logger, request_logger

# What the SDK collects by itself (sentry-sdk's `data_collection`, which supersedes send_default_pii): nothing the
# client chose. No headers (User-Agent, Origin, X-Request-ID and any of the client's own; an allowlist matches names
# by substring, so none), no query string, no cookies, no body (the SDK's default sends JSON and forms up to 10 kB, a
# canvas's data URL among them), no client address, no local variables of the stack (they hold the upload's bytes).
DATA_COLLECTION: dict[str, Any] = {
    "user_info": False,
    "cookies": {"mode": "off"},
    "http_headers": {"request": {"mode": "off"}},
    "url_query_params": {"mode": "off"},
    "http_bodies": [],
    "stack_frame_variables": False,
    "graphql": {"document": False, "variables": False},
    "gen_ai": {"inputs": False, "outputs": False},
    "database_query_data": False,
    "queues": False,
}
# The fields of an event's `request` that are kept: the method and the URL (its query string cut off).
KEPT_REQUEST_FIELDS = ("method", "url")


def only_our_request(event: dict[str, Any], hint: dict[str, Any]) -> dict[str, Any]:
    """Keep of an event's request only its method and URL without query string or fragment; drop the client's user."""
    request = event.get("request")
    if isinstance(request, dict):
        kept = {name: request[name] for name in KEPT_REQUEST_FIELDS if isinstance(request.get(name), str)}
        if "url" in kept:
            kept["url"] = kept["url"].partition("?")[0].partition("#")[0]
        event["request"] = kept
    event.pop("user", None)
    return event


def no_request_lines(crumb: dict[str, Any], hint: dict[str, Any]) -> dict[str, Any] | None:
    """Leave the requests' log lines out of the breadcrumbs: they hold paths of other requests, and say nothing of a
    crash (the crashing request's own line comes after its event)."""
    return None if crumb.get("category") == request_logger.name else crumb


def sentry_options(settings: Mapping[str, Any]) -> dict[str, Any]:
    """The options for `sentry_sdk.init`: the operator's SENTRY_* settings, and no word about what they left unset."""
    options: dict[str, Any] = {
        "dsn": settings["SENTRY_DSN"],
        "data_collection": DATA_COLLECTION,
        "before_send": only_our_request,
        "before_send_transaction": only_our_request,
        "before_breadcrumb": no_request_lines,
    }
    if settings["SENTRY_ENVIRONMENT"]:
        options["environment"] = settings["SENTRY_ENVIRONMENT"]
    if settings["SENTRY_RELEASE"]:
        options["release"] = settings["SENTRY_RELEASE"]
    # any traces_sample_rate, 0 included, turns tracing on (trace headers and sampling): only when the operator asks
    if settings["SENTRY_TRACES_SAMPLE_RATE"] is not None:
        options["traces_sample_rate"] = settings["SENTRY_TRACES_SAMPLE_RATE"]
    return options


def init_app(app: Flask) -> None:
    """Start Sentry's SDK for the app's SENTRY_* settings; nothing without a SENTRY_DSN."""
    if not app.config["SENTRY_DSN"]:
        return
    import sentry_sdk
    from sentry_sdk.integrations.flask import FlaskIntegration

    sentry_sdk.init(integrations=[FlaskIntegration()], **sentry_options(app.config))
    chosen = sentry_sdk.get_client().options
    logger.info(
        "Sentry enabled (environment %s, release %s, tracing %s)",
        chosen["environment"],
        chosen["release"] or "unset",
        "off" if chosen["traces_sample_rate"] is None else chosen["traces_sample_rate"],
    )
