"""Login throttling that slows password guessing without letting anyone lock an account out.

Three budgets, each counted in the database (``login_failures``) so every app process sees the
same numbers, and written on their own connection (a failed request's transaction is rolled
back; its failures must still count):

- per (username, client address): ``attempts`` failures in ``window`` seconds refuse that pair
  only. Someone hammering ``victim`` from one address never blocks ``victim`` elsewhere.
- per client address: ``address_attempts`` failures in ``window``, whatever the usernames
  (password spraying from one address).
- per username, from all addresses: ``account_attempts`` failures in ``account_window`` (OWASP
  ASVS 2.2.1: at most 100 failed attempts per hour on one account). Past it, the account is being
  guessed from many addresses: logins from addresses it has never logged in from are paused,
  while addresses it logged in from before (``login_addresses``) keep working, so the owner is
  not locked out (the "trusted client" idea of OWASP's device-cookie lockout defence).

A successful password check clears its (username, address) failures and records the address.
"""

from datetime import timedelta

from sqlalchemy import and_, delete, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..models import LoginAddress, LoginFailure
from ..models.meta import utcnow
from .metrics import LOGIN_THROTTLED

#: How long an address an account logged in from stays trusted for that account.
KNOWN_ADDRESS_DAYS = 90


class LoginThrottled(Exception):
    """Too many failed logins; the message is for the user."""

    def __init__(self, retry_after: int, why: str = "Too many failed logins"):
        self.retry_after = retry_after
        super().__init__(
            f"{why}: try again in {max(1, retry_after // 60)} minute(s)."
            if retry_after >= 60
            else f"{why}: try again in {retry_after} seconds."
        )


def _clean(text: str, limit: int) -> str:
    return text.replace("\x00", "")[:limit]  # PostgreSQL refuses NUL in text


def pair_key(username: str, address: str) -> str:
    return f"pair:{_clean(address, 64)} {_clean(username, 180)}"


def address_key(address: str) -> str:
    return f"addr:{_clean(address, 64)}"


def account_key(username: str) -> str:
    return f"user:{_clean(username, 200)}"


class LoginThrottle:
    """The three budgets above; a budget of 0 (or ``attempts = 0``) switches that check off."""

    def __init__(
        self,
        attempts: int,
        window: int,
        address_attempts: int = 50,
        account_attempts: int = 100,
        account_window: int = 3600,
    ):
        self.attempts = attempts
        self.window = window
        self.address_attempts = address_attempts
        self.account_attempts = account_attempts
        self.account_window = account_window

    @property
    def enabled(self) -> bool:
        return self.attempts > 0 and self.window > 0

    def _keys(self, username: str, address: str) -> list[str]:
        keys = [pair_key(username, address)]
        if address:
            keys.append(address_key(address))
        keys.append(account_key(username))
        return keys

    def check(
        self, dbsession: Session, username: str, address: str, user_id: int | None = None
    ) -> int:
        """Raise ``LoginThrottled`` when a budget is spent; one query, two when under attack.

        Returns the failures counted against this (username, address) pair, for ``succeeded``.
        """
        if not self.enabled:
            return 0
        now = utcnow()
        since = now - timedelta(seconds=self.window)
        account_since = now - timedelta(seconds=self.account_window)
        pair, account = pair_key(username, address), account_key(username)
        short_keys = [pair] + ([address_key(address)] if address else [])
        rows = dbsession.execute(
            select(LoginFailure.key, func.count(), func.min(LoginFailure.attempted))
            .where(
                or_(
                    and_(LoginFailure.key.in_(short_keys), LoginFailure.attempted >= since),
                    and_(LoginFailure.key == account, LoginFailure.attempted >= account_since),
                )
            )
            .group_by(LoginFailure.key)
        ).all()
        pair_failures = 0
        for key, count, oldest in rows:
            if key == pair:
                pair_failures = count
            if key == pair:
                limit, start = self.attempts, since
                why = "Too many failed logins for this username from your address"
            elif key == account:
                limit, start = self.account_attempts, account_since
                why = (
                    "Too many failed logins for this account from many addresses; logins from "
                    "addresses it has not used before are paused"
                )
            else:
                limit, start = self.address_attempts, since
                why = "Too many failed logins from your address"
            if limit <= 0 or count < limit:
                continue
            if key == account and self._known_address(dbsession, user_id, address, now):
                continue
            # Refused until the oldest counted failure leaves the window.
            retry_after = int((oldest - start).total_seconds()) + 1
            LOGIN_THROTTLED.inc()
            raise LoginThrottled(max(1, retry_after), why)
        return pair_failures

    def _known_address(self, dbsession: Session, user_id: int | None, address: str, now) -> bool:
        if user_id is None or not address:
            return False
        return (
            dbsession.scalar(
                select(LoginAddress.id).where(
                    LoginAddress.user_id == user_id,
                    LoginAddress.address == _clean(address, 64),
                    LoginAddress.last_success >= now - timedelta(days=KNOWN_ADDRESS_DAYS),
                )
            )
            is not None
        )

    def failed(self, dbsession: Session, username: str, address: str, account: bool = True) -> None:
        """Count a failure now, outside the request's transaction; drop those too old to count.

        ``account=False`` for a name that is no account (``__token__``: an unknown API token):
        guesses spend the address's budget only, never pausing other token users.
        """
        if not self.enabled:
            return
        now = utcnow()
        keys = self._keys(username, address)
        if not account:  # the address's budget only (the pair's, lacking an address)
            keys = [address_key(address) if address else pair_key(username, address)]
        rows = [{"key": key, "attempted": now} for key in keys]
        oldest = now - timedelta(seconds=max(self.window, self.account_window))
        with dbsession.get_bind().begin() as connection:
            connection.execute(insert(LoginFailure), rows)
            connection.execute(delete(LoginFailure).where(LoginFailure.attempted < oldest))

    def succeeded(
        self, dbsession: Session, user_id: int, username: str, address: str, pair_failures: int
    ) -> None:
        """The right password: forget this pair's failures, trust this address for the account.

        Usually one read: the writes happen only when there were failures to forget or the
        address is new or not seen for a day.
        """
        if not self.enabled:
            return
        now = utcnow()
        if pair_failures:
            with dbsession.get_bind().begin() as connection:
                connection.execute(
                    delete(LoginFailure).where(LoginFailure.key == pair_key(username, address))
                )
        if not address:
            return
        address = _clean(address, 64)
        table = LoginAddress.__table__
        known = and_(table.c.user_id == user_id, table.c.address == address)
        last_success = dbsession.execute(select(table.c.last_success).where(known)).scalar()
        if last_success is not None and last_success > now - timedelta(days=1):
            return
        try:
            with dbsession.get_bind().begin() as connection:
                if last_success is not None:
                    connection.execute(update(table).where(known).values(last_success=now))
                    return
                connection.execute(
                    insert(table).values(user_id=user_id, address=address, last_success=now)
                )
                connection.execute(
                    delete(table).where(
                        table.c.last_success < now - timedelta(days=KNOWN_ADDRESS_DAYS)
                    )
                )
        except IntegrityError:
            pass  # another request recorded it first, or the user was deleted meanwhile
