"""The floor of a threaded Python file server, for bench_api.py to compare with.

Serves GET of files under a root on 127.0.0.1: N forked processes on one listening socket,
a thread per keep-alive connection, each answer its headers and then the file (the `.gz`
twin when Accept-Encoding names gzip) in 1 MB reads and sendall, like the API. No routing,
no ETags, no logging: what remains is what CPython's threads and sockets cost, so no
Python server doing more can be faster than this one.

Run: python bench/bare_file_server.py PORT ROOT [--processes 2]
"""

from __future__ import annotations

import argparse
import os
import socket
import threading

BLOCK = 1 << 20  # as services/api/responses.SEND_BLOCK


def read_head(conn: socket.socket, pending: bytes) -> tuple[bytes, bytes] | None:
    """One request head and what follows it, or None when the client closed."""
    while b"\r\n\r\n" not in pending:
        data = conn.recv(65536)
        if not data:
            return None
        pending += data
    head, _, rest = pending.partition(b"\r\n\r\n")
    return head, rest


def answer(conn: socket.socket, root: str, head: bytes) -> None:
    lines = head.decode("latin-1").split("\r\n")
    gzipped = any(line.lower().startswith("accept-encoding:") and "gzip" in line for line in lines)
    path = root + lines[0].split(" ")[1] + (".gz" if gzipped else "")
    with open(path, "rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        encoding = "Content-Encoding: gzip\r\n" if gzipped else ""
        conn.sendall(f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                     f"Content-Length: {size}\r\n{encoding}\r\n".encode())
        while chunk := handle.read(BLOCK):
            conn.sendall(chunk)


def serve(conn: socket.socket, root: str) -> None:
    pending = b""
    with conn:
        try:
            while (request := read_head(conn, pending)) is not None:
                head, pending = request
                answer(conn, root, head)
        except OSError:
            pass  # the client went away (wrk closes its connections at the end of a run)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("port", type=int)
    parser.add_argument("root")
    parser.add_argument("--processes", type=int, default=2)
    args = parser.parse_args()
    listener = socket.create_server(("127.0.0.1", args.port), backlog=128)
    for _ in range(args.processes - 1):
        if os.fork() == 0:
            break
    while True:
        conn, _ = listener.accept()
        threading.Thread(target=serve, args=(conn, args.root), daemon=True).start()


if __name__ == "__main__":
    main()
