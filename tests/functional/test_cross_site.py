"""Endpoints that accept HTTP Basic refuse what a browser sends for another site (issue 10 item 1).

Each browser header case is refused with 403 and the reason, with no Basic challenge (a browser
would replay a saved password after one), before the body is read; requests as twine, uv, poetry
and curl send them (no ``Origin``, no ``Sec-Fetch-*``) keep working.
"""

import io

import pytest
import sqlalchemy as sa
import webob
from dists import wheel_bytes
from test_upload import assert_nothing_stored, post

from extrapypi.cross_site import OPTION
from extrapypi.models import Release
from extrapypi.permissions import Role

OTHER_SITE = [
    {"Origin": "http://evil.example"},
    {"Origin": "null"},
    {"Origin": "https://example.com"},  # another scheme is another origin
    {"Origin": "http://example.com:8080"},
    {"Origin": "http://example.com.evil.example"},
    {"Sec-Fetch-Site": "cross-site"},
    {"Sec-Fetch-Site": "same-site"},
    {"Sec-Fetch-Site": "same-site", "Sec-Fetch-Mode": "cors", "Origin": "http://example.com"},
    {"Sec-Fetch-Mode": "navigate", "Sec-Fetch-Site": "same-origin"},
    {"Origin": "http://example.com", "Sec-Fetch-Mode": "navigate"},
]
#: What a script on this very site would send (fetch from our own origin): not refused.
SAME_ORIGIN = [
    {"Origin": "http://example.com"},
    {"Origin": "HTTP://Example.COM:80"},
    {"Origin": "http://example.com", "Sec-Fetch-Site": "same-origin", "Sec-Fetch-Mode": "cors"},
    {"Sec-Fetch-Site": "none", "Sec-Fetch-Mode": "no-cors"},
]


@pytest.fixture
def storage_root(base_settings):
    return base_settings["extrapypi.storage.path"]


@pytest.fixture
def owner(data):
    data.user("owner", Role.ADMIN)
    return "owner"


@pytest.fixture
def release(data, owner):
    data.release_file("victim", "1.0", uploader=owner)
    return "/packages/victim/1.0"


def yanked(engine) -> bool:
    """Whether victim 1.0 (the first release) is yanked."""
    with engine.connect() as connection:
        return connection.execute(sa.select(Release.yanked).order_by(Release.id)).first()[0]


def assert_refused_without_challenge(response):
    assert response.status_int == 403, response.status
    assert "browser" in response.status and "not for web pages" in response.status
    assert "browser" in response.text
    assert "WWW-Authenticate" not in response.headers


@pytest.mark.parametrize("browser_headers", OTHER_SITE)
@pytest.mark.parametrize("authenticated", [True, False])
def test_upload_from_another_site_is_refused(
    testapp, owner, auth, engine, storage_root, browser_headers, authenticated
):
    headers = {**browser_headers, **(auth(owner) if authenticated else {})}
    response = post(testapp, wheel_bytes("evil", "1.0"), headers, status=403)
    assert_refused_without_challenge(response)
    assert_nothing_stored(engine, storage_root)


@pytest.mark.parametrize("action", ["yank", "unyank"])
@pytest.mark.parametrize("browser_headers", OTHER_SITE)
@pytest.mark.parametrize("authenticated", [True, False])
def test_yank_api_from_another_site_is_refused(
    testapp, release, owner, auth, engine, browser_headers, authenticated, action
):
    if action == "unyank":
        testapp.post(f"{release}/yank", headers=auth(owner), status=200)
    headers = {**browser_headers, **(auth(owner) if authenticated else {})}
    response = testapp.post(f"{release}/{action}", {"reason": "pwned"}, headers=headers, status=403)
    assert_refused_without_challenge(response)
    assert yanked(engine) is (action == "unyank")  # unchanged


