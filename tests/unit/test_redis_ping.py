"""shared.redis_ping.redis_answers against the tests' real redis-server and things that are not."""

import socket
import threading

from shared.redis_ping import redis_answers
from tests import redis_db


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_the_tests_redis_answers():
    assert redis_answers(redis_db.url(0))


def test_a_password_is_sent_first_and_the_ping_still_read():
    # The tests' Redis has no password: AUTH is refused with an error line, PING still PONGs.
    assert redis_answers(redis_db.url(0).replace("redis://", "redis://:s%20cret@"))


def test_nothing_listening_is_false():
    assert not redis_answers(f"redis://127.0.0.1:{_free_port()}/0", timeout=0.5)


def test_a_server_that_is_not_redis_is_false():
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]

    def answer_http():
        conn, _ = server.accept()
        with conn:
            conn.recv(64)
            conn.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n")
    thread = threading.Thread(target=answer_http, daemon=True)
    thread.start()
    try:
        assert not redis_answers(f"redis://127.0.0.1:{port}/0", timeout=2)
    finally:
        thread.join(5)
        server.close()
