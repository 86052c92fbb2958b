"""A hostile or broken client against the WSGI surface: a clear 4xx with its reason, never a 5xx,
nothing stored.

The reason is checked in the status line (where pip and twine show it) and in the body.
"""

import base64
import os
import re

import pytest
import sqlalchemy as sa
import webtest

from extrapypi.models import File, Package, Release, User
from extrapypi.permissions import Role

BROWSER = {"Accept": "text/html"}
FORM = "application/x-www-form-urlencoded"


def basic(raw: bytes) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(raw).decode()}


def refused(response, status: int, *words: str) -> None:
    """The status, and a reason in plain words in both the status line and the body."""
    assert response.status_int == status, response.status
    reason = response.status.split(" ", 1)[1]
    for word in words:
        assert word in reason, reason
        assert word in response.text, response.text


def count(engine, model) -> int:
    with engine.connect() as connection:
        return connection.execute(sa.select(sa.func.count()).select_from(model)).scalar()


def stored_files(root) -> list[str]:
    return sorted(
        os.path.relpath(os.path.join(d, f), root)
        for d, _dirs, files in os.walk(root)
        for f in files
        if ".staging" not in d
    )


@pytest.fixture
def world(data):
    data.user("admin", Role.ADMIN)
    data.user("dev", Role.DEVELOPER)
    data.release_file("demo", "1.0")
    return data


@pytest.fixture
def fresh(app, world):
    """A TestApp that never holds a cookie (WebTest's jar cannot look at undecodable URLs)."""
    return webtest.TestApp(app, extra_environ={"HTTP_HOST": "example.com"})


def raw_post(testapp, path: str, body: bytes, content_type: str, headers=None, status="*"):
    """A POST whose Content-Type goes out exactly as given (WebTest would add a boundary)."""
    return testapp.request(
        path,
        method="POST",
        body=body,
        headers=headers or {},
        content_type=content_type,
        status=status,
        expect_errors=True,
    )


def csrf_token(page) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)


def log_in(testapp, username: str = "admin") -> str:
    page = testapp.get("/login")
    testapp.post(
        "/login",
        {"username": username, "password": "correct horse", "csrf_token": csrf_token(page)},
        status=303,
    )
    return csrf_token(testapp.get("/", headers=BROWSER))


# --- undecodable bytes: paths, query strings, forms, cookies ---------------------------------


@pytest.mark.parametrize(
    "path", ["/%ff", "/simple/%ff/", "/packages/%ff/", "/pypi/%C3/json", "/users/%ff%fe"]
)
@pytest.mark.parametrize("method", ["GET", "HEAD", "POST", "PUT"])
def test_undecodable_path_is_400(fresh, auth, path, method):
    response = fresh.request(path, method=method, headers=auth("admin"), status="*")
    refused(response, 400, "URL path is not valid") if method != "HEAD" else None
    assert response.status_int == 400


@pytest.mark.parametrize("path", ["/simple/?format=%ff", "/packages/?sort=%ff&q=%fe"])
def test_undecodable_query_string_is_400(fresh, auth, path):
    refused(fresh.get(path, headers=auth("admin"), status=400), 400, "query string")


def test_invalid_percent_encoding_in_query_is_taken_literally(testapp, world, auth):
    response = testapp.get("/simple/?%zz=%zz&format=", headers=auth("admin"), status=406)
    refused(response, 406, "Not Acceptable")
    testapp.get("/simple/?%zz=%zz", headers=auth("admin"), status=200)


def test_cookie_that_is_not_utf8_is_ignored_not_a_crash(fresh, auth):
    # Another application on the same host may set any bytes; our pages must still answer.
    cookie = {"Cookie": 'other="\xff\xfe"; extrapypi_session="\xff"'}
    assert fresh.get("/login", headers=cookie).status_int == 200
    fresh.get("/simple/", headers={**cookie, **auth("admin")}, status=200)
    fresh.get("/packages/", headers={**cookie, **BROWSER}, status=302)


