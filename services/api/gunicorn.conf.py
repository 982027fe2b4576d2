"""Gunicorn settings for the result API; every value comes from the Settings object."""

from shared.gunicorn_common import (  # noqa: F401  gunicorn reads these module-level names
    accesslog, bind_address, control_socket_disable, errorlog, graceful_timeout, keepalive,
    worker_tmp_dir)
from shared.logs import configure
from shared.settings import Settings

_settings = Settings.from_env()
configure(_settings.LOG_LEVEL)

bind = bind_address(_settings.API_HOST, _settings.API_PORT)
workers = _settings.API_WORKERS
threads = _settings.API_THREADS
worker_class = "gthread"
# A full date is a file sent in well under a second; 30 s only catches a stuck worker.
timeout = 30
# Files go out as 1 MB reads and writes (responses.SEND_BLOCK), not sendfile: on loopback
# that sent 0.05-0.12 x nginx more requests/s (docs/performance.md).
sendfile = False
loglevel = _settings.LOG_LEVEL.lower()
access_log_format = '%(h)s %(t)s "%(r)s" %(s)s %(B)s %(D)sus "%(a)s"'

