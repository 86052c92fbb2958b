"""Admins' control of the upstream proxy: block rules, cooldown exemptions, what is cached,
pruning unused files, and the check that keeps new local projects off upstream names.

Every change is recorded in the journal.
"""

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from packaging.version import InvalidVersion, Version
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..models import UpstreamFile, UpstreamPage, UpstreamRule, User
from ..models.meta import utcnow
from ..permissions import Role
from ..storage import Storage, delete_after_commit
from .journal import record
from .names import InvalidName, normalize_name
from .upstream import (
    BLOCK,
    COOLDOWN_EXEMPT,
    RULE_KINDS,
    Upstream,
    UpstreamUnavailable,
    get_upstream,
)

log = logging.getLogger(__name__)
MAX_NAME, MAX_VERSION = 200, 100  # the columns' sizes


class UpstreamControlError(ValueError):
    """A request about upstream rules that cannot be honoured; the message is for the user."""


def _name(name: str) -> str:
    try:
        normalized = normalize_name(name)
    except InvalidName:
        raise UpstreamControlError(f"not a project name: {name[:200]!r}") from None
    if len(normalized) > MAX_NAME:
        raise UpstreamControlError(f"a project name has at most {MAX_NAME} characters")
    return normalized


def _version(version: str) -> str:
    if not version:
        return ""
    try:
        normalized = str(Version(version))  # PEP 440 normal form; compared by canonical form
    except InvalidVersion:
        raise UpstreamControlError(f"not a version: {version[:100]!r}") from None
    if len(normalized) > MAX_VERSION:
        raise UpstreamControlError(f"a version has at most {MAX_VERSION} characters")
    return normalized


def list_rules(dbsession: Session) -> list[UpstreamRule]:
    return list(
        dbsession.scalars(
            select(UpstreamRule).order_by(
                UpstreamRule.kind, UpstreamRule.normalized_name, UpstreamRule.version
            )
        )
    )


def add_rule(
    dbsession: Session,
    kind: str,
    name: str,
    version: str = "",
    reason: str = "",
    user: User | None = None,
) -> UpstreamRule:
    """Block an upstream project (``version`` empty) or one version; or exempt a project from
    the cooldown (``kind`` ``cooldown-exempt``, no version)."""
    if kind not in RULE_KINDS:
        raise UpstreamControlError(f"unknown rule {kind!r}: one of {', '.join(RULE_KINDS)}")
    normalized, version = _name(name), _version(version.strip())
    if kind == COOLDOWN_EXEMPT and version:
        raise UpstreamControlError("a cooldown exemption is for a whole project, not a version")
    existing = dbsession.scalars(
        select(UpstreamRule).where(
            UpstreamRule.kind == kind,
            UpstreamRule.normalized_name == normalized,
            UpstreamRule.version == version,
        )
    ).one_or_none()
    if existing is not None:
        raise UpstreamControlError(f"{describe(existing)} is already in place")
    rule = UpstreamRule(
        kind=kind,
        normalized_name=normalized,
        version=version,
        reason=reason.strip()[:255],
        username=user.username if user is not None else "",
    )
    dbsession.add(rule)
    dbsession.flush()
    record(
        dbsession,
        f"upstream {kind}",
        package_name=normalized,
        version=version,
        detail=reason.strip(),
        user=user,
        changes_index=True,  # servers' memos of this name end with the serial
    )
    return rule


def remove_rule(
    dbsession: Session, kind: str, name: str, version: str = "", user: User | None = None
) -> None:
    normalized, version = _name(name), _version(version.strip())
    rule = dbsession.scalars(
        select(UpstreamRule).where(
            UpstreamRule.kind == kind,
            UpstreamRule.normalized_name == normalized,
            UpstreamRule.version == version,
        )
    ).one_or_none()
    if rule is None:
        what = f"{normalized} {version}".strip()
        raise UpstreamControlError(f"no upstream {kind} rule for {what}")
    dbsession.delete(rule)
    record(
        dbsession,
        f"upstream un{kind}",
        package_name=normalized,
        version=version,
        user=user,
        changes_index=True,
    )


