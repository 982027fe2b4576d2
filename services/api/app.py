"""The Flask app factory of the result API (served by gunicorn; loads no model)."""

from __future__ import annotations

import logging

from flask import Flask

from shared.bodies import dumps
from shared.settings import Settings

from . import errors, openapi, responses, routes
from .results import per_network
from .shortcut import Shortcut

log = logging.getLogger(__name__)


def create_app(settings: Settings | None = None, *, shortcut: bool = True) -> Flask:
    """An app serving each configured network's output root (settings from the environment if None).

    shortcut=False sends every request through Flask (tests compare both answers).
    """
    settings = Settings.from_env() if settings is None else settings
    app = Flask(__name__, static_folder=None)
    app.config["AML_SETTINGS"] = settings
    app.url_map.converters["anytext"] = routes.AnyTextConverter
    app.url_map.merge_slashes = False  # `//etc/passwd` must reach the date check, not a redirect
    networks = app.extensions["aml_networks"] = per_network(settings)
    app.extensions["aml_openapi"] = responses.static(dumps(openapi.document(settings.networks)))
    app.register_blueprint(routes.bp)
    errors.register(app)
    if shortcut:
        app.wsgi_app = Shortcut(app.wsgi_app, networks)
    for name, results in networks.items():
        log.info("result API: serving %s for network %s", results.folder.root, name)
    return app
