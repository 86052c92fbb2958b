"""Reserved namespaces (PEP 752, JSON API 1.5): grant rules, 409 uploads, the API's shapes."""

import pytest
import sqlalchemy as sa
from dists import wheel_bytes
from test_upload import post

from extrapypi.models import Package
from extrapypi.permissions import Role
from extrapypi.services import namespaces as ns
from extrapypi.services import teams
from extrapypi.services.accounts import get_user
from extrapypi.services.packages import get_package

JSON = "application/vnd.pypi.simple.v1+json"


def grant(data, name, owner, max_depth=1):
    tm, dbsession = data.session()
    with tm:
        if owner.startswith("team:"):
            target = teams.get_team(dbsession, owner[5:])
        else:
            target = get_user(dbsession, owner)
        return ns.grant(dbsession, name, target, None, max_depth=max_depth).name


def revoke(data, name):
    tm, dbsession = data.session()
    with tm:
        ns.revoke(dbsession, name, None)


def make_team(data, name, *members):
    tm, dbsession = data.session()
    with tm:
        team = teams.create_team(dbsession, name, None)
        for username in members:
            teams.add_member(dbsession, team, get_user(dbsession, username), None)


@pytest.fixture
def world(data):
    for name in ("plat1", "plat2", "solo", "dev"):
        data.user(name, Role.DEVELOPER)
    data.user("reader", Role.INSTALLER)
    data.user("admin", Role.ADMIN)
    make_team(data, "platform", "plat1", "plat2")
    return data


# --- grant rules -----------------------------------------------------------------------------


def test_grants_are_normalized_and_listed(world):
    assert grant(world, "Acme.Tools", "team:platform") == "acme-tools"
    assert grant(world, "solo_x", "solo") == "solo-x"
    tm, dbsession = world.session()
    with tm:
        assert [(g.name, g.owner) for g in ns.list_namespaces(dbsession)] == [
            ("acme-tools", "team:platform"),
            ("solo-x", "solo"),
        ]


@pytest.mark.parametrize(
    "existing, proposed",
    [("foo-bar", "foo"), ("foo", "foo-bar"), ("foo", "FOO"), ("foo", "foo.bar")],
)
def test_grants_of_different_owners_never_overlap(world, existing, proposed):
    grant(world, existing, "solo")
    with pytest.raises(ns.NamespaceError, match="already granted to solo|overlaps"):
        grant(world, proposed, "team:platform")


def test_the_same_owner_may_hold_nested_grants_and_prefixes_need_a_hyphen(world):
    grant(world, "foo-bar", "solo")
    assert grant(world, "foo", "solo") == "foo"
    assert grant(world, "foobar", "team:platform") == "foobar"  # not an overlap: no hyphen


def test_depth_limit(world):
    with pytest.raises(ns.NamespaceError, match="has 2 hyphens: this index grants at most 1"):
        grant(world, "a-b-c", "solo")
    assert grant(world, "a-b-c", "solo", max_depth=2) == "a-b-c"


@pytest.mark.parametrize("name", ["", "-lead", "no space", "ümlaut", "a" * 300 + "!"])
def test_invalid_namespace_names_are_refused(world, name):
    with pytest.raises(ns.NamespaceError, match="must be a valid project name"):
        grant(world, name, "solo")


def test_revoke(world):
    grant(world, "acme", "team:platform")
    revoke(world, "ACME")
    with pytest.raises(ns.NamespaceError, match="No namespace 'acme' is granted"):
        revoke(world, "acme")


def test_deleting_the_owner_ends_the_grant(world):
    grant(world, "acme", "team:platform")
    grant(world, "solo", "solo")
    tm, dbsession = world.session()
    with tm:
        teams.delete_team(dbsession, teams.get_team(dbsession, "platform"), None)
        dbsession.delete(get_user(dbsession, "solo"))
    tm, dbsession = world.session()
    with tm:
        assert ns.list_namespaces(dbsession) == []


