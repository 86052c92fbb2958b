"""A hostile or broken client against the WSGI surface: a clear 4xx with its reason, never a 5xx,
nothing stored.

The reason is checked in the status line (where pip and twine show it) and in the body.
"""

import base64
import hashlib
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


# --- Authorization headers ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": "Basic !!!not-base64!!!"},
        {"Authorization": "Basic"},
        {"Authorization": ""},
        {"Authorization": "Bearer abc"},
        basic(b"no-colon-here"),
        basic(b"\xff\xfe:\xff"),
        basic(b":correct horse"),
        basic(b"admin:"),
        basic(b"ghost:correct horse"),
        basic(b"admin\x00:correct horse"),
        basic(b"a" * 20_000 + b":x"),
        basic(b"admin:" + b"x" * 20_000),
    ],
)
@pytest.mark.parametrize("path", ["/simple/", "/packages/demo/1.0/demo-1.0-py3-none-any.whl"])
def test_bad_credentials_get_the_basic_challenge(testapp, world, headers, path):
    response = testapp.get(path, headers=headers, status=401)
    refused(response, 401, "Authentication required")
    assert response.headers["WWW-Authenticate"] == 'Basic realm="extrapypi"'


def test_colons_in_a_password_are_part_of_it(testapp, data):
    data.user("colon", Role.INSTALLER, password="pa:ss:word")
    testapp.get("/simple/", headers=basic(b"colon:pa:ss:word"), status=200)
    testapp.get("/simple/", headers=basic(b"colon:pa"), status=401)


def test_bad_credentials_on_upload_store_nothing(testapp, world, engine, base_settings):
    before = stored_files(base_settings["extrapypi.storage.path"])
    for headers in (basic(b"\xff:\xff"), basic(b"dev"), {"Authorization": "Basic %%%"}):
        response = testapp.post(
            "/legacy/",
            {":action": "file_upload", "name": "evil", "version": "1.0"},
            upload_files=[("content", "evil-1.0.tar.gz", b"x")],
            headers=headers,
            status=401,
        )
        refused(response, 401, "Authentication required")
    assert count(engine, Package) == 1
    assert stored_files(base_settings["extrapypi.storage.path"]) == before


# --- odd paths ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/simple//", 200),
        ("//simple/", 200),
        ("/simple/demo//", 200),
        ("/simple/demo/x", 404),
        ("/simple/%00/", 404),
        ("/simple/de%0d%0amo/", 404),
        ("/simple/" + "a" * 5000 + "/", 404),
        ("/simple/%C3%A9t%C3%A9/", 404),
        ("/simple/@@view/", 404),
        ("/@@view", 404),
        ("/packages/demo/not-a-version/x", 404),
        ("/packages/demo/1.0/%00", 404),
        ("/packages/demo/1.0/..%2F..%2Fsetup.cfg", 404),
        ("/packages/demo/1.0/demo-1.0-py3-none-any.whl%0d%0aX:%20y", 404),
        ("/packages/demo/%0d%0a/", 404),
        ("/pypi/demo/not-a-version/json", 404),
        ("/pypi/demo/%00/json", 404),
        ("/users/%00", 404),
        ("/static/../setup.cfg", 404),
        ("/static/%2e%2e/setup.cfg", 404),
    ],
)
def test_odd_paths(testapp, world, auth, path, status):
    response = testapp.get(path, headers=auth("admin"), status=status)
    if status == 404:
        refused(response, 404, "Not Found")
    for _name, value in response.headerlist:
        assert "\r" not in value and "\n" not in value


# --- redirects never reflect raw input ----------------------------------------------------------


def assert_clean_location(response, starts: str) -> None:
    location = response.headers["Location"]
    assert location.startswith(starts), location
    assert not any(c in location for c in "\r\n\x00 <>\"'"), location
    assert "Set-Cookie" not in response.headers or "Injected" not in response.headers["Set-Cookie"]


def test_simple_redirects_reencode_the_query(testapp, world, auth):
    response = testapp.get(
        "/simple/Demo?x=%0d%0aSet-Cookie:%20Injected%3D1&format=text%2Fhtml",
        headers=auth("admin"),
        status=301,
    )
    assert_clean_location(response, "http://example.com/simple/demo/?")
    assert "%0D%0A" in response.headers["Location"]
    response = testapp.get("/simple?a=%0d%0a", headers=auth("admin"), status=301)
    assert_clean_location(response, "http://example.com/simple/?")


@pytest.mark.parametrize(
    "path",
    [
        "/packages/%0d%0aSet-Cookie:%20Injected=1/",
        "/users/?next=%0d%0aLocation:%20http://evil.example/",
        "/packages/?q=%22%3E%3Cscript%3E",
    ],
)
def test_login_redirect_for_anonymous_browsers_is_encoded(testapp, world, path):
    response = testapp.get(path, headers=BROWSER, status=302)
    assert_clean_location(response, "http://example.com/login?came_from=")


@pytest.mark.parametrize(
    "came_from",
    [
        "\r\nSet-Cookie: Injected=1",
        "/\r\nSet-Cookie: Injected=1",
        "//evil.example/",
        "/\\evil.example",
        "http://evil.example/",
        "javascript:alert(1)",
        "/" + "x" * 10_000,
        "/packages/%0d%0a",
    ],
)
def test_login_came_from_cannot_inject_or_leave_the_site(testapp, world, came_from):
    token = csrf_token(testapp.get("/login"))
    response = testapp.post(
        "/login",
        {
            "username": "admin",
            "password": "correct horse",
            "csrf_token": token,
            "came_from": came_from,
        },
        status=303,
    )
    assert_clean_location(response, "http://example.com/")


def test_dashboard_redirects_carry_only_resource_urls(testapp, world):
    token = log_in(testapp)
    response = testapp.post(
        "/packages/demo/1.0/set-yanked",
        {"csrf_token": token, "reason": "bad\r\nSet-Cookie: Injected=1"},
        status=303,
    )
    assert_clean_location(response, "http://example.com/packages/demo/1.0/")


# --- HEAD answers like GET ------------------------------------------------------------------------

GET_ROUTES = [
    "/",
    "/setup/",
    "/audit/",
    "/simple/",
    "/simple/demo/",
    "/packages/",
    "/packages/demo/",
    "/packages/demo/1.0/",
    "/packages/demo/1.0/demo-1.0-py3-none-any.whl",
    "/packages/demo/1.0/demo-1.0-py3-none-any.whl.metadata",
    "/packages/demo/delete",
    "/pypi/demo/json",
    "/pypi/demo/1.0/json",
    "/users/",
    "/users/dev",
    "/users/new",
    "/users/dev/delete",
    "/account",
    "/login",
    "/ping",
    "/static/style.css",
]


def test_head_on_every_get_route_matches_get_without_a_body(testapp, world):
    log_in(testapp)
    for path in GET_ROUTES:
        get = testapp.get(path, headers=BROWSER)
        head = testapp.head(path, headers=BROWSER)
        assert head.status_int == get.status_int == 200, path
        assert head.body == b"", path
        assert head.content_type == get.content_type, path


# --- malformed conditional, negotiation and range headers ----------------------------------------


@pytest.mark.parametrize(
    ("headers", "statuses"),
    [
        ({"Accept": "garbage;;q=x"}, (200,)),  # an unparsable Accept is treated as absent
        ({"Accept": "*/*;q=abc"}, (200, 406)),
        ({"Accept": "text/html;q=2"}, (200, 406)),
        ({"Accept-Encoding": "gzip;q=foo"}, (200,)),
        ({"Accept-Encoding": ";;;"}, (200,)),
        ({"If-None-Match": '"unterminated'}, (200,)),
        ({"If-None-Match": ",,,"}, (200,)),
        ({"If-Modified-Since": "yesterday"}, (200,)),
        ({"If-Modified-Since": "Mon, 99 Foo 9999 99:99:99 GMT"}, (200,)),
    ],
)
def test_malformed_negotiation_headers_on_the_index(testapp, world, auth, headers, statuses):
    response = testapp.get("/simple/demo/", headers={**auth("admin"), **headers}, status="*")
    assert response.status_int in statuses, response.status
    if response.status_int == 406:
        refused(response, 406, "Not Acceptable")


