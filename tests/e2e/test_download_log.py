"""Real downloads through ``pserve`` (waitress) leave a clean log: no ERROR line, no traceback.

Operators alert on ERROR lines; a custom waitress buffer once logged "Unexpected error when
closing an outbuf" for most downloads while the bytes were right. Every way a client fetches a
file is exercised here: whole, Range, HEAD, 304, PEP 658 metadata, and clients that hang up.
"""

import hashlib
import io
import os
import socket
import struct
import zipfile

import pytest
import transaction
from dists import wheel_bytes
from instances import basic, fetch

from extrapypi.models import get_tm_session
from extrapypi.permissions import Role
from extrapypi.services.uploads import Limits, ingest

pytestmark = pytest.mark.e2e
BIG_BYTES = 8 * 1024 * 1024


def big_wheel(name: str, version: str) -> tuple[str, bytes]:
    """A valid wheel of about ``BIG_BYTES`` (a stored, incompressible data member)."""
    filename, small, _metadata = wheel_bytes(name, version)
    buffer = io.BytesIO(small)
    with zipfile.ZipFile(buffer, "a", zipfile.ZIP_STORED) as archive:
        archive.writestr(f"{name}/blob.bin", os.urandom(BIG_BYTES))
    return filename, buffer.getvalue()


def store(app, filename: str, content: bytes) -> None:
    tm = transaction.TransactionManager(explicit=True)
    with tm:
        dbsession = get_tm_session(app.registry["dbsession_factory"], tm)
        ingest(
            dbsession,
            app.registry["extrapypi.storage"],
            tm.get(),
            None,
            filename,
            io.BytesIO(content),
            None,
            limits=Limits(64 * 1024 * 1024),
        )


@pytest.fixture
def files(app, data):
    data.user("reader", Role.INSTALLER)
    small = data.release_file("tiny", "1.0")
    filename, content = big_wheel("hefty", "1.0")
    store(app, filename, content)
    return {
        "small": (f"/packages/tiny/1.0/{small['filename']}", small["content"]),
        "big": (f"/packages/hefty/1.0/{filename}", content),
    }


def hang_up(server, path: str, read_bytes: int, extra: bytes = b"", reset: bool = False) -> int:
    """Ask for a file, read ``read_bytes`` of the answer, then close (or reset) the connection."""
    host, port = server.url.split("://", 1)[1].split(":")
    received = 0
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 * 1024)
        auth = basic("reader")["Authorization"].encode()
        sock.sendall(
            b"GET "
            + path.encode()
            + b" HTTP/1.1\r\nHost: x\r\nAuthorization: "
            + auth
            + b"\r\n"
            + extra
            + b"\r\n"
        )
        while received < read_bytes:
            chunk = sock.recv(16 * 1024)
            if not chunk:
                break
            received += len(chunk)
        if reset:  # RST instead of FIN: the server's next send fails at once
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    return received


def problems(log: str) -> list[str]:
    return [line for line in log.splitlines() if "ERROR" in line or "Traceback" in line]


def test_downloads_of_every_kind_log_no_error(live_server, files):
    start = len(live_server.log())
    auth = basic("reader")
    for path, content in files.values():
        for _ in range(5):  # the old buffer failed to close on most, not all, downloads
            whole = fetch(live_server.url + path, auth)
            assert whole.status == 200
            assert hashlib.sha256(whole.body).hexdigest() == hashlib.sha256(content).hexdigest()
        middle = fetch(live_server.url + path, {**auth, "Range": "bytes=100-611"})
        assert middle.status == 206 and middle.body == content[100:612]
        assert middle.headers["Content-Range"] == f"bytes 100-611/{len(content)}"
        tail = fetch(live_server.url + path, {**auth, "Range": "bytes=-100"})
        assert tail.status == 206 and tail.body == content[-100:]
        beyond = fetch(live_server.url + path, {**auth, "Range": f"bytes={len(content)}-"})
        assert beyond.status == 416
        head = fetch(live_server.url + path, auth, method="HEAD")
        assert head.status == 200 and head.body == b""
        assert int(head.headers["Content-Length"]) == len(content)
        etag = whole.headers["ETag"]
        assert fetch(live_server.url + path, {**auth, "If-None-Match": etag}).status == 304
        modified = whole.headers["Last-Modified"]
        assert fetch(live_server.url + path, {**auth, "If-Modified-Since": modified}).status == 304
        metadata = fetch(live_server.url + path + ".metadata", auth)
        assert metadata.status == 200 and metadata.body.startswith(b"Metadata-Version:")

    big_path, big = files["big"]
    for reset in (False, True):
        for _ in range(3):
            assert 0 < hang_up(live_server, big_path, 256 * 1024, reset=reset) < len(big)
        # a range the client abandons too
        ranged = b"Range: bytes=1000-" + str(len(big) - 1).encode() + b"\r\n"
        assert 0 < hang_up(live_server, big_path, 128 * 1024, ranged, reset=reset) < len(big)

    # The server notices a hang-up on its next send and closes that answer's file; full downloads
    # after the hang-ups give it the time (no sleep) and exercise the normal close once more.
    for _ in range(3):
        answer = fetch(live_server.url + big_path, auth)
        assert answer.status == 200 and len(answer.body) == len(big)
    assert problems(live_server.log()[start:]) == []
