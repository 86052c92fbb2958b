"""The upstream proxy through the WSGI app: pages, private names winning, cached downloads,
the hash check, single flight, outages (stale pages) and the cooldown; the upstream is a real
HTTP server (tests/upstream_index.py) that counts what it is asked."""

import hashlib
import json
import socket
import threading
from datetime import timedelta

import pytest
import webtest
from sqlalchemy import select, update
from upstream_index import UpstreamIndex
from webob import Request

from extrapypi import main
from extrapypi.models import UpstreamFile, UpstreamPage
from extrapypi.models.meta import utcnow
from extrapypi.permissions import Role

JSON = "application/vnd.pypi.simple.v1+json"


@pytest.fixture(scope="module")
def upstream():
    server = UpstreamIndex()
    server.add("pubdep", "1.0")
    server.add("publib", "2.0", requires_dist=("pubdep>=1.0",))
    server.add("shadowed", "9.0")
    server.add("fresh", "1.0", age=timedelta(days=200))
    server.add("fresh", "2.0", age=timedelta(hours=1))
    server.add("undated", "1.0", age=None)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def proxy_app(app, base_settings, upstream):
    return main(
        {},
        **base_settings,
        **{"extrapypi.upstream.url": upstream.url, "extrapypi.upstream.cooldown": "7d"},
    )


@pytest.fixture
def proxy(proxy_app, clean, upstream, data):
    proxy_app.registry["extrapypi.credential_cache"]._entries.clear()
    proxy_app.registry["extrapypi.upstream"].clear_memos()  # the database was emptied
    with upstream.lock:
        upstream.counts.clear()
    upstream.down, upstream.delay, upstream.corrupt = False, 0.0, set()
    data.user("reader", Role.INSTALLER)
    yield webtest.TestApp(proxy_app, extra_environ={"HTTP_HOST": "example.com"})
    settle(proxy_app)  # no prefetch may still write when the database is emptied


def settle(app) -> None:
    """Wait for the background prefetches to end."""
    assert app.registry["extrapypi.upstream"].background.wait_idle(30)


def page(proxy, auth, name: str, **kwargs) -> webtest.TestResponse:
    return proxy.get(f"/simple/{name}/", headers={**auth("reader"), "Accept": JSON}, **kwargs)


def file_url(entry: dict, name: str) -> str:
    assert entry["url"].startswith(f"../../upstream/{name}/"), entry["url"]
    return f"/simple/{name}/" + entry["url"]


def expire_pages(app) -> None:
    with app.registry["db_engine"].begin() as connection:
        connection.execute(update(UpstreamPage).values(checked=utcnow() - timedelta(hours=1)))
    app.registry["extrapypi.upstream"].clear_memos()  # as if the seconds they last had passed


def test_public_project_page_lists_the_upstreams_files_with_links_here(proxy, auth, upstream):
    response = page(proxy, auth, "publib")
    assert response.content_type == JSON
    assert response.headers["X-Extrapypi-Upstream"] == "fresh"
    body = response.json
    assert body["name"] == "publib"
    assert body["versions"] == ["2.0"]
    [entry] = body["files"]
    dist = upstream.projects["publib"][0]
    assert entry["filename"] == dist.filename
    assert entry["hashes"] == {"sha256": dist.sha256}
    assert entry["requires-python"] == ">=3.8"
    assert entry["upload-time"].endswith("Z")
    assert entry["core-metadata"] == {"sha256": hashlib.sha256(dist.metadata.encode()).hexdigest()}
    assert entry["url"] == f"../../upstream/publib/{dist.filename}"
    assert upstream.count("/simple/publib/") == 1
    # cached for the ttl: the upstream is not asked again
    page(proxy, auth, "publib")
    assert upstream.count("/simple/publib/") == 1


def test_html_page_is_negotiated_like_local_pages(proxy, auth, upstream):
    response = proxy.get("/simple/publib/", headers={**auth("reader"), "Accept": "text/html"})
    assert response.content_type == "text/html"
    dist = upstream.projects["publib"][0]
    assert f'href="../../upstream/publib/{dist.filename}#sha256={dist.sha256}"' in response.text
    assert 'data-requires-python="&gt;=3.8"' in response.text
    assert "data-core-metadata=" in response.text
    # non-normalized spellings redirect, as for local projects
    moved = proxy.get("/simple/PubLib/", headers=auth("reader"), status=301)
    assert moved.location.endswith("/simple/publib/")


