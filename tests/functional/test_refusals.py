"""Every 403 names the rule that refused: the role, the missing maintainership, or both."""

import pytest
from dists import wheel_bytes
from test_upload import assert_refused, post

from extrapypi.permissions import Role


@pytest.fixture
def team(data):
    data.user("inst", Role.INSTALLER)
    data.user("maint", Role.MAINTAINER)
    data.user("dev", Role.DEVELOPER)
    data.user("outsider", Role.DEVELOPER)
    data.release_file("shared", "1.0")
    tm, dbsession = data.session()
    with tm:
        from extrapypi.services.accounts import get_user
        from extrapypi.services.packages import get_package

        package = get_package(dbsession, "shared")
        for name in ("inst", "maint", "dev"):
            package.maintainers.append(get_user(dbsession, name))


def test_installer_added_as_maintainer_is_refused_for_its_role(testapp, team, auth):
    response = post(testapp, wheel_bytes("shared", "2.0"), auth("inst"), status=403)
    reason = (
        "Forbidden: user 'inst' (installer) may not upload to 'shared': it is one of its "
        "maintainers, but a maintainer needs the maintainer role or higher for that"
    )
    assert_refused(response, 403, reason)
    assert "not one of its maintainers" not in response.text


def test_developer_not_a_maintainer_is_refused_for_that(testapp, team, auth):
    response = post(testapp, wheel_bytes("shared", "2.0"), auth("outsider"), status=403)
    assert_refused(
        response,
        403,
        "user 'outsider' (developer) may not upload to 'shared': not one of its maintainers",
    )


def test_maintainer_creating_a_package_is_told_the_role_needed(testapp, team, auth):
    response = post(testapp, wheel_bytes("brand-new", "1.0"), auth("maint"), status=403)
    assert_refused(
        response,
        403,
        "user 'maint' (maintainer) may not create new packages: that takes the developer role "
        "or higher (no package named 'brand_new' exists yet)",
    )


def test_yank_by_an_installer_maintainer_names_the_role(testapp, team, auth):
    response = testapp.post("/packages/shared/1.0/yank", headers=auth("inst"), status=403)
    assert response.status == (
        "403 Forbidden: user 'inst' (installer) may not yank releases of 'shared': it is one of "
        "its maintainers, but a maintainer needs the maintainer role or higher for that"
    )


def test_manage_by_a_maintainer_role_names_the_developer_role(testapp, team, auth):
    response = testapp.post(
        "/packages/shared/maintainers", {"username": "outsider"}, headers=auth("maint"), status=403
    )
    assert "a maintainer needs the developer role or higher" in response.status


def test_delete_by_a_developer_maintainer_names_the_admin_role(testapp, team, auth):
    response = testapp.post("/packages/shared/delete", headers=auth("dev"), status=403)
    assert response.status == (
        "403 Forbidden: user 'dev' (developer) may not delete 'shared': that takes the admin role"
    )


def test_users_pages_name_the_admin_role(testapp, team, auth):
    response = testapp.get("/users/", headers=auth("maint"), status=403)
    assert response.status == (
        "403 Forbidden: user 'maint' (maintainer) may not administer users: "
        "that takes the admin role"
    )


def test_outsider_installer_is_told_both_rules(testapp, team, data, auth):
    data.user("visitor", Role.INSTALLER)
    response = testapp.post("/packages/shared/1.0/yank", headers=auth("visitor"), status=403)
    assert response.status.endswith(
        "not one of its maintainers, and a maintainer would need the maintainer role or higher"
    )


@pytest.mark.parametrize(
    ("method", "path", "action"),
    [
        ("GET", "/metrics", "read the metrics"),
        ("GET", "/audit/", "read the audit log"),
        ("GET", "/webhooks/", "administer webhooks"),
        ("POST", "/webhooks/", "administer webhooks"),
        ("GET", "/teams/", "administer teams and namespaces"),
        ("POST", "/teams/new", "administer teams and namespaces"),
        ("GET", "/packages/shared/retention", "administer 'shared'"),
        ("POST", "/packages/shared/retention", "administer 'shared'"),
        ("POST", "/packages/shared/quarantine", "quarantine 'shared' or lift its quarantine"),
    ],
)
@pytest.mark.parametrize("who", ["inst", "dev"])
def test_admin_pages_name_what_was_refused_and_the_admin_role(
    testapp, team, auth, who, method, path, action
):
    # Not "administer users" everywhere, and never "takes the installer role" to an installer.
    response = testapp.request(path, method=method, headers=auth(who), status=403)
    role = {"inst": "installer", "dev": "developer"}[who]
    assert response.status == (
        f"403 Forbidden: user {who!r} ({role}) may not {action}: that takes the admin role"
    )


@pytest.fixture
def team_maintains(data):
    """``shared`` maintained by the team ``core`` only (members: an installer, a maintainer)."""
    from extrapypi.services import teams
    from extrapypi.services.accounts import get_user
    from extrapypi.services.packages import get_package

    data.user("t-inst", Role.INSTALLER)
    data.user("t-maint", Role.MAINTAINER)
    data.user("t-dev", Role.DEVELOPER)
    data.release_file("shared", "1.0")
    tm, dbsession = data.session()
    with tm:
        team = teams.create_team(dbsession, "core", None)
        for name in ("t-inst", "t-maint"):
            teams.add_member(dbsession, team, get_user(dbsession, name), None)
        teams.add_team_maintainer(dbsession, get_package(dbsession, "shared"), team, None)


def test_team_members_are_told_they_maintain_it_and_what_their_role_lacks(
    testapp, team_maintains, auth
):
    response = post(testapp, wheel_bytes("shared", "2.0"), auth("t-inst"), status=403)
    assert response.status.endswith(
        "may not upload to 'shared': it is one of its maintainers, but a maintainer needs "
        "the maintainer role or higher for that"
    )
    response = testapp.post(
        "/packages/shared/team-maintainers", {"team": "core"}, headers=auth("t-maint"), status=403
    )
    assert response.status == (
        "403 Forbidden: user 't-maint' (maintainer) may not manage 'shared': it is one of its "
        "maintainers, but a maintainer needs the developer role or higher for that"
    )
    # Not a member: told so, whatever the role.
    response = testapp.post("/packages/shared/1.0/yank", headers=auth("t-dev"), status=403)
    assert response.status.endswith(
        "not one of its maintainers (its maintainers with the maintainer role or higher may, "
        "and admins)"
    )
