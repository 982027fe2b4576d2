"""Gunicorn settings for the result API; every value comes from the Settings object."""

import os

from shared.logs import configure
from shared.settings import Settings

_settings = Settings.from_env()
configure(_settings.LOG_LEVEL)

_host = f"[{_settings.API_HOST}]" if ":" in _settings.API_HOST else _settings.API_HOST
bind = [f"{_host}:{_settings.API_PORT}"]
workers = _settings.API_WORKERS
threads = _settings.API_THREADS
worker_class = "gthread"
# A full date is a file sent with sendfile in well under a second; 30 s only catches a stuck worker.
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

