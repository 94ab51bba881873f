"""Error reporting: unhandled exceptions, with their request but nothing the client sent, go to Sentry (with a DSN)."""

from flask import Flask

from web.logs import logger


def init_app(app: Flask) -> None:
    """Start Sentry's SDK for the app's SENTRY_* settings; nothing without a SENTRY_DSN."""
    settings = app.config
    if not settings["SENTRY_DSN"]:
        return
    import sentry_sdk
    from sentry_sdk.integrations.flask import FlaskIntegration

    sentry_sdk.init(
        dsn=settings["SENTRY_DSN"],
        integrations=[FlaskIntegration()],
        environment=settings["SENTRY_ENVIRONMENT"],
        release=settings["SENTRY_RELEASE"] or None,
        traces_sample_rate=settings["SENTRY_TRACES_SAMPLE_RATE"],
        # nothing a client sent goes with an event: no body (the SDK's default sends JSON and forms up to 10 kB, a
        # canvas's data URL among them), no local variables of the stack (they hold the upload's bytes), no cookies,
        # IP address or credentials (Authorization is filtered out of the headers)
        send_default_pii=False,
        max_request_body_size="never",
        include_local_variables=False,
    )
    logger.info(
        "Sentry enabled (environment %s, release %s)",
        settings["SENTRY_ENVIRONMENT"],
        settings["SENTRY_RELEASE"] or "unset",
    )
