"""The nginx front's app side: the pages directory (same bytes as the Python path, rewritten after
each commit), ``/_/front/auth`` (the Python path's ACL), ``front build`` and ``nginx-config``."""

import gzip
import json
import re

import pytest
import webtest
from conftest import SECRET, Data, write_ini

from extrapypi import main
from extrapypi.permissions import Role
from extrapypi.scripts.cli import main as cli
from extrapypi.services import accounts
from extrapypi.services import packages as package_service
from extrapypi.services import status as status_service
from extrapypi.services import tokens as token_service
from extrapypi.services.materialize import NO_FILES_MARKER, SERIAL_FILE
from extrapypi.services.metrics import COUNTER_KEY
from extrapypi.services.namespaces import grant

JSON = "application/vnd.pypi.simple.v1+json"
HTML = "application/vnd.pypi.simple.v1+html"
#: Stored file for each Accept header the Python path is asked with.
VARIANTS = {"text/html": "index.html", HTML: "index.v1html", JSON: "index.v1json"}


@pytest.fixture
def front(base_settings, clean, tmp_path):
    """An app with the front on (no background thread: the commits' hooks do the work)."""
    settings = {
        **base_settings,
        "extrapypi.front.pages_dir": str(tmp_path / "pages"),
        "extrapypi.front.catch_up_seconds": "0",
        "extrapypi.front.auth_cache_dir": str(tmp_path / "auth-cache"),
    }
    app = main({}, **settings)
    app.settings = settings
    app.front_pages = tmp_path / "pages" / "simple"
    app.ini = write_ini(tmp_path / "front.ini", settings)
    yield app
    app.registry[COUNTER_KEY].flush()  # now, not at exit (the database is gone by then)


@pytest.fixture
def fdata(front) -> Data:
    return Data(front)


@pytest.fixture
def client(front):
    return webtest.TestApp(front, extra_environ={"HTTP_HOST": "example.com"})


def stored(front, project: str | None, filename: str) -> bytes:
    directory = front.front_pages if project is None else front.front_pages / project
    return (directory / filename).read_bytes()


def assert_same_as_python_path(front, client, auth, project: str | None) -> None:
    path = "/simple/" if project is None else f"/simple/{project}/"
    for accept, filename in VARIANTS.items():
        served = client.get(path, headers={**auth("reader"), "Accept": accept}).body
        assert stored(front, project, filename) == served, (path, accept)
        assert gzip.decompress(stored(front, project, filename + ".gz")) == served


def change(fdata, action) -> None:
    tm, dbsession = fdata.session()
    with tm:
        action(dbsession, tm)


def test_pages_hold_the_python_paths_bytes_after_each_commit(front, fdata, client, auth):
    fdata.user("reader", Role.INSTALLER)
    fdata.release_file("Demo_Pkg", "1.0")
    assert "demo-pkg" in stored(front, None, "index.html").decode()
    assert_same_as_python_path(front, client, auth, None)
    assert_same_as_python_path(front, client, auth, "demo-pkg")
    fdata.release_file("demo-pkg", "1.1", kind="sdist")  # a new file: the page follows at once
    assert "demo_pkg-1.1.tar.gz" in stored(front, "demo-pkg", "index.html").decode()
    assert_same_as_python_path(front, client, auth, "demo-pkg")
    serial = int((front.front_pages.parent / SERIAL_FILE).read_text().split()[0])
    assert serial == client.app.registry["extrapypi.front.mirror"].sync().serial


def test_yank_quarantine_and_deletion_reach_the_pages(front, fdata, client, auth):
    fdata.user("reader", Role.INSTALLER)
    fdata.release_file("demo", "1.0")
    fdata.release_file("other", "1.0")

    def yank(dbsession, tm):
        package = package_service.get_package(dbsession, "demo")
        release = package_service.get_release(dbsession, package, "1.0")
        package_service.set_yanked(dbsession, release, True, "broken build", None)

    change(fdata, yank)
    assert 'data-yanked="broken build"' in stored(front, "demo", "index.html").decode()
    files = json.loads(stored(front, "demo", "index.v1json"))["files"]
    assert [f["yanked"] for f in files] == ["broken build"]

    def quarantine(dbsession, tm):
        package = package_service.get_package(dbsession, "demo")
        status_service.set_status(
            dbsession, package, "quarantined", "malware", None, may_quarantine=True
        )

    change(fdata, quarantine)
    html = stored(front, "demo", "index.html").decode()
    assert '<meta name="pypi:project-status" content="quarantined">' in html
    assert ".whl" not in html
    page = json.loads(stored(front, "demo", "index.v1json"))
    assert page["project-status"] == {"status": "quarantined", "reason": "malware"}
    assert page["files"] == []
    # nginx hands its files to the app
    assert (front.front_pages / "demo" / NO_FILES_MARKER).exists()
    assert not (front.front_pages / "other" / NO_FILES_MARKER).exists()
    assert_same_as_python_path(front, client, auth, "demo")

    def delete(dbsession, tm):
        package = package_service.get_package(dbsession, "other")
        storage = front.registry["extrapypi.storage"]
        package_service.delete_package(dbsession, storage, tm.get(), package, None)

    change(fdata, delete)
    assert not (front.front_pages / "other").exists()
    assert "other" not in stored(front, None, "index.html").decode()
    assert_same_as_python_path(front, client, auth, None)


