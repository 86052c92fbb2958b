"""Project status markers (PEP 792): active, archived, deprecated, quarantined, with a reason.

The index semantics are the spec's: archived and quarantined projects refuse uploads, a
quarantined one offers no files at all (its pages list none, its file, metadata and JSON URLs
refuse), archived and deprecated ones serve as before. Maintainers may archive, deprecate and
reactivate their packages; only admins quarantine or lift a quarantine (``Permission.QUARANTINE``,
checked by the views' ACLs: this module is told which of the two the caller holds).

:func:`set_status` is the one place a status changes: it journals the change and bumps the change
serial (the page cache key), and is where a "status changed" event would be sent from.
"""

from enum import StrEnum

from sqlalchemy.orm import Session

from ..models import Package, User
from .journal import record

REASON_MAX = 512


class ProjectStatus(StrEnum):
    ACTIVE = "active"
    ARCHIVED = "archived"
    DEPRECATED = "deprecated"
    QUARANTINED = "quarantined"


#: Statuses whose projects take no new files (PEP 792 "MUST NOT allow uploads").
REFUSES_UPLOADS = frozenset({ProjectStatus.ARCHIVED, ProjectStatus.QUARANTINED})


class StatusError(ValueError):
    """A status change that cannot be made; the message is for the user."""


class ProjectQuarantined(Exception):
    """A download of a quarantined project's file: nothing of it is offered."""

    def __init__(self, package: Package):
        self.package_name = package.name
        self.reason = package.status_reason
        super().__init__(describe_refusal(package, "offers no files"))


def status_of(package: Package) -> ProjectStatus:
    try:
        return ProjectStatus(package.status or ProjectStatus.ACTIVE)
    except ValueError:  # a value written by a newer version: treat it as the strictest
        return ProjectStatus.QUARANTINED


def parse_status(value: str) -> ProjectStatus:
    try:
        return ProjectStatus(value.strip().lower())
    except ValueError:
        known = ", ".join(s.value for s in ProjectStatus)
        raise StatusError(f"Unknown project status {value!r}: use one of {known}.") from None


def describe_refusal(package: Package, what: str) -> str:
    """``project 'x' is archived (reason: ...) and <what>``: one line, for status lines."""
    status = status_of(package)
    reason = " ".join(package.status_reason.split())
    because = f" ({reason})" if reason else ""
    return f"project {package.name!r} is {status}{because} and {what}"


def set_status(
    dbsession: Session,
    package: Package,
    status: ProjectStatus | str,
    reason: str,
    actor: User | None,
    *,
    may_quarantine: bool,
) -> bool:
    """Change the status (and reason); False when nothing changed.

    ``may_quarantine``: whether the caller holds ``Permission.QUARANTINE`` (admins, the CLI).
    Without it, neither setting nor lifting a quarantine is allowed.
    """
    new = parse_status(status) if isinstance(status, str) else status
    reason = " ".join(reason.split())[:REASON_MAX] if new is not ProjectStatus.ACTIVE else ""
    old = status_of(package)
    if not may_quarantine and ProjectStatus.QUARANTINED in (old, new):
        if old is ProjectStatus.QUARANTINED:
            raise StatusError(
                f"{package.name} is quarantined: only an administrator can lift the quarantine."
            )
        raise StatusError("Only an administrator can quarantine a project.")
    if new is old and reason == package.status_reason:
        return False
    package.status = new.value
    package.status_reason = reason
    record(
        dbsession,
        "set status",
        package_name=package.name,
        detail=f"{new}: {reason}" if reason else str(new),
        user=actor,
        changes_index=True,
    )
    return True


def upload_refusal(package: Package) -> str | None:
    """Why an upload to this existing project is refused, or None when it is welcome."""
    if status_of(package) in REFUSES_UPLOADS:
        return "Upload refused: " + describe_refusal(package, "accepts no new files")
    return None


def offers_files(package_status: str) -> bool:
    """Whether a project in this (stored) status offers its files; unknown values do not."""
    return (package_status or ProjectStatus.ACTIVE) in {
        ProjectStatus.ACTIVE,
        ProjectStatus.ARCHIVED,
        ProjectStatus.DEPRECATED,
    }


def refuse_quarantined_download(package: Package) -> None:
    """Raise :class:`ProjectQuarantined` for a file or metadata of a quarantined project."""
    if status_of(package) is ProjectStatus.QUARANTINED:
        raise ProjectQuarantined(package)


def status_json(package_status: str, reason: str) -> dict:
    """The simple API's ``project-status`` mapping (``status``, and ``reason`` when given)."""
    data = {"status": package_status or ProjectStatus.ACTIVE.value}
    if reason:
        data["reason"] = reason
    return data