def test_login_form_in_another_charset_or_without_boundary_is_400(testapp, world):
    token = csrf_token(testapp.get("/login")).encode()
    body = b"username=admin&password=x&csrf_token=" + token
    response = testapp.post("/login", body, content_type=FORM + "; charset=latin-9", status=400)
    refused(response, 400, "malformed form body")
    response = raw_post(testapp, "/login", body, "multipart/form-data", status=400)
    refused(response, 400, "malformed form body")


def test_upload_form_in_another_charset_or_without_boundary_is_400(
    fresh, world, auth, engine, base_settings
):
    before = stored_files(base_settings["extrapypi.storage.path"])
    for content_type in (
        FORM + "; charset=bogus",
        "multipart/form-data",
        'multipart/form-data; boundary=""',
    ):
        response = raw_post(
            fresh, "/legacy/", b":action=file_upload", content_type, auth("dev"), status=400
        )
        refused(response, 400, "malformed form body")
    assert count(engine, Package) == 1 and count(engine, File) == 1
    assert stored_files(base_settings["extrapypi.storage.path"]) == before


# --- methods a page does not answer; forms missing what they need -------------------------------


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("PUT", "/simple/", "GET, HEAD, POST"),
        ("DELETE", "/simple/demo/", "GET, HEAD"),
        ("OPTIONS", "/packages/demo/1.0/demo-1.0-py3-none-any.whl", "GET, HEAD"),
        ("PATCH", "/pypi/demo/json", "GET, HEAD"),
        ("GET", "/logout", "POST"),
        ("GET", "/legacy/", "POST"),
        ("GET", "/packages/demo/1.0/yank", "POST"),
        ("HEAD", "/packages/demo/1.0/set-yanked", "POST"),
        ("DELETE", "/ping", "GET, HEAD"),
    ],
)
def test_unanswered_method_is_405_with_allow(testapp, world, auth, method, path, allowed):
    response = testapp.request(path, method=method, headers=auth("admin"), status=405)
    assert response.headers["Allow"] == allowed
    if method != "HEAD":
        refused(response, 405, f"{method} is not answered here", allowed)


def test_delete_method_deletes_nothing(testapp, world, auth, engine):
    testapp.request("/packages/demo/", method="DELETE", headers=auth("admin"), status=405)
    assert count(engine, Package) == 1 and count(engine, File) == 1


def test_form_without_a_known_action_is_400(testapp, world):
    token = log_in(testapp)
    for fields in ({}, {"action": "bogus"}):
        response = testapp.post("/users/dev", {"csrf_token": token, **fields}, status=400)
        refused(response, 400, "missing or unknown")


@pytest.mark.parametrize("token", [None, "", "wrong", "x" * 5000])
@pytest.mark.parametrize(
    ("path", "fields"),
    [
        ("/users/new", {"username": "mallory", "password": "abcdef", "role": "admin"}),
        ("/users/dev/delete", {}),
        ("/packages/demo/delete", {}),
        ("/packages/demo/1.0/set-yanked", {"reason": "x"}),
        ("/packages/demo/maintainers", {"username": "dev", "action": "add"}),
        ("/account", {"action": "email", "email": "m@example.com"}),
        ("/logout", {}),
    ],
)
def test_dashboard_form_without_right_csrf_token_is_400_and_changes_nothing(
    testapp, world, engine, path, fields, token
):
    log_in(testapp)
    if token is not None:
        fields = {**fields, "csrf_token": token}
    response = testapp.post(path, fields, status=400)
    refused(response, 400, "CSRF token is missing or out of date")
    assert count(engine, User) == 2 and count(engine, Package) == 1
    assert count(engine, File) == 1
    testapp.get("/account", headers=BROWSER, status=200)  # still logged in
    with engine.connect() as connection:
        yanked = connection.execute(sa.select(Release.yanked)).scalar()
        emails = connection.execute(sa.select(User.email)).scalars().all()
    assert yanked is False and "m@example.com" not in emails


def test_login_without_csrf_token_is_400(testapp, world):
    testapp.get("/login")
    response = testapp.post(
        "/login", {"username": "admin", "password": "correct horse"}, status=400
    )
    refused(response, 400, "CSRF token")
    testapp.get("/account", headers=BROWSER, status=302)  # not logged in
