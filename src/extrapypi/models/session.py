"""Dashboard sessions kept on the server, so logging out (or a password change) really ends them.

The signed session cookie carries only a random session id; this table says whether that id
is still good. Deleting a row ends the session on every app server at once.
"""

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, delete, event, inspect
from sqlalchemy.orm import Mapped, Session, mapped_column

from .meta import Base, UTCDateTime, utcnow
from .types import ExactString
from .user import User

#: The user columns whose change ends every session of that user.
SESSION_ENDING_COLUMNS = ("username", "password_hash", "role", "is_active")


class LoginSession(Base):
    """One logged-in browser. ``id`` is the SHA-256 of the cookie's token, never the token."""

    __tablename__ = "sessions"

    id: Mapped[str] = mapped_column(ExactString(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    created: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: Refreshed at most every few minutes (not per request); the inactivity timeout counts from it.
    last_seen: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


def _ends_sessions(obj) -> bool:
    state = inspect(obj)
    return any(state.attrs[name].history.has_changes() for name in SESSION_ENDING_COLUMNS)


@event.listens_for(Session, "before_flush")
def end_sessions_on_account_change(session: Session, flush_context, instances) -> None:
    """A new password, role, active flag or name (or a deleted user) ends that user's sessions.

    Here rather than in each service function, so every path (dashboard, admin, CLI) obeys it.
    Runs before the flush's inserts: a session opened in the same transaction (the user who
    changed their own password stays logged in) survives.
    """
    user_ids = {
        obj.id
        for obj in session.dirty
        if isinstance(obj, User) and obj.id is not None and _ends_sessions(obj)
    }
    user_ids |= {obj.id for obj in session.deleted if isinstance(obj, User) and obj.id is not None}
    if user_ids:
        table = LoginSession.__table__
        session.connection().execute(delete(table).where(table.c.user_id.in_(user_ids)))
