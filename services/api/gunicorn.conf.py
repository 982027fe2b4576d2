"""Gunicorn settings for the result API; every value comes from the Settings object."""

import logging

from shared.gunicorn_common import (  # noqa: F401  gunicorn reads these module-level names
    accesslog, bind_address, control_socket_disable, errorlog, graceful_timeout, keepalive,
    worker_tmp_dir)
from shared.logs import configure
from shared.settings import Settings

_settings = Settings.from_env()
configure(_settings.LOG_LEVEL)
_log = logging.getLogger("services.api.gunicorn")

bind = bind_address(_settings.API_HOST, _settings.API_PORT)
workers = _settings.API_WORKERS
threads = _settings.API_THREADS
worker_class = "gthread"
# A full date is sent from memory in well under a second; 30 s only catches a stuck worker.
timeout = 30
loglevel = _settings.LOG_LEVEL.lower()
access_log_format = '%(h)s %(t)s "%(r)s" %(s)s %(B)s %(D)sus "%(a)s"'

# A worker renders the newest date right after it starts and whenever a newer one appears.
WARM_INTERVAL_S = 5.0


def post_worker_init(worker):
    """Start the warming thread of this worker."""
    from services.api.warm import start_warmer

    start_warmer(worker.wsgi, WARM_INTERVAL_S)
