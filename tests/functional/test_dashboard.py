"""The browser dashboard through WebTest: pages, permission edges, CSRF, XSS (throttling:
test_throttle.py; sessions: test_sessions.py)."""

import re

import pytest
import sqlalchemy as sa
import webtest

from extrapypi import main
from extrapypi.models import JournalEntry
from extrapypi.permissions import Role
from extrapypi.services.accounts import get_user
from extrapypi.services.packages import get_package, get_release

BROWSER = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
ROLES = (Role.INSTALLER, Role.MAINTAINER, Role.DEVELOPER, Role.ADMIN)


def csrf_token(page) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)


def log_in(testapp, username, password="correct horse"):
    page = testapp.get("/login")
    response = testapp.post(
        "/login", {"username": username, "password": password, "csrf_token": csrf_token(page)}
    )
    assert response.status_int == 303
    return csrf_token(testapp.get("/", headers=BROWSER))


def journal(data) -> list[tuple[str, str]]:
    tm, dbsession = data.session()
    with tm:
        entries = dbsession.scalars(sa.select(JournalEntry).order_by(JournalEntry.id)).all()
        return [(e.action, e.detail) for e in entries]


def with_package(data, fn):
    tm, dbsession = data.session()
    with tm:
        return fn(dbsession)


@pytest.fixture
def world(data):
    """A user per role, all maintaining ``Mine``; nobody maintaining ``Theirs``."""
    for role in ROLES:
        data.user(role.value, role)
    data.release_file("Mine", "1.0", uploader="admin", summary="my package")
    data.release_file("Mine", "2.0", uploader="developer", summary="my package, v2")

    def add_maintainers(s):
        package = get_package(s, "Mine")
        package.maintainers.extend(get_user(s, r.value) for r in ROLES if r is not Role.ADMIN)

    with_package(data, add_maintainers)
    data.release_file("Theirs", "0.1", summary="someone else's")
    return data


# --- pages -------------------------------------------------------------------------------


def test_package_list_shows_name_latest_version_summary(testapp, world):
    log_in(testapp, "installer")
    page = testapp.get("/packages/", headers=BROWSER)
    assert "Mine" in page.text and "2.0" in page.text and "my package, v2" in page.text
    assert "Theirs" in page.text and "someone else&#39;s" in page.text
    assert "2 packages" in page.text


def test_package_list_sorts_by_name_or_recent_activity(testapp, data):
    data.user("u")
    data.release_file("zeta", "1.0")
    data.release_file("alpha", "1.0")

    def touch(s):  # explicit times: MySQL's DATETIME keeps whole seconds only
        from datetime import UTC, datetime

        get_package(s, "alpha").updated = datetime(2026, 1, 1, tzinfo=UTC)
        get_package(s, "zeta").updated = datetime(2026, 1, 2, tzinfo=UTC)

    with_package(data, touch)
    log_in(testapp, "u")
    recent = testapp.get("/packages/").text
    assert recent.index(">zeta<") < recent.index(">alpha<")
    by_name = testapp.get("/packages/", {"sort": "name"}).text
    assert by_name.index(">alpha<") < by_name.index(">zeta<")
    assert testapp.get("/packages/", {"sort": "bogus", "page": "x"}).status_int == 200


def test_package_list_is_paginated(testapp, data):
    data.user("u")
    for n in range(27):
        data.package(f"pkg{n:02d}")
    log_in(testapp, "u")
    first = testapp.get("/packages/", {"sort": "name"})
    assert "Page 1 of 2" in first.text and "pkg24" in first.text and "pkg25" not in first.text
    second = first.click(description="Next")
    assert "Page 2 of 2" in second.text and "pkg25" in second.text and "pkg26" in second.text
    assert "pkg00" not in second.text


