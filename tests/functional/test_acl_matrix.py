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
    P.MANAGE: (N, N, Y, Y),
    P.DELETE: (N, N, N, Y),
    P.ADMIN: (N, N, N, Y),
}
NOT_MAINTAINED = {
    P.VIEW: (Y, Y, Y, Y),
    P.DOWNLOAD: (Y, Y, Y, Y),
    P.UPLOAD: (N, N, N, Y),
    P.CREATE: (N, N, Y, Y),
    P.YANK: (N, N, N, Y),
    P.MANAGE: (N, N, N, Y),
    P.DELETE: (N, N, N, Y),
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
