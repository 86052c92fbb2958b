"""Project status markers (PEP 792): every status × every action, who may set which, and the
index pages (HTML 1.4 meta tags, JSON ``project-status``) as the spec texts define them."""

import re

import pytest
import sqlalchemy as sa
from dists import wheel_bytes
from test_dashboard import BROWSER, log_in
from test_upload import post

from extrapypi.models import JournalEntry, Package
from extrapypi.permissions import Role
from extrapypi.services import serials
from extrapypi.services import status as status_service
from extrapypi.services.packages import get_package

JSON = "application/vnd.pypi.simple.v1+json"
HTML = "application/vnd.pypi.simple.v1+html"
STATUSES = ["active", "archived", "deprecated", "quarantined"]
#: What the spec's index semantics say, per status: (accepts uploads, offers files).
SEMANTICS = {
    "active": (True, True),
    "archived": (False, True),
    "deprecated": (True, True),
    "quarantined": (False, False),
}


@pytest.fixture
def world(data):
    data.user("maint", Role.MAINTAINER)
    data.user("other", Role.MAINTAINER)
    data.user("admin", Role.ADMIN)
    data.user("reader", Role.INSTALLER)
    return data.release_file("demo", "1.0", uploader="maint")  # maint maintains it


def set_status(data, status, reason=""):
    tm, dbsession = data.session()
    with tm:
        status_service.set_status(
            dbsession, get_package(dbsession, "demo"), status, reason, None, may_quarantine=True
        )


def stored_status(data) -> tuple[str, str]:
    tm, dbsession = data.session()
    with tm:
        package = get_package(dbsession, "demo")
        return package.status, package.status_reason


def meta_tags(html: str) -> dict[str, str]:
    return dict(re.findall(r'<meta name="([^"]+)" content="([^"]*)">', html))


@pytest.mark.parametrize("status", STATUSES)
def test_every_status_on_every_surface(testapp, data, auth, world, status):
    reason = f"why {status}" if status != "active" else ""
    set_status(data, status, reason)
    uploads, offers = SEMANTICS[status]
    filename = world["filename"]

    # the HTML project page: 1.4, the status tags, links only when files are offered
    page = testapp.get("/simple/demo/", headers={**auth("reader"), "Accept": HTML})
    tags = meta_tags(page.text)
    assert tags["pypi:repository-version"] == "1.4"
    assert tags["pypi:project-status"] == status
    assert tags.get("pypi:project-status-reason") == (reason or None)
    assert (filename in page.text) is offers

    # the JSON project page: 1.5, project-status as the living spec shapes it
    page = testapp.get("/simple/demo/", headers={**auth("reader"), "Accept": JSON}).json
    assert page["meta"]["api-version"] == "1.5"
    expected = {"status": status, "reason": reason} if reason else {"status": status}
    assert page["project-status"] == expected
    assert page["versions"] == ["1.0"]
    assert [f["filename"] for f in page["files"]] == ([filename] if offers else [])

    # downloads: the file, its .metadata, the JSON API
    file_url = f"/packages/demo/1.0/{filename}"
    for url in (file_url, file_url + ".metadata", "/pypi/demo/json", "/pypi/demo/1.0/json"):
        response = testapp.get(url, headers=auth("reader"), expect_errors=True)
        if offers:
            assert response.status_int == 200, url
        else:
            assert response.status_int == 404, url
            assert "quarantined" in response.status and reason in response.status
            assert response.body.decode().strip().endswith(f"({reason}) and offers no files")
    if offers:
        api = testapp.get("/pypi/demo/json", headers=auth("reader")).json
        assert api["project-status"] == expected

    # an upload of a new version by a maintainer
    built = wheel_bytes("demo", "2.0")
    if uploads:
        post(testapp, built, auth("maint"), status=200)
    else:
        response = post(testapp, built, auth("maint"), status=400)
        assert f"project 'demo' is {status} ({reason}) and accepts no new files" in response.status
    with testapp.app.registry["dbsession_factory"]() as session:
        versions = session.scalars(sa.text("SELECT version FROM releases ORDER BY version")).all()
    assert versions == (["1.0", "2.0"] if uploads else ["1.0"])

    # the dashboard shows status and reason on the package page and in the list
    log_in(testapp, "maint")
    detail = testapp.get("/packages/demo/", headers=BROWSER)
    listing = testapp.get("/packages/", headers=BROWSER)
    if status == "active":
        assert "badge bad status-" not in detail.text and "status-active" not in listing.text
    else:
        assert f'status-{status}">{status}</span>' in detail.text
        assert reason in detail.text
        assert f"{status}: {reason}" in listing.text
    # ... and links (or names the downloads of) the files only when they are offered
    release = testapp.get("/packages/demo/1.0/", headers=BROWSER)
    for shown in (detail, release):
        assert bool(re.search(r'/packages/demo/[^/"]+/demo-[^/"]+\.whl">', shown.text)) is offers
        assert ("No files are offered: the project is quarantined." in shown.text) is not offers
    assert ('class="download-counts"' in detail.text) is offers
    # a quarantined project offers no install command and no "installed by default" release
    for shown in (detail, release):
        assert ("pip install --index-url" in shown.text) is offers
        assert ("installed by default" in shown.text) is offers
        assert ('id="quarantine-notice"' in shown.text) is not offers


