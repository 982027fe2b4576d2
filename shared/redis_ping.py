"""Does a Redis server answer? One PING over a plain socket, so any image can ask.

Used where something must wait for, or decide whether to start, a Redis server (the
stack launcher, the test runner, benchmarks); needs no Redis client library.
"""

from __future__ import annotations

import socket
from urllib.parse import unquote, urlsplit


def _command(*parts: str) -> bytes:
    """One command in Redis's wire protocol (RESP), safe for any byte in a password."""
    out = [b"*%d\r\n" % len(parts)]
    for part in parts:
        data = part.encode()
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


def redis_answers(url: str, timeout: float = 1.0) -> bool:
    """True when the Redis server at url (redis://[[user]:password@]host[:port][/db]) answers
    PING with PONG within timeout seconds; False when it cannot be reached or refuses."""
    parts = urlsplit(url)
    request = b""
    if parts.password is not None:
        auth = (parts.username, parts.password) if parts.username else (parts.password,)
        request = _command("AUTH", *map(unquote, auth))
    request += _command("PING")
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 6379),
                                      timeout=timeout) as sock:
            sock.sendall(request)
            return _reply(sock, 2 if parts.password is not None else 1).endswith(b"+PONG\r\n")
    except (OSError, ValueError):
        return False


def _reply(sock: socket.socket, lines: int) -> bytes:
    """Read until `lines` reply lines arrived (or the server closed the connection)."""
    data = b""
    while data.count(b"\r\n") < lines:
        chunk = sock.recv(256)
        if not chunk:
            break
        data += chunk
    return data
