"""Gunicorn settings for the miner, taken from the one settings object (env vars)."""

import os

from shared.logs import configure
from shared.settings import Settings

_settings = Settings.from_env()
configure(_settings.LOG_LEVEL)

_host = _settings.MINER_HOST
bind = [f"[{_host}]:{_settings.MINER_PORT}" if ":" in _host else f"{_host}:{_settings.MINER_PORT}"]
wsgi_app = "services.miner.app:create_app()"
worker_class = "gthread"
workers = _settings.MINER_WORKERS
threads = _settings.MINER_THREADS
# Not preloaded: each worker builds its own app, so each has a live metagraph refresh thread
# (threads do not survive fork).
preload_app = False
timeout = 60
graceful_timeout = 20
keepalive = 5
accesslog = "-"
errorlog = "-"
loglevel = _settings.LOG_LEVEL.lower()
# Several gunicorns (api, miner, tests) on one host must not fight over one control socket.
control_socket_disable = True
# Worker heartbeat files on tmpfs: a slow overlay disk must not get healthy workers killed.
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None