# --- uploads: 409 for a new project in someone else's namespace ------------------------------


@pytest.mark.parametrize("name", ["acme", "acme-tool", "Acme.Tool", "ACME_tool_x"])
def test_creating_a_project_in_a_foreign_namespace_is_409(testapp, world, auth, engine, name):
    grant(world, "acme", "team:platform")
    response = post(testapp, wheel_bytes(name, "1.0"), auth("solo"), status=409)
    assert response.status.startswith("409 Conflict: the name")
    assert "is in the namespace 'acme' reserved for team:platform" in response.status
    assert "user 'solo' may not create it" in response.status
    with engine.connect() as connection:
        assert connection.execute(sa.select(sa.func.count()).select_from(Package)).scalar() == 0


@pytest.mark.parametrize("name", ["acmetool", "acm", "other-acme"])
def test_names_outside_the_namespace_are_free(testapp, world, auth, name):
    grant(world, "acme", "team:platform")
    post(testapp, wheel_bytes(name, "1.0"), auth("solo"), status=200)


def test_team_members_and_user_owners_create_projects(testapp, world, auth):
    grant(world, "acme", "team:platform")
    grant(world, "solo", "solo")
    post(testapp, wheel_bytes("acme-tool", "1.0"), auth("plat1"), status=200)
    post(testapp, wheel_bytes("solo-lib", "1.0"), auth("solo"), status=200)
    post(testapp, wheel_bytes("solo-other", "1.0"), auth("plat1"), status=409)
    tm, dbsession = world.session()
    with tm:
        package = get_package(dbsession, "acme-tool")
        # created in the team's namespace: the team maintains it with its creator
        assert [t.name for t in package.team_maintainers] == ["platform"]
        assert [u.username for u in package.maintainers] == ["plat1"]
    # so the other member may upload the next version
    post(testapp, wheel_bytes("acme-tool", "2.0"), auth("plat2"), status=200)


def test_an_installer_gets_403_before_any_namespace_answer(testapp, world, auth):
    grant(world, "acme", "team:platform")
    response = post(testapp, wheel_bytes("acme-x", "1.0"), auth("reader"), status=403)
    assert "may not create new packages" in response.status


def test_existing_projects_keep_working_and_are_not_owned(testapp, world, auth):
    post(testapp, wheel_bytes("acme-legacy", "1.0"), auth("solo"), status=200)
    grant(world, "acme", "team:platform")
    post(testapp, wheel_bytes("acme-legacy", "1.1"), auth("solo"), status=200)
    page = testapp.get("/simple/acme-legacy/", headers={**auth("reader"), "Accept": JSON}).json
    assert page["namespaces"] == [{"name": "acme", "owned": False}]


def test_the_namespaces_key_follows_grants_and_revocation(testapp, world, auth):
    post(testapp, wheel_bytes("acme-tool", "1.0"), auth("plat1"), status=200)
    url, headers = "/simple/acme-tool/", {**auth("reader"), "Accept": JSON}
    assert testapp.get(url, headers=headers).json["namespaces"] is None
    grant(world, "acme", "team:platform")
    assert testapp.get(url, headers=headers).json["namespaces"] == [
        {"name": "acme", "owned": True}  # a member maintains it
    ]
    grant(world, "acme-tool", "team:platform")
    page = testapp.get(url, headers=headers).json
    assert page["meta"] == {"api-version": "1.5"}
    assert page["namespaces"] == [
        {"name": "acme", "owned": True},
        {"name": "acme-tool", "owned": True},
    ]
    revoke(world, "acme")
    revoke(world, "acme-tool")
    assert testapp.get(url, headers=headers).json["namespaces"] is None


