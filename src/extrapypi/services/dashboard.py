"""What the dashboard lists: packages with the version pip would pick, searched, paginated."""

import re
from collections.abc import Iterable
from dataclasses import dataclass
from math import ceil

from packaging.version import InvalidVersion, Version
from sqlalchemy import case, func, or_, select
from sqlalchemy.orm import Session

from ..models import Package, Release, User, package_maintainers
from . import packages
from .accounts import get_user
from .names import version_sort_key

PAGE_SIZE = 25
#: ``relevance`` only means something with a query; without one it falls back to ``recent``.
SORTS = ("relevance", "recent", "name")
QUERY_MAX = 200


@dataclass
class PackageRow:
    package: Package
    latest_version: str


@dataclass
class Page:
    items: list
    number: int
    size: int
    total: int

    @property
    def pages(self) -> int:
        return max(1, ceil(self.total / self.size))

    @property
    def has_previous(self) -> bool:
        return self.number > 1

    @property
    def has_next(self) -> bool:
        return self.number < self.pages


def page_number(value: str | int | None) -> int:
    """A page number from a query string: anything odd is page 1."""
    try:
        number = int(value or 1)
    except (TypeError, ValueError):
        return 1
    return min(max(number, 1), 1_000_000)


def like_pattern(text: str) -> str:
    """``%text%`` with LIKE's wildcards in ``text`` taken literally (escape character ``\\``)."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def is_prerelease(version: str) -> bool:
    """Pre- and dev-releases, as pip sees them (an unparsable version counts as one)."""
    try:
        return Version(version).is_prerelease
    except InvalidVersion:
        return True


def headline(releases: Iterable) -> object | None:
    """What ``pip install <name>`` picks: the highest non-yanked final release.

    A pre-release only when no final release is left, and a yanked one only when every
    release is yanked (then the page says so). ``releases`` are anything with ``version``,
    ``yanked`` and ``sort_key``.
    """
    ordered = sorted(releases, key=lambda r: r.sort_key or version_sort_key(r.version))[::-1]
    live = [r for r in ordered if not r.yanked]
    for release in live:
        if not is_prerelease(release.version):
            return release
    if live:
        return live[0]
    return ordered[0] if ordered else None


@dataclass
class _ReleaseFacts:
    version: str
    yanked: bool
    sort_key: str


def latest_versions(dbsession: Session, package_ids: list[int]) -> dict[int, str]:
    """Each package's headline version (see ``headline``), one query for a page of packages."""
    if not package_ids:
        return {}
    by_package: dict[int, list[_ReleaseFacts]] = {}
    rows = dbsession.execute(
        select(Release.package_id, Release.version, Release.yanked, Release.sort_key).where(
            Release.package_id.in_(package_ids)
        )
    )
    for package_id, version, yanked, sort_key in rows:
        by_package.setdefault(package_id, []).append(_ReleaseFacts(version, yanked, sort_key))
    versions = {}
    for package_id, releases in by_package.items():
        best = headline(releases)
        if best is not None:
            versions[package_id] = best.version
    return versions


def search_condition(query: str):
    """Name (any spelling), summary, or the keywords of any release contain ``query``."""
    pattern = like_pattern(query)
    normalized = like_pattern(re.sub(r"[-_.]+", "-", query.lower()))
    keyword_match = select(Release.package_id).where(Release.keywords.ilike(pattern, escape="\\"))
    return or_(
        Package.name.ilike(pattern, escape="\\"),
        Package.normalized_name.like(normalized, escape="\\"),
        Package.summary.ilike(pattern, escape="\\"),
        Package.id.in_(keyword_match),
    )


def relevance(query: str):
    """0 for the exact name, 1 for a name prefix, 2 anywhere in the name, 3 summary, 4 keywords."""
    name = re.sub(r"[-_.]+", "-", query.lower())
    return case(
        (Package.normalized_name == name, 0),
        (Package.normalized_name.like(like_pattern(name)[1:], escape="\\"), 1),
        (Package.normalized_name.like(like_pattern(name), escape="\\"), 2),
        (Package.name.ilike(like_pattern(query), escape="\\"), 2),
        (Package.summary.ilike(like_pattern(query), escape="\\"), 3),
        else_=4,
    )


def list_packages(
    dbsession: Session,
    *,
    query: str = "",
    sort: str = "recent",
    page: int = 1,
    size: int = PAGE_SIZE,
) -> Page:
    """Packages matching ``query`` (all when empty), one page of them.

    With a query the default order is relevance: the exact name, then names starting with it,
    then names containing it, then summaries, then keywords; ties by recent activity.
    """
    condition = None
    query = query.strip()[:QUERY_MAX]
    if query:
        condition = search_condition(query)
    count = select(func.count()).select_from(Package)
    rows = select(Package)
    if condition is not None:
        count = count.where(condition)
        rows = rows.where(condition)
    if sort == "name":
        rows = rows.order_by(Package.normalized_name)
    elif sort == "relevance" and query:
        rows = rows.order_by(relevance(query), Package.updated.desc(), Package.normalized_name)
    else:
        rows = rows.order_by(Package.updated.desc(), Package.normalized_name)
    total = dbsession.scalar(count)
    packages = dbsession.scalars(rows.offset((page - 1) * size).limit(size)).all()
    versions = latest_versions(dbsession, [p.id for p in packages])
    items = [PackageRow(p, versions.get(p.id, "")) for p in packages]
    return Page(items=items, number=page, size=size, total=total)


def recently_updated(dbsession: Session, limit: int = 8) -> list[PackageRow]:
    """The packages with the latest activity, for the home page."""
    packages = dbsession.scalars(
        select(Package).order_by(Package.updated.desc(), Package.normalized_name).limit(limit)
    ).all()
    versions = latest_versions(dbsession, [p.id for p in packages])
    return [PackageRow(p, versions.get(p.id, "")) for p in packages]


def maintained_by(dbsession: Session, user_id: int, limit: int = 50) -> list[PackageRow]:
    """The packages the user ``user_id`` maintains, by name."""
    packages = dbsession.scalars(
        select(Package)
        .join(package_maintainers, package_maintainers.c.package_id == Package.id)
        .where(package_maintainers.c.user_id == user_id)
        .order_by(Package.normalized_name)
        .limit(limit)
    ).all()
    versions = latest_versions(dbsession, [p.id for p in packages])
    return [PackageRow(p, versions.get(p.id, "")) for p in packages]


def releases_newest_first(package: Package) -> list[Release]:
    """PEP 440 order, newest first (the relationship is ordered by ``sort_key`` already)."""
    return sorted(package.releases, key=lambda r: r.sort_key or version_sort_key(r.version))[::-1]


def latest_release(package: Package) -> Release | None:
    """The release ``pip install <name>`` would pick (see ``headline``)."""
    return headline(package.releases)


def change_maintainer(
    dbsession: Session, package: Package, username: str, action: str, by: User | None
) -> None:
    """Add or remove a maintainer by username; only active users can be added."""
    user = get_user(dbsession, username) if username else None
    if user is None:
        raise packages.PackageError(f"There is no user named {username!r}.")
    if action == "remove":
        packages.remove_maintainer(dbsession, package, user, by)
    elif action == "add":
        if not user.is_active:
            raise packages.PackageError(f"{username} is deactivated.")
        packages.add_maintainer(dbsession, package, user, by)
    else:
        raise packages.PackageError(f"Unknown action {action!r}.")
