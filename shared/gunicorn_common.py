"""Gunicorn settings the result API and the miner share.

Each service's gunicorn.conf.py imports these names (gunicorn reads a config file's
module-level names) and adds its own worker model, bind address and timeout.
"""

from __future__ import annotations

import os

graceful_timeout = 20
keepalive = 5
accesslog = "-"
errorlog = "-"
# The control socket's default path is one per user: a second gunicorn on the host (api, miner,
# tests, benchmark) would take it over, and nothing here uses it.
control_socket_disable = True
# Worker heartbeat files on tmpfs: a slow overlay disk must not get healthy workers killed.
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None


def bind_address(host: str, port: int) -> list[str]:
    """Gunicorn's `bind` for host:port; an IPv6 host goes in brackets."""
    return [f"[{host}]:{port}" if ":" in host else f"{host}:{port}"]
