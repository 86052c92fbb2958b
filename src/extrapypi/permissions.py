"""Permissions and roles: the one vocabulary shared by ``__acl__`` methods and ``view_config``."""

from enum import StrEnum


class Permission(StrEnum):
    VIEW = "view"
    DOWNLOAD = "download"
    UPLOAD = "upload"
    CREATE = "create"
    YANK = "yank"
    MANAGE = "manage"
    DELETE = "delete"
    ADMIN = "admin"
    #: Archive, deprecate or reactivate a package (PEP 792 status markers).
    STATUS = "status"
    #: Quarantine a package or lift a quarantine: admins only.
    QUARANTINE = "quarantine"
    #: Any logged-in user: their own account page.
    ACCOUNT = "account"
    #: Register and remove a package's trusted publishers (its maintainers, admins).
    PUBLISHERS = "publishers"


class Role(StrEnum):
    """User roles, lowest first: each role holds everything the roles below it hold."""

    INSTALLER = "installer"
    MAINTAINER = "maintainer"
    DEVELOPER = "developer"
    ADMIN = "admin"


ROLE_ORDER: tuple[Role, ...] = (Role.INSTALLER, Role.MAINTAINER, Role.DEVELOPER, Role.ADMIN)

#: What a role may do on every package (granted by the root resource).
ROLE_PERMISSIONS: dict[Role, tuple[Permission, ...]] = {
    Role.INSTALLER: (Permission.VIEW, Permission.DOWNLOAD),
    Role.MAINTAINER: (),
    Role.DEVELOPER: (Permission.CREATE,),
    Role.ADMIN: tuple(Permission),
}

#: What a role may do on a package it maintains (granted by the package resource).
MAINTAINER_PERMISSIONS: dict[Role, tuple[Permission, ...]] = {
    Role.INSTALLER: (),
    Role.MAINTAINER: (Permission.UPLOAD, Permission.YANK, Permission.STATUS, Permission.PUBLISHERS),
    Role.DEVELOPER: (
        Permission.UPLOAD,
        Permission.YANK,
        Permission.STATUS,
        Permission.MANAGE,
        Permission.PUBLISHERS,
    ),
    Role.ADMIN: (),  # admins already hold every permission at the root
}


def roles_at_or_below(role: Role | str) -> tuple[Role, ...]:
    """The role hierarchy: an admin is also a developer, a maintainer and an installer."""
    role = Role(role)
    return ROLE_ORDER[: ROLE_ORDER.index(role) + 1]


def role_principal(role: Role | str) -> str:
    return f"role:{Role(role)}"


def user_principal(user_id: int) -> str:
    return f"user:{user_id}"


def team_principal(team_name: str) -> str:
    """Every member of the team holds it; ACLs grant it what a maintainer grant gives."""
    return f"team:{team_name}"
