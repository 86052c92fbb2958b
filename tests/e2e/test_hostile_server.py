"""Raw bytes at a real ``pserve``: what WebTest cannot send. Every answer is a 4xx, in time, and
the server keeps serving afterwards."""

import base64
import socket
import time

import pytest

from extrapypi.permissions import Role

pytestmark = pytest.mark.e2e
TIMEOUT = 10


@pytest.fixture(autouse=True)
def no_traceback_logged(live_server):
    """The server logs no traceback while a test talks to it (only this test's part of the log)."""
    start = len(live_server.log())
    yield
    assert "Traceback" not in live_server.log()[start:]


def exchange(server, raw: bytes, read_timeout: float = TIMEOUT) -> bytes:
    """Send raw bytes, half-close, and read the whole answer (bounded in time)."""
    host, port = server.url.split("://", 1)[1].split(":")
    with socket.create_connection((host, int(port)), timeout=read_timeout) as sock:
        sock.sendall(raw)
        try:
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        chunks, deadline = [], time.monotonic() + read_timeout
        while time.monotonic() < deadline:
            try:
                chunk = sock.recv(65536)
            except (ConnectionResetError, TimeoutError):
                break
            if not chunk:
                break
            chunks.append(chunk)
    return b"".join(chunks)


def status_of(answer: bytes) -> int:
    assert answer.startswith(b"HTTP/1."), answer[:200]
    return int(answer.split(b" ", 2)[1])


def assert_still_serving(server) -> None:
    answer = exchange(server, b"GET /ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert status_of(answer) == 200 and answer.endswith(b"pong")


def authorization(username: str = "hostile") -> bytes:
    token = base64.b64encode(f"{username}:correct horse".encode())
    return b"Authorization: Basic " + token + b"\r\n"


@pytest.mark.parametrize(
    ("raw", "statuses"),
    [
        (b"GARBAGE\r\n\r\n", (400,)),
        (b"GET\r\n\r\n", (400,)),
        # waitress answers an unknown version as HTTP/1.0 (here: the 401 challenge)
        (b"GET /simple/ HTTP/9.9\r\nHost: x\r\n\r\n", (400, 401, 505)),
        (b"GET /simple/ HTTP/1.1\r\nHost: x\r\nBad Header Line\r\n\r\n", (400,)),
        # obsolete line folding: rejected or unfolded to a space (RFC 9112 5.2 allows both)
        (b"GET /simple/ HTTP/1.1\r\nHost: x\r\nX-Folded: a\r\n  folded\r\n\r\n", (400, 401)),
        (
            b"GET /simple/ HTTP/1.1\r\nHost: x\r\n" + b"X-Big: " + b"a" * 300_000 + b"\r\n\r\n",
            (400, 431),
        ),
        (b"GET /" + b"a" * 300_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", (400, 414, 431)),
        (b"GET /simple/\x00 HTTP/1.1\r\nHost: x\r\n\r\n", (400, 401, 404)),
        (b"POST /legacy/ HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n", (400,)),
        (b"POST /legacy/ HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n", (400,)),
        (b"POST /legacy/ HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", (400,)),
        (
            b"POST /legacy/ HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            (400, 401),
        ),
    ],
)
def test_malformed_http_is_answered_4xx(live_server, raw, statuses):
    answer = exchange(live_server, raw)
    assert status_of(answer) in statuses, answer[:300]
    assert_still_serving(live_server)


def test_raw_utf8_and_latin1_bytes_in_the_path(live_server, data):
    data.user("hostile", Role.ADMIN)
    for path in (b"/simple/\xc3\xa9t\xc3\xa9/", b"/simple/\xff/", b"/packages/%ff/", b"/%C3"):
        answer = exchange(
            live_server,
            b"GET "
            + path
            + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
            + authorization()
            + b"\r\n",
        )
        assert status_of(answer) in (400, 404), (path, answer[:300])


def test_truncated_upload_body_is_refused_in_time_and_stores_nothing(
    live_server, data, engine, base_settings
):
    import sqlalchemy as sa

    from extrapypi.models import Package

    data.user("hostile", Role.DEVELOPER)
    body = (
        b'--x\r\nContent-Disposition: form-data; name=":action"\r\n\r\nfile_upload\r\n'
        b'--x\r\nContent-Disposition: form-data; name="content"; filename="t-1.0.tar.gz"\r\n\r\n'
        b"partial"
    )
    raw = (
        b"POST /legacy/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        + authorization()
        + b"Content-Type: multipart/form-data; boundary=x\r\n"
        + b"Content-Length: "
        + str(len(body) + 100_000).encode()
        + b"\r\n\r\n"
        + body
    )
    started = time.monotonic()
    answer = exchange(live_server, raw, read_timeout=TIMEOUT)
    # The client half-closed: waitress sees the body end early and never calls the app, or the
    # app refuses what arrived. Either way no 5xx, an answer (or a close) in time, nothing stored.
    assert time.monotonic() - started < TIMEOUT
    if answer:
        assert 400 <= status_of(answer) < 500, answer[:300]
    with engine.connect() as connection:
        assert connection.execute(sa.select(sa.func.count()).select_from(Package)).scalar() == 0
    assert_still_serving(live_server)


def test_many_headers_and_a_huge_authorization_header(live_server):
    many = b"".join(b"X-H%d: v\r\n" % i for i in range(5000))
    answer = exchange(live_server, b"GET /simple/ HTTP/1.1\r\nHost: x\r\n" + many + b"\r\n")
    assert 400 <= status_of(answer) < 500
    huge = b"Authorization: Basic " + base64.b64encode(b"u:" + b"p" * 200_000) + b"\r\n"
    answer = exchange(live_server, b"GET /simple/ HTTP/1.1\r\nHost: x\r\n" + huge + b"\r\n")
    assert 400 <= status_of(answer) < 500
    assert_still_serving(live_server)


def test_content_length_past_the_server_limit_is_413_at_once(live_server):
    raw = (
        b"POST /legacy/ HTTP/1.1\r\nHost: x\r\n"
        + authorization()
        + b"Content-Type: multipart/form-data; boundary=x\r\nContent-Length: 2000000000\r\n\r\nab"
    )
    started = time.monotonic()
    answer = exchange(live_server, raw)
    assert status_of(answer) == 413 and time.monotonic() - started < 5
    assert_still_serving(live_server)
