"""Why a logged-in user was refused: the rule of the permission tables that did not grant it.

The ACL only answers yes or no (``ACLDenied`` names the catch-all ``DENY_ALL`` entry whatever
the cause), so the reason is read from the same tables the ACLs are built from
(``ROLE_PERMISSIONS`` at the root, ``MAINTAINER_PERMISSIONS`` on a package): is the role too low
everywhere, too low even on a package the user maintains, or is the user not a maintainer?
"""

from pyramid.location import lineage

from .permissions import (
    MAINTAINER_PERMISSIONS,
    ROLE_ORDER,
    ROLE_PERMISSIONS,
    Permission,
    Role,
)
from .services.tokens import token_refusal

#: What the user tried, in words; ``{package}`` is the package's name where there is one.
ACTIONS = {
    Permission.VIEW: "view this",
    Permission.DOWNLOAD: "download this file",
    Permission.UPLOAD: "upload to {package}",
    Permission.CREATE: "create new packages",
    Permission.YANK: "yank releases of {package}",
    Permission.MANAGE: "manage {package}",
    Permission.DELETE: "delete {package}",
    Permission.ADMIN: "administer {package}",
    Permission.STATUS: "change the status of {package}",
    Permission.QUARANTINE: "quarantine {package} or lift its quarantine",
    Permission.ACCOUNT: "see an account page",
    Permission.PUBLISHERS: "manage the trusted publishers of {package}",
}


def _roles_granting(table: dict, permission) -> list[Role]:
    return [role for role in ROLE_ORDER if permission in table.get(role, ())]


def _or_higher(role: Role) -> str:
    return f"the {role} role" if role is Role.ADMIN else f"the {role} role or higher"


def package_of(context):
    """The package a resource belongs to (itself, a release, a file), or None."""
    for location in lineage(context):
        package = getattr(location, "package", None)
        if package is not None:
            return package
    return None


def project_of(context) -> str | None:
    """The normalized name of the project a resource is about (an existing package, or one an
    upload would create: ``resources.NewProject``), or None."""
    for location in lineage(context):
        package = getattr(location, "package", None)
        if package is not None:
            return package.normalized_name
        name = getattr(location, "new_project_name", None)
        if name is not None:
            return name
    return None


def _maintains(identity, package) -> bool:
    """Listed as a maintainer, or a member of a team that is."""
    if any(maintainer.id == identity.id for maintainer in package.maintainers):
        return True
    return any(
        member.id == identity.id
        for team in getattr(package, "team_maintainers", ())
        for member in team.members
    )


def admin_place(context) -> str | None:
    """What an admins-only place is for (``admin_only`` on a resource), or None elsewhere.

    Such a place's own ACL grants nothing by the role tables, so they cannot say who may.
    """
    for location in lineage(context):
        action = getattr(location, "admin_only", None)
        if action:
            return action
    return None


def refusal_reason(identity, permission, package=None, context=None) -> str:
    """``Forbidden: user 'x' (role) may not <action>: <the rule that refused>``.

    For an API token whose limits refused, the limit that did (``services/tokens.py``).
    """
    grant = getattr(identity, "token", None)
    if grant is not None:
        project = project_of(context) if context is not None else None
        if project is None and package is not None:
            project = package.normalized_name
        reason = token_refusal(grant, permission, project)
        if reason is not None:
            return reason
    role = Role(identity.role)
    who = f"user {identity.username!r} ({role})"
    place = admin_place(context) if context is not None else None
    if place is not None:
        return f"Forbidden: {who} may not {place}: that takes the admin role"
    name = repr(package.name) if package is not None else "this package"
    action = ACTIONS.get(permission, "do this").format(package=name)
    refused = f"Forbidden: {who} may not {action}"
    at_root = [*_roles_granting(ROLE_PERMISSIONS, permission), Role.ADMIN]  # admins: all
    as_maintainer = _roles_granting(MAINTAINER_PERMISSIONS, permission)
    if package is None or not as_maintainer:
        return f"{refused}: that takes {_or_higher(at_root[0])}"
    if _maintains(identity, package):
        if role not in as_maintainer:
            return (
                f"{refused}: it is one of its maintainers, but a maintainer needs "
                f"{_or_higher(as_maintainer[0])} for that"
            )
        return f"{refused}: refused by the package's access rules"  # not reached today
    needed = _or_higher(as_maintainer[0])
    if role not in as_maintainer:
        return f"{refused}: not one of its maintainers, and a maintainer would need {needed}"
    return f"{refused}: not one of its maintainers (its maintainers with {needed} may, and admins)"
