"""Server-side dashboard sessions: opened at login, checked on each dashboard request, ended
by logout, "log out everywhere" and any change to the account (``models/session.py``).

The cookie (signed, ``SignedCookieSessionFactory``) carries a random token; the table keeps its
SHA-256, so a copy of the database alone opens no session. Checking costs one primary-key
lookup joined to the user row (which the request needs anyway); ``last_seen`` is written at
most every ``TOUCH_SECONDS``, not on every request.
"""

import hashlib
import secrets
from datetime import timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from ..models import LoginSession, User
from ..models.meta import utcnow

#: How stale ``last_seen`` may get before a request refreshes it.
TOUCH_SECONDS = 300


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode(errors="surrogatepass")).hexdigest()


def open_session(dbsession: Session, user: User, max_age: int) -> str:
    """A new session for ``user``; returns the token for the cookie. Drops expired sessions."""
    now = utcnow()
    token = secrets.token_urlsafe(32)
    dbsession.add(LoginSession(id=_digest(token), user_id=user.id, created=now, last_seen=now))
    dbsession.execute(
        delete(LoginSession)
        .where(LoginSession.last_seen < now - timedelta(seconds=max_age))
        .execution_options(synchronize_session=False)
    )
    return token


def session_user(dbsession: Session, token: str, max_age: int) -> User | None:
    """The active user whose live session this token names, or None (ended, expired, unknown)."""
    if not isinstance(token, str) or not token:
        return None
    row = dbsession.execute(
        select(LoginSession, User)
        .join(User, User.id == LoginSession.user_id)
        .where(LoginSession.id == _digest(token))
    ).one_or_none()
    if row is None:
        return None
    login_session, user = row
    now = utcnow()
    if login_session.last_seen < now - timedelta(seconds=max_age) or not user.is_active:
        return None
    if login_session.last_seen < now - timedelta(seconds=min(TOUCH_SECONDS, max_age // 4)):
        # A statement now, not a dirty attribute flushed later: a flush that ends this user's
        # sessions (a password change in this request) would find the row gone.
        dbsession.execute(
            update(LoginSession)
            .where(LoginSession.id == login_session.id)
            .values(last_seen=now)
            .execution_options(synchronize_session=False)
        )
    return user


def end_session(dbsession: Session, token: str) -> None:
    if isinstance(token, str) and token:
        dbsession.execute(
            delete(LoginSession)
            .where(LoginSession.id == _digest(token))
            .execution_options(synchronize_session=False)
        )


def end_all_sessions(dbsession: Session, user: User) -> int:
    """Log ``user`` out everywhere; returns how many sessions ended."""
    result = dbsession.execute(
        delete(LoginSession)
        .where(LoginSession.user_id == user.id)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount
