"""The change serial and the journal: every write that changes what the index shows goes here."""

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from ..models import IndexState, JournalEntry, User
from .mirrors import rewrite_after_commit
from .serials import note_bump
from .webhooks import queue_for_journal

STATE_ID = 1


def current_serial(dbsession: Session) -> int:
    serial = dbsession.scalar(select(IndexState.serial).where(IndexState.id == STATE_ID))
    return serial or 0


def bump_serial(dbsession: Session) -> int:
    """Take the next serial; the row lock holds other writers until this transaction ends.

    Its commit reaches this process's serial clocks at once (``services/serials.py``).
    """
    note_bump(dbsession)
    result = dbsession.execute(
        update(IndexState).where(IndexState.id == STATE_ID).values(serial=IndexState.serial + 1)
    )
    if result.rowcount == 0:  # a database created without the migration's seed row
        dbsession.add(IndexState(id=STATE_ID, serial=1))
        dbsession.flush()
    return current_serial(dbsession)


def record(
    dbsession: Session,
    action: str,
    *,
    package_name: str = "",
    version: str = "",
    filename: str = "",
    detail: str = "",
    user: User | None = None,
    changes_index: bool = False,
) -> JournalEntry:
    serial = bump_serial(dbsession) if changes_index else current_serial(dbsession)
    entry = JournalEntry(
        serial=serial,
        action=action,
        package_name=package_name,
        version=version,
        filename=filename,
        detail=detail[:1024],
        user_id=user.id if user is not None else None,
        username=user.username if user is not None else "",
    )
    dbsession.add(entry)
    queue_for_journal(dbsession, entry)  # webhooks: queued with the change, sent after commit
    if changes_index:
        rewrite_after_commit(dbsession)  # the nginx front's pages (services/materialize.py)
    return entry