def test_html_stays_1_4_without_namespaces(testapp, world, auth):
    grant(world, "acme", "team:platform")
    post(testapp, wheel_bytes("acme-tool", "1.0"), auth("plat1"), status=200)
    for url in ("/simple/", "/simple/acme-tool/"):
        page = testapp.get(url, headers=auth("reader"))
        assert '<meta name="pypi:repository-version" content="1.4">' in page.text
        assert "namespace" not in page.text
    root = testapp.get("/simple/", headers={**auth("reader"), "Accept": JSON}).json
    assert root["meta"] == {"api-version": "1.5"}


def test_user_owner_is_owned_only_when_they_maintain(testapp, world, auth):
    post(testapp, wheel_bytes("solo-a", "1.0"), auth("dev"), status=200)  # before the grant
    grant(world, "solo", "solo")
    post(testapp, wheel_bytes("solo-b", "1.0"), auth("solo"), status=200)
    headers = {**auth("reader"), "Accept": JSON}
    assert testapp.get("/simple/solo-a/", headers=headers).json["namespaces"] == [
        {"name": "solo", "owned": False}
    ]
    assert testapp.get("/simple/solo-b/", headers=headers).json["namespaces"] == [
        {"name": "solo", "owned": True}
    ]


# --- GET /namespaces and /namespace/<name> ---------------------------------------------------


def test_namespace_list_and_detail_shapes(testapp, world, auth):
    grant(world, "foo", "solo")
    grant(world, "foo-bar", "solo")
    grant(world, "foo-bar-baz", "solo", max_depth=2)
    grant(world, "acme", "team:platform")
    headers = auth("reader")
    listing = testapp.get("/namespaces", headers=headers)
    assert listing.content_type == JSON
    assert listing.json == [
        {"name": "acme"},
        {"name": "foo"},
        {"name": "foo-bar"},
        {"name": "foo-bar-baz"},
    ]
    assert testapp.get("/namespace/foo", headers=headers).json == {
        "name": "foo",
        "parent": None,
        "children": ["foo-bar"],  # direct children only
        "owner": "solo",
    }
    assert testapp.get("/namespace/foo-bar", headers=headers).json == {
        "name": "foo-bar",
        "parent": "foo",
        "children": ["foo-bar-baz"],
        "owner": "solo",
    }
    assert testapp.get("/namespace/acme", headers=headers).json == {
        "name": "acme",
        "parent": None,
        "children": [],
        "owner": "team:platform",
    }


def test_namespace_detail_redirects_to_the_normalized_name_and_404s(testapp, world, auth):
    grant(world, "foo-bar", "solo")
    headers = auth("reader")
    response = testapp.get("/namespace/Foo.Bar", headers=headers, status=301)
    assert response.location.endswith("/namespace/foo-bar")
    response = testapp.get("/namespace/foo", headers=headers, status=404)
    assert "no namespace 'foo' is reserved" in response.status
    testapp.get("/namespace/-bad-", headers=headers, status=404)
    testapp.get("/namespace/foo-bar/more", headers=headers, status=404)
    assert testapp.get("/namespaces", headers=headers).json == [{"name": "foo-bar"}]


def test_namespace_endpoints_need_the_right_to_read_the_index(testapp, world):
    grant(world, "acme", "team:platform")
    testapp.get("/namespaces", status=401)
    testapp.get("/namespace/acme", status=401)
    testapp.get("/namespace/nothing", status=401)


def test_the_operators_own_import_is_not_refused(world):
    grant(world, "acme", "team:platform")
    tm, dbsession = world.session()
    with tm:
        assert ns.creation_conflict(dbsession, "acme-x", None) is None
        solo = get_user(dbsession, "solo")
        assert "reserved for team:platform" in ns.creation_conflict(dbsession, "acme-x", solo)


@pytest.mark.parametrize("path", ["/namespace/acme%00x", "/namespace/" + "a" * 5000, "/namespace/"])
def test_hostile_namespace_paths_are_plain_4xx(testapp, world, auth, path):
    grant(world, "acme", "team:platform")
    response = testapp.get(path, headers=auth("reader"), expect_errors=True)
    assert 400 <= response.status_int < 500
