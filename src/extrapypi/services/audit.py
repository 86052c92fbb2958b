"""The audit log: the journal of who changed what, filtered and paginated for people to read."""

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..models import JournalEntry
from .dashboard import Page

PAGE_SIZE = 50
HISTORY_SIZE = 20


@dataclass(frozen=True)
class AuditFilter:
    username: str = ""
    package: str = ""
    action: str = ""
    since: date | None = None
    until: date | None = None

    @property
    def query(self) -> dict[str, str]:
        """The filter as query-string parameters (for the pager's links)."""
        values = {
            "user": self.username,
            "package": self.package,
            "action": self.action,
            "since": self.since.isoformat() if self.since else "",
            "until": self.until.isoformat() if self.until else "",
        }
        return {k: v for k, v in values.items() if v}


def parse_date(value: str | None) -> date | None:
    """``YYYY-MM-DD`` or nothing: a malformed date filters nothing rather than failing."""
    try:
        return date.fromisoformat((value or "").strip()[:10])
    except ValueError:
        return None


def audit_filter(params) -> AuditFilter:
    """The filter from a query string (bounded lengths: these only ever go into ``=``)."""
    return AuditFilter(
        username=params.get("user", "").strip()[:100],
        package=params.get("package", "").strip()[:200],
        action=params.get("action", "").strip()[:50],
        since=parse_date(params.get("since")),
        until=parse_date(params.get("until")),
    )


def _conditions(chosen: AuditFilter) -> list:
    conditions = []
    if chosen.username:
        conditions.append(JournalEntry.username == chosen.username)
    if chosen.package:
        conditions.append(func.lower(JournalEntry.package_name) == chosen.package.lower())
    if chosen.action:
        conditions.append(JournalEntry.action == chosen.action)
    if chosen.since:
        conditions.append(JournalEntry.submitted >= datetime.combine(chosen.since, time(), UTC))
    if chosen.until and chosen.until < date.max:  # the last day there is: no upper bound
        end = datetime.combine(chosen.until + timedelta(days=1), time(), UTC)
        conditions.append(JournalEntry.submitted < end)
    return conditions


def entries(dbsession: Session, chosen: AuditFilter, page: int = 1, size: int = PAGE_SIZE) -> Page:
    """One page of journal entries matching ``chosen``, newest first."""
    conditions = _conditions(chosen)
    total = dbsession.scalar(select(func.count()).select_from(JournalEntry).where(*conditions))
    rows = dbsession.scalars(
        select(JournalEntry)
        .where(*conditions)
        .order_by(JournalEntry.id.desc())
        .offset((page - 1) * size)
        .limit(size)
    ).all()
    return Page(items=list(rows), number=page, size=size, total=total or 0)


def actions(dbsession: Session) -> list[str]:
    """The actions recorded so far (for the filter's choices)."""
    return list(dbsession.scalars(select(JournalEntry.action).distinct().order_by("action")))


def package_history(dbsession: Session, package_name: str, limit: int = HISTORY_SIZE) -> list:
    """The latest journal entries about one package (its page shows them)."""
    return list(
        dbsession.scalars(
            select(JournalEntry)
            .where(JournalEntry.package_name == package_name)
            .order_by(JournalEntry.id.desc())
            .limit(limit)
        )
    )
