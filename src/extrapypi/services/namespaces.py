"""Reserved name prefixes ("namespaces", PEP 752), granted by admins to one user or one team.

A grant for ``acme`` covers the project ``acme`` and every project whose normalized name starts
with ``acme-``. Creating such a project needs the grant: the uploader is its owner, or a member
of the owning team (else the upload fails with 409 Conflict). Projects that existed before the
grant keep working: the API marks them ``owned: false``. Grants never overlap another owner's
(the spec's rule: compare with a hyphen appended), and a depth limit bounds the number of
hyphens a granted namespace may contain (``extrapypi.namespace_max_depth``).

Every change bumps the change serial: project pages list their namespaces and are cached by it.
"""

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from ..models import Namespace, Package, Team, User, team_members
from .journal import record
from .names import normalize_name
from .teams import TEAM_PREFIX

DEFAULT_MAX_DEPTH = 1


class NamespaceError(ValueError):
    """A grant or revocation that cannot be made; the message is for the user."""


#: The longest namespace: as long as a project name may be (and the column holds).
NAME_MAX = 200


def normalize_namespace(name: str) -> str:
    """A namespace is a valid project name, kept normalized (``foo.bar`` → ``foo-bar``)."""
    try:
        normalized = normalize_name(name.strip())
    except ValueError:
        raise NamespaceError(
            f"Invalid namespace {name[:NAME_MAX]!r}: it must be a valid project name."
        ) from None
    if len(normalized) > NAME_MAX:
        raise NamespaceError(f"Invalid namespace: it has more than {NAME_MAX} characters.")
    return normalized


def depth(namespace: str) -> int:
    return namespace.count("-")


def covers(namespace: str, normalized_project: str) -> bool:
    """The project is the namespace itself or starts with the namespace and a hyphen."""
    return normalized_project == namespace or normalized_project.startswith(namespace + "-")


def _overlaps(proposed: str, existing: str) -> bool:
    proposed, existing = proposed + "-", existing + "-"
    return existing.startswith(proposed) or proposed.startswith(existing)


def list_namespaces(dbsession: Session) -> list[Namespace]:
    return list(
        dbsession.scalars(
            select(Namespace)
            .order_by(Namespace.name)
            .options(selectinload(Namespace.user), selectinload(Namespace.team))
        )
    )


def get_namespace(dbsession: Session, name: str) -> Namespace | None:
    if "\x00" in name:
        return None
    return dbsession.scalars(select(Namespace).where(Namespace.name == name)).one_or_none()


def _same_owner(grant: Namespace, owner: User | Team) -> bool:
    if isinstance(owner, Team):
        return grant.team_id == owner.id
    return grant.user_id == owner.id


def owner_name(owner: User | Team) -> str:
    return TEAM_PREFIX + owner.name if isinstance(owner, Team) else owner.username


def grant(
    dbsession: Session,
    name: str,
    owner: User | Team,
    actor: User | None,
    *,
    max_depth: int = DEFAULT_MAX_DEPTH,
) -> Namespace:
    namespace = normalize_namespace(name)
    if depth(namespace) > max_depth:
        raise NamespaceError(
            f"Namespace {namespace!r} has {depth(namespace)} hyphens: this index grants at most "
            f"{max_depth} (extrapypi.namespace_max_depth)."
        )
    for existing in list_namespaces(dbsession):
        if existing.name == namespace:
            raise NamespaceError(f"Namespace {namespace!r} is already granted to {existing.owner}.")
        if _overlaps(namespace, existing.name) and not _same_owner(existing, owner):
            raise NamespaceError(
                f"Namespace {namespace!r} overlaps {existing.name!r}, granted to "
                f"{existing.owner}: grants of different owners may not overlap."
            )
    if isinstance(owner, Team):
        reserved = Namespace(name=namespace, team=owner)
    else:
        reserved = Namespace(name=namespace, user=owner)
    dbsession.add(reserved)
    dbsession.flush()
    record(
        dbsession,
        "grant namespace",
        detail=f"{namespace}: {owner_name(owner)}",
        user=actor,
        changes_index=True,
    )
    return reserved


