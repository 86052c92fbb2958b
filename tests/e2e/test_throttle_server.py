"""Login throttling through a real ``pserve``, clients on real sockets from 127.0.0.2 and .3.

waitress sets ``REMOTE_ADDR`` from the connection's peer address (no proxy is trusted here), so
binding the client socket to another loopback address is a different client to the server.
"""

import base64
import http.client
import re
from urllib.parse import urlencode

import pytest
from conftest import PASSWORD, free_port, start_server, write_ini

ATTACKER, OWNER = "127.0.0.2", "127.0.0.3"
THROTTLE = {
    "extrapypi.login_throttle_attempts": "3",
    "extrapypi.login_throttle_window": "60",
}


@pytest.fixture(scope="module")
def throttled_server(app, base_settings, tmp_path_factory):
    directory = tmp_path_factory.mktemp("throttled")
    port = free_port()
    ini = write_ini(directory / "server.ini", {**base_settings, **THROTTLE}, port=port)
    server = start_server(ini, port, directory / "pserve.log")
    yield server
    server.process.terminate()
    server.process.wait(timeout=10)


def request(server, source: str, method: str, path: str, headers=None, body=None):
    """One request on a fresh connection whose client end is bound to ``source``."""
    port = int(server.url.rsplit(":", 1)[1])
    connection = http.client.HTTPConnection(
        "127.0.0.1", port, timeout=30, source_address=(source, 0)
    )
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.headers, response.read().decode()
    finally:
        connection.close()


def basic(username: str, password: str = PASSWORD) -> dict:
    token = base64.b64encode(f"{username}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def form_login(server, source: str, username: str, password: str = PASSWORD) -> int:
    """GET the form (cookie + CSRF token), POST it back; the status of the POST."""
    status, headers, page = request(server, source, "GET", "/login")
    assert status == 200
    cookie = headers["Set-Cookie"].split(";", 1)[0]
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    body = urlencode({"username": username, "password": password, "csrf_token": token})
    status, _, _ = request(
        server,
        source,
        "POST",
        "/login",
        {"Cookie": cookie, "Content-Type": "application/x-www-form-urlencoded"},
        body,
    )
    return status


@pytest.mark.e2e
def test_an_attacker_on_one_address_cannot_lock_the_owner_out(throttled_server, data):
    data.user("victim")
    data.user("pipuser")
    for _ in range(3):
        assert form_login(throttled_server, ATTACKER, "victim", "wrong") == 400
        status, _, _ = request(
            throttled_server, ATTACKER, "GET", "/simple/", basic("pipuser", "wrong")
        )
        assert status == 401
    # The attacker's address is refused for those names, even with the right passwords.
    assert form_login(throttled_server, ATTACKER, "victim") == 429
    status, headers, _ = request(throttled_server, ATTACKER, "GET", "/simple/", basic("pipuser"))
    assert status == 429 and int(headers["Retry-After"]) <= 60
    # The owners, on another address, are not.
    assert form_login(throttled_server, OWNER, "victim") == 303
    status, _, _ = request(throttled_server, OWNER, "GET", "/simple/", basic("pipuser"))
    assert status == 200
    log = throttled_server.log()
    assert "Traceback" not in log
