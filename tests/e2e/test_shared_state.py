"""Two app instances on one database: nothing one process keeps can go stale for the other.

Instance A is the in-process WSGI app (WebTest); instance B is a real ``pserve`` process on the
same database (``live_server``). What each process keeps in memory: the verified-credential
cache (keyed by password and stored hash), logins and pages per change serial (``live_server``
reads the serials on every request here; the 1 s default is tested in ``test_multi_instance.py``);
sessions live in signed cookies, so any instance with the same secret reads them.
"""

import base64
import re
import urllib.error
import urllib.request

import pytest
from conftest import PASSWORD

from extrapypi.permissions import Role
from extrapypi.services.accounts import get_user, set_password

BROWSER = {"Accept": "text/html"}


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


OPENER = urllib.request.build_opener(NoRedirect)


def fetch(server, path: str, headers: dict) -> tuple[int, str]:
    """GET from the pserve instance, redirects not followed."""
    request = urllib.request.Request(server.url + path, headers=headers)
    try:
        with OPENER.open(request, timeout=30) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def basic(username: str, password: str = PASSWORD) -> dict[str, str]:
    token = base64.b64encode(f"{username}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


@pytest.mark.e2e
def test_a_session_opened_on_one_instance_is_valid_on_the_other(testapp, data, live_server):
    data.user("bob", Role.DEVELOPER)
    page = testapp.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    testapp.post("/login", {"username": "bob", "password": PASSWORD, "csrf_token": token})
    cookie = "; ".join(f"{name}={value}" for name, value in testapp.cookies.items())

    status, body = fetch(live_server, "/", {**BROWSER, "Cookie": cookie})
    assert status == 200
    assert "bob · developer" in body

    tm, dbsession = data.session()
    with tm:
        set_password(dbsession, get_user(dbsession, "bob"), "a new password", rounds=4)
    # The new password ends the session on every instance: back to the login page.
    assert fetch(live_server, "/", {**BROWSER, "Cookie": cookie})[0] == 302
    testapp.get("/", headers=BROWSER, status=302)


@pytest.mark.e2e
def test_credential_changes_on_one_instance_apply_at_once_on_the_other(testapp, data, live_server):
    data.user("carol", Role.ADMIN)
    # Both instances verify and cache carol's password.
    assert "carol" in testapp.get("/users/", headers=basic("carol")).text
    assert fetch(live_server, "/users/", basic("carol"))[0] == 200

    tm, dbsession = data.session()
    with tm:
        get_user(dbsession, "carol").role = Role.INSTALLER.value
    assert fetch(live_server, "/users/", basic("carol"))[0] == 403
    testapp.get("/users/", headers=basic("carol"), status=403)

    with tm:
        set_password(dbsession, get_user(dbsession, "carol"), "another password", rounds=4)
    assert fetch(live_server, "/", basic("carol"))[0] == 401
    testapp.get("/", headers=basic("carol"), status=401)
    assert fetch(live_server, "/", {**basic("carol", "another password"), **BROWSER})[0] == 200

    with tm:
        get_user(dbsession, "carol").is_active = False
    assert fetch(live_server, "/", basic("carol", "another password"))[0] == 401
