"""The simple API (PEP 503/629/691/700/658/592) as pip and uv see it, rule by rule."""

import gzip
import hashlib
import json
import re

import pytest
from webob import Request

from extrapypi.permissions import Role

JSON = "application/vnd.pypi.simple.v1+json"
V1_HTML = "application/vnd.pypi.simple.v1+html"
PIP_ACCEPT = f"{JSON}, {V1_HTML}; q=0.1, text/html; q=0.01"


@pytest.fixture
def index(data, auth):
    data.user("reader", Role.INSTALLER)
    data.release_file("Foo_Bar", "1.0", requires_python=">=3.8")
    data.release_file("Foo_Bar", "1.0", kind="sdist", requires_python=">=3.8")
    data.release_file("Foo_Bar", "1.10")
    data.release_file("Foo_Bar", "1.9rc1")
    data.release_file("alpha", "0.1")
    return auth("reader")


def get(testapp, url, headers, accept=None, **kw):
    headers = dict(headers)
    if accept is not None:
        headers["Accept"] = accept
    return testapp.get(url, headers=headers, **kw)


def anchors(body: str) -> list[dict]:
    found = []
    for match in re.finditer(r"<a ([^>]*)>([^<]*)</a>", body):
        attributes = dict(re.findall(r'([\w-]+)="([^"]*)"', match.group(1)))
        attributes["text"] = match.group(2)
        found.append(attributes)
    return found


def test_root_lists_projects_by_normalized_name_in_html(testapp, index):
    response = get(testapp, "/simple/", index)
    assert response.content_type == "text/html"
    assert '<meta name="pypi:repository-version" content="1.4">' in response.text
    links = anchors(response.text)
    assert [(a["href"], a["text"]) for a in links] == [("alpha/", "alpha"), ("foo-bar/", "Foo_Bar")]
    assert response.headers["Vary"] == "Accept, Accept-Encoding"


def test_root_json(testapp, index):
    response = get(testapp, "/simple/", index, accept=JSON)
    assert response.content_type == JSON
    assert response.json == {
        "meta": {"api-version": "1.5"},
        "projects": [{"name": "alpha"}, {"name": "Foo_Bar"}],
    }


def test_project_json_schema_order_and_types(testapp, index):
    response = get(testapp, "/simple/foo-bar/", index, accept=PIP_ACCEPT)
    assert response.content_type == JSON
    page = response.json
    assert page["meta"] == {"api-version": "1.5"}
    assert page["name"] == "foo-bar"
    assert page["project-status"] == {"status": "active"}
    assert page["namespaces"] is None
    assert page["versions"] == ["1.0", "1.9rc1", "1.10"]  # PEP 440 order, not string order
    names = [f["filename"] for f in page["files"]]
    assert names == [
        "foo_bar-1.0-py3-none-any.whl",
        "foo_bar-1.0.tar.gz",
        "foo_bar-1.9rc1-py3-none-any.whl",
        "foo_bar-1.10-py3-none-any.whl",
    ]
    wheel, sdist = page["files"][0], page["files"][1]
    assert set(wheel) == {
        "filename",
        "url",
        "hashes",
        "requires-python",
        "size",
        "upload-time",
        "yanked",
        "core-metadata",
        "dist-info-metadata",
    }
    assert wheel["url"] == "../../packages/foo-bar/1.0/foo_bar-1.0-py3-none-any.whl"
    assert re.fullmatch(r"[0-9a-f]{64}", wheel["hashes"]["sha256"])
    assert wheel["requires-python"] == ">=3.8"
    assert isinstance(wheel["size"], int) and wheel["size"] > 0
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", wheel["upload-time"])
    assert wheel["yanked"] is False
    assert wheel["core-metadata"] == wheel["dist-info-metadata"]
    assert re.fullmatch(r"[0-9a-f]{64}", wheel["core-metadata"]["sha256"])
    assert sdist["core-metadata"] is False and sdist["dist-info-metadata"] is False
    assert page["files"][2]["requires-python"] is None