def test_namespace_grant_rewrites_the_pages_it_touches(front, fdata, client, auth):
    fdata.user("reader", Role.INSTALLER)
    fdata.user("owner", Role.MAINTAINER)
    fdata.release_file("acme-tool", "1.0")

    def reserve(dbsession, tm):
        grant(dbsession, "acme", accounts.get_user(dbsession, "owner"), None)

    change(fdata, reserve)
    page = json.loads(stored(front, "acme-tool", "index.v1json"))
    assert page["namespaces"] == [{"name": "acme", "owned": False}]
    assert_same_as_python_path(front, client, auth, "acme-tool")


def test_a_stale_or_damaged_directory_is_rebuilt(front, fdata, client, auth, base_settings):
    fdata.user("reader", Role.INSTALLER)
    fdata.release_file("demo", "1.0")
    serial_file = front.front_pages.parent / SERIAL_FILE
    (front.front_pages / "demo" / "index.html").write_bytes(b"damaged")
    (front.front_pages / "ghost").mkdir()
    serial_file.write_text("999999\n")  # a serial from before a restore: the database went back
    mirror = front.registry["extrapypi.front.mirror"]
    report = mirror.sync()
    assert report.full and report.removed == 1
    assert not (front.front_pages / "ghost").exists()
    assert_same_as_python_path(front, client, auth, "demo")
    # A new app on a stale directory brings it up to date at start.
    serial_file.unlink()
    (front.front_pages / "demo" / "index.v1json").unlink()
    main({}, **front.settings)
    assert_same_as_python_path(front, client, auth, "demo")
    assert mirror.sync().written == 0  # nothing left to do


def test_cli_front_build_and_its_refusal(front, fdata, capsys, base_settings, tmp_path):
    fdata.release_file("demo", "1.0")
    (front.front_pages / "demo" / "index.html").unlink()
    assert cli(["front", "build", front.ini]) == 0
    assert (front.front_pages / "demo" / "index.html").is_file()
    assert "reflect serial" in capsys.readouterr().out
    plain = write_ini(tmp_path / "plain.ini", base_settings)
    assert cli(["front", "build", plain]) == 1
    assert "extrapypi.front.pages_dir is not set" in capsys.readouterr().err


def test_cli_nginx_config(front, capsys, base_settings, tmp_path):
    assert cli(["nginx-config", front.ini, "--upstream", "127.0.0.1:7000", "--listen", "8080"]) == 0
    text = capsys.readouterr().out
    pages = front.settings["extrapypi.front.pages_dir"]
    storage = front.settings["extrapypi.storage.path"]
    assert "server 127.0.0.1:7000;" in text and "listen 8080;" in text
    assert f"root {pages};" in text and f"root {storage};" in text
    assert "auth_request /_extrapypi_front_auth;" in text
    assert "proxy_cache_valid 200 401 403 10s;" in text
    assert '"application/vnd.pypi.simple.v1+json" index.v1json;' in text
    # pip's Accept header is answered with JSON, as the Python path does
    assert re.search(r'"~\^application/vnd\\\.pypi.*q=0\\\.1.*\$" index\.v1json;', text)
    hostile = write_ini(
        tmp_path / "hostile.ini",
        {**front.settings, "extrapypi.front.pages_dir": str(tmp_path / 'x"; }')},
    )
    assert cli(["nginx-config", hostile]) == 1
    assert "cannot take" in capsys.readouterr().err
    s3 = write_ini(tmp_path / "s3.ini", {**front.settings, "extrapypi.storage": "s3"})
    assert cli(["nginx-config", s3]) == 0
    assert (
        "/packages/" not in capsys.readouterr().out.split("server {", 1)[1].split("location = ")[0]
    )
    plain = write_ini(tmp_path / "plain.ini", base_settings)
    assert cli(["nginx-config", plain]) == 1
    wrong = write_ini(
        tmp_path / "wrong.ini", {**front.settings, "extrapypi.front.auth_cache_seconds": "60"}
    )
    assert cli(["nginx-config", wrong]) == 1
    assert "revocation delay" in capsys.readouterr().err


def ask(client, uri: str, headers: dict | None = None, method: str = "GET") -> int:
    """What ``/_/front/auth`` answers nginx for ``uri``."""
    headers = {**(headers or {}), "X-Front-URI": uri, "X-Front-Method": method}
    return client.get("/_/front/auth", headers=headers, expect_errors=True).status_code