@pytest.mark.parametrize(
    ("range_header", "status"),
    [
        ("bytes=abc", 200),
        ("bytes=100-50", 200),
        ("bytes=0-1,2-3", 200),
        ("items=0-1", 200),
        ("bytes=999999999-", 416),
        ("bytes=0-3", 206),
    ],
)
def test_malformed_ranges_on_a_download(testapp, world, auth, range_header, status):
    path = "/packages/demo/1.0/demo-1.0-py3-none-any.whl"
    full = testapp.get(path, headers=auth("admin")).body
    response = testapp.get(
        path, headers={**auth("admin"), "Range": range_header, "If-Range": "garbage"}, status="*"
    )
    if response.status_int == 200:
        assert response.body == full
    else:
        assert response.status_int == status, response.status
        if status == 206:
            assert response.body == full[:4]


# --- uploads: malformed multipart bodies store nothing ------------------------------------------


def multipart(*parts: tuple[bytes, bytes], boundary: bytes = b"x", end: bool = True) -> bytes:
    """Raw multipart parts, (Content-Disposition parameters, value)."""
    body = b"".join(
        b"--"
        + boundary
        + b"\r\nContent-Disposition: form-data; "
        + params
        + b"\r\n\r\n"
        + value
        + b"\r\n"
        for params, value in parts
    )
    return body + (b"--" + boundary + b"--\r\n" if end else b"")


ACTION = (b'name=":action"', b"file_upload")


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"garbage", "Malformed or oversized multipart/form-data body"),
        (multipart(ACTION, (b'name="content"', b"not a file")), "Missing file"),
        (multipart(ACTION), "Missing file"),
        (multipart(ACTION, end=False)[:-20], "Malformed or oversized multipart/form-data"),
        (
            multipart(
                ACTION,
                (b'name="name"', b"\xff\xfe"),
                (b'name="content"; filename="a-1.0.tar.gz"', b"x"),
            ),
            "Form field 'name' is not valid UTF-8 text",
        ),
        (
            multipart(ACTION, (b'name="content"; filename="../../a-1.0.tar.gz"', b"x")),
            "no path separators",
        ),
        (
            multipart(ACTION, (b'name="content"; filename="a-1.0.tar.gz\x01"', b"x")),
            "control characters",
        ),
        (
            multipart(
                ACTION,
                (b'name="name"', b"a" * 300_000),
                (b'name="content"; filename="a-1.0.tar.gz"', b"x"),
            ),
            "Missing version",
        ),
    ],
)
def test_malformed_upload_bodies_are_400_and_store_nothing(
    testapp, world, auth, engine, base_settings, body, reason
):
    before = stored_files(base_settings["extrapypi.storage.path"])
    response = raw_post(
        testapp, "/legacy/", body, "multipart/form-data; boundary=x", auth("dev"), status=400
    )
    refused(response, 400, reason)
    assert count(engine, Package) == 1 and count(engine, File) == 1
    assert stored_files(base_settings["extrapypi.storage.path"]) == before


@pytest.mark.parametrize(
    "content_type", ["application/json", "text/plain", FORM, "application/octet-stream"]
)
def test_upload_in_a_wrong_content_type_is_400(testapp, world, auth, engine, content_type):
    response = raw_post(
        testapp, "/legacy/", b":action=file_upload&content=x", content_type, auth("dev")
    )
    assert response.status_int == 400, response.status
    assert "Missing file" in response.status or "Unknown or missing :action" in response.status
    assert count(engine, Package) == 1


def test_upload_with_content_length_over_the_limit_is_refused_before_reading(
    testapp, world, auth, engine
):
    response = testapp.request(
        "/legacy/",
        method="POST",
        body=b"--x--\r\n",
        headers={**auth("dev"), "Content-Length": str(10 * 1024**3)},
        content_type="multipart/form-data; boundary=x",
        status=400,
    )
    refused(response, 400, "File too large")
    assert count(engine, Package) == 1