@pytest.mark.parametrize("browser_headers", SAME_ORIGIN)
def test_same_origin_requests_still_upload(testapp, owner, auth, engine, browser_headers):
    response = post(testapp, wheel_bytes("mine", "1.0"), {**browser_headers, **auth(owner)})
    assert response.status_int == 200
    assert "OK: mine-1.0-py3-none-any.whl uploaded" in response.text


def test_requests_like_twine_and_curl_upload_and_yank(testapp, release, owner, auth, engine):
    # twine: a multipart POST with Basic credentials, a User-Agent, nothing a browser adds.
    twine = {**auth(owner), "User-Agent": "twine/6.1.0 CPython/3.11"}
    response = post(testapp, wheel_bytes("tool", "1.0"), twine)
    assert "OK: tool-1.0-py3-none-any.whl uploaded" in response.text
    curl = {**auth(owner), "User-Agent": "curl/8.5.0", "Accept": "*/*"}
    yanked_now = testapp.post(f"{release}/yank", {"reason": "broken"}, headers=curl).json
    assert yanked_now["yanked"] is True and yanked_now["yanked_reason"] == "broken"
    assert testapp.post(f"{release}/unyank", headers=curl).json["yanked"] is False
    assert yanked(engine) is False


def test_anonymous_programs_still_get_the_basic_challenge(testapp, engine, storage_root):
    response = post(testapp, wheel_bytes("anon", "1.0"), {}, status=401)
    assert response.headers["WWW-Authenticate"] == 'Basic realm="extrapypi"'
    assert_nothing_stored(engine, storage_root)


@pytest.mark.parametrize(
    "path", ["/legacy/x", "/packages/nosuch/1.0/yank", "/users/new", "/packages/nosuch/"]
)
def test_anonymous_browser_posts_anywhere_get_no_challenge(testapp, path):
    """Nowhere does a browser's POST meet the challenge that makes it replay a saved password."""
    for headers in ({"Origin": "http://evil.example"}, {"Sec-Fetch-Mode": "navigate"}):
        response = testapp.post(path, {"a": "b"}, headers=headers, status=403)
        assert "WWW-Authenticate" not in response.headers
        assert response.text.strip()


class WatchedBody(io.RawIOBase):
    """A request body that counts how often anything reads it."""

    def __init__(self, size: int):
        self.size = self.left = size
        self.reads = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        self.reads += 1
        count = min(len(buffer), self.left)
        buffer[:count] = b"x" * count
        self.left -= count
        return count


def send_watched(app, path: str, headers: dict) -> tuple[webob.Response, WatchedBody]:
    body = WatchedBody(200_000)
    request = webob.Request.blank(
        path,
        method="POST",
        headers=headers,
        environ={
            "HTTP_HOST": "example.com",
            "wsgi.input": body,
            "CONTENT_LENGTH": str(body.size),
            "CONTENT_TYPE": "multipart/form-data; boundary=xyz",
        },
    )
    return request.get_response(app), body


@pytest.mark.parametrize("path", ["/legacy/", "/packages/victim/1.0/yank"])
def test_refused_before_the_body_is_read(app, release, owner, auth, path):
    response, body = send_watched(app, path, {"Origin": "http://evil.example", **auth(owner)})
    assert response.status_int == 403
    assert body.reads == 0
    # The control: without the browser's header the same request does read its body.
    response, body = send_watched(app, path, auth(owner))
    assert response.status_int != 403
    assert body.reads > 0


def test_every_basic_accepting_state_change_opts_in(app):
    """A view exempt from CSRF that takes a POST must refuse other sites (one word to add)."""
    exempt = []
    for item in app.registry.introspector.get_category("views"):
        view = item["introspectable"]
        if view["exception_only"]:
            continue
        methods = view["request_methods"]
        methods = {methods} if isinstance(methods, str) else set(methods or ())
        if view.get("require_csrf") is False and (not methods or methods & {"POST", "PUT"}):
            exempt.append((view["context"], view["name"], bool(view.get(OPTION))))
    assert len(exempt) >= 5  # the three upload URLs, yank and unyank
    assert all(opted_in for _, _, opted_in in exempt), exempt