def revoke(dbsession: Session, name: str, actor: User | None) -> Namespace:
    namespace = normalize_namespace(name)
    reserved = get_namespace(dbsession, namespace)
    if reserved is None:
        raise NamespaceError(f"No namespace {namespace!r} is granted.")
    owner = reserved.owner
    dbsession.delete(reserved)
    dbsession.flush()
    record(
        dbsession,
        "revoke namespace",
        detail=f"{namespace}: {owner}",
        user=actor,
        changes_index=True,
    )
    return reserved


def matching(dbsession: Session, normalized_project: str) -> list[Namespace]:
    """The grants covering this project name, shortest first."""
    return [g for g in list_namespaces(dbsession) if covers(g.name, normalized_project)]


def _member_team_ids(dbsession: Session, user_id: int) -> set[int]:
    return set(
        dbsession.scalars(select(team_members.c.team_id).where(team_members.c.user_id == user_id))
    )


def creation_conflict(dbsession: Session, project_name: str, user: User | None) -> str | None:
    """Why ``user`` may not create this project (a 409 message), or None when they may.

    ``user`` None is the operator's own import (``extrapypi import-dists``): not refused.
    """
    if user is None:
        return None
    normalized = normalize_name(project_name)
    team_ids: set[int] | None = None
    for reserved in matching(dbsession, normalized):
        if reserved.user_id is not None:
            if reserved.user_id == user.id:
                continue
        else:
            if team_ids is None:
                team_ids = _member_team_ids(dbsession, user.id)
            if reserved.team_id in team_ids:
                continue
        return (
            f"Conflict: the name {project_name!r} is in the namespace {reserved.name!r} "
            f"reserved for {reserved.owner}; user {user.username!r} may not create it"
        )
    return None


def owning_teams(dbsession: Session, normalized_project: str) -> list[Team]:
    """Teams owning a namespace that covers this name: they maintain a project created in it."""
    return [g.team for g in matching(dbsession, normalized_project) if g.team is not None]


def _owned(dbsession: Session, reserved: Namespace, package: Package) -> bool:
    """Whether the project's owner holds the grant: the owning user (or team) maintains it,
    or, for a team's grant, one of its members does."""
    maintainer_ids = {m.id for m in package.maintainers}
    if reserved.user_id is not None:
        return reserved.user_id in maintainer_ids
    if any(t.id == reserved.team_id for t in package.team_maintainers):
        return True
    return any(m.id in maintainer_ids for m in reserved.team.members)


def project_namespaces(dbsession: Session, normalized_name: str, package_id: int) -> list | None:
    """The JSON API 1.5 ``namespaces`` value: None, or ``{name, owned}`` per matching grant."""
    grants = matching(dbsession, normalized_name)
    if not grants:
        return None
    package = dbsession.get(Package, package_id)
    return [{"name": g.name, "owned": _owned(dbsession, g, package)} for g in grants]


def namespace_list(dbsession: Session) -> list[dict]:
    """``GET /namespaces``: every reserved namespace."""
    return [{"name": g.name} for g in list_namespaces(dbsession)]


def parent_of(namespace: str) -> str | None:
    return namespace.rpartition("-")[0] or None


def namespace_detail(dbsession: Session, namespace: str) -> dict | None:
    """``GET /namespace/<name>``: name, parent (if granted), direct children, owner."""
    grants = {g.name: g for g in list_namespaces(dbsession)}
    reserved = grants.get(namespace)
    if reserved is None:
        return None
    parent = parent_of(namespace)
    return {
        "name": namespace,
        "parent": parent if parent in grants else None,
        "children": sorted(n for n in grants if parent_of(n) == namespace),
        "owner": reserved.owner,
    }