def test_search_matches_name_and_summary_and_escapes_wildcards(testapp, data):
    data.user("u")
    data.release_file("requests-extra", "1.0", summary="HTTP for humans")
    data.release_file("other_thing", "1.0", summary="100% pure")
    data.release_file("plain", "1.0", summary="nothing")
    log_in(testapp, "u")
    assert "requests-extra" in testapp.get("/packages/", {"q": "REQUESTS"}).text
    by_summary = testapp.get("/packages/", {"q": "humans"}).text
    assert "requests-extra" in by_summary and "plain" not in by_summary
    percent = testapp.get("/packages/", {"q": "%"}).text
    assert "other_thing" in percent and "requests-extra" not in percent
    underscore = testapp.get("/packages/", {"q": "r_q"}).text  # "_" is no wildcard
    assert "requests-extra" not in underscore and "No package matches" in underscore
    assert "other_thing" in testapp.get("/packages/", {"q": "other-thing"}).text


def test_package_page(testapp, world):
    log_in(testapp, "installer")
    page = testapp.get("/packages/mine/")
    text = page.text
    assert "pip install --index-url http://example.com/simple/ mine" in text
    assert text.index(">2.0<") < text.index(">1.0<")  # newest first
    for username in ("installer", "maintainer", "developer"):
        assert f"<span>{username}</span>" in text
    files = with_package(
        world,
        lambda s: [
            (f.filename, f.sha256) for f in get_release(s, get_package(s, "Mine"), "2.0").files
        ],
    )
    assert files[0][0] in text and files[0][1] in text
    assert 'href="http://example.com/packages/mine/2.0/mine-2.0-py3-none-any.whl"' in text
    assert "developer" in text  # uploader


def test_releases_in_pep440_order(testapp, data):
    data.user("u")
    for version in ("1.0", "1.10", "1.9", "1.0rc1", "1.0.post1", "2.0.dev1"):
        data.release_file("ordered", version)
    log_in(testapp, "u")
    text = testapp.get("/packages/ordered/").text
    found = re.findall(r'href="http://example.com/packages/ordered/([^/"]+)/">', text)
    assert found == ["2.0.dev1", "1.10", "1.9", "1.0.post1", "1.0", "1.0rc1"]


def test_release_page_shows_metadata(testapp, data):
    data.user("u")
    data.release_file(
        "meta",
        "1.0",
        summary="Meta",
        requires_python=">=3.9",
        requires_dist=["requests>=2", "attrs; extra == 'x'"],
    )

    def extra(s):
        release = get_release(s, get_package(s, "meta"), "1.0")
        release.classifiers = ["Programming Language :: Python :: 3"]
        release.license_expression = "MIT"
        release.project_urls = [
            ["Source", "https://example.org/src"],
            ["Evil", "javascript:alert(1)"],
            ["Data", "data:text/html,<script>x</script>"],
        ]

    with_package(data, extra)
    log_in(testapp, "u")
    text = testapp.get("/packages/meta/1.0/").text
    assert "&gt;=3.9" in text and "requests&gt;=2" in text
    assert "Programming Language :: Python :: 3" in text and "MIT" in text
    assert 'href="https://example.org/src"' in text
    assert "javascript:" not in text and "data:text" not in text


def test_unknown_package_or_release_is_404(testapp, world):
    log_in(testapp, "installer")
    testapp.get("/packages/nope/", status=404)
    testapp.get("/packages/mine/9.9/", status=404)


