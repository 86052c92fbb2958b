"""Login throttling: too many failed logins for a username or an address → refused for a while.

The failures live in the database (``login_failures``), so every app process sees the same count.
They are written on their own connection and committed at once: a failed request's transaction
is rolled back, its failures must still count.
"""

from datetime import timedelta

from sqlalchemy import delete, func, insert, select
from sqlalchemy.orm import Session

from ..models import LoginFailure
from ..models.meta import utcnow
from .metrics import LOGIN_THROTTLED


class LoginThrottled(Exception):
    """Too many failed logins; the message is for the user."""

    def __init__(self, retry_after: int):
        self.retry_after = retry_after
        super().__init__(
            f"Too many failed logins: try again in {max(1, retry_after // 60)} minute(s)."
            if retry_after >= 60
            else f"Too many failed logins: try again in {retry_after} seconds."
        )


def throttle_keys(username: str, address: str) -> list[str]:
    """The counters a failure adds to; NUL dropped (PostgreSQL refuses it in text)."""
    username, address = username.replace("\x00", ""), address.replace("\x00", "")
    keys = [f"user:{username[:200]}"]
    if address:
        keys.append(f"addr:{address[:200]}")
    return keys


class LoginThrottle:
    """``attempts`` failures within ``window`` seconds block that username or address."""

    def __init__(self, attempts: int, window: int):
        self.attempts = attempts
        self.window = window

    @property
    def enabled(self) -> bool:
        return self.attempts > 0 and self.window > 0

    def check(self, dbsession: Session, username: str, address: str) -> None:
        """Raise ``LoginThrottled`` while either key has too many recent failures."""
        if not self.enabled:
            return
        since = utcnow() - timedelta(seconds=self.window)
        rows = dbsession.execute(
            select(LoginFailure.key, func.count(), func.min(LoginFailure.attempted))
            .where(
                LoginFailure.key.in_(throttle_keys(username, address)),
                LoginFailure.attempted >= since,
            )
            .group_by(LoginFailure.key)
        ).all()
        for _key, count, oldest in rows:
            if count >= self.attempts:
                # Blocked until the oldest counted failure leaves the window.
                retry_after = int((oldest - since).total_seconds()) + 1
                LOGIN_THROTTLED.inc()
                raise LoginThrottled(max(1, retry_after))

    def failed(self, dbsession: Session, username: str, address: str) -> None:
        """Count a failure now, outside the request's transaction; drop those too old to count."""
        if not self.enabled:
            return
        now = utcnow()
        rows = [{"key": key, "attempted": now} for key in throttle_keys(username, address)]
        with dbsession.get_bind().begin() as connection:
            connection.execute(insert(LoginFailure), rows)
            connection.execute(
                delete(LoginFailure).where(
                    LoginFailure.attempted < now - timedelta(seconds=self.window)
                )
            )