def test_hashes_and_links_match_the_stored_files(testapp, data, auth):
    data.user("reader")
    stored = data.release_file("demo", "2.0")
    page = get(testapp, "/simple/demo/", auth("reader"), accept=JSON).json
    file = page["files"][0]
    assert file["hashes"]["sha256"] == hashlib.sha256(stored["content"]).hexdigest()
    assert file["size"] == len(stored["content"])
    expected_metadata = hashlib.sha256(stored["metadata"].encode()).hexdigest()
    assert file["core-metadata"] == {"sha256": expected_metadata}
    # the link resolves (relative to the page) to the file itself and its .metadata
    download = testapp.get("/packages/demo/2.0/" + file["filename"], headers=auth("reader"))
    assert download.body == stored["content"]
    metadata = testapp.get(
        "/packages/demo/2.0/" + file["filename"] + ".metadata", headers=auth("reader")
    )
    assert hashlib.sha256(metadata.body).hexdigest() == expected_metadata


def test_project_html_anchors(testapp, data, auth):
    data.user("reader")
    data.release_file("demo", "1.0", requires_python=">=3.8,<4")
    data.release_file("demo", "1.0", kind="sdist", requires_python=">=3.8,<4")
    response = get(testapp, "/simple/demo/", auth("reader"), accept=V1_HTML)
    assert response.content_type == V1_HTML
    assert '<meta name="pypi:repository-version" content="1.4">' in response.text
    assert 'data-requires-python="&gt;=3.8,&lt;4"' in response.text
    wheel, sdist = anchors(response.text)
    assert wheel["text"] == "demo-1.0-py3-none-any.whl"
    assert re.fullmatch(
        r"\.\./\.\./packages/demo/1\.0/demo-1\.0-py3-none-any\.whl#sha256=[0-9a-f]{64}",
        wheel["href"],
    )
    assert re.fullmatch(r"sha256=[0-9a-f]{64}", wheel["data-core-metadata"])
    assert wheel["data-dist-info-metadata"] == wheel["data-core-metadata"]
    assert "data-core-metadata" not in sdist and "data-yanked" not in sdist


def test_yanked_files_carry_the_reason(testapp, data, auth):
    data.user("admin", Role.ADMIN)
    data.release_file("demo", "1.0")
    data.release_file("demo", "2.0")
    data.release_file("demo", "3.0")
    testapp.post("/packages/demo/1.0/yank", {"reason": 'broken <"&>'}, headers=auth("admin"))
    testapp.post("/packages/demo/2.0/yank", headers=auth("admin"))
    page = get(testapp, "/simple/demo/", auth("admin"), accept=JSON).json
    assert [f["yanked"] for f in page["files"]] == ['broken <"&>', True, False]
    html = get(testapp, "/simple/demo/", auth("admin")).text
    links = anchors(html)
    assert 'data-yanked="broken &lt;&quot;&amp;&gt;"' in html
    assert links[1]["data-yanked"] == "" and "data-yanked" not in links[2]


@pytest.mark.parametrize(
    "accept,expected",
    [
        (None, "text/html"),
        ("*/*", "text/html"),
        ("text/html", "text/html"),
        (PIP_ACCEPT, JSON),
        (f"{JSON}; q=0.2, {V1_HTML}; q=0.9", V1_HTML),
        ("application/vnd.pypi.simple.latest+json", JSON),
        ("application/vnd.pypi.simple.latest+html", V1_HTML),
        ("application/*", V1_HTML),
        (f"{JSON}, text/html; q=0", JSON),
    ],
)
def test_content_negotiation(testapp, index, accept, expected):
    for url in ("/simple/", "/simple/alpha/"):
        response = get(testapp, url, index, accept=accept)
        assert response.content_type == expected
        assert "Accept" in response.headers["Vary"]


@pytest.mark.parametrize(
    "accept", ["application/json", "image/png", f"{JSON}; q=0, text/html; q=0, {V1_HTML}; q=0"]
)
def test_nothing_acceptable_is_406(testapp, index, accept):
    for url in ("/simple/", "/simple/alpha/"):
        response = get(testapp, url, index, accept=accept, status=406)
        assert "application/vnd.pypi.simple.v1+json" in response.text
        assert "Accept" in response.headers["Vary"]


