"""The application factory, as Flask's tutorial has it: each concern set up by its own module, in order."""

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import Flask

from web import classifier, debug, error_handlers, hooks, logs, metrics, openapi, reporting, routes
from web.settings import current_settings
from web.uploads import UploadRequest
from web.version import VERSION

# The app's name, which Flask gives its own logger ("ERROR server: Exception on ..."): the one it had in server.py.
APP_NAME = "server"
# Where the templates are: this package.
WEB_FOLDER = Path(__file__).resolve().parent


def create_app(test_config: Mapping[str, Any] | None = None) -> Flask:
    """The service: settings, logging, Sentry, the classifier and its metrics, request hooks, routes, error handlers."""
    app = Flask(APP_NAME, root_path=str(WEB_FOLDER))
    app.request_class = UploadRequest
    app.config.from_mapping(current_settings())
    if test_config is not None:
        app.config.from_mapping(test_config)
    app.json.sort_keys = False

    logs.init_app(app)
    reporting.init_app(app)
    classifier.init_app(app)
    metrics.init_app(app)
    openapi.init_app(app)
    hooks.init_app(app)

    app.register_blueprint(routes.bp)
    if app.config["ENABLE_DEBUG_ROUTES"]:
        app.register_blueprint(debug.bp)
    error_handlers.init_app(app)
    # one line per gunicorn worker (each makes its app): which release it serves
    logs.logger.info("digit-recognition %s ready in process %s", VERSION, os.getpid())
    return app