# --- permission edges ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("username", "package", "can_yank", "can_manage", "can_delete"),
    [
        ("installer", "mine", False, False, False),
        ("maintainer", "mine", True, False, False),
        ("developer", "mine", True, True, False),
        ("admin", "mine", True, True, True),
        ("maintainer", "theirs", False, False, False),
        ("developer", "theirs", False, False, False),
        ("admin", "theirs", True, True, True),
    ],
)
def test_controls_follow_the_acl(
    testapp, world, username, package, can_yank, can_manage, can_delete
):
    token = log_in(testapp, username)
    version = "2.0" if package == "mine" else "0.1"
    release_page = testapp.get(f"/packages/{package}/{version}/").text
    package_page = testapp.get(f"/packages/{package}/").text
    assert ("/set-yanked" in release_page) is can_yank
    assert ("Delete release" in release_page) is can_manage
    assert ("Add maintainer" in package_page) is can_manage
    assert ("Delete package" in package_page) is can_delete

    base = f"/packages/{package}/{version}/"
    yank = testapp.post(
        base + "set-yanked", {"csrf_token": token, "reason": "bad"}, expect_errors=True
    )
    assert yank.status_int == (303 if can_yank else 403)
    add = testapp.post(
        f"/packages/{package}/maintainers",
        {"csrf_token": token, "username": "installer", "action": "add"},
        expect_errors=True,
    )
    if can_manage:
        assert add.status_int in (303, 400)  # 400: already a maintainer of Mine
    else:
        assert add.status_int == 403
    testapp.get(base + "delete", status=200 if can_manage else 403)
    testapp.get(f"/packages/{package}/delete", status=200 if can_delete else 403)
    testapp.post(
        f"/packages/{package}/delete", {"csrf_token": token}, status=303 if can_delete else 403
    )
    exists = with_package(world, lambda s: get_package(s, package) is not None)
    assert exists is not can_delete


def test_only_admins_reach_users(testapp, world):
    for role in ROLES[:-1]:
        app = webtest.TestApp(testapp.app, extra_environ={"HTTP_HOST": "example.com"})
        log_in(app, role.value)
        app.get("/users/", status=403)
        app.get("/users/@@new", status=403)
        app.get("/users/admin/", status=403)
        assert "/users/" not in app.get("/").text.split("<main>")[0]
    log_in(testapp, "admin")
    assert 'href="http://example.com/users/"' in testapp.get("/").text


def test_anonymous_browser_is_sent_to_login_for_every_page(testapp, world):
    for path in ("/packages/", "/packages/mine/", "/packages/mine/2.0/", "/users/", "/account"):
        response = testapp.get(path, headers=BROWSER, status=302)
        assert "/login?came_from=" in response.location


# --- state changes -------------------------------------------------------------------------


def test_yank_and_unyank_with_reason(testapp, world):
    token = log_in(testapp, "maintainer")
    page = testapp.post(
        "/packages/mine/2.0/set-yanked", {"csrf_token": token, "reason": "broken"}
    ).follow()
    assert "yanked: broken" in page.text and "Yanked Mine 2.0." in page.text
    assert with_package(world, lambda s: get_release(s, get_package(s, "Mine"), "2.0").yanked)
    testapp.post(
        "/packages/mine/2.0/set-yanked", {"csrf_token": token, "action": "unyank"}, status=303
    )
    release = with_package(
        world,
        lambda s: (lambda r: (r.yanked, r.yanked_reason))(
            get_release(s, get_package(s, "Mine"), "2.0")
        ),
    )
    assert release == (False, "")
    assert ("yank release", "broken") in journal(world)
    assert ("unyank release", "") in journal(world)


def test_package_page_skips_yanked_latest_for_description(testapp, data):
    data.user("u", Role.ADMIN)
    data.release_file("d", "1.0", description="old text")
    data.release_file("d", "2.0", description="new text")
    token = log_in(testapp, "u")
    assert "new text" in testapp.get("/packages/d/").text
    testapp.post("/packages/d/2.0/set-yanked", {"csrf_token": token}, status=303)
    assert "old text" in testapp.get("/packages/d/").text
    assert '<span class="version">1.0</span>' in testapp.get("/packages/").text
    testapp.post("/packages/d/1.0/set-yanked", {"csrf_token": token}, status=303)
    assert '<span class="version">2.0</span>' in testapp.get("/packages/").text  # all yanked


