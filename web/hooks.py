"""Around every request: its id, the API key check, load shedding, CORS headers, its metrics and its one log line."""

import time
from collections.abc import Callable

from flask import Flask, Response, g, request

from web.access import bearer_token, cors_headers, key_is_valid, request_id
from web.errors import RETRY_AFTER_SECONDS, ApiError
from web.logs import log_request
from web.worker import waiting_per_worker

# Routes anyone may call when API keys are required: the drawing page, the health check and the API's description.
OPEN_ENDPOINTS = frozenset({"api.index", "api.healthz", "api.openapi", "api.docs"})
# Routes refused with 503 when too many connections wait (health checks and metrics stay answered).
SHED_ENDPOINTS = frozenset({"api.recognize", "api.recognize_number"})


def init_app(app: Flask) -> None:
    """Run the hooks around every request of the app, matched or not (its metrics must exist already)."""
    hooks = RequestHooks(app)
    app.before_request(hooks.start_request)
    app.before_request(hooks.require_api_key)
    app.before_request(hooks.shed_load)
    app.after_request(hooks.finish_request)
    app.teardown_request(hooks.end_request)


class RequestHooks:
    """The request hooks of one app, with what they need taken from it once."""

    def __init__(self, app: Flask) -> None:
        self.config = app.config
        self.metrics = app.extensions["metrics"]
        self.api_keys: tuple[str, ...] = app.config["API_KEYS"]
        self.cors_origins: tuple[str, ...] = app.config["CORS_ORIGINS"]
        # how many connections wait for this worker right now (None: unknown); tests may stand in for the queue
        self.waiting_now: Callable[[], int | None] = app.config.get("WAITING_PER_WORKER", waiting_per_worker)
        if app.config["SENTRY_DSN"]:
            import sentry_sdk

            self.sentry_sdk = sentry_sdk
        else:
            self.sentry_sdk = None

    def start_request(self) -> None:
        """Start the clock, name the request (the client's X-Request-ID or a new one), count it in flight."""
        g.started = time.perf_counter()
        g.request_id = request_id(request.headers.get("X-Request-ID"))
        g.log_detail = ""
        self.metrics.in_flight.inc()
        g.in_flight = True
        if self.sentry_sdk is not None:
            self.sentry_sdk.set_tag("request_id", g.request_id)

    def require_api_key(self) -> None:
        """With API_KEYS set, every route but the open ones needs a valid bearer key (CORS preflights carry none)."""
        if not self.api_keys or request.method == "OPTIONS" or request.endpoint in OPEN_ENDPOINTS:
            return
        if not key_is_valid(bearer_token(request.headers.get("Authorization")), self.api_keys):
            raise ApiError(
                "unauthorized",
                "A valid API key is required: send the header 'Authorization: Bearer <key>'.",
                {"WWW-Authenticate": 'Bearer realm="digit-recognition"'},
            )

    def shed_load(self) -> None:
        """Refuse recognition with 503 while the queue of waiting connections is full, so latency stays bounded."""
        if request.endpoint not in SHED_ENDPOINTS:
            return
        waiting = self.waiting_now()
        if waiting is not None and waiting > self.config["MAX_QUEUE_PER_WORKER"]:
            self.metrics.rejections.inc()
            raise ApiError(
                "overloaded",
                "The service is busy right now; try again in a moment.",
                {"Retry-After": str(RETRY_AFTER_SECONDS)},
            )

    def finish_request(self, response: Response) -> Response:
        """Echo the request id, add CORS headers for allowed origins, then count and log the request in one line."""
        response.headers["X-Request-ID"] = g.request_id
        if self.cors_origins:
            preflight = request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers
            response.headers.update(cors_headers(request.headers.get("Origin"), self.cors_origins, preflight))
            response.vary.add("Origin")
        seconds = time.perf_counter() - g.started
        route = request.url_rule.rule if request.url_rule else "unmatched"  # not the raw path: labels stay few
        self.metrics.observe_request(request.method, route, response.status_code, seconds)
        # one logfmt line per request, cheaper than gunicorn's access log (which builds every header into a dict)
        log_request(request.method, request.path, response.status_code, seconds, g.request_id, g.log_detail)
        return response

    def end_request(self, error: BaseException | None) -> None:
        """No longer in flight, however the request ended."""
        if g.pop("in_flight", False):
            self.metrics.in_flight.dec()