def test_private_name_wins_even_with_a_higher_upstream_version(proxy, auth, data, upstream):
    data.release_file("shadowed", "1.0")
    body = page(proxy, auth, "shadowed").json
    assert body["versions"] == ["1.0"]
    assert [f["filename"] for f in body["files"]] == ["shadowed-1.0-py3-none-any.whl"]
    assert "X-Extrapypi-Upstream" not in page(proxy, auth, "shadowed").headers
    upstream_file = upstream.projects["shadowed"][0].filename
    refused = proxy.get(f"/upstream/shadowed/{upstream_file}", headers=auth("reader"), status=404)
    assert "hosted here" in refused.text
    assert upstream.count("/simple/shadowed/") == 0
    assert upstream.file_requests() == 0


def test_root_page_lists_local_projects_only(proxy, auth, data):
    data.release_file("private-one", "1.0")
    page(proxy, auth, "publib")
    root = proxy.get("/simple/", headers={**auth("reader"), "Accept": JSON}).json
    assert [p["name"] for p in root["projects"]] == ["private-one"]


def test_download_is_fetched_once_verified_stored_and_served_from_storage(
    proxy, proxy_app, auth, upstream
):
    dist = upstream.projects["publib"][0]
    entry = page(proxy, auth, "publib").json["files"][0]
    first = proxy.get(file_url(entry, "publib"), headers=auth("reader"))
    assert first.body == dist.content
    assert first.content_type == "application/octet-stream"
    assert first.headers["ETag"] == f'"{dist.sha256}"'
    second = proxy.get(file_url(entry, "publib"), headers=auth("reader"))
    assert second.body == dist.content
    assert upstream.count(f"/files/publib/{dist.filename}") == 1
    session = proxy_app.registry["dbsession_factory"]()
    row = session.scalars(select(UpstreamFile)).one()
    session.close()
    assert (row.normalized_name, row.filename, row.sha256) == ("publib", dist.filename, dist.sha256)
    storage = proxy_app.registry["extrapypi.storage"]
    assert storage.hash_file(row.key).sha256 == dist.sha256


def test_metadata_file_is_proxied_and_cached(proxy, proxy_app, auth, upstream):
    dist = upstream.projects["pubdep"][0]
    entry = page(proxy, auth, "pubdep").json["files"][0]
    url = file_url(entry, "pubdep") + ".metadata"
    assert proxy.get(url, headers=auth("reader")).body == dist.metadata.encode()
    assert proxy.get(url, headers=auth("reader")).body == dist.metadata.encode()
    assert upstream.count(f"/files/pubdep/{dist.filename}.metadata") == 1
    # the client downloads the file next: it was fetched meanwhile, once, and is served stored
    settle(proxy_app)
    assert upstream.count(f"/files/pubdep/{dist.filename}") == 1
    assert proxy.get(file_url(entry, "pubdep"), headers=auth("reader")).body == dist.content
    assert upstream.count(f"/files/pubdep/{dist.filename}") == 1


def stored_filenames(app) -> list[str]:
    session = app.registry["dbsession_factory"]()
    try:
        return sorted(session.scalars(select(UpstreamFile.filename)))
    finally:
        session.close()


def test_a_download_arriving_during_the_prefetch_waits_for_it(proxy, proxy_app, auth, upstream):
    dist = upstream.projects["publib"][0]
    entry = page(proxy, auth, "publib").json["files"][0]
    upstream.delay = 0.3  # the prefetch is still reading when the download comes
    proxy.get(file_url(entry, "publib") + ".metadata", headers=auth("reader"))
    assert proxy.get(file_url(entry, "publib"), headers=auth("reader")).body == dist.content
    settle(proxy_app)
    assert upstream.count(f"/files/publib/{dist.filename}") == 1
    assert stored_filenames(proxy_app) == sorted([dist.filename, dist.filename + ".metadata"])