def test_format_query_overrides_accept(testapp, index):
    response = get(testapp, f"/simple/alpha/?format={JSON}", index, accept="text/html")
    assert response.content_type == JSON
    response = get(testapp, "/simple/?format=text/html", index, accept=JSON)
    assert response.content_type == "text/html"
    get(testapp, "/simple/?format=application/pdf", index, status=406)


def test_non_normalized_name_redirects_permanently(testapp, index):
    for spelling in ("Foo_Bar", "FOO.bar", "foo__bar"):
        response = get(testapp, f"/simple/{spelling}/", index, status=301)
        assert response.headers["Location"] == "http://example.com/simple/foo-bar/"
    quoted = JSON.replace("+", "%2B")
    response = get(testapp, f"/simple/Foo.Bar/?format={quoted}", index, status=301)
    location = response.headers["Location"]
    assert location.startswith("http://example.com/simple/foo-bar/?format=")
    assert get(testapp, location, index).content_type == JSON


def test_missing_trailing_slash_redirects(testapp, index):
    response = get(testapp, "/simple/alpha", index, status=301)
    assert response.headers["Location"] == "http://example.com/simple/alpha/"
    response = get(testapp, "/simple/Foo_Bar", index, status=301)
    assert response.headers["Location"] == "http://example.com/simple/foo-bar/"
    response = get(testapp, "/simple", index, status=301)
    assert response.headers["Location"] == "http://example.com/simple/"


@pytest.mark.parametrize(
    "path",
    [
        "/simple/nope/",
        "/simple/Nope_Nope/",
        "/simple/foo%0d%0aSet-Cookie:%20x=1/",
        "/simple/foo%0aLocation:%20http:%2f%2fevil/",
        "/simple/%3Cscript%3Ealert(1)%3C%2Fscript%3E/",
        "/simple/alpha/extra/",
        "/simple/-bad-/",
    ],
)
def test_unknown_or_invalid_names_are_404_without_reflection(testapp, index, path):
    response = get(testapp, path, index, status=404)
    assert "Location" not in response.headers
    assert "Set-Cookie" not in response.headers
    assert "<script>" not in response.text and "evil" not in response.text
    for name, value in response.headerlist:
        assert "\r" not in value and "\n" not in value


def test_crlf_in_a_valid_looking_redirect_is_never_reflected(testapp, index):
    # a name that normalizes only after the injected part: refused before any redirect
    response = get(testapp, "/simple/Foo_Bar%0d%0aX-Injected:%201", index, status=404)
    assert "X-Injected" not in response.headers


def test_html_escapes_project_names(testapp, data, auth):
    # valid PEP 508 names cannot hold markup; the renderer escapes whatever it is given anyway
    from extrapypi.services.index import render_html

    page = {"meta": {"api-version": "1.1"}, "projects": [{"name": "<b>", "_normalized": "b"}]}
    assert b"&lt;b&gt;" in render_html(page) and b"<b>" not in render_html(page)


def test_anonymous_is_challenged_and_installer_without_view_cannot_probe(testapp, index):
    response = testapp.get("/simple/", status=401)
    assert response.headers["WWW-Authenticate"] == 'Basic realm="extrapypi"'
    testapp.get("/simple/nope/", status=401)
    testapp.get("/simple/alpha/", headers={"Authorization": "Basic Zm9vOmJhcg=="}, status=401)


def raw_get(app, path, headers):
    """Without WebTest, which would undo the Content-Encoding before we could look."""
    return Request.blank(path, headers={"Host": "example.com", **headers}).get_response(app)


def test_gzip_when_asked(app, testapp, index):
    plain = raw_get(app, "/simple/foo-bar/", {**index, "Accept": JSON})
    zipped = raw_get(app, "/simple/foo-bar/", {**index, "Accept": JSON, "Accept-Encoding": "gzip"})
    assert zipped.headers["Content-Encoding"] == "gzip"
    assert json.loads(gzip.decompress(zipped.body)) == plain.json
    assert int(zipped.headers["Content-Length"]) == len(zipped.body)
    assert zipped.headers["ETag"] != plain.headers["ETag"]
    assert "Content-Encoding" not in plain.headers
    refused = raw_get(app, "/simple/", {**index, "Accept-Encoding": "gzip;q=0, br"})
    assert "Content-Encoding" not in refused.headers


