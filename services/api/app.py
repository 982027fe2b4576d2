"""The Flask app factory of the result API (served by gunicorn; loads no model)."""

from __future__ import annotations

import logging

from flask import Flask

from shared.settings import Settings

from . import errors, openapi, routes
from .fastpath import CachedResponses
from .render import dumps, static_body
from .results import Results

log = logging.getLogger(__name__)


def create_app(settings: Settings | None = None, *, cache_dates: int | None = None,
               fast_path: bool = True) -> Flask:
    """An app serving settings.OUTPUT_DIR for settings.NETWORK (settings from the environment if None).

    cache_dates bounds the rendered-response cache; fast_path=False sends every request
    through Flask (tests compare both).
    """
    settings = Settings.from_env() if settings is None else settings
    app = Flask(__name__, static_folder=None)
    app.config["AML_SETTINGS"] = settings
    app.url_map.converters["anytext"] = routes.AnyTextConverter
    app.url_map.merge_slashes = False  # `//etc/passwd` must reach the date check, not a redirect
    results = app.extensions["aml_results"] = Results(settings.OUTPUT_DIR, cache_dates)
    spec = dumps(openapi.SPEC)
    app.extensions["aml_openapi"] = static_body(spec, spec.decode())
    app.register_blueprint(routes.bp)
    errors.register(app)
    if fast_path:
        app.wsgi_app = CachedResponses(app.wsgi_app, results)
    log.info("result API: serving %s for network %s", settings.OUTPUT_DIR, settings.NETWORK)
    return app
