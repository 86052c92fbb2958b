"""Downloads and PEP 658 metadata: exact bytes, headers, conditional and range requests."""

import hashlib

import pytest
from webob import Request

from extrapypi.permissions import Role


@pytest.fixture
def stored(data):
    data.user("reader", Role.INSTALLER)
    return {
        "wheel": data.release_file("demo", "1.0"),
        "sdist": data.release_file("demo", "1.0", kind="sdist"),
    }


def url(stored, kind: str) -> str:
    return f"/packages/demo/1.0/{stored[kind]['filename']}"


def raw(app, path, headers):
    """Without WebTest, which would decode a Content-Encoding before we could look."""
    return Request.blank(path, headers={"Host": "example.com", **headers}).get_response(app)


@pytest.mark.parametrize("kind", ["wheel", "sdist"])
def test_download_is_the_exact_bytes_as_octet_stream(app, testapp, stored, auth, kind):
    response = raw(app, url(stored, kind), {**auth("reader"), "Accept-Encoding": "gzip"})
    content = stored[kind]["content"]
    assert response.status_int == 200
    assert response.body == content
    assert response.content_type == "application/octet-stream"
    assert "Content-Encoding" not in response.headers  # a .tar.gz must not look gzip-encoded
    assert int(response.headers["Content-Length"]) == len(content)
    assert response.headers["ETag"] == f'"{hashlib.sha256(content).hexdigest()}"'
    assert response.headers["Last-Modified"]
    assert response.headers["Accept-Ranges"] == "bytes"
    assert stored[kind]["filename"] in response.headers["Content-Disposition"]


def test_metadata_file_is_the_wheels_metadata(testapp, stored, auth):
    response = testapp.get(url(stored, "wheel") + ".metadata", headers=auth("reader"))
    assert response.body == stored["wheel"]["metadata"].encode()
    assert response.headers["ETag"] == f'"{hashlib.sha256(response.body).hexdigest()}"'
    # an sdist has no extracted metadata
    testapp.get(url(stored, "sdist") + ".metadata", headers=auth("reader"), status=404)


def test_conditional_requests_get_304(testapp, stored, auth):
    first = testapp.get(url(stored, "wheel"), headers=auth("reader"))
    etag, modified = first.headers["ETag"], first.headers["Last-Modified"]
    again = testapp.get(
        url(stored, "wheel"), headers={**auth("reader"), "If-None-Match": etag}, status=304
    )
    assert again.body == b""
    testapp.get(
        url(stored, "wheel"), headers={**auth("reader"), "If-Modified-Since": modified}, status=304
    )
    other = testapp.get(url(stored, "wheel"), headers={**auth("reader"), "If-None-Match": '"x"'})
    assert other.status_int == 200


def test_range_requests(testapp, stored, auth):
    content = stored["wheel"]["content"]
    response = testapp.get(
        url(stored, "wheel"), headers={**auth("reader"), "Range": "bytes=10-19"}, status=206
    )
    assert response.body == content[10:20]
    assert response.headers["Content-Range"] == f"bytes 10-19/{len(content)}"
    tail = testapp.get(
        url(stored, "wheel"), headers={**auth("reader"), "Range": "bytes=-5"}, status=206
    )
    assert tail.body == content[-5:]
    testapp.get(
        url(stored, "wheel"),
        headers={**auth("reader"), "Range": f"bytes={len(content) + 10}-"},
        status=416,
    )


def test_head_download(testapp, stored, auth):
    response = testapp.head(url(stored, "wheel"), headers=auth("reader"))
    assert response.body == b""
    assert int(response.headers["Content-Length"]) == len(stored["wheel"]["content"])


def test_any_version_spelling_and_unknown_files(testapp, stored, auth):
    filename = stored["wheel"]["filename"]
    response = testapp.get(f"/packages/Demo/1.0.0/{filename}", headers=auth("reader"))
    assert response.body == stored["wheel"]["content"]
    testapp.get("/packages/demo/1.0/nope-1.0.whl", headers=auth("reader"), status=404)
    testapp.get(f"/packages/demo/2.0/{filename}", headers=auth("reader"), status=404)
    testapp.get(f"/packages/other/1.0/{filename}", headers=auth("reader"), status=404)


def test_download_needs_credentials(testapp, stored):
    response = testapp.get(url(stored, "wheel"), status=401)
    assert response.headers["WWW-Authenticate"].startswith("Basic")
    testapp.get(url(stored, "wheel") + ".metadata", status=401)


def test_file_missing_from_storage_is_404_not_500(app, testapp, stored, auth):
    storage = app.registry["extrapypi.storage"]
    storage.delete("demo/" + stored["sdist"]["filename"])
    response = testapp.get(url(stored, "sdist"), headers=auth("reader"), status=404)
    assert "missing from storage" in response.text