def test_delete_release_needs_confirmation_and_removes_files(testapp, world, base_settings):
    import os

    token = log_in(testapp, "developer")
    confirm = testapp.get("/packages/mine/1.0/delete")
    assert "Yes, delete" in confirm.text and "mine-1.0-py3-none-any.whl" in confirm.text
    stored = os.path.join(
        base_settings["extrapypi.storage.path"], "mine", "mine-1.0-py3-none-any.whl"
    )
    assert os.path.exists(stored)
    page = testapp.post("/packages/mine/1.0/delete", {"csrf_token": token}).follow()
    assert "Deleted Mine 1.0" in page.text
    assert with_package(world, lambda s: get_release(s, get_package(s, "Mine"), "1.0")) is None
    assert not os.path.exists(stored)


def test_add_and_remove_maintainer(testapp, world):
    world.user("newbie", Role.MAINTAINER)
    token = log_in(testapp, "developer")
    page = testapp.post(
        "/packages/theirs/maintainers", {"csrf_token": token, "username": "newbie"}, status=403
    )
    page = testapp.post(
        "/packages/mine/maintainers", {"csrf_token": token, "username": "newbie", "action": "add"}
    ).follow()
    assert "<span>newbie</span>" in page.text
    bad = testapp.post(
        "/packages/mine/maintainers", {"csrf_token": token, "username": "ghost"}, status=400
    )
    assert "There is no user named &#39;ghost&#39;." in bad.text
    testapp.post(
        "/packages/mine/maintainers",
        {"csrf_token": token, "username": "newbie", "action": "remove"},
        status=303,
    )
    names = with_package(world, lambda s: [u.username for u in get_package(s, "Mine").maintainers])
    assert "newbie" not in names
    assert ("add maintainer", "newbie") in journal(world)
    assert ("remove maintainer", "newbie") in journal(world)


def test_delete_package_as_admin(testapp, world, base_settings):
    import os

    token = log_in(testapp, "admin")
    assert "Yes, delete" in testapp.get("/packages/theirs/delete").text
    testapp.post("/packages/theirs/delete", {"csrf_token": token}, status=303)
    assert with_package(world, lambda s: get_package(s, "Theirs")) is None
    assert not os.path.exists(
        os.path.join(
            base_settings["extrapypi.storage.path"], "theirs", "theirs-0.1-py3-none-any.whl"
        )
    )


@pytest.mark.parametrize(
    ("path", "fields"),
    [
        ("/packages/mine/2.0/set-yanked", {"reason": "x"}),
        ("/packages/mine/2.0/delete", {}),
        ("/packages/mine/maintainers", {"username": "installer"}),
        ("/packages/mine/delete", {}),
        (
            "/users/@@new",
            {"username": "x", "password": "abcdef", "confirmation": "abcdef", "role": "admin"},
        ),
        ("/users/installer/", {"action": "update", "role": "admin", "email": ""}),
        ("/users/installer/delete", {}),
        ("/account", {"action": "email", "email": "evil@example.com"}),
    ],
)
def test_state_changes_without_csrf_token_are_refused(testapp, world, path, fields):
    token = log_in(testapp, "admin")
    testapp.post(path, fields, status=400)
    testapp.post(path, {**fields, "csrf_token": token + "x"}, status=400)
    assert (
        with_package(world, lambda s: get_release(s, get_package(s, "Mine"), "2.0").yanked) is False
    )
    assert with_package(world, lambda s: get_user(s, "installer").role) == "installer"
    assert with_package(world, lambda s: get_user(s, "x")) is None
    assert with_package(world, lambda s: get_user(s, "admin").email) == ""


def test_get_never_changes_state(testapp, world):
    log_in(testapp, "admin")
    testapp.get("/packages/mine/2.0/set-yanked", status=405)
    testapp.get("/packages/mine/maintainers", status=405)
    assert with_package(world, lambda s: get_package(s, "Mine")) is not None


# --- users admin ---------------------------------------------------------------------------


