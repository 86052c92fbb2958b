"""Identity from Basic or the session cookie; 401 for clients, login redirect for browsers, 403."""

import re

import pytest
import webtest

from extrapypi import main
from extrapypi.permissions import Role

BROWSER = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
PIP = {
    "Accept": "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html; q=0.1, "
    "text/html; q=0.01"
}


def login(testapp, username, password="correct horse", came_from=""):
    page = testapp.get("/login", params={"came_from": came_from})
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    return testapp.post(
        "/login",
        {"username": username, "password": password, "csrf_token": token, "came_from": came_from},
        expect_errors=True,
    )


def test_ping_needs_nothing(testapp):
    response = testapp.get("/ping")
    assert response.status_int == 200
    assert response.text == "pong"
    assert response.content_type == "text/plain"


def test_anonymous_client_gets_basic_challenge(testapp):
    response = testapp.get("/simple/", headers=PIP, status=401)
    assert response.headers["WWW-Authenticate"] == 'Basic realm="extrapypi"'
    assert "Authentication required" in response.text


def test_anonymous_client_cannot_probe_package_names(testapp, data):
    data.package("exists")
    for path in ("/simple/exists/", "/simple/missing/", "/packages/missing/1.0/x.whl"):
        assert testapp.get(path, headers=PIP, status=401).headers["WWW-Authenticate"]


def test_anonymous_browser_is_sent_to_login(testapp):
    response = testapp.get("/", headers=BROWSER, status=302)
    assert response.location == "http://example.com/login?came_from=%2F"


def test_wrong_password_is_401_even_with_a_browser(testapp, data, auth):
    data.user("alice", Role.ADMIN)
    response = testapp.get("/", headers={**BROWSER, **auth("alice", "wrong")}, status=401)
    assert response.headers["WWW-Authenticate"]


def test_unknown_user_is_401(testapp, auth):
    testapp.get("/simple/", headers=auth("nobody"), status=401)


def test_inactive_user_never_authenticates(testapp, data, auth):
    data.user("old", Role.ADMIN, active=False)
    testapp.get("/", headers=auth("old"), status=401)
    assert login(testapp, "old").status_int == 400


def test_basic_identity_sees_home(testapp, data, auth):
    data.user("alice", Role.INSTALLER)
    assert "extrapypi" in testapp.get("/", headers=auth("alice")).text


def test_authenticated_but_not_allowed_is_403_with_reason(testapp, data, auth):
    data.user("inst", Role.INSTALLER)
    response = testapp.get("/users/", headers=auth("inst"), status=403)
    assert response.status == (
        "403 Forbidden: user 'inst' (installer) may not administer users: that takes the admin role"
    )
    assert "may not administer users" in response.text


def test_session_login_then_logout(testapp, data):
    data.user("bob", Role.DEVELOPER)
    response = login(testapp, "bob", came_from="/")
    assert response.status_int == 303
    assert response.location == "http://example.com/"
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    home = testapp.get("/", headers=BROWSER)
    assert "bob · developer" in home.text
    token = re.search(r'name="csrf_token" value="([^"]+)"', home.text).group(1)
    testapp.post("/logout", {"csrf_token": token}, status=303)
    testapp.get("/", headers=BROWSER, status=302)


def test_logout_without_csrf_token_is_refused(testapp, data):
    data.user("bob", Role.DEVELOPER)
    login(testapp, "bob")
    testapp.post("/logout", {}, status=400)
    assert "bob" in testapp.get("/", headers=BROWSER).text


def test_wrong_login_says_so(testapp, data):
    data.user("bob", Role.DEVELOPER)
    response = login(testapp, "bob", password="nope")
    assert response.status_int == 400
    assert "Wrong username or password." in response.text


@pytest.mark.parametrize(
    "came_from", ["https://evil.example/", "//evil.example/x", "/\\evil.example", "javascript:x"]
)
def test_login_never_redirects_off_site(testapp, data, came_from):
    data.user("bob", Role.DEVELOPER)
    response = login(testapp, "bob", came_from=came_from)
    assert response.location == "http://example.com/"


def test_password_change_ends_old_sessions(testapp, data, app):
    from extrapypi.services.accounts import get_user, set_password

    data.user("bob", Role.DEVELOPER)
    login(testapp, "bob")
    assert "bob" in testapp.get("/", headers=BROWSER).text
    tm, dbsession = data.session()
    with tm:
        set_password(dbsession, get_user(dbsession, "bob"), "a new password", rounds=4)
    testapp.get("/", headers=BROWSER, status=302)


def test_role_change_takes_effect_at_once_despite_the_credential_cache(testapp, data, auth):
    from extrapypi.services.accounts import get_user

    data.user("carol", Role.ADMIN)
    assert "carol" in testapp.get("/users/", headers=auth("carol")).text
    tm, dbsession = data.session()
    with tm:
        get_user(dbsession, "carol").role = Role.INSTALLER.value
    testapp.get("/users/", headers=auth("carol"), status=403)
    with tm:
        get_user(dbsession, "carol").is_active = False
    testapp.get("/simple/", headers=auth("carol"), status=401)


def test_anonymous_read_setting_opens_view_only(base_settings, clean, data, auth):
    app = main({}, **{**base_settings, "extrapypi.anonymous_read": "true"})
    anonymous = webtest.TestApp(app, extra_environ={"HTTP_HOST": "example.com"})
    assert anonymous.get("/", headers=BROWSER).status_int == 200
    anonymous.get("/users/", headers=BROWSER, status=302)
    # The pages merged later: what reads the index opens, what administers it does not.
    data.release_file("demo", "1.0")
    anonymous.get("/namespaces", status=200)
    anonymous.get("/setup/", headers=BROWSER, status=200)
    for path in ("/metrics", "/namespace/nothing-reserved"):
        # /metrics: admins and scraper addresses only; both are API paths (no login page)
        expected = 401 if path == "/metrics" else 404
        anonymous.get(path, headers=BROWSER, status=expected)
    for path in ("/teams/", "/webhooks/", "/audit/", "/packages/demo/retention"):
        anonymous.get(path, headers=BROWSER, status=302)
        response = anonymous.get(path, headers=PIP, status=401)
        assert response.headers["WWW-Authenticate"] == 'Basic realm="extrapypi"'
    for path in ("/teams/@@new", "/webhooks/", "/packages/demo/status", "/packages/demo/retention"):
        anonymous.post(path, {"name": "x", "url": "https://x.example/"}, status=401)


def test_without_anonymous_read_the_merged_pages_challenge(testapp, data):
    for path in ("/namespaces", "/namespace/x", "/metrics"):
        response = testapp.get(path, headers=BROWSER, status=401)  # API paths: no login page
        assert response.headers["WWW-Authenticate"] == 'Basic realm="extrapypi"'
        assert "Authentication required" in response.status
    for path in ("/setup/", "/teams/", "/webhooks/", "/audit/"):
        testapp.get(path, headers=BROWSER, status=302)
        testapp.get(path, headers=PIP, status=401)


def test_dashboard_can_be_switched_off(base_settings, clean, data, auth):
    data.user("alice", Role.ADMIN)
    app = main({}, **{**base_settings, "extrapypi.dashboard": "false"})
    client = webtest.TestApp(app, extra_environ={"HTTP_HOST": "example.com"})
    client.get("/login", status=401)
    client.get("/", headers=auth("alice"), status=405)  # only uploads (POST) remain at "/"
    assert client.get("/ping").text == "pong"