def test_etag_gives_304_until_the_index_changes(testapp, data, index):
    first = get(testapp, "/simple/alpha/", index, accept=JSON)
    etag = first.headers["ETag"]
    assert first.headers["Cache-Control"] == "private, max-age=0, must-revalidate"
    again = get(
        testapp, "/simple/alpha/", {**index, "If-None-Match": etag}, accept=JSON, status=304
    )
    assert again.body == b"" and again.headers["ETag"] == etag
    # another representation of the same page has another ETag
    get(testapp, "/simple/alpha/", {**index, "If-None-Match": etag}, accept="text/html", status=200)
    data.release_file("alpha", "0.2")
    changed = get(testapp, "/simple/alpha/", {**index, "If-None-Match": etag}, accept=JSON)
    assert changed.status_int == 200 and changed.headers["ETag"] != etag
    assert [f["filename"] for f in changed.json["files"]][-1] == "alpha-0.2-py3-none-any.whl"


def test_a_change_shows_at_once_on_the_root(testapp, data, index):
    assert [p["name"] for p in get(testapp, "/simple/", index, accept=JSON).json["projects"]] == [
        "alpha",
        "Foo_Bar",
    ]
    data.release_file("beta", "1.0")
    names = [p["name"] for p in get(testapp, "/simple/", index, accept=JSON).json["projects"]]
    assert names == ["alpha", "beta", "Foo_Bar"]


def test_head_has_headers_without_body(testapp, index):
    response = testapp.head("/simple/alpha/", headers=index)
    assert response.body == b""
    assert int(response.headers["Content-Length"]) > 0
    assert response.headers["ETag"]


def test_post_to_a_project_page_is_not_the_index(testapp, index):
    testapp.post("/simple/alpha/", headers=index, status=405)


def test_release_without_files_lists_its_version_only(testapp, data, auth, app):
    import transaction as _  # noqa: F401  (the data factory commits)

    from extrapypi.services.packages import delete_file, get_package

    data.user("reader")
    data.release_file("demo", "1.0")
    data.release_file("demo", "2.0")
    tm, dbsession = data.session()
    with tm:
        package = get_package(dbsession, "demo")
        release = next(r for r in package.releases if r.version == "2.0")
        delete_file(dbsession, app.registry["extrapypi.storage"], tm.get(), release.files[0], None)
    page = get(testapp, "/simple/demo/", auth("reader"), accept=JSON).json
    assert page["versions"] == ["1.0", "2.0"]
    assert [f["filename"] for f in page["files"]] == ["demo-1.0-py3-none-any.whl"]


def test_project_page_costs_no_query_per_file(testapp, data, auth, engine):
    import sqlalchemy as sa

    data.user("reader")
    for version in ("1.0", "1.1", "1.2", "1.3", "1.4"):
        data.release_file("many", version)
    statements = []

    def count(conn, cursor, statement, *args):
        statements.append(statement)

    sa.event.listen(engine, "before_cursor_execute", count)
    try:
        get(testapp, "/simple/many/", auth("reader"), accept=JSON)  # builds the page
        # The first Basic login of the hour is noted once (users.last_login): not a page cost.
        built = len([s for s in statements if "last_login" not in s])
        statements.clear()
        get(testapp, "/simple/many/", auth("reader"), accept=JSON)  # from the cache
        cached = len(statements)
    finally:
        sa.event.remove(engine, "before_cursor_execute", count)
    selects = lambda n: n  # noqa: E731
    # user, serial, the user's teams (once per serial), package, namespaces, files (+ a ping)
    assert selects(built) <= 7, built
    assert cached <= built - 2, (cached, built, statements)
    assert not any("maintainers" in s for s in statements)