def test_admin_creates_user_with_password_confirmation(testapp, world):
    token = log_in(testapp, "admin")
    form = {
        "csrf_token": token,
        "username": "zoe",
        "email": "zoe@example.com",
        "role": "developer",
        "is_active": "1",
    }
    bad = testapp.post(
        "/users/@@new",
        {**form, "password": "zoe-secret-one", "confirmation": "zoe-secret-two"},
        status=400,
    )
    assert "differ" in bad.text and 'value="zoe"' in bad.text
    assert with_package(world, lambda s: get_user(s, "zoe")) is None
    weak = testapp.post(
        "/users/@@new",
        {**form, "password": "QWERTY123456", "confirmation": "QWERTY123456"},
        status=400,
    )
    assert "10,000 most common" in weak.text
    short = testapp.post(
        "/users/@@new", {**form, "password": "zoe-1", "confirmation": "zoe-1"}, status=400
    )
    assert "at least 12 characters" in short.text
    page = testapp.post(
        "/users/@@new", {**form, "password": "zoe-secret-one", "confirmation": "zoe-secret-one"}
    ).follow()
    assert "Created user zoe (developer)." in page.text
    dup = testapp.post(
        "/users/@@new",
        {**form, "password": "zoe-secret-one", "confirmation": "zoe-secret-one"},
        status=400,
    )
    assert "already exists" in dup.text
    other = webtest.TestApp(testapp.app, extra_environ={"HTTP_HOST": "example.com"})
    log_in(other, "zoe", "zoe-secret-one")
    assert "zoe · developer" in other.get("/").text


def test_admin_edits_role_email_and_deactivates(testapp, world, auth):
    token = log_in(testapp, "admin")
    testapp.post(
        "/users/installer/",
        {"csrf_token": token, "action": "update", "role": "developer", "email": "i@example.com"},
        status=303,
    )
    user = with_package(
        world, lambda s: (lambda u: (u.role, u.email, u.is_active))(get_user(s, "installer"))
    )
    assert user == ("developer", "i@example.com", False)
    testapp.get("/packages/", headers=auth("installer"), status=401)
    bad = testapp.post(
        "/users/installer/",
        {"csrf_token": token, "action": "update", "role": "root", "email": ""},
        status=400,
    )
    assert "Unknown role" in bad.text


def test_admin_sets_a_password(testapp, world, auth):
    token = log_in(testapp, "admin")
    testapp.post(
        "/users/installer/",
        {
            "csrf_token": token,
            "action": "password",
            "password": "n3w-pass-for-pip",
            "confirmation": "n3w-pass-for-pip",
        },
        status=303,
    )
    testapp.get("/packages/", headers=auth("installer", "n3w-pass-for-pip"), status=200)


def test_admin_cannot_delete_or_deactivate_self_nor_last_admin(testapp, world):
    token = log_in(testapp, "admin")
    response = testapp.post("/users/admin/delete", {"csrf_token": token}, status=400)
    assert "cannot delete your own account" in response.text
    response = testapp.post(
        "/users/admin/",
        {"csrf_token": token, "action": "update", "role": "admin", "email": ""},
        status=400,
    )
    assert "cannot deactivate your own account" in response.text
    response = testapp.post(
        "/users/admin/",
        {
            "csrf_token": token,
            "action": "update",
            "role": "developer",
            "email": "",
            "is_active": "1",
        },
        status=400,
    )
    assert "last active admin" in response.text
    assert with_package(world, lambda s: get_user(s, "admin").role) == "admin"


def test_last_admin_rule_counts_active_admins(testapp, world):
    world.user("boss", Role.ADMIN)
    token = log_in(testapp, "boss")
    testapp.post("/users/admin/delete", {"csrf_token": token}, status=303)
    assert with_package(world, lambda s: get_user(s, "admin")) is None
    assert ("delete user", "admin") in journal(world)


def test_deleting_a_user_keeps_their_uploads(testapp, world):
    token = log_in(testapp, "admin")
    testapp.post("/users/developer/delete", {"csrf_token": token}, status=303)
    assert "2.0" in testapp.get("/packages/mine/").text


# --- my account ----------------------------------------------------------------------------