def test_upload_with_duplicated_fields_takes_the_first_and_checks_the_file(
    testapp, world, auth, engine
):
    from dists import wheel_bytes

    filename, content, _ = wheel_bytes("dup", "1.0")
    response = testapp.post(
        "/legacy/",
        [
            (":action", "file_upload"),
            ("name", "dup"),
            ("name", "other"),
            ("version", "1.0"),
            ("version", "9.9"),
            ("filetype", "bdist_wheel"),
            ("pyversion", "py3"),
            ("metadata_version", "2.1"),
            ("sha256_digest", hashlib.sha256(content).hexdigest()),
            ("sha256_digest", "0" * 64),
        ],
        upload_files=[("content", filename, content)],
        headers=auth("dev"),
        status=200,
    )
    assert filename in response.text
    # a second file part is never stored beside the first
    response = testapp.post(
        "/legacy/",
        [(":action", "file_upload"), ("name", "dup"), ("version", "2.0")],
        upload_files=[("content", filename, content), ("content", "dup-2.0.tar.gz", b"x")],
        headers=auth("dev"),
        status=400,
    )
    with engine.connect() as connection:
        names = connection.execute(sa.select(Package.name)).scalars().all()
    assert sorted(names) == ["demo", "dup"]
    assert count(engine, File) == 2


# --- dashboard forms and login with absurd input ------------------------------------------------


@pytest.mark.parametrize(
    "fields",
    [
        {},
        {"username": "x" * 100_000, "password": "y"},
        {"username": "admin", "password": "x" * 100_000},
        {"username": ["admin", "dev"], "password": ["a", "b"]},
        {"username": "admin' OR '1'='1", "password": "' OR '1'='1"},
        {"username": "ädmin", "password": "pässword"},
    ],
)
def test_login_with_absurd_input_is_400_wrong_credentials(testapp, world, fields):
    token = csrf_token(testapp.get("/login"))
    response = testapp.post("/login", {"csrf_token": token, **fields}, status=400)
    assert "Wrong username or password." in response.text
    testapp.get("/account", headers=BROWSER, status=302)


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({}, "username"),
        (
            {
                "username": "\x00bad",
                "password": "abcdef",
                "confirmation": "abcdef",
                "role": "installer",
            },
            "username",
        ),
        (
            {"username": "ok", "password": "abcdef", "confirmation": "abcdef", "role": "emperor"},
            "role",
        ),
        (
            {
                "username": "u" * 5000,
                "password": "abcdef",
                "confirmation": "abcdef",
                "role": "installer",
            },
            "username",
        ),
        (
            {
                "username": "ok",
                "password": "p" * 500,
                "confirmation": "p" * 500,
                "role": "installer",
            },
            "password",
        ),
    ],
)
def test_new_user_form_with_bad_fields_is_400_and_creates_nobody(
    testapp, world, engine, fields, reason
):
    token = log_in(testapp)
    response = testapp.post("/users/new", {"csrf_token": token, **fields}, status=400)
    assert reason in response.text.lower()
    assert count(engine, User) == 2


def test_account_form_with_bad_fields_is_400(testapp, world, engine):
    token = log_in(testapp)
    for fields in (
        {"action": "email", "email": "x" * 10_000},
        {"action": "email", "email": "not an\x00 email"},
        {"action": "password"},
        {"action": "password", "current": "nope", "password": "abc", "confirmation": "abc"},
    ):
        testapp.post("/account", {"csrf_token": token, **fields}, status=400)
    with engine.connect() as connection:
        emails = connection.execute(sa.select(User.email)).scalars().all()
    assert all(len(e or "") < 300 for e in emails)


# --- NUL: never legitimate text, and PostgreSQL refuses it in any parameter ---------------------


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/packages/?q=a%00b", "q"),
        ("/packages/?sort=%00", "sort"),
        ("/simple/?format=%00", "format"),
        ("/login?came_from=/%00", "came_from"),
    ],
)
def test_nul_in_a_query_string_is_400(testapp, world, auth, path, field):
    response = testapp.get(path, headers=auth("admin"), status=400)
    refused(response, 400, "NUL character", repr(field))


@pytest.mark.parametrize(
    ("path", "fields"),
    [
        ("/login", {"username": "\x00", "password": "\x00"}),
        ("/account", {"action": "email", "email": "a\x00@example.com"}),
        ("/packages/demo/maintainers", {"username": "de\x00v", "action": "add"}),
        ("/packages/demo/1.0/set-yanked", {"reason": "r\x00"}),
        ("/users/new", {"username": "n\x00", "password": "abcdef", "role": "installer"}),
        ("/users/dev", {"action": "password", "password": "ab\x00cd", "confirmation": "ab\x00cd"}),
    ],
)
def test_nul_in_a_dashboard_form_is_400_and_changes_nothing(testapp, world, engine, path, fields):
    token = log_in(testapp) if path != "/login" else csrf_token(testapp.get("/login"))
    response = testapp.post(path, {"csrf_token": token, **fields}, status=400)
    refused(response, 400, "NUL character")
    with engine.connect() as connection:
        yanked = connection.execute(sa.select(Release.yanked)).scalar()
    assert count(engine, User) == 2 and yanked is False