def test_auth_answers_as_the_python_path(front, fdata, client, auth):
    fdata.user("reader", Role.INSTALLER)
    fdata.user("idle", Role.INSTALLER, active=False)
    wheel = fdata.release_file("demo", "1.0")["filename"]
    fdata.release_file("held", "1.0")
    file_uri = f"/packages/demo/1.0/{wheel}"
    for uri in ("/simple/", "/simple/demo/", file_uri, file_uri + ".metadata"):
        assert ask(client, uri, auth("reader")) == 200, uri
        assert ask(client, uri, auth("reader"), method="HEAD") == 200, uri
        assert client.get(uri, headers=auth("reader")).status_code == 200
        assert ask(client, uri) == 401  # anonymous
        assert client.get(uri, expect_errors=True).status_code == 401
        assert ask(client, uri, auth("reader", "wrong password")) == 401
        assert ask(client, uri, auth("idle")) == 401  # deactivated
    assert ask(client, "/packages/nosuch/1.0/nosuch-1.0.tar.gz", auth("reader")) == 403

    def quarantine(dbsession, tm):
        package = package_service.get_package(dbsession, "held")
        status_service.set_status(dbsession, package, "quarantined", "", None, may_quarantine=True)

    change(fdata, quarantine)
    held = "/packages/held/1.0/held-1.0-py3-none-any.whl"
    assert ask(client, held, auth("reader")) == 403  # nginx hands it to the app: 404 there
    assert client.get(held, headers=auth("reader"), expect_errors=True).status_code == 404
    assert ask(client, "/simple/held/", auth("reader")) == 200  # the page, with its status


def test_auth_refuses_what_nginx_must_not_serve(front, fdata, client, auth):
    fdata.user("reader", Role.INSTALLER)
    wheel = fdata.release_file("demo", "1.0")["filename"]
    for uri in (
        "",
        "/simple",
        "/simple/Demo/",  # not normalized: the app redirects
        "/simple/demo/../../etc/passwd",
        "/packages/demo/1.0/../../../.serial",
        "/packages/demo/1.0/%2e%2e%2fx.whl",
        "/packages/.staging/1.0/x.whl",
        "/packages/demo/1.0/",
        "/packages/demo/",
        "/users/",
        "/simple/demo/\r\nX-Evil: 1",
    ):
        assert ask(client, uri, auth("reader")) == 403, uri
    assert ask(client, f"/packages/demo/1.0/{wheel}", auth("reader"), method="POST") == 403
    # no X-Front-URI at all
    assert (
        client.get("/_/front/auth", headers=auth("reader"), expect_errors=True).status_code == 403
    )


def test_auth_takes_api_tokens(front, fdata, client):
    from conftest import basic_auth

    fdata.user("alice", Role.MAINTAINER)
    fdata.release_file("mine", "1.0", uploader="alice")
    fdata.release_file("theirs", "1.0")
    tm, dbsession = fdata.session()
    with tm:
        user = accounts.get_user(dbsession, "alice")
        _row, token = token_service.create_token(dbsession, SECRET, user, "ci", "read")
    headers = basic_auth("__token__", token)
    for project in ("mine", "theirs"):
        assert ask(client, f"/simple/{project}/", headers) == 200
        uri = f"/packages/{project}/1.0/{project}-1.0-py3-none-any.whl"
        assert ask(client, uri, headers) == 200
    forged = basic_auth("__token__", token[:-4] + "AAAA")
    assert ask(client, "/simple/mine/", forged) == 401


def test_session_cookies_are_left_to_the_app(front, fdata, client):
    """nginx caches by Authorization only: a dashboard login never makes the check say yes (the
    app answers such a request itself, nginx strips cookies from the check anyway)."""
    from test_dashboard import log_in

    fdata.user("reader", Role.INSTALLER)
    assert ask(client, "/simple/", {"Cookie": "extrapypi_session=forged"}) == 401
    log_in(client, "reader")  # the client now holds a real session cookie
    assert client.get("/simple/").status_code == 200  # the Python path takes the session
    assert ask(client, "/simple/") == 401


def test_front_off_means_no_auth_endpoint(testapp, auth, data):
    data.user("reader", Role.INSTALLER)
    assert (
        testapp.get("/_/front/auth", headers=auth("reader"), expect_errors=True).status_code == 404
    )


def test_changes_from_elsewhere_arrive_within_the_catch_up_interval(front, data, tmp_path):
    """Another host's commit (here: the plain app, which has no pages directory) reaches the
    directory through the background check of the serial."""
    import time

    settings = {**front.settings, "extrapypi.front.catch_up_seconds": "0.2"}
    settings["extrapypi.front.pages_dir"] = str(tmp_path / "elsewhere")
    watcher = main({}, **settings)
    data.release_file("from-afar", "1.0")  # committed without any hook for this directory
    page = tmp_path / "elsewhere" / "simple" / "from-afar" / "index.html"
    deadline = time.monotonic() + 5
    while not page.exists():
        assert time.monotonic() < deadline, "the background check never wrote the page"
        time.sleep(0.05)
    assert b"from_afar-1.0-py3-none-any.whl" in page.read_bytes()
    watcher.registry["extrapypi.front.mirror"].close()  # its thread ends