def test_account_email_and_password_change(testapp, world, auth):
    token = log_in(testapp, "installer")
    page = testapp.get("/account")
    assert "My account" in page.text
    testapp.post(
        "/account", {"csrf_token": token, "action": "email", "email": "me@example.com"}, status=303
    )
    assert with_package(world, lambda s: get_user(s, "installer").email) == "me@example.com"
    bad = testapp.post(
        "/account", {"csrf_token": token, "action": "email", "email": "no"}, status=400
    )
    assert "does not look like an email" in bad.text
    wrong = testapp.post(
        "/account",
        {
            "csrf_token": token,
            "action": "password",
            "current": "nope",
            "password": "abcd",
            "confirmation": "abcd",
        },
        status=400,
    )
    assert "current password is wrong" in wrong.text
    testapp.post(
        "/account",
        {
            "csrf_token": token,
            "action": "password",
            "current": "correct horse",
            "password": "abcd",
            "confirmation": "abcd",
        },
        status=400,
    )
    testapp.post(
        "/account",
        {
            "csrf_token": token,
            "action": "password",
            "current": "correct horse",
            "password": "a longer one, mine",
            "confirmation": "a longer one, mine",
        },
        status=303,
    )
    assert "installer · installer" in testapp.get("/").text  # this session carries on
    testapp.get("/packages/", headers=auth("installer", "a longer one, mine"), status=200)


# --- login ---------------------------------------------------------------------------------


def test_remember_me_makes_a_lasting_cookie(testapp, world):
    page = testapp.get("/login")
    plain = testapp.post(
        "/login",
        {"username": "installer", "password": "correct horse", "csrf_token": csrf_token(page)},
    )
    assert "Max-Age" not in plain.headers["Set-Cookie"]
    page = testapp.get("/login")
    lasting = testapp.post(
        "/login",
        {
            "username": "installer",
            "password": "correct horse",
            "remember": "1",
            "csrf_token": csrf_token(page),
        },
    )
    assert "Max-Age=1209600" in lasting.headers["Set-Cookie"]
    # Logging in again without "remember me" goes back to a browser-session cookie.
    page = testapp.get("/login")
    again = testapp.post(
        "/login",
        {"username": "installer", "password": "correct horse", "csrf_token": csrf_token(page)},
    )
    assert "Max-Age" not in again.headers["Set-Cookie"]
    assert "installer · installer" in testapp.get("/").text


# --- safety --------------------------------------------------------------------------------

XSS_NAME = "<script>alert(1)</script>"


def test_xss_in_summary_and_description_is_neutralised(testapp, data):
    data.user("u", Role.ADMIN)
    data.release_file(
        "evil",
        "1.0",
        summary=XSS_NAME,
        description=(
            "Title\n=====\n\n.. raw:: html\n\n   <script>alert(2)</script>\n\n"
            ".. include:: /etc/passwd\n\n`click <javascript:alert(3)>`_\n"
        ),
        description_content_type="text/x-rst",
    )
    data.release_file(
        "evil-md",
        "1.0",
        description="[x](javascript:alert(4)) <script>alert(5)</script> "
        "<img src=x onerror=alert(6)>",
        description_content_type="text/markdown",
    )
    log_in(testapp, "u")
    for path in ("/packages/", "/packages/evil/", "/packages/evil/1.0/", "/packages/?q=script"):
        text = testapp.get(path).text
        assert "<script>" not in text and "&lt;script&gt;alert(1)" in text
    for path in ("/packages/evil/", "/packages/evil/1.0/"):
        text = testapp.get(path).text
        assert "root:" not in text and "javascript:" not in text.replace(
            "javascript:alert(3)&gt;", ""
        )
        assert "<script>alert(2)" not in text
    md = testapp.get("/packages/evil-md/").text
    assert "javascript:" not in md and "<script>" not in md and "onerror" not in md
    assert "&lt;script&gt;alert(5)" in md


