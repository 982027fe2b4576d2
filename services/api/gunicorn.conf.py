"""Gunicorn settings for the result API; every value comes from the Settings object."""

import logging
import os
import threading

from shared.logs import configure
from shared.settings import Settings

_settings = Settings.from_env()
configure(_settings.LOG_LEVEL)
_log = logging.getLogger("services.api.gunicorn")

_host = f"[{_settings.API_HOST}]" if ":" in _settings.API_HOST else _settings.API_HOST
bind = [f"{_host}:{_settings.API_PORT}"]
workers = _settings.API_WORKERS
threads = _settings.API_THREADS
worker_class = "gthread"
# A full date is sent from memory in well under a second; 30 s only catches a stuck worker.
timeout = 30
graceful_timeout = 20
keepalive = 5
accesslog = "-"
errorlog = "-"
loglevel = _settings.LOG_LEVEL.lower()
access_log_format = '%(h)s %(t)s "%(r)s" %(s)s %(B)s %(D)sus "%(a)s"'
# The control socket's default path is one per user: a second server (tests, benchmark) would
# take it over, and nothing here uses it.
control_socket_disable = True
# The heartbeat file on tmpfs: a container's overlay disk can stall it and get workers killed.
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None

# A worker renders the newest date right after it starts and whenever a newer one appears.
WARM_INTERVAL_S = 5.0


def post_worker_init(worker):
    """Start the warming thread of this worker."""
    from services.api.warm import start_warmer

    start_warmer(worker.wsgi, WARM_INTERVAL_S)
