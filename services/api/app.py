"""The Flask app factory of the result API (served by gunicorn; loads no model)."""

from __future__ import annotations

import logging

from flask import Flask

from shared.settings import Settings

from shared.bodies import dumps

from . import errors, openapi, responses, routes
from .results import Results
from .shortcut import Shortcut

log = logging.getLogger(__name__)


def create_app(settings: Settings | None = None, *, shortcut: bool = True) -> Flask:
    """An app serving settings.OUTPUT_DIR for settings.NETWORK (settings from the environment if None).

    shortcut=False sends every request through Flask (tests compare both answers).
    """
    settings = Settings.from_env() if settings is None else settings
    app = Flask(__name__, static_folder=None)
    app.config["AML_SETTINGS"] = settings
    app.url_map.converters["anytext"] = routes.AnyTextConverter
    app.url_map.merge_slashes = False  # `//etc/passwd` must reach the date check, not a redirect
    results = app.extensions["aml_results"] = Results(settings.OUTPUT_DIR)
    app.extensions["aml_openapi"] = responses.static(dumps(openapi.SPEC))
    app.register_blueprint(routes.bp)
    errors.register(app)
    if shortcut:
        app.wsgi_app = Shortcut(app.wsgi_app, results)
    log.info("result API: serving %s for network %s", settings.OUTPUT_DIR, settings.NETWORK)
    return app
