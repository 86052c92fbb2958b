"""Teams: named groups of users, managed by admins, that can maintain packages and own namespaces.

A team grants nothing by itself: the security policy gives each member the ``team:<name>``
principal, and a package maintained by the team grants that principal what a maintainer grant
gives the member's own role (``resources.PackageResource``). Every membership change bumps the
access serial (``models/access.py``), which keys the per-process :class:`TeamCache`.
"""

import re
import threading

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from ..models import Package, Team, User, team_members
from ..permissions import team_principal
from .journal import record

TEAM_NAME = re.compile(r"^[a-z0-9](?:[a-z0-9._-]{0,98}[a-z0-9])?$")
#: How ``maintainer``/``namespace`` commands and forms name a team instead of a user.
TEAM_PREFIX = "team:"


class TeamError(ValueError):
    """A team change that cannot be made; the message is for the user."""


def validate_team_name(name: str) -> str:
    name = name.strip()
    if not TEAM_NAME.match(name):
        raise TeamError(
            f"Invalid team name {name!r}: use 1 to 100 lowercase letters, digits, '.', '_' or "
            "'-', starting and ending with a letter or digit."
        )
    return name


def get_team(dbsession: Session, name: str) -> Team | None:
    if "\x00" in name:
        return None
    return dbsession.scalars(
        select(Team).where(Team.name == name.strip()).options(selectinload(Team.members))
    ).one_or_none()


def list_teams(dbsession: Session) -> list[Team]:
    return list(
        dbsession.scalars(select(Team).order_by(Team.name).options(selectinload(Team.members)))
    )


def create_team(dbsession: Session, name: str, actor: User | None) -> Team:
    name = validate_team_name(name)
    if get_team(dbsession, name) is not None:
        raise TeamError(f"A team named {name!r} already exists.")
    team = Team(name=name)
    dbsession.add(team)
    dbsession.flush()
    record(dbsession, "create team", detail=name, user=actor, changes_index=True)
    return team


def delete_team(dbsession: Session, team: Team, actor: User | None) -> None:
    """The team, its memberships, maintainer grants and namespaces go (rows cascade)."""
    name = team.name
    dbsession.delete(team)
    dbsession.flush()
    record(dbsession, "delete team", detail=name, user=actor, changes_index=True)


def add_member(dbsession: Session, team: Team, user: User, actor: User | None) -> None:
    if any(m.id == user.id for m in team.members):
        raise TeamError(f"{user.username} is already a member of {team.name}.")
    team.members.append(user)
    dbsession.flush()
    record(
        dbsession,
        "add team member",
        detail=f"{team.name}: {user.username}",
        user=actor,
        changes_index=True,
    )


def remove_member(dbsession: Session, team: Team, user: User, actor: User | None) -> None:
    if not any(m.id == user.id for m in team.members):
        raise TeamError(f"{user.username} is not a member of {team.name}.")
    team.members.remove(user)
    dbsession.flush()
    record(
        dbsession,
        "remove team member",
        detail=f"{team.name}: {user.username}",
        user=actor,
        changes_index=True,
    )


def add_team_maintainer(
    dbsession: Session, package: Package, team: Team, actor: User | None
) -> None:
    if any(t.id == team.id for t in package.team_maintainers):
        raise TeamError(f"{TEAM_PREFIX}{team.name} already maintains {package.name}.")
    package.team_maintainers.append(team)
    dbsession.flush()
    record(
        dbsession,
        "add maintainer",
        package_name=package.name,
        detail=TEAM_PREFIX + team.name,
        user=actor,
        changes_index=True,
    )


def remove_team_maintainer(
    dbsession: Session, package: Package, team: Team, actor: User | None
) -> None:
    if not any(t.id == team.id for t in package.team_maintainers):
        raise TeamError(f"{TEAM_PREFIX}{team.name} does not maintain {package.name}.")
    package.team_maintainers.remove(team)
    dbsession.flush()
    record(
        dbsession,
        "remove maintainer",
        package_name=package.name,
        detail=TEAM_PREFIX + team.name,
        user=actor,
        changes_index=True,
    )


def team_names_of(dbsession: Session, user_id: int) -> tuple[str, ...]:
    return tuple(
        dbsession.scalars(
            select(Team.name)
            .join(team_members, team_members.c.team_id == Team.id)
            .where(team_members.c.user_id == user_id)
            .order_by(Team.name)
        )
    )


class TeamCache:
    """Each user's team names at the newest access serial seen (every team change bumps it).

    pip's requests check permissions on every page: with this, team principals cost a dict
    lookup, not a query. Another serial empties the cache, as ``PageCache`` does.
    """

    def __init__(self, max_entries: int = 10000):
        self.max_entries = max_entries
        self.serial = -1
        self._teams: dict[int, tuple[str, ...]] = {}
        self._lock = threading.Lock()

    def get(self, serial: int, user_id: int) -> tuple[str, ...] | None:
        with self._lock:
            if serial != self.serial:
                return None
            return self._teams.get(user_id)

    def put(self, serial: int, user_id: int, names: tuple[str, ...]) -> None:
        with self._lock:
            if serial != self.serial:
                self._teams.clear()
                self.serial = serial
            if len(self._teams) >= self.max_entries:
                self._teams.clear()
            self._teams[user_id] = names


CACHE_KEY = "extrapypi.team_cache"


def team_principals(request, user_id: int) -> list[str]:
    """``team:<name>`` for every team the user belongs to (for the security policy)."""
    cache = request.registry.get(CACHE_KEY)
    if cache is None:
        cache = request.registry.setdefault(CACHE_KEY, TeamCache())
    serial = request.access_serial
    names = cache.get(serial, user_id)
    if names is None:
        names = team_names_of(request.dbsession, user_id)
        cache.put(serial, user_id, names)
    return [team_principal(name) for name in names]