def test_search_query_is_escaped(testapp, world):
    log_in(testapp, "installer")
    text = testapp.get("/packages/", {"q": '"><script>alert(1)</script>'}).text
    assert "<script>" not in text and "&#34;&gt;&lt;script&gt;" in text


def test_anonymous_read_shows_pages_but_no_controls(base_settings, clean, data):
    data.user("admin", Role.ADMIN)
    data.release_file("open", "1.0", summary="readable")
    app = main({}, **{**base_settings, "extrapypi.anonymous_read": "true"})
    anonymous = webtest.TestApp(app, extra_environ={"HTTP_HOST": "example.com"})
    assert "readable" in anonymous.get("/packages/", headers=BROWSER).text
    page = anonymous.get("/packages/open/1.0/", headers=BROWSER).text
    assert "Log in" in page and "/set-yanked" not in page and "Delete release" not in page
    assert "Add maintainer" not in anonymous.get("/packages/open/", headers=BROWSER).text
    anonymous.get("/account", headers=BROWSER, status=302)
    anonymous.get("/users/", headers=BROWSER, status=302)
    anonymous.post("/packages/open/1.0/set-yanked", {"reason": "x"}, status=401)


def test_markdown_and_plain_descriptions(testapp, data):
    data.user("u")
    data.release_file(
        "md", "1.0", description="# Title\n\n*it*", description_content_type="text/markdown"
    )
    data.release_file(
        "txt", "1.0", description="a < b\n  indented", description_content_type="text/plain"
    )
    log_in(testapp, "u")
    assert "<em>it</em>" in testapp.get("/packages/md/").text
    assert '<pre class="plain">a &lt; b\n  indented</pre>' in testapp.get("/packages/txt/").text


def test_rst_description_renders_safely(testapp, data):
    data.user("u")
    data.release_file(
        "docs",
        "1.0",
        description="Hello\n=====\n\nSome *emphasis* and `a link <https://example.org/>`_.\n",
        description_content_type="text/x-rst",
    )
    log_in(testapp, "u")
    text = testapp.get("/packages/docs/").text
    assert "<em>emphasis</em>" in text and 'href="https://example.org/"' in text


def test_xss_in_usernames_is_escaped(testapp, data):
    data.user("adm", Role.ADMIN)
    data.user("<b>x<b>\"'")
    log_in(testapp, "adm")
    text = testapp.get("/users/").text
    assert "<b>x<b>" not in text and "&lt;b&gt;x&lt;b&gt;&#34;&#39;" in text


def test_security_headers_on_html_pages(testapp, world):
    for response in (testapp.get("/login"), testapp.get("/ping")):
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Referrer-Policy"] == "same-origin"
    page = testapp.get("/login")
    csp = page.headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp
    assert page.headers["X-Frame-Options"] == "DENY"
    assert "style=" not in page.text
    # Script only from this site's static files, never inline (the CSP forbids that anyway).
    scripts = re.findall(r"<script([^>]*)>(.*?)</script>", page.text, re.S)
    assert scripts and page.text.count("<script") == len(scripts)
    for attributes, body in scripts:
        assert 'src="http://example.com/static/' in attributes and not body.strip()


# --- switched off --------------------------------------------------------------------------


def test_dashboard_off_leaves_no_dashboard_page(base_settings, clean, data, auth):
    data.user("admin", Role.ADMIN)
    data.release_file("pkg", "1.0")
    app = main({}, **{**base_settings, "extrapypi.dashboard": "false"})
    client = webtest.TestApp(app, extra_environ={"HTTP_HOST": "example.com"})
    headers = {**BROWSER, **auth("admin")}
    for path in (
        "/",
        "/packages/",
        "/packages/pkg/",
        "/packages/pkg/1.0/",
        "/users/",
        "/users/@@new",
        "/account",
        "/login",
    ):
        response = client.get(path, headers=headers, expect_errors=True)
        # "/" is still the upload endpoint (POST only): 405 there
        assert response.status_int == (405 if path == "/" else 404), path
    client.post("/logout", headers=auth("admin"), status=404)
