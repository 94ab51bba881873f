"""Error reporting: unhandled exceptions, with their request but nothing the client sent, go to Sentry (with a DSN).

The SDK's own conventions hold: without SENTRY_RELEASE or SENTRY_ENVIRONMENT it picks the release itself (a Heroku
dyno's HEROKU_BUILD_COMMIT, among others; see `sentry_sdk.utils.get_default_release`) and the environment
`production`; tracing stays off unless SENTRY_TRACES_SAMPLE_RATE asks for it.
"""

from collections.abc import Mapping
from typing import Any

from flask import Flask

from web.logs import logger


def sentry_options(settings: Mapping[str, Any]) -> dict[str, Any]:
    """The options for `sentry_sdk.init`: the operator's SENTRY_* settings, and no word about what they left unset."""
    options: dict[str, Any] = {
        "dsn": settings["SENTRY_DSN"],
        # nothing a client sent goes with an event: no body (the SDK's default sends JSON and forms up to 10 kB, a
        # canvas's data URL among them), no local variables of the stack (they hold the upload's bytes); no cookies,
        # IP address or credentials either, as the SDK does while send_default_pii (deprecated) and data_collection
        # are both unset (Authorization is then filtered out of the headers)
        "max_request_body_size": "never",
        "include_local_variables": False,
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
