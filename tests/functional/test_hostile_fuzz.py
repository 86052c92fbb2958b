"""Generated paths, headers and form fields against the app: never a 5xx, never a header that
carries raw input across a line break.

Bounded and derandomized (same examples on every run) so it stays fast and stable in CI.
"""

import base64
import string

import pytest
import webtest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from extrapypi.permissions import Role

FUZZ = settings(
    max_examples=400,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
PREFIXES = [
    "/",
    "/simple/",
    "/simple/demo/",
    "/packages/",
    "/packages/demo/",
    "/packages/demo/1.0/",
    "/pypi/demo/",
    "/users/",
    "/login",
    "/account",
    "/legacy/",
    "/static/",
    # merged later: teams, namespaces, status, webhooks, retention, audit, metrics, setup
    "/teams/",
    "/teams/core/",
    "/webhooks/",
    "/webhooks/1/",
    "/namespaces",
    "/namespace/",
    "/metrics",
    "/audit/",
    "/setup/",
    "/packages/demo/retention",
    "/packages/demo/status",
]
#: Bytes a client may put in a path, percent-encoded or not (WSGI hands them over as latin-1).
SEGMENT = st.lists(
    st.one_of(
        st.sampled_from(["..", ".", "@@", "%00", "%2F", "%0d%0a", "%ff", "%C3%A9", "json", "1.0"]),
        st.text(string.ascii_letters + string.digits + "-_.~!$&'()*+,;=:@%", max_size=12),
        st.binary(max_size=6).map(lambda b: "".join(f"%{c:02X}" for c in b)),
    ),
    max_size=4,
).map("/".join)
QUERY = st.lists(
    st.tuples(
        st.sampled_from(
            [
                *("format", "q", "page", "sort", "came_from", "%zz", "x"),
                *("user", "package", "action", "since", "until"),  # the audit log's filters
            ]
        ),
        st.text(string.printable, max_size=20),
    ),
    max_size=3,
).map(lambda pairs: "&".join(f"{k}={v.replace('&', '%26').replace('#', '')}" for k, v in pairs))
HEADER_VALUE = st.text(
    st.characters(min_codepoint=32, max_codepoint=255, blacklist_characters="\x7f"),
    max_size=80,
)
HEADERS = st.dictionaries(
    st.sampled_from(
        [
            "Accept",
            "Accept-Encoding",
            "If-None-Match",
            "If-Modified-Since",
            "Range",
            "If-Range",
            "Cookie",
            "Authorization",
            "Content-Type",
            "Origin",
            "Referer",
        ]
    ),
    HEADER_VALUE,
    max_size=4,
)


@pytest.fixture
def client(app, data):
    from extrapypi.services import teams, webhooks

    data.user("admin", Role.ADMIN)
    data.release_file("demo", "1.0")
    tm, dbsession = data.session()
    with tm:
        teams.create_team(dbsession, "core", None)
        webhooks.create_endpoint(dbsession, "https://hooks.example/x")
    return webtest.TestApp(app, extra_environ={"HTTP_HOST": "example.com"})


def send(client, url: str, **kwargs):
    """One request as a fresh client (WebTest's cookie jar cannot look at undecodable URLs)."""
    client.reset()
    return client.request(url, status="*", expect_errors=True, **kwargs)


def assert_sane(response) -> None:
    assert response.status_int < 500, response.status
    if 400 <= response.status_int < 500 and response.request.method != "HEAD":
        assert response.body.strip(), response.status  # a refusal says why
    assert "\r" not in response.status and "\n" not in response.status
    for name, value in response.headerlist:
        assert "\r" not in value and "\n" not in value, (name, value)
    if response.status_int in (301, 302, 303, 307, 308):
        location = response.headers["Location"]
        # never another host (WebTest's request() sends Host: localhost)
        assert location.startswith(("http://example.com/", "http://localhost/")), location


def authorization() -> dict[str, str]:
    token = base64.b64encode(b"admin:correct horse").decode()
    return {"Authorization": f"Basic {token}"}


@FUZZ
@given(
    prefix=st.sampled_from(PREFIXES),
    path=SEGMENT,
    query=QUERY,
    method=st.sampled_from(["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS"]),
    authenticated=st.booleans(),
)
def test_generated_paths_never_5xx(client, prefix, path, query, method, authenticated):
    url = prefix + path + ("?" + query if query else "")
    headers = authorization() if authenticated else {}
    response = send(client, url, method=method, headers=headers)
    assert_sane(response)


@FUZZ
@given(
    path=st.sampled_from(
        ["/simple/", "/simple/demo/", "/packages/demo/1.0/demo-1.0-py3-none-any.whl", "/login"]
    ),
    headers=HEADERS,
    method=st.sampled_from(["GET", "HEAD", "POST"]),
)
def test_generated_headers_never_5xx(client, path, headers, method):
    headers = {**authorization(), **headers}
    response = send(client, path, method=method, headers=headers, body=b"")
    assert_sane(response)


FIELD = st.one_of(
    st.text(max_size=40),
    st.text(string.printable, max_size=2000),
    st.sampled_from(["file_upload", "submit", "doc_upload", "1", "add", "remove", "unyank"]),
)


@FUZZ
@given(
    path=st.sampled_from(
        ["/legacy/", "/login", "/users/new", "/packages/demo/maintainers", "/account", "/"]
    ),
    fields=st.lists(
        st.tuples(
            st.sampled_from(
                [
                    ":action",
                    "name",
                    "version",
                    "content",
                    "filetype",
                    "username",
                    "password",
                    "csrf_token",
                    "action",
                    "came_from",
                    "sha256_digest",
                ]
            ),
            FIELD,
        ),
        max_size=8,
    ),
    multipart=st.booleans(),
)
def test_generated_form_fields_never_5xx(client, engine, path, fields, multipart):
    from extrapypi.models import Package

    kwargs = {"content_type": "multipart/form-data"} if multipart else {}
    client.reset()
    response = client.post(
        path, fields, headers=authorization(), status="*", expect_errors=True, **kwargs
    )
    assert_sane(response)
    import sqlalchemy as sa

    with engine.connect() as connection:
        names = connection.execute(sa.select(Package.name)).scalars().all()
    assert names == ["demo"]  # no upload of text fields ever creates a package


#: The forms of the pages merged later, posted by a logged-in admin with the right token, so
#: the fields reach the views and services (without it the CSRF check answers first).
MERGED_FORMS = [
    "/teams/@@new",
    "/teams/@@namespaces",
    "/teams/core/",
    "/webhooks/",
    "/packages/demo/retention",
    "/packages/demo/status",
    "/packages/demo/quarantine",
    "/packages/demo/team-maintainers",
]
MERGED_FIELD_NAMES = [
    "name",
    "action",
    "owner",
    "namespace",
    "username",
    "url",
    "package",
    "events",
    "keep_last",
    "prerelease_days",
    "status",
    "reason",
    "team",
]
MERGED_FIELD = st.one_of(
    FIELD,
    st.sampled_from(
        [
            *("grant", "revoke", "add-member", "remove-member", "delete", "team:core", "admin"),
            *("core", "demo", "https://hooks.example/y", "upload", "archived", "quarantined"),
        ]
    ),
)


@settings(FUZZ, max_examples=150)
@given(
    path=st.sampled_from(MERGED_FORMS),
    fields=st.lists(st.tuples(st.sampled_from(MERGED_FIELD_NAMES), MERGED_FIELD), max_size=6),
)
def test_generated_fields_on_the_merged_forms_never_5xx(client, path, fields):
    import re

    client.reset()
    page = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    form = {"username": "admin", "password": "correct horse", "csrf_token": token}
    client.post("/login", form, status=303)
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/account").text).group(1)
    response = client.post(path, [*fields, ("csrf_token", token)], status="*", expect_errors=True)
    assert_sane(response)