def test_nul_in_upload_metadata_or_yank_reason_is_400_and_stores_nothing(
    testapp, world, auth, engine, base_settings
):
    from dists import wheel_bytes

    before = stored_files(base_settings["extrapypi.storage.path"])
    filename, content, _ = wheel_bytes("nul", "1.0")
    response = testapp.post(
        "/legacy/",
        {":action": "file_upload", "name": "nul", "version": "1.0", "summary": "a\x00b"},
        upload_files=[("content", filename, content)],
        headers=auth("dev"),
        status=400,
    )
    refused(response, 400, "NUL character", "'summary'")
    response = testapp.post(
        "/packages/demo/1.0/yank", {"reason": "\x00"}, headers=auth("admin"), status=400
    )
    refused(response, 400, "NUL character", "'reason'")
    assert count(engine, Package) == 1 and count(engine, File) == 1
    assert stored_files(base_settings["extrapypi.storage.path"]) == before


@pytest.mark.parametrize(
    "path", ["/login?came_from={}", "/packages/?q={}", "/packages/?sort={}", "/packages/?page={}"]
)
def test_reflected_input_is_escaped_in_pages(testapp, world, auth, path):
    script = "%22%3E%3Cscript%3Ealert(1)%3C/script%3E"
    response = testapp.get(path.format(script), headers={**auth("admin"), **BROWSER})
    assert "<script>alert" not in response.text


@pytest.mark.parametrize(
    "path",
    [
        "/pypi/demo/",
        "/pypi/demo/1.0/",
        "/simple/demo/json",
        "/packages/demo/json",
        "/packages/demo/1.0/json",
        "/pypi/demo/1.0/demo-1.0-py3-none-any.whl",
    ],
)
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_a_view_of_another_tree_is_404_not_400(testapp, world, auth, path, method):
    # Views for this kind of resource exist under another container only: no such page here.
    response = testapp.request(path, method=method, headers=auth("admin"), status=404)
    refused(response, 404, "Not Found")


# --- the pages merged later: teams, namespaces, status, webhooks, retention, audit, metrics -----


@pytest.fixture
def merged(world):
    """``world`` plus a team (admin a member, a namespace) and a webhook endpoint."""
    from extrapypi.services import accounts, namespaces, teams, webhooks

    tm, dbsession = world.session()
    with tm:
        team = teams.create_team(dbsession, "core", None)
        teams.add_member(dbsession, team, accounts.get_user(dbsession, "admin"), None)
        namespaces.grant(dbsession, "reserved", team, None)
        hook = webhooks.create_endpoint(dbsession, "https://hooks.example/x").id
    return hook


MERGED_GET_ROUTES = [
    "/teams/",
    "/teams/core",
    "/webhooks/",
    "/webhooks/{hook}",
    "/packages/demo/retention",
    "/metrics",
    "/namespaces",
    "/namespace/reserved",
    "/audit/?user=admin&package=demo&action=add+file&since=2020-01-01&until=2999-12-31",
    "/setup/",
]
#: Every state-changing form of those pages, with fields that succeed with the right token.
MERGED_FORMS = [
    ("/teams/@@new", {"name": "evil"}),
    ("/teams/@@namespaces", {"action": "grant", "owner": "team:core", "namespace": "evil"}),
    ("/teams/@@namespaces", {"action": "revoke", "namespace": "reserved"}),
    ("/teams/core", {"action": "add-member", "username": "dev"}),
    ("/teams/core", {"action": "remove-member", "username": "admin"}),
    ("/teams/core", {"action": "delete"}),
    ("/webhooks/", {"url": "https://evil.example/", "events": "upload"}),
    ("/webhooks/{hook}/delete", {}),
    ("/packages/demo/retention", {"keep_last": "1", "prerelease_days": ""}),
    ("/packages/demo/status", {"status": "archived", "reason": "x"}),
    ("/packages/demo/quarantine", {"status": "quarantined", "reason": "x"}),
    ("/packages/demo/team-maintainers", {"team": "core", "action": "add"}),
]
MERGED_FORM_IDS = [f"{path}:{fields.get('action', '')}" for path, fields in MERGED_FORMS]


