"""Retention rules: which old releases ``extrapypi prune`` deletes, and the deleting itself.

Two rules, each off at 0: keep the ``keep_last`` newest releases of a package (PEP 440 order),
and delete pre-/dev releases older than ``prerelease_days``. A package's own rule (set by an
admin in the dashboard) overrides the configured default field by field. Whatever the rules
say, the newest final release and the newest release of a package stay, and so does a release
with a file younger than a day (someone may be installing it right now). Deletion goes through
``packages.delete_release``: tombstones keep the filenames unusable, storage deletes after commit.
"""

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from packaging.version import InvalidVersion, Version
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from ..models import Package, Release, RetentionRule
from ..models.meta import utcnow
from ..storage import Storage
from .journal import record
from .packages import delete_release, get_package

#: Files younger than this are never pruned.
MIN_AGE = timedelta(days=1)


class RetentionError(ValueError):
    """A rule or a package name that cannot be used; the message is for the user."""


@dataclass(frozen=True)
class Rules:
    """0 switches a rule off."""

    keep_last: int = 0
    prerelease_days: int = 0

    def __post_init__(self) -> None:
        if self.keep_last < 0 or self.prerelease_days < 0:
            raise RetentionError("Retention numbers must be 0 (off) or more.")

    def override(self, rule: RetentionRule | None) -> "Rules":
        if rule is None:
            return self
        return Rules(
            keep_last=self.keep_last if rule.keep_last is None else rule.keep_last,
            prerelease_days=(
                self.prerelease_days if rule.prerelease_days is None else rule.prerelease_days
            ),
        )

    @property
    def active(self) -> bool:
        return bool(self.keep_last or self.prerelease_days)


def get_retention_settings(registry) -> Rules:
    """``extrapypi.retention.keep_last`` and ``.prerelease_days`` (both 0, off, by default)."""
    settings = registry.settings or {}
    try:
        return Rules(
            keep_last=int(settings.get("extrapypi.retention.keep_last", 0)),
            prerelease_days=int(settings.get("extrapypi.retention.prerelease_days", 0)),
        )
    except ValueError as error:
        raise RetentionError(f"extrapypi.retention.*: {error}") from None


@dataclass
class Doomed:
    """One release the rules delete, with its files and why."""

    package: str
    version: str
    release_id: int
    reason: str
    files: list[tuple[str, int]] = field(default_factory=list)

    @property
    def bytes(self) -> int:
        return sum(size for _, size in self.files)


def _is_prerelease(version: str) -> bool:
    try:
        return Version(version).is_prerelease  # dev releases included
    except InvalidVersion:
        return False


def _newest_activity(release: Release) -> datetime:
    return max([release.created, *(f.upload_time for f in release.files)])


def package_plan(package: Package, rules: Rules, now: datetime) -> list[Doomed]:
    releases = list(package.releases)  # newest first (sort_key desc)
    if not releases:
        return []
    protected = {releases[0].id}
    for release in releases:
        if not _is_prerelease(release.version):
            protected.add(release.id)  # the newest final release
            break
    doomed = []
    for position, release in enumerate(releases):
        if release.id in protected or now - _newest_activity(release) < MIN_AGE:
            continue
        if rules.keep_last and position >= rules.keep_last:
            reason = f"not among the {rules.keep_last} newest releases"
        elif (
            rules.prerelease_days
            and _is_prerelease(release.version)
            and now - _newest_activity(release) > timedelta(days=rules.prerelease_days)
        ):
            reason = f"pre-release older than {rules.prerelease_days} days"
        else:
            continue
        doomed.append(
            Doomed(
                package.name,
                release.version,
                release.id,
                reason,
                [(f.filename, f.size) for f in release.files],
            )
        )
    return doomed


def plan(
    dbsession: Session,
    rules: Rules,
    packages: list[str] | None = None,
    now: datetime | None = None,
) -> list[Doomed]:
    """Exactly what ``apply`` deletes, newest release first within each package."""
    now = now or utcnow()
    overrides = {r.package_id: r for r in dbsession.scalars(select(RetentionRule))}
    query = (
        select(Package)
        .order_by(Package.normalized_name)
        .options(selectinload(Package.releases).selectinload(Release.files))
    )
    if packages:
        names = []
        for name in packages:
            package = get_package(dbsession, name)
            if package is None:
                raise RetentionError(f"no package named {name!r}")
            names.append(package.normalized_name)
        query = query.where(Package.normalized_name.in_(names))
    doomed: list[Doomed] = []
    for package in dbsession.scalars(query):
        package_rules = rules.override(overrides.get(package.id))
        if package_rules.active:
            doomed.extend(package_plan(package, package_rules, now))
    return doomed


def apply(
    dbsession: Session, storage: Storage, transaction, doomed: list[Doomed], rules: Rules
) -> int:
    """Delete the planned releases in this transaction; files leave storage after commit."""
    deleted = 0
    for item in doomed:
        release = dbsession.get(Release, item.release_id)
        if release is None:
            continue
        for file in release.files:
            record(
                dbsession,
                "prune file",
                package_name=item.package,
                version=item.version,
                filename=file.filename,
                detail=item.reason,
            )
        delete_release(dbsession, storage, transaction, release, None)
        deleted += 1
    dbsession.flush()
    return deleted


# ---------------------------------------------------------------------------------------------
# per-package overrides (the dashboard)


def get_rule(dbsession: Session, package: Package) -> RetentionRule | None:
    return dbsession.get(RetentionRule, package.id)


def _parse_number(value: str, what: str) -> int | None:
    value = (value or "").strip()
    if not value:
        return None
    if not (value.isascii() and value.isdigit()) or len(value) > 6:  # "²" is a digit to isdigit
        raise RetentionError(f"{what} must be a whole number of 0 or more, or empty.")
    return int(value)


def _show(number: int | None) -> str:
    return "default" if number is None else str(number)


def set_rule(
    dbsession: Session, package: Package, keep_last: str, prerelease_days: str, actor
) -> RetentionRule | None:
    """Set (or, both empty, drop) a package's own rule; empty means "the configured default"."""
    keep = _parse_number(keep_last, "Keep last")
    days = _parse_number(prerelease_days, "Pre-release days")
    rule = get_rule(dbsession, package)
    if keep is None and days is None:
        if rule is not None:
            dbsession.delete(rule)
        result = None
    else:
        if rule is None:
            rule = RetentionRule(package_id=package.id)
            dbsession.add(rule)
        rule.keep_last, rule.prerelease_days = keep, days
        result = rule
    detail = f"keep_last={_show(keep)} prerelease_days={_show(days)}"
    record(dbsession, "set retention", package_name=package.name, detail=detail, user=actor)
    return result
