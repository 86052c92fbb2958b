"""Every role × permission × token scope (and project list), through the real policy: a token
grants exactly what its owner's role grants, intersected with its scope and projects."""

import pytest
from pyramid.request import Request
from pyramid.scripting import prepare
from test_acl_matrix import MAINTAINED, NOT_MAINTAINED, ROLES
from test_tokens import make_token, token_auth

from extrapypi.permissions import Permission
from extrapypi.resources import PackageResource, Root
from extrapypi.services.packages import get_package
from extrapypi.services.tokens import SCOPE_PERMISSIONS

P = Permission
SCOPES = {
    "read": ("read", ()),
    "upload": ("upload", ()),
    "upload-for-mine": ("upload", ("mine",)),
}


def token_permits(app, headers, package_name, permission, path="/simple/") -> bool:
    """As ``conftest.permits``, for a request on a client path (tokens refuse the dashboard)."""
    request = Request.blank(path, headers=headers)
    env = prepare(request=request, registry=app.registry)
    try:
        with request.tm:
            root = Root(request)
            package = get_package(request.dbsession, package_name)
            context = PackageResource(request, package, parent=root["simple"], name=package_name)
            return bool(request.has_permission(permission, context))
    finally:
        env["closer"]()


@pytest.fixture
def world(data):
    for role in ROLES:
        data.user(role.value, role)
    data.package("Mine", maintainers=tuple(r.value for r in ROLES))
    data.package("Theirs")
    return data


@pytest.mark.parametrize("scope", list(SCOPES))
@pytest.mark.parametrize("maintained", [True, False], ids=["maintained", "not-maintained"])
def test_token_matrix(app, world, scope, maintained):
    table = MAINTAINED if maintained else NOT_MAINTAINED
    package = "Mine" if maintained else "Theirs"
    scope_name, projects = SCOPES[scope]
    tokens = {
        role: make_token(world, role.value, scope=scope_name, projects=projects) for role in ROLES
    }
    for permission, by_role in table.items():
        for role, role_grants in zip(ROLES, by_role, strict=True):
            allowed = permission in SCOPE_PERMISSIONS[scope_name]
            if projects and permission in (P.UPLOAD, P.CREATE):
                allowed = allowed and package.lower() in projects
            got = token_permits(app, token_auth(tokens[role]), package, permission)
            assert got == (role_grants and allowed), (role, permission)


def test_token_refused_everything_on_dashboard_paths(app, world):
    token = make_token(world, "admin")
    for path in ("/", "/packages/mine/", "/account", "/users/"):
        for permission in (P.VIEW, P.ADMIN, P.ACCOUNT):
            assert not token_permits(app, token_auth(token), "Mine", permission, path=path)
    assert token_permits(app, token_auth(token), "Mine", P.VIEW, path="/pypi/mine/json")