def test_a_prefetched_file_that_mismatches_its_hash_is_not_stored(proxy, proxy_app, auth, upstream):
    dist = upstream.projects["pubdep"][0]
    upstream.corrupt = {dist.filename}
    entry = page(proxy, auth, "pubdep").json["files"][0]
    proxy.get(file_url(entry, "pubdep") + ".metadata", headers=auth("reader"))
    settle(proxy_app)
    assert upstream.count(f"/files/pubdep/{dist.filename}") == 1  # prefetched, and refused
    assert stored_filenames(proxy_app) == [dist.filename + ".metadata"]
    storage = proxy_app.registry["extrapypi.storage"]
    keys = [k for k in storage.iter_keys() if k.startswith("~upstream~")]
    assert [k for k in keys if not k.endswith(".metadata")] == []
    # the download asks again, and says why it refuses
    refused = proxy.get(file_url(entry, "pubdep"), headers=auth("reader"), status=502)
    assert "does not match the sha256" in refused.text


def test_nothing_the_page_does_not_offer_is_prefetched(
    proxy, proxy_app, auth, upstream, ini_file, capsys
):
    # not listed by the upstream's page
    proxy.get(
        "/upstream/pubdep/pubdep-7.0-py3-none-any.whl.metadata", headers=auth("reader"), status=404
    )
    # younger than the cooldown
    young = upstream.projects["fresh"][1].filename
    refused = proxy.get(f"/upstream/fresh/{young}.metadata", headers=auth("reader"), status=404)
    assert "younger than the cooldown" in refused.text
    # a blocked version
    assert cli(capsys, "upstream", "block", ini_file, "fresh", "--version", "1.0")[0] == 0
    old = upstream.projects["fresh"][0].filename
    refused = proxy.get(f"/upstream/fresh/{old}.metadata", headers=auth("reader"), status=404)
    assert "blocked version 1.0" in refused.text
    settle(proxy_app)
    assert upstream.file_requests() == 0
    assert stored_filenames(proxy_app) == []


def test_corrupted_upstream_file_is_refused_and_not_stored(proxy, proxy_app, auth, upstream):
    dist = upstream.projects["pubdep"][0]
    upstream.corrupt = {dist.filename}
    entry = page(proxy, auth, "pubdep").json["files"][0]
    refused = proxy.get(file_url(entry, "pubdep"), headers=auth("reader"), status=502)
    assert "does not match the sha256" in refused.text
    assert dist.sha256 in refused.text
    session = proxy_app.registry["dbsession_factory"]()
    assert session.scalars(select(UpstreamFile)).all() == []
    session.close()
    storage = proxy_app.registry["extrapypi.storage"]
    assert [k for k in storage.iter_keys() if k.startswith("~upstream~")] == []
    # once the upstream serves the right bytes again, the download works
    upstream.corrupt = set()
    assert proxy.get(file_url(entry, "pubdep"), headers=auth("reader")).body == dist.content


