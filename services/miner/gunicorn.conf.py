"""Gunicorn settings for the miner, taken from the one settings object (env vars)."""

import logging

from shared.gunicorn_common import (  # noqa: F401  gunicorn reads these module-level names
    accesslog, bind_address, control_socket_disable, errorlog, graceful_timeout, keepalive,
    worker_tmp_dir)
from shared.logs import configure, scrub_handlers
from shared.redact import settings_secrets
from shared.settings import Settings

_settings = Settings.from_env()
_secrets = settings_secrets(_settings)
configure(_settings.LOG_LEVEL, _secrets)

bind = bind_address(_settings.MINER_HOST, _settings.MINER_PORT)
wsgi_app = "services.miner.app:create_app()"
# gevent: each connection is a greenlet, so a client that trickles its request headers holds
# a few KB, not a thread (gthread parses headers in its pool threads, which slow clients
# can all hold while a signed validator waits).
worker_class = "gevent"
workers = _settings.MINER_WORKERS
worker_connections = _settings.MINER_WORKER_CONNECTIONS
# Not preloaded: each worker builds its own app after gevent has patched it, so each has a
# live metagraph refresh greenlet (threads do not survive fork).
preload_app = False
timeout = 60
loglevel = _settings.LOG_LEVEL.lower()


def on_starting(server):
    """Gunicorn's own log lines (worker boot errors quote exceptions) are scrubbed too."""
    scrub_handlers(logging.getLogger("gunicorn.error"), _secrets)
    scrub_handlers(logging.getLogger("gunicorn.access"), _secrets)