def merged_state(engine) -> tuple:
    """What any of those forms changes: each records a journal entry, plus the rows themselves."""
    from extrapypi.models import (
        JournalEntry,
        Namespace,
        RetentionRule,
        Team,
        WebhookEndpoint,
    )
    from extrapypi.models.team import package_team_maintainers, team_members

    with engine.connect() as connection:
        statuses = connection.execute(sa.select(Package.status)).scalars().all()
        tables = (team_members, package_team_maintainers)
        rows = [
            connection.execute(sa.select(sa.func.count()).select_from(t)).scalar() for t in tables
        ]
    models = (JournalEntry, Team, Namespace, WebhookEndpoint, RetentionRule, User, File)
    return (*(count(engine, model) for model in models), *rows, tuple(statuses))


def test_head_on_the_merged_get_routes_matches_get(testapp, merged):
    log_in(testapp)
    for path in MERGED_GET_ROUTES:
        path = path.format(hook=merged)
        get = testapp.get(path, headers=BROWSER)
        head = testapp.head(path, headers=BROWSER)
        assert head.status_int == get.status_int == 200, path
        assert head.body == b"", path
        assert head.content_type == get.content_type, path


@pytest.mark.parametrize("token", [None, "", "wrong"])
@pytest.mark.parametrize(("path", "fields"), MERGED_FORMS, ids=MERGED_FORM_IDS)
def test_merged_forms_without_the_right_csrf_token_change_nothing(
    testapp, merged, engine, path, fields, token
):
    path = path.format(hook=merged)
    log_in(testapp)
    before = merged_state(engine)
    sent = fields if token is None else {**fields, "csrf_token": token}
    response = testapp.post(path, sent, status=400)
    refused(response, 400, "CSRF token is missing or out of date")
    assert merged_state(engine) == before


@pytest.mark.parametrize(("path", "fields"), MERGED_FORMS, ids=MERGED_FORM_IDS)
def test_merged_forms_with_the_right_token_do_change_something(
    testapp, merged, engine, path, fields
):
    # The control for the test above: these very fields, with the token, are a change.
    path = path.format(hook=merged)
    token = log_in(testapp)
    before = merged_state(engine)
    response = testapp.post(path, {**fields, "csrf_token": token}, status="*")
    assert response.status_int in (201, 303), response.status
    assert merged_state(engine) != before


@pytest.mark.parametrize(("path", "fields"), MERGED_FORMS, ids=MERGED_FORM_IDS)
@pytest.mark.parametrize("who", ["dev", None])
def test_merged_forms_refuse_other_roles_and_change_nothing(
    testapp, merged, engine, auth, path, fields, who
):
    # A developer who maintains nothing, or nobody: 403 (or the login challenge), nothing changed.
    path = path.format(hook=merged)
    before = merged_state(engine)
    headers = auth(who) if who else {}
    response = testapp.post(path, fields, headers=headers, status="*")
    assert response.status_int == (403 if who else 401), response.status
    assert merged_state(engine) == before


HOSTILE_VALUES = [
    "x" * 100_000,
    "é" * 300,
    "\u202e\ufeff",
    "99999999999999999999999999",
    "-1",
    "\u00b2",  # a digit to str.isdigit, not to int()
    "\r\nX-Injected: 1",
    "<script>alert(1)</script>",
    "team:",
    "../../etc",
]


@pytest.mark.parametrize(("path", "fields"), MERGED_FORMS, ids=MERGED_FORM_IDS)
def test_merged_forms_with_hostile_fields_never_5xx(testapp, merged, engine, path, fields):
    path = path.format(hook=merged)
    token = log_in(testapp)
    response = testapp.post(path, {**fields, "csrf_token": token, "x": "\x00"}, status=400)
    refused(response, 400, "NUL character")
    for name in [n for n in fields if n != "action"] or ["extra"]:
        for value in HOSTILE_VALUES:
            sent = {**fields, name: value, "csrf_token": token}
            response = testapp.post(path, sent, headers=BROWSER, status="*")
            assert response.status_int in (201, 303, 400, 404), (name, value[:20], response.status)
            assert "<script>alert" not in response.text
            for _header, header_value in response.headerlist:
                assert "\n" not in header_value and "X-Injected" not in header_value