def test_html_status_reason_is_escaped(testapp, data, auth, world):
    set_status(data, "deprecated", 'use "new" <instead> & more')
    page = testapp.get("/simple/demo/", headers=auth("reader"))
    assert (
        '<meta name="pypi:project-status-reason" '
        'content="use &quot;new&quot; &lt;instead&gt; &amp; more">'
    ) in page.text


def test_status_change_refreshes_cached_pages(testapp, data, auth, world):
    for accept in (HTML, JSON):  # both cached at the current serial
        testapp.get("/simple/demo/", headers={**auth("reader"), "Accept": accept})
    set_status(data, "quarantined", "malware")
    assert 'content="quarantined"' in testapp.get("/simple/demo/", headers=auth("reader")).text
    page = testapp.get("/simple/demo/", headers={**auth("reader"), "Accept": JSON}).json
    assert page["project-status"]["status"] == "quarantined" and page["files"] == []
    set_status(data, "active")
    page = testapp.get("/simple/demo/", headers={**auth("reader"), "Accept": JSON}).json
    assert page["project-status"] == {"status": "active"} and len(page["files"]) == 1


def test_active_drops_the_reason_and_changes_are_journaled(data, world):
    set_status(data, "archived", "  done,\n  thanks  ")
    assert stored_status(data) == ("archived", "done, thanks")
    set_status(data, "active", "ignored")
    assert stored_status(data) == ("active", "")
    with data.app.registry["dbsession_factory"]() as session:
        entries = session.execute(
            sa.select(JournalEntry.action, JournalEntry.detail)
            .where(JournalEntry.action == "set status")
            .order_by(JournalEntry.id)
        ).all()
    assert [tuple(e) for e in entries] == [
        ("set status", "archived: done, thanks"),
        ("set status", "active"),
    ]


def test_service_refuses_unknown_status_and_quarantine_without_the_right(data, world):
    tm, dbsession = data.session()
    with tm:
        package = get_package(dbsession, "demo")
        with pytest.raises(status_service.StatusError, match="Unknown project status 'haunted'"):
            status_service.set_status(dbsession, package, "haunted", "", None, may_quarantine=True)
        with pytest.raises(status_service.StatusError, match="Only an administrator"):
            status_service.set_status(
                dbsession, package, "quarantined", "", None, may_quarantine=False
            )
    set_status(data, "quarantined")
    tm, dbsession = data.session()
    with tm:
        package = get_package(dbsession, "demo")
        with pytest.raises(status_service.StatusError, match="only an administrator can lift"):
            status_service.set_status(dbsession, package, "active", "", None, may_quarantine=False)
    assert stored_status(data) == ("quarantined", "")


