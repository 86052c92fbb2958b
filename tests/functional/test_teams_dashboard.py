"""Teams and namespaces in the dashboard (admins only), and team maintainers on package pages."""

import pytest
from test_dashboard import BROWSER, journal, log_in

from extrapypi.permissions import Role
from extrapypi.services import namespaces as ns
from extrapypi.services import teams


@pytest.fixture
def world(data):
    for role in (Role.INSTALLER, Role.MAINTAINER, Role.DEVELOPER, Role.ADMIN):
        data.user(role.value, role)
    data.user("dev2", Role.DEVELOPER)
    data.release_file("Mine", "1.0", uploader="developer")
    return data


def state(data):
    tm, dbsession = data.session()
    with tm:
        return (
            {t.name: [m.username for m in t.members] for t in teams.list_teams(dbsession)},
            {g.name: g.owner for g in ns.list_namespaces(dbsession)},
        )


def test_admin_creates_team_adds_members_grants_and_revokes(testapp, world):
    token = log_in(testapp, "admin")
    page = testapp.get("/teams/", headers=BROWSER)
    assert "No teams yet." in page.text
    testapp.post("/teams/@@new", {"name": "platform", "csrf_token": token}, status=303)
    for username in ("developer", "dev2"):
        testapp.post(
            "/teams/platform/",
            {"action": "add-member", "username": username, "csrf_token": token},
            status=303,
        )
    testapp.post(
        "/teams/@@namespaces",
        {"action": "grant", "namespace": "Acme", "owner": "team:platform", "csrf_token": token},
        status=303,
    )
    assert state(world) == ({"platform": ["dev2", "developer"]}, {"acme": "team:platform"})
    page = testapp.get("/teams/", headers=BROWSER)
    assert "dev2, developer" in page.text and "team:platform" in page.text
    testapp.post(
        "/teams/platform/",
        {"action": "remove-member", "username": "dev2", "csrf_token": token},
        status=303,
    )
    testapp.post(
        "/teams/@@namespaces",
        {"action": "revoke", "namespace": "acme", "csrf_token": token},
        status=303,
    )
    assert state(world) == ({"platform": ["developer"]}, {})
    testapp.post("/teams/platform/", {"action": "delete", "csrf_token": token}, status=303)
    assert state(world) == ({}, {})
    actions = [a for a, _ in journal(world)]
    for action in ("create team", "add team member", "grant namespace", "revoke namespace"):
        assert action in actions


@pytest.mark.parametrize(
    "path, fields, message",
    [
        ("/teams/@@new", {"name": "Bad Name"}, "Invalid team name"),
        ("/teams/platform/", {"action": "add-member", "username": "ghost"}, "No user named"),
        ("/teams/platform/", {"action": "remove-member", "username": "admin"}, "is not a member"),
        (
            "/teams/@@namespaces",
            {"action": "grant", "namespace": "x", "owner": "team:nope"},
            "No team",
        ),
        (
            "/teams/@@namespaces",
            {"action": "grant", "namespace": "a-b-c", "owner": "admin"},
            "at most 1",
        ),
        ("/teams/@@namespaces", {"action": "revoke", "namespace": "nothing"}, "No namespace"),
    ],
)
def test_refusals_show_the_reason(testapp, world, path, fields, message):
    token = log_in(testapp, "admin")
    testapp.post("/teams/@@new", {"name": "platform", "csrf_token": token}, status=303)
    page = testapp.post(path, {**fields, "csrf_token": token}, status=400)
    assert message in page.text


@pytest.mark.parametrize("username", ["installer", "maintainer", "developer"])
def test_only_admins_reach_teams(testapp, world, username):
    token = log_in(testapp, username)
    testapp.get("/teams/", headers=BROWSER, status=403)
    testapp.post("/teams/@@new", {"name": "x", "csrf_token": token}, status=403)
    assert state(world) == ({}, {})


def test_team_forms_need_csrf(testapp, world):
    log_in(testapp, "admin")
    testapp.post("/teams/@@new", {"name": "platform"}, status=400)
    assert state(world) == ({}, {})


def test_package_team_maintainers_form(testapp, world, auth):
    tm, dbsession = world.session()
    with tm:
        teams.create_team(dbsession, "platform", None)
    token = log_in(testapp, "developer")  # developers manage the packages they maintain
    testapp.post(
        "/packages/mine/team-maintainers",
        {"action": "add", "team": "platform", "csrf_token": token},
        status=303,
    )
    page = testapp.get("/packages/mine/", headers=BROWSER)
    assert "<span>team:platform</span>" in page.text
    response = testapp.post(
        "/packages/mine/team-maintainers",
        {"action": "add", "team": "ghost", "csrf_token": token},
        status=400,
    )
    assert "No team named &#39;ghost&#39;." in response.text
    testapp.post(
        "/packages/mine/team-maintainers",
        {"action": "remove", "team": "team:platform", "csrf_token": token},
        status=303,
    )
    page = testapp.get("/packages/mine/", headers=BROWSER)
    assert "<span>team:platform</span>" not in page.text and "No team." in page.text
    token = log_in(testapp, "maintainer")  # not a maintainer of Mine: no MANAGE
    testapp.post(
        "/packages/mine/team-maintainers",
        {"action": "add", "team": "platform", "csrf_token": token},
        status=403,
    )


def test_admin_nav_links_to_teams(testapp, world):
    log_in(testapp, "admin")
    assert 'href="http://example.com/teams/"' in testapp.get("/packages/", headers=BROWSER).text


@pytest.mark.parametrize("name", ["new", "namespaces"])
def test_teams_named_like_the_pages_views_break_nothing(testapp, world, name):
    token = log_in(testapp, "admin")
    testapp.post("/teams/@@new", {"name": name, "csrf_token": token}, status=303)
    testapp.post("/teams/@@new", {"name": "second", "csrf_token": token}, status=303)
    testapp.post(
        "/teams/@@namespaces",
        {"action": "grant", "namespace": "acme", "owner": f"team:{name}", "csrf_token": token},
        status=303,
    )
    page = testapp.get(f"/teams/{name}/", headers=BROWSER)
    assert f"Team {name}" in page.text
    assert state(world) == ({name: [], "second": []}, {"acme": f"team:{name}"})