@pytest.mark.parametrize(
    "query",
    [
        "until=9999-12-31",  # the day after it is past date.max
        "since=0001-01-01&until=0001-01-01",
        "since=9999-12-31&until=0001-01-01",
        "page=99999999999999999999999",
        "page=-5",
        "since=2020-02-30&until=not-a-date",
        "user=" + "x" * 5000,
        "package=%22%3E%3Cscript%3Ealert(1)%3C/script%3E",
        "action=%E2%80%AE%3Cscript%3Ealert(1)%3C/script%3E",
    ],
)
def test_audit_log_with_hostile_filters_is_a_page(testapp, merged, auth, query):
    response = testapp.get(f"/audit/?{query}", headers={**auth("admin"), **BROWSER}, status=200)
    assert "<script>alert" not in response.text


@pytest.mark.parametrize(
    "path",
    [
        "/webhooks/99999999999999999999999",  # past an INTEGER column (PostgreSQL: an error)
        "/webhooks/2147483648",
        "/webhooks/-1",
        "/webhooks/0",
        "/webhooks/%C2%B2",
        "/webhooks/%D9%A1%D9%A2%D9%A3",
        "/teams/" + "a" * 5000,
        "/teams/%C3%A9",
        "/namespace/a/b",
        "/namespace/%C3%A9",
        "/metrics/x",
    ],
)
def test_merged_lookups_of_odd_names_are_404(testapp, merged, auth, path):
    refused(testapp.get(path, headers=auth("admin"), status=404), 404, "Not Found")


def test_retention_numbers_are_ascii_digits(testapp, merged, engine):
    from extrapypi.models import RetentionRule

    token = log_in(testapp)
    for value in ("\u00b2", "\u0661\u0662", "1_0", " 1 2 "):
        response = testapp.post(
            "/packages/demo/retention", {"keep_last": value, "csrf_token": token}, status=400
        )
        assert "must be a whole number" in response.text
    assert count(engine, RetentionRule) == 0


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("GET", "/teams/new", "POST"),
        ("GET", "/teams/namespaces", "POST"),
        ("PUT", "/teams/core", "GET, HEAD, POST"),
        ("DELETE", "/webhooks/", "GET, HEAD, POST"),
        ("GET", "/packages/demo/status", "POST"),
        ("GET", "/packages/demo/quarantine", "POST"),
        ("GET", "/packages/demo/team-maintainers", "POST"),
        ("PATCH", "/packages/demo/retention", "GET, HEAD, POST"),
        ("POST", "/metrics", "GET, HEAD"),
        ("POST", "/namespaces", "GET, HEAD"),
        ("DELETE", "/namespace/reserved", "GET, HEAD"),
        ("POST", "/audit/", "GET, HEAD"),
        ("POST", "/setup/", "GET, HEAD"),
    ],
)
def test_merged_pages_answer_405_with_allow(testapp, merged, auth, method, path, allowed):
    response = testapp.request(path, method=method, headers=auth("admin"), status=405)
    assert response.headers["Allow"] == allowed
    refused(response, 405, f"{method} is not answered here", allowed)


def test_removing_a_webhook_with_a_long_url_fits_the_session_cookie(testapp, world, engine):
    # The flash message rides in the session cookie: 2,000 "é" once made it 16 KB (a 500).
    from extrapypi.models import WebhookEndpoint
    from extrapypi.services import webhooks

    url = "https://hooks.example/" + "\u00e9" * 2000
    tm, dbsession = world.session()
    with tm:
        hook = webhooks.create_endpoint(dbsession, url).id
    token = log_in(testapp)
    response = testapp.post(f"/webhooks/{hook}/delete", {"csrf_token": token}, status=303)
    assert count(engine, WebhookEndpoint) == 0
    page = response.follow(headers=BROWSER)
    assert "Removed the webhook to https://hooks.example/" + "\u00e9" * 178 + "…" in page.text