def test_an_unknown_stored_status_is_treated_as_quarantined(testapp, data, auth, world):
    """A status written by a newer version (a downgrade) must fail closed, not serve files."""
    with data.app.registry["db_engine"].begin() as connection:
        connection.execute(sa.update(Package).values(status="haunted"))
        connection.execute(sa.text("UPDATE index_state SET serial = serial + 1"))
    serials.changed(data.app.registry["db_engine"])  # raw SQL: tell this process's apps
    page = testapp.get("/simple/demo/", headers={**auth("reader"), "Accept": JSON}).json
    assert page["files"] == []
    testapp.get(f"/packages/demo/1.0/{world['filename']}", headers=auth("reader"), status=404)
    post(testapp, wheel_bytes("demo", "2.0"), auth("maint"), status=400)


# --- who may set which status (dashboard forms, the ACL decides) ----------------------------


def _form(testapp, username, view, status, reason="", expect=303):
    token = log_in(testapp, username)
    return testapp.post(
        f"/packages/demo/{view}",
        {"status": status, "reason": reason, "csrf_token": token},
        headers=BROWSER,
        status=expect,
    )


@pytest.mark.parametrize("status", ["archived", "deprecated", "active"])
def test_maintainer_archives_deprecates_and_reactivates(testapp, data, world, status):
    set_status(data, "deprecated" if status == "active" else "active")
    _form(testapp, "maint", "status", status, "a reason")
    assert stored_status(data) == (status, "" if status == "active" else "a reason")


def test_maintainer_cannot_quarantine_nor_lift_a_quarantine(testapp, data, world):
    response = _form(testapp, "maint", "status", "quarantined", expect=400)
    assert "Only an administrator can quarantine a project." in response.text
    _form(testapp, "maint", "quarantine", "quarantined", expect=403)
    assert stored_status(data) == ("active", "")
    set_status(data, "quarantined", "malware")
    response = _form(testapp, "maint", "status", "active", expect=400)
    assert "only an administrator can lift the quarantine" in response.text
    _form(testapp, "maint", "quarantine", "active", expect=403)
    assert stored_status(data) == ("quarantined", "malware")
    page = testapp.get("/packages/demo/", headers=BROWSER)
    assert 'action="http://example.com/packages/demo/status"' not in page.text  # no form offered


def test_admin_quarantines_and_lifts(testapp, data, world):
    page = (log_in(testapp, "admin"), testapp.get("/packages/demo/", headers=BROWSER))[1]
    assert 'value="quarantined"' in page.text  # the admin's form offers it
    _form(testapp, "admin", "quarantine", "quarantined", "malware found")
    assert stored_status(data) == ("quarantined", "malware found")
    _form(testapp, "admin", "quarantine", "active")
    assert stored_status(data) == ("active", "")


@pytest.mark.parametrize("username", ["reader", "other"])
def test_installers_and_non_maintainers_cannot_set_status(testapp, data, world, username):
    _form(testapp, username, "status", "archived", expect=403)
    assert stored_status(data) == ("active", "")


def test_status_form_needs_the_csrf_token(testapp, data, world):
    log_in(testapp, "maint")
    testapp.post("/packages/demo/status", {"status": "archived"}, headers=BROWSER, status=400)
    assert stored_status(data) == ("active", "")


def test_status_form_is_post_only(testapp, data, world):
    log_in(testapp, "maint")
    testapp.get("/packages/demo/status?status=archived", headers=BROWSER, status=405)
    assert stored_status(data) == ("active", "")


def test_a_hostile_reason_stays_one_plain_line(testapp, data, auth, world):
    set_status(data, "archived", "line one\r\nX-Injected: 1\n<script>")
    assert stored_status(data) == ("archived", "line one X-Injected: 1 <script>")
    response = post(testapp, wheel_bytes("demo", "2.0"), auth("maint"), status=400)
    assert "X-Injected" not in response.headers
    assert "\n" not in response.status
    page = testapp.get("/simple/demo/", headers=auth("reader"))
    assert "<script>" not in page.text and "&lt;script&gt;" in page.text
