"""PyPI's JSON API and the yank API."""

import hashlib
import re

import pytest

from extrapypi.permissions import Role


@pytest.fixture
def project(data):
    data.user("reader", Role.INSTALLER)
    data.user("maint", Role.MAINTAINER)
    data.user("stranger", Role.MAINTAINER)
    files = [
        data.release_file(
            "Demo_Pkg",
            "1.0",
            uploader=None,
            summary="First",
            requires_python=">=3.8",
            requires_dist=("attrs>=22",),
        ),
        data.release_file("Demo_Pkg", "1.0", kind="sdist", requires_python=">=3.8"),
        data.release_file("Demo_Pkg", "2.0", summary="Second"),
        data.release_file("Demo_Pkg", "3.0b1", summary="Beta"),
    ]
    tm, dbsession = data.session()
    from extrapypi.services.accounts import get_user
    from extrapypi.services.packages import get_package

    with tm:
        package = get_package(dbsession, "demo-pkg")
        package.maintainers.append(get_user(dbsession, "maint"))
    return files


FILE_KEYS = {
    "comment_text",
    "digests",
    "downloads",
    "filename",
    "has_sig",
    "md5_digest",
    "packagetype",
    "python_version",
    "requires_python",
    "size",
    "upload_time",
    "upload_time_iso_8601",
    "url",
    "yanked",
    "yanked_reason",
}


def test_project_json(testapp, project, auth):
    response = testapp.get("/pypi/demo-pkg/json", headers=auth("reader"))
    assert response.content_type == "application/json"
    body = response.json
    info = body["info"]
    assert info["name"] == "Demo_Pkg"
    assert info["version"] == "2.0"  # newest final release, not the beta
    assert info["summary"] == "Second"
    assert info["yanked"] is False and info["yanked_reason"] is None
    assert info["project_url"] == "http://example.com/pypi/demo-pkg/"
    assert info["release_url"] == "http://example.com/pypi/demo-pkg/2.0/"
    assert isinstance(body["last_serial"], int)
    assert list(body["releases"]) == ["1.0", "2.0", "3.0b1"]
    assert [f["filename"] for f in body["releases"]["1.0"]] == [
        "demo_pkg-1.0-py3-none-any.whl",
        "demo_pkg-1.0.tar.gz",
    ]
    assert [f["filename"] for f in body["urls"]] == ["demo_pkg-2.0-py3-none-any.whl"]
    wheel, sdist = body["releases"]["1.0"]
    assert set(wheel) == FILE_KEYS
    content = project[0]["content"]
    assert wheel["digests"] == {
        "sha256": hashlib.sha256(content).hexdigest(),
        "md5": hashlib.md5(content).hexdigest(),
        "blake2b_256": hashlib.blake2b(content, digest_size=32).hexdigest(),
    }
    assert wheel["size"] == len(content)
    assert wheel["packagetype"] == "bdist_wheel" and sdist["packagetype"] == "sdist"
    assert wheel["python_version"] == "py3" and sdist["python_version"] == "source"
    assert wheel["requires_python"] == ">=3.8"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", wheel["upload_time_iso_8601"])
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", wheel["upload_time"])
    assert wheel["url"] == "http://example.com/packages/demo-pkg/1.0/demo_pkg-1.0-py3-none-any.whl"
    assert testapp.get(wheel["url"], headers=auth("reader")).body == content


def test_release_json(testapp, project, auth):
    body = testapp.get("/pypi/Demo.Pkg/1.0/json", headers=auth("reader")).json
    assert body["info"]["version"] == "1.0"
    assert body["info"]["requires_dist"] == ["attrs>=22"]
    assert body["info"]["requires_python"] == ">=3.8"
    assert "releases" not in body
    assert len(body["urls"]) == 2
    testapp.get("/pypi/demo-pkg/9.9/json", headers=auth("reader"), status=404)
    testapp.get("/pypi/nope/json", headers=auth("reader"), status=404)
    testapp.get("/pypi/demo-pkg/json", status=401)


def test_yank_and_unyank_with_basic_auth(testapp, project, auth):
    response = testapp.post(
        "/packages/demo-pkg/2.0/yank", {"reason": "broken build"}, headers=auth("maint")
    )
    assert response.json == {
        "name": "Demo_Pkg",
        "version": "2.0",
        "yanked": True,
        "yanked_reason": "broken build",
    }
    body = testapp.get("/pypi/demo-pkg/json", headers=auth("reader")).json
    assert body["info"]["version"] == "1.0"  # the yanked release is no longer shown first
    assert body["releases"]["2.0"][0]["yanked"] is True
    assert body["releases"]["2.0"][0]["yanked_reason"] == "broken build"
    page = testapp.get(
        "/simple/demo-pkg/",
        headers={**auth("reader"), "Accept": "application/vnd.pypi.simple.v1+json"},
    ).json
    assert [f["yanked"] for f in page["files"] if "2.0" in f["filename"]] == ["broken build"]

    response = testapp.post("/packages/demo-pkg/2.0/unyank", headers=auth("maint"))
    assert response.json["yanked"] is False and response.json["yanked_reason"] == ""
    page = testapp.get(
        "/simple/demo-pkg/",
        headers={**auth("reader"), "Accept": "application/vnd.pypi.simple.v1+json"},
    ).json
    assert all(f["yanked"] is False for f in page["files"])


def test_yank_refused_without_the_permission(testapp, project, auth):
    testapp.post("/packages/demo-pkg/2.0/yank", status=401)
    response = testapp.post("/packages/demo-pkg/2.0/yank", headers=auth("reader"), status=403)
    assert "may not yank" in response.text
    testapp.post("/packages/demo-pkg/2.0/yank", headers=auth("stranger"), status=403)
    testapp.post("/packages/demo-pkg/9.0/yank", headers=auth("maint"), status=404)
    testapp.get("/packages/demo-pkg/2.0/yank", headers=auth("maint"), status=405)
    body = testapp.get("/pypi/demo-pkg/2.0/json", headers=auth("reader")).json
    assert body["info"]["yanked"] is False


def test_session_cookie_yank_needs_the_csrf_token(testapp, project):
    login = testapp.get("/login")
    form = login.forms[0]
    form["username"] = "maint"
    form["password"] = "correct horse"
    form.submit()
    testapp.post("/packages/demo-pkg/2.0/yank", {"reason": "x"}, status=400)
    assert testapp.get("/pypi/demo-pkg/2.0/json").json["info"]["yanked"] is False
    token = testapp.get("/login").forms[0]["csrf_token"].value
    response = testapp.post("/packages/demo-pkg/2.0/yank", {"reason": "x", "csrf_token": token})
    assert response.json["yanked"] is True
