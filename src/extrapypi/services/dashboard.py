"""What the dashboard lists: packages with their latest version, sorted, searched, paginated."""

from dataclasses import dataclass
from math import ceil

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from ..models import Package, Release, User
from . import packages
from .accounts import get_user
from .names import version_sort_key

PAGE_SIZE = 25
SORTS = ("recent", "name")
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


def _highest_versions(dbsession: Session, package_ids: list[int], *conditions) -> dict[int, str]:
    newest = (
        select(Release.package_id, func.max(Release.sort_key).label("sort_key"))
        .where(Release.package_id.in_(package_ids), *conditions)
        .group_by(Release.package_id)
        .subquery()
    )
    rows = dbsession.execute(
        select(Release.package_id, Release.version).join(
            newest,
            and_(
                Release.package_id == newest.c.package_id,
                Release.sort_key == newest.c.sort_key,
            ),
        )
    )
    return {package_id: version for package_id, version in rows}


def latest_versions(dbsession: Session, package_ids: list[int]) -> dict[int, str]:
    """Each package's highest version in PEP 440 order, yanked ones only when all are."""
    if not package_ids:
        return {}
    versions = _highest_versions(dbsession, package_ids, Release.yanked.is_(False))
    missing = [i for i in package_ids if i not in versions]
    if missing:
        versions.update(_highest_versions(dbsession, missing))
    return versions


def list_packages(
    dbsession: Session,
    *,
    query: str = "",
    sort: str = "recent",
    page: int = 1,
    size: int = PAGE_SIZE,
) -> Page:
    """Packages matching ``query`` in name or summary (all when empty), one page of them."""
    condition = None
    query = query.strip()[:QUERY_MAX]
    if query:
        pattern = like_pattern(query)
        normalized = like_pattern(query.lower().replace("_", "-").replace(".", "-"))
        condition = or_(
            Package.name.ilike(pattern, escape="\\"),
            Package.normalized_name.like(normalized, escape="\\"),
            Package.summary.ilike(pattern, escape="\\"),
        )
    count = select(func.count()).select_from(Package)
    rows = select(Package)
    if condition is not None:
        count = count.where(condition)
        rows = rows.where(condition)
    if sort == "name":
        rows = rows.order_by(Package.normalized_name)
    else:
        rows = rows.order_by(Package.updated.desc(), Package.normalized_name)
    total = dbsession.scalar(count)
    packages = dbsession.scalars(rows.offset((page - 1) * size).limit(size)).all()
    versions = latest_versions(dbsession, [p.id for p in packages])
    items = [PackageRow(p, versions.get(p.id, "")) for p in packages]
    return Page(items=items, number=page, size=size, total=total)


def releases_newest_first(package: Package) -> list[Release]:
    """PEP 440 order, newest first (the relationship is ordered by ``sort_key`` already)."""
    return sorted(package.releases, key=lambda r: r.sort_key or version_sort_key(r.version))[::-1]


def latest_release(package: Package) -> Release | None:
    """The newest release that is not yanked; the newest of all when every one is."""
    releases = releases_newest_first(package)
    for release in releases:
        if not release.yanked:
            return release
    return releases[0] if releases else None


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