def describe(rule: UpstreamRule) -> str:
    if rule.kind == BLOCK:
        return f"the block of {rule.normalized_name} {rule.version or '(all versions)'}"
    return f"the cooldown exemption of {rule.normalized_name}"


# --- what is cached --------------------------------------------------------------------------


@dataclass
class CachedProject:
    name: str
    files: int
    size: int
    last_used: datetime | None


@dataclass
class CacheSummary:
    projects: list[CachedProject]
    pages: int

    @property
    def files(self) -> int:
        return sum(p.files for p in self.projects)

    @property
    def size(self) -> int:
        return sum(p.size for p in self.projects)


def cache_summary(dbsession: Session) -> CacheSummary:
    rows = dbsession.execute(
        select(
            UpstreamFile.normalized_name,
            func.count(UpstreamFile.id),
            func.sum(UpstreamFile.size),
            func.max(UpstreamFile.last_used),
        )
        .group_by(UpstreamFile.normalized_name)
        .order_by(UpstreamFile.normalized_name)
    )
    projects = [CachedProject(name, n, int(size or 0), used) for name, n, size, used in rows]
    pages = dbsession.scalar(select(func.count(UpstreamPage.id))) or 0
    return CacheSummary(projects, pages)


@dataclass
class PruneResult:
    files: int = 0
    size: int = 0


def prune(
    dbsession: Session,
    storage: Storage,
    transaction,
    unused_for: timedelta,
    dry_run: bool = False,
) -> PruneResult:
    """Drop cached upstream files nobody downloaded for ``unused_for`` (the bytes go once the
    transaction commits); they are fetched again on their next download."""
    cutoff = utcnow() - unused_for
    rows = list(dbsession.scalars(select(UpstreamFile).where(UpstreamFile.last_used < cutoff)))
    result = PruneResult(len(rows), sum(row.size for row in rows))
    if dry_run or not rows:
        return result
    for row in rows:
        dbsession.delete(row)
        delete_after_commit(transaction, storage, row.key)
    record(
        dbsession,
        "upstream prune",
        detail=f"{result.files} cached files ({result.size} bytes) unused for {unused_for}",
    )
    return result


# --- new local projects on upstream names ----------------------------------------------------


def exists_upstream(upstream: Upstream, dbsession: Session, normalized: str) -> bool:
    """Whether the upstream has this project (a cached page says yes without asking)."""
    cached = dbsession.scalar(
        select(UpstreamPage.id).where(UpstreamPage.normalized_name == normalized)
    )
    if cached is not None:
        return True
    return upstream.client.project_page(normalized).status == 200


def claim_refusal(registry, dbsession: Session, name: str, identity) -> str | None:
    """Why this account may not create a local project of this name (None: it may).

    A name the upstream has is refused for non-admins (it would shadow the public project for
    everyone here); an admin's claim is recorded, as is an upstream that could not be asked.
    """
    upstream = get_upstream(registry)
    if upstream is None:
        return None
    normalized = _name(name)
    user = identity.user if identity is not None else None
    try:
        found = exists_upstream(upstream, dbsession, normalized)
    except UpstreamUnavailable as error:
        record(
            dbsession,
            "upstream name unchecked",
            package_name=normalized,
            detail=f"the upstream could not be asked whether it has this name ({error}); "
            "the project was allowed",
            user=user,
        )
        return None
    if not found:
        return None
    if identity is not None and identity.role == Role.ADMIN:
        record(
            dbsession,
            "upstream name claimed",
            package_name=normalized,
            detail="the upstream has this name; an admin created it here, so the upstream's "
            "project is no longer served",
            user=user,
        )
        return None
    return (
        f"{normalized} exists on the upstream index: a local project of that name would hide "
        "the public one for everyone using this index. Ask an administrator to create it here "
        "on purpose, or choose another name."
    )