def test_concurrent_downloads_of_one_uncached_file_ask_the_upstream_once(
    proxy, proxy_app, auth, upstream
):
    dist = upstream.projects["publib"][0]
    entry = page(proxy, auth, "publib").json["files"][0]
    upstream.delay = 0.3
    bodies, statuses = [], []

    def get():
        request = Request.blank(
            file_url(entry, "publib"), headers={**auth("reader"), "Host": "example.com"}
        )
        response = request.get_response(proxy_app)
        statuses.append(response.status_int)
        bodies.append(response.body)

    threads = [threading.Thread(target=get) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == [200] * 12
    assert all(body == dist.content for body in bodies)
    assert upstream.count(f"/files/publib/{dist.filename}") == 1


def test_names_reserved_here_are_never_asked_upstream(proxy, auth, data, proxy_app, upstream):
    from extrapypi.models import get_tm_session  # noqa: F401
    from extrapypi.services.namespaces import grant

    admin = data.user("boss", Role.ADMIN)
    tm, dbsession = data.session()
    with tm:
        from extrapypi.models import User

        grant(dbsession, "pubdep", dbsession.get(User, admin), None)
    refused = page(proxy, auth, "pubdep", status=404)
    assert "reserved namespace" in refused.text
    assert upstream.count("/simple/pubdep/") == 0


def test_reading_upstream_packages_needs_the_index_permission(proxy, upstream):
    dist = upstream.projects["publib"][0]
    proxy.get("/simple/publib/", status=401)
    proxy.get(f"/upstream/publib/{dist.filename}", status=401)
    assert upstream.count("/simple/publib/") == 0


def test_unknown_everywhere_is_404(proxy, auth, upstream):
    refused = page(proxy, auth, "nowhere-at-all", status=404)
    assert "neither hosted here nor on the upstream" in refused.text


def test_without_an_upstream_nothing_leaves_the_server(testapp, auth, data, monkeypatch):
    data.user("reader", Role.INSTALLER)
    connected = []
    real_connect = socket.socket.connect

    def recording(self, address):
        connected.append(address)
        return real_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", recording)
    testapp.get("/simple/publib/", headers=auth("reader"), status=404)
    testapp.get("/upstream/publib/publib-2.0-py3-none-any.whl", headers=auth("reader"), status=404)
    database_ports = {5432, 3306}
    assert [a for a in connected if isinstance(a, tuple) and a[1] not in database_ports] == []


# --- outages --------------------------------------------------------------------------------


def test_expired_page_is_revalidated_with_its_etag(proxy, proxy_app, auth, upstream):
    first = page(proxy, auth, "publib").json
    expire_pages(proxy_app)
    again = page(proxy, auth, "publib")
    assert again.json == first
    assert again.headers["X-Extrapypi-Upstream"] == "fresh"
    assert upstream.count("/simple/publib/") == 2


def test_upstream_down_serves_stale_pages_and_cached_files(proxy, proxy_app, auth, upstream):
    dist = upstream.projects["publib"][0]
    entry = page(proxy, auth, "publib").json["files"][0]
    proxy.get(file_url(entry, "publib"), headers=auth("reader"))
    page(proxy, auth, "pubdep")
    expire_pages(proxy_app)
    upstream.down = True
    stale = page(proxy, auth, "publib")
    assert stale.headers["X-Extrapypi-Upstream"] == "stale"
    assert stale.json["files"][0]["filename"] == dist.filename
    assert proxy.get(file_url(entry, "publib"), headers=auth("reader")).body == dist.content
    # a file never downloaded cannot be served
    pubdep = page(proxy, auth, "pubdep").json["files"][0]
    failed = proxy.get(file_url(pubdep, "pubdep"), headers=auth("reader"), status=502)
    assert "upstream index failed" in failed.text
    # a page never fetched: 502 with the reason
    failed = page(proxy, auth, "fresh", status=502)
    assert "the page of fresh is not cached" in failed.text
    assert "503" in failed.text


# --- cooldown -------------------------------------------------------------------------------


def test_cooldown_hides_fresh_releases_and_files_without_upload_time(proxy, auth, upstream):
    body = page(proxy, auth, "fresh").json
    assert [f["filename"] for f in body["files"]] == ["fresh-1.0-py3-none-any.whl"]
    assert body["versions"] == ["1.0"]
    young = upstream.projects["fresh"][1].filename
    refused = proxy.get(f"/upstream/fresh/{young}", headers=auth("reader"), status=404)
    assert "younger than the cooldown" in refused.text
    assert upstream.file_requests() == 0
    assert page(proxy, auth, "undated").json["files"] == []


def test_json_page_is_valid_pep_691(proxy, auth):
    body = json.loads(page(proxy, auth, "publib").body)
    assert body["meta"]["api-version"].startswith("1.")
    assert body["project-status"] == {"status": "active"}


# --- control: rules, dashboard, prune, new projects on upstream names ----------------------


def journal_actions(data) -> list[tuple[str, str, str]]:
    from extrapypi.models import JournalEntry

    tm, dbsession = data.session()
    with tm:
        rows = dbsession.scalars(select(JournalEntry).order_by(JournalEntry.id))
        return [(r.action, r.package_name, r.version) for r in rows]


def cli(capsys, *argv) -> tuple[int, str]:
    from extrapypi.scripts.cli import main as extrapypi

    code = extrapypi(list(argv))
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def test_admin_blocks_an_upstream_project_and_a_version(
    proxy, auth, upstream, data, ini_file, capsys
):
    code, out = cli(capsys, "upstream", "block", ini_file, "PubLib", "--reason", "hijacked")
    assert code == 0, out
    refused = page(proxy, auth, "publib", status=404)
    assert "an administrator blocked publib" in refused.text
    assert upstream.count("/simple/publib/") == 0
    assert cli(capsys, "upstream", "unblock", ini_file, "publib")[0] == 0
    # one version: its files leave the page, and a cached copy is not served either
    entry = page(proxy, auth, "fresh").json["files"][0]
    proxy.get(file_url(entry, "fresh"), headers=auth("reader"))
    assert cli(capsys, "upstream", "block", ini_file, "fresh", "--version", "1.0")[0] == 0
    assert page(proxy, auth, "fresh").json["files"] == []
    refused = proxy.get(file_url(entry, "fresh"), headers=auth("reader"), status=404)
    assert "blocked version 1.0" in refused.text
    code, out = cli(capsys, "upstream", "block", ini_file, "fresh", "--version", "1.0")
    assert code == 1 and "already in place" in out
    assert journal_actions(data)[-3:] == [
        ("upstream block", "publib", ""),
        ("upstream unblock", "publib", ""),
        ("upstream block", "fresh", "1.0"),
    ]


def test_cooldown_exemption_shows_the_fresh_release(proxy, auth, ini_file, capsys):
    assert cli(capsys, "upstream", "exempt", ini_file, "fresh", "--reason", "we vetted it")[0] == 0
    files = [f["filename"] for f in page(proxy, auth, "fresh").json["files"]]
    assert files == ["fresh-1.0-py3-none-any.whl", "fresh-2.0-py3-none-any.whl"]
    code, out = cli(capsys, "upstream", "unexempt", ini_file, "fresh")
    assert code == 0, out
    files = [f["filename"] for f in page(proxy, auth, "fresh").json["files"]]
    assert files == ["fresh-1.0-py3-none-any.whl"]


def test_prune_removes_files_unused_for_long(proxy, proxy_app, auth, upstream, ini_file, capsys):
    for name in ("publib", "pubdep"):
        entry = page(proxy, auth, name).json["files"][0]
        proxy.get(file_url(entry, name), headers=auth("reader"))
    with proxy_app.registry["db_engine"].begin() as connection:
        connection.execute(
            update(UpstreamFile)
            .where(UpstreamFile.normalized_name == "pubdep")
            .values(last_used=utcnow() - timedelta(days=100))
        )
    code, out = cli(capsys, "upstream", "prune", ini_file, "--unused-for", "90d", "--dry-run")
    assert code == 0
    assert "Would remove 1 cached upstream file" in out
    code, out = cli(capsys, "upstream", "prune", ini_file, "--unused-for", "90d")
    assert code == 0 and "Removed 1 cached upstream file" in out
    session = proxy_app.registry["dbsession_factory"]()
    assert [r.normalized_name for r in session.scalars(select(UpstreamFile))] == ["publib"]
    session.close()
    storage = proxy_app.registry["extrapypi.storage"]
    assert [k.split("/")[0] for k in storage.iter_keys() if k.startswith("~")] == [
        "~upstream~publib"
    ]
    # fetched again on its next download
    entry = page(proxy, auth, "pubdep").json["files"][0]
    proxy.get(file_url(entry, "pubdep"), headers=auth("reader"))
    assert upstream.count(f"/files/pubdep/{upstream.projects['pubdep'][0].filename}") == 2
    assert cli(capsys, "upstream", "prune", ini_file, "--unused-for", "soon")[0] == 2


def test_dashboard_lists_what_is_cached_for_admins(proxy, auth, data, upstream):
    from test_dashboard import BROWSER, log_in

    entry = page(proxy, auth, "publib").json["files"][0]
    proxy.get(file_url(entry, "publib"), headers=auth("reader"))
    data.user("boss", Role.ADMIN)
    proxy.get("/upstream-cache", headers=auth("reader"), status=403)
    token = log_in(proxy, "boss")
    shown = proxy.get("/upstream-cache", headers=BROWSER)
    assert 'href="http://example.com/upstream-cache">Upstream</a>' in shown.text
    assert "<code>publib</code>" in shown.text
    assert "1 project, 1 file" in shown.text
    assert upstream.url in shown.text
    added = proxy.post(
        "/upstream-cache",
        {"csrf_token": token, "kind": "block", "name": "pubdep", "version": "", "reason": "no"},
        status=303,
    ).follow()
    assert "Added the block of pubdep (all versions)." in added.text
    refused = proxy.post(
        "/upstream-cache",
        {"csrf_token": token, "kind": "block", "name": "not a name!", "version": ""},
        status=400,
    )
    assert "not a project name" in refused.text
    proxy.post(
        "/upstream-cache",
        {"csrf_token": token, "kind": "block", "name": "pubdep", "remove": "1"},
        status=303,
    )
    assert journal_actions(data)[-2:] == [
        ("upstream block", "pubdep", ""),
        ("upstream unblock", "pubdep", ""),
    ]


def test_new_local_project_on_an_upstream_name_is_refused_for_non_admins(
    proxy, auth, data, upstream
):
    from dists import wheel_bytes
    from test_upload import post

    data.user("dev", Role.DEVELOPER)
    data.user("boss", Role.ADMIN)
    refused = post(proxy, wheel_bytes("pubdep", "5.0"), auth("dev"), status=409)
    assert "pubdep exists on the upstream index" in refused.text
    assert "Ask an administrator" in refused.text
    # a name the upstream lacks is fine
    post(proxy, wheel_bytes("brand-new", "1.0"), auth("dev"), status=200)
    # an admin may claim it: journaled, and from now on the local project wins
    post(proxy, wheel_bytes("pubdep", "5.0"), auth("boss"), status=200)
    assert ("upstream name claimed", "pubdep", "") in journal_actions(data)
    assert page(proxy, auth, "pubdep").json["versions"] == ["5.0"]
    # the upstream unreachable: allowed, and said so in the journal
    upstream.down = True
    post(proxy, wheel_bytes("publib", "0.1"), auth("dev"), status=200)
    assert ("upstream name unchecked", "publib", "") in journal_actions(data)


def test_setup_page_recommends_the_single_url_when_an_upstream_is_configured(
    proxy, testapp, auth, data
):
    from test_dashboard import BROWSER, log_in

    log_in(proxy, "reader")
    shown = proxy.get("/setup/", headers=BROWSER)
    assert "this one URL is all pip, uv and poetry need" in shown.text
    assert "uv: this index only (it serves PyPI&#39;s packages too)" in shown.text
    assert 'id="uv-explicit"' not in shown.text
    log_in(testapp, "reader")  # no upstream: the split setup stays documented
    plain = testapp.get("/setup/", headers=BROWSER)
    assert 'id="uv-explicit"' in plain.text
    assert "this one URL" not in plain.text


def test_hostile_input_on_the_upstream_surfaces_gets_4xx(proxy, auth, data, ini_file, capsys):
    from test_dashboard import log_in

    long_name = "a" * 300
    page(proxy, auth, long_name, status=404)
    proxy.get(f"/upstream/{long_name}/x.whl", headers=auth("reader"), status=404)
    proxy.get("/upstream/publib/..%2F..%2Fetc%2Fpasswd", headers=auth("reader"), status=404)
    proxy.get("/upstream/Pub.Lib/publib-2.0-py3-none-any.whl", headers=auth("reader"), status=404)
    data.user("boss", Role.ADMIN)
    token = log_in(proxy, "boss")
    for fields in (
        {"kind": "block", "name": long_name},
        {"kind": "block", "name": "publib", "version": "1" * 150},
        {"kind": "block", "name": "publib", "version": "not a version"},
        {"kind": "nonsense", "name": "publib"},
        {"kind": "cooldown-exempt", "name": "publib", "version": "1.0"},
    ):
        proxy.post("/upstream-cache", {"csrf_token": token, **fields}, status=400)
    code, out = cli(capsys, "upstream", "block", ini_file, long_name)
    assert code == 1 and "at most 200 characters" in out
