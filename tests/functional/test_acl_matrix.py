"""Every role × every permission × package maintained or not, through the real policy."""

import pytest
from conftest import permits as policy_permits

from extrapypi.permissions import Permission, Role

Y, N = True, False
P = Permission
# permission: (installer, maintainer, developer, admin) on a package they maintain / do not
MAINTAINED = {
    P.VIEW: (Y, Y, Y, Y),
    P.DOWNLOAD: (Y, Y, Y, Y),
    P.UPLOAD: (N, Y, Y, Y),
    P.CREATE: (N, N, Y, Y),
    P.YANK: (N, Y, Y, Y),
    P.STATUS: (N, Y, Y, Y),
    P.PUBLISHERS: (N, Y, Y, Y),
    P.MANAGE: (N, N, Y, Y),
    P.DELETE: (N, N, N, Y),
    P.QUARANTINE: (N, N, N, Y),
    P.ADMIN: (N, N, N, Y),
}
NOT_MAINTAINED = {
    P.VIEW: (Y, Y, Y, Y),
    P.DOWNLOAD: (Y, Y, Y, Y),
    P.UPLOAD: (N, N, N, Y),
    P.CREATE: (N, N, Y, Y),
    P.YANK: (N, N, N, Y),
    P.STATUS: (N, N, N, Y),
    P.PUBLISHERS: (N, N, N, Y),
    P.MANAGE: (N, N, N, Y),
    P.DELETE: (N, N, N, Y),
    P.QUARANTINE: (N, N, N, Y),
    P.ADMIN: (N, N, N, Y),
}
ROLES = (Role.INSTALLER, Role.MAINTAINER, Role.DEVELOPER, Role.ADMIN)


@pytest.fixture
def world(data):
    for role in ROLES:
        data.user(role.value, role)
    data.package("Mine", maintainers=tuple(r.value for r in ROLES))
    data.package("Theirs")
    return data


def permits(app, auth, username, package_name, permission) -> bool:
    return policy_permits(app, auth(username), package_name, permission)


@pytest.mark.parametrize("permission", list(MAINTAINED))
@pytest.mark.parametrize("maintained", [True, False], ids=["maintained", "not-maintained"])
def test_acl_matrix(app, world, auth, permission, maintained):
    table = MAINTAINED if maintained else NOT_MAINTAINED
    package = "Mine" if maintained else "Theirs"
    got = tuple(permits(app, auth, role.value, package, permission) for role in ROLES)
    assert got == table[permission]


def test_listed_installer_cannot_upload_or_yank(app, data, auth):
    data.user("inst", Role.INSTALLER)
    data.package("pkg", maintainers=("inst",))
    assert permits(app, auth, "inst", "pkg", Permission.VIEW)
    assert not permits(app, auth, "inst", "pkg", Permission.UPLOAD)
    assert not permits(app, auth, "inst", "pkg", Permission.YANK)


def test_inactive_maintainer_gets_nothing(app, data, auth):
    data.user("gone", Role.DEVELOPER, active=False)
    data.package("pkg", maintainers=("gone",))
    assert not permits(app, auth, "gone", "pkg", Permission.VIEW)
    assert not permits(app, auth, "gone", "pkg", Permission.UPLOAD)


def test_anonymous_gets_nothing(app, data):
    data.package("pkg")
    assert not permits(app, lambda u: {}, None, "pkg", Permission.VIEW)


def test_matrix_covers_every_permission():
    assert set(MAINTAINED) == set(NOT_MAINTAINED) == set(Permission) - {Permission.ACCOUNT}


# --- teams: a team maintainer grant gives each member what a user grant gives their role -----


def _team(data, name, members=(), packages=()):
    from extrapypi.services.accounts import get_user
    from extrapypi.services.packages import get_package
    from extrapypi.services.teams import add_member, add_team_maintainer, create_team

    tm, dbsession = data.session()
    with tm:
        team = create_team(dbsession, name, None)
        for username in members:
            add_member(dbsession, team, get_user(dbsession, username), None)
        for package in packages:
            add_team_maintainer(dbsession, get_package(dbsession, package), team, None)


@pytest.fixture
def team_world(data):
    """``crew`` (one member per role) maintains ``CrewPkg``; ``others`` maintains ``Elsewhere``."""
    for role in ROLES:
        data.user(f"m-{role.value}", role)
    data.user("outsider", Role.DEVELOPER)
    data.package("CrewPkg")
    data.package("Elsewhere")
    _team(data, "crew", [f"m-{r.value}" for r in ROLES], ["CrewPkg"])
    _team(data, "others", ["outsider"], ["Elsewhere"])
    return data


@pytest.mark.parametrize("permission", list(MAINTAINED))
@pytest.mark.parametrize("team_maintains", [True, False], ids=["team-maintainer", "not"])
def test_acl_matrix_team_grants(app, team_world, auth, permission, team_maintains):
    table = MAINTAINED if team_maintains else NOT_MAINTAINED
    package = "CrewPkg" if team_maintains else "Elsewhere"
    got = tuple(permits(app, auth, f"m-{role.value}", package, permission) for role in ROLES)
    assert got == table[permission]


def test_team_grant_is_never_above_the_members_role(app, data, auth):
    """A maintainer-role member of a developer-heavy team still cannot manage the package."""
    data.user("lead", Role.DEVELOPER)
    data.user("helper", Role.MAINTAINER)
    data.package("pkg")
    _team(data, "crew", ["lead", "helper"], ["pkg"])
    assert permits(app, auth, "lead", "pkg", Permission.MANAGE)
    assert permits(app, auth, "helper", "pkg", Permission.UPLOAD)
    assert not permits(app, auth, "helper", "pkg", Permission.MANAGE)
    assert not permits(app, auth, "helper", "pkg", Permission.DELETE)


def test_leaving_or_deleting_the_team_ends_the_grant_at_once(app, data, auth):
    from extrapypi.services.accounts import get_user
    from extrapypi.services.teams import delete_team, get_team, remove_member

    data.user("dev", Role.DEVELOPER)
    data.user("dev2", Role.DEVELOPER)
    data.package("pkg")
    _team(data, "crew", ["dev", "dev2"], ["pkg"])
    # both served from the team cache at this serial
    assert permits(app, auth, "dev", "pkg", Permission.UPLOAD)
    assert permits(app, auth, "dev2", "pkg", Permission.UPLOAD)
    tm, dbsession = data.session()
    with tm:
        remove_member(dbsession, get_team(dbsession, "crew"), get_user(dbsession, "dev"), None)
    assert not permits(app, auth, "dev", "pkg", Permission.UPLOAD)
    assert permits(app, auth, "dev2", "pkg", Permission.UPLOAD)
    tm, dbsession = data.session()
    with tm:
        delete_team(dbsession, get_team(dbsession, "crew"), None)
    assert not permits(app, auth, "dev2", "pkg", Permission.UPLOAD)


def test_team_principals_come_from_the_policy(app, data, auth):
    from pyramid.interfaces import ISecurityPolicy
    from pyramid.request import Request
    from pyramid.scripting import prepare

    data.user("dev", Role.DEVELOPER)
    _team(data, "crew", ["dev"])
    _team(data, "alpha", ["dev"])
    _team(data, "empty")
    request = Request.blank("/", headers=auth("dev"))
    env = prepare(request=request, registry=app.registry)
    try:
        with request.tm:
            policy = app.registry.queryUtility(ISecurityPolicy)
            principals = policy.effective_principals(request)
    finally:
        env["closer"]()
    assert [p for p in principals if p.startswith("team:")] == ["team:alpha", "team:crew"]


#: Views that change state with no permission of their own, and why: the login and logout forms
#: (anyone), the uploads (which check ``create``/``upload`` by hand: the package may not exist),
#: trusted publishing's token exchange (a JWT is the credential).
NO_PERMISSION = {("Root", "login"), ("Root", "logout"), ("Root", ""), ("SimpleIndex", "")}
NO_PERMISSION |= {("LegacyUpload", "")}
#: Trusted publishing: the JWT (mint) or the minted token itself (burn) is the only credential;
#: no cookie identity is read there (``views/oidc.py``).
NO_PERMISSION |= {("OidcEndpoints", "mint-token"), ("OidcEndpoints", "burn-token")}
#: Views that take Basic credentials from programs instead of a session form's CSRF token
#: (each refuses cross-site browser requests instead: ``refuse_cross_site``).
NO_CSRF = {("ReleaseResource", "yank"), ("ReleaseResource", "unyank")} | NO_PERMISSION - {
    ("Root", "login"),
    ("Root", "logout"),
}


def test_every_state_changing_view_names_its_permission_and_checks_csrf(app):
    # Features merged side by side each add forms: none may fall back on the default (view)
    # permission, nor switch the CSRF check off, without being listed above.
    checked = 0
    for view in app.registry.introspector.get_category("views"):
        spec = view["introspectable"]
        methods = spec["request_methods"]
        methods = {methods} if isinstance(methods, str) else set(methods or ())
        if spec["exception_only"] or not methods - {"GET", "HEAD"}:
            continue
        key = (getattr(spec["context"], "__name__", None), spec["name"])
        granted = [r["value"] for r in view["related"] if r.category_name == "permissions"]
        if key not in NO_PERMISSION:
            assert granted and granted[0] in set(Permission) - {Permission.VIEW}, (key, granted)
        assert (spec["require_csrf"] is False) is (key in NO_CSRF), key
        checked += 1
    assert checked >= 25
