"""Users and authentication: password hashing, credential checks, the verified-credential cache."""

import hashlib
import hmac
import logging
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timedelta

import bcrypt
from sqlalchemy import func, or_, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from ..models import User
from ..models.meta import utcnow
from ..permissions import Role
from .journal import record
from .passwords import DEFAULT_POLICY, PasswordPolicy, WeakPassword
from .throttle import LoginThrottle

log = logging.getLogger(__name__)
MAX_PASSWORD_BYTES = 72  # bcrypt ignores everything past this; we refuse instead of truncating
USERNAME_MAX = 100


class AccountError(ValueError):
    """A request about accounts that cannot be honoured; the message is for the user."""


def hash_password(password: str, rounds: int = 12, policy: PasswordPolicy = DEFAULT_POLICY) -> str:
    check_password_rules(password, policy)
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds)).decode()


def check_password_rules(password: str, policy: PasswordPolicy = DEFAULT_POLICY) -> None:
    """The policy (length, not a common password), and bcrypt's 72-byte limit."""
    if not password:
        raise AccountError("The password is empty.")
    try:
        policy.check(password)
    except WeakPassword as error:
        raise AccountError(str(error)) from None
    if len(password.encode()) > MAX_PASSWORD_BYTES:
        raise AccountError(
            f"The password is longer than {MAX_PASSWORD_BYTES} bytes (UTF-8), which bcrypt "
            "cannot check in full; choose a shorter one."
        )


class BcryptChecks:
    """How many bcrypt checks this process ran (tests and benchmarks assert none were paid)."""

    count = 0


def check_password(password: str, password_hash: str) -> bool:
    BcryptChecks.count += 1
    try:
        return bcrypt.checkpw(password.encode()[:MAX_PASSWORD_BYTES], password_hash.encode())
    except ValueError:
        return False


#: One dummy hash per bcrypt cost, made on first use: checked against when the user is unknown.
_DUMMY_HASHES: dict[int, str] = {}
_DUMMY_LOCK = threading.Lock()
#: The length of the hash part of a bcrypt string, after ``$2b$<cost>$<22 characters of salt>``.
HASH_PART_LENGTH = 31


def dummy_hash(rounds: int) -> str:
    """A hash of the configured cost: an unknown username costs as much time as a known one
    (real hashes use ``bcrypt_rounds``), so timing does not tell which names exist.

    Checking a password reads the cost and the salt from the stored string, hashes, then
    compares the result with the whole string: the hash part does not have to come from a
    password. So the dummy costs nothing to make (a cost-12 ``hashpw`` takes 0.25 s, once at
    start-up before), checks at full cost, and matches no password.
    """
    with _DUMMY_LOCK:
        if rounds not in _DUMMY_HASHES:
            salt = bcrypt.gensalt(rounds).decode()
            _DUMMY_HASHES[rounds] = salt + "." * HASH_PART_LENGTH
        return _DUMMY_HASHES[rounds]


class CredentialCache:
    """Remembers for a while that a (username, password, hash) triple was verified by bcrypt.

    pip sends Basic credentials on every request; bcrypt costs ~0.2 s. The key is an HMAC of
    the password and the stored hash, so a password change (new hash) misses the cache on every
    process at once, and nothing reversible is kept in memory. Role and active flag are never
    read from here (``LoginCache`` keeps them, per change serial).
    """

    def __init__(self, secret: str, ttl_seconds: int = 300, max_entries: int = 10_000):
        self._key = hashlib.sha256(b"credential-cache:" + secret.encode()).digest()
        self.ttl = ttl_seconds
        self.max_entries = max_entries
        self._entries: OrderedDict[bytes, float] = OrderedDict()
        self._checking: dict[bytes, threading.Lock] = {}
        self._lock = threading.Lock()

    def _digest(self, username: str, password: str, password_hash: str) -> bytes:
        message = "\0".join((username, password, password_hash)).encode()
        return hmac.new(self._key, message, hashlib.sha256).digest()

    def verified(self, username: str, password: str, password_hash: str) -> bool:
        if self.ttl <= 0:
            return False
        digest = self._digest(username, password, password_hash)
        with self._lock:
            expires = self._entries.get(digest)
            if expires is None:
                return False
            if expires < time.monotonic():
                del self._entries[digest]
                return False
            return True

    def checking(self, username: str, password: str, password_hash: str) -> threading.Lock:
        """Held while bcrypt checks these credentials: pip's parallel connections all sending
        the same expired credentials wait for one check instead of each paying their own."""
        digest = self._digest(username, password, password_hash)
        with self._lock:
            lock = self._checking.get(digest)
            if lock is None:
                if len(self._checking) >= self.max_entries:
                    self._checking = {}
                lock = self._checking[digest] = threading.Lock()
            return lock

    def remember(self, username: str, password: str, password_hash: str) -> None:
        if self.ttl <= 0:
            return
        digest = self._digest(username, password, password_hash)
        with self._lock:
            self._entries[digest] = time.monotonic() + self.ttl
            self._entries.move_to_end(digest)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)


@dataclass(frozen=True)
class Account:
    """Who a verified login belongs to: what authorization needs, no ORM row."""

    id: int
    username: str
    role: str


class LoginCache:
    """Basic credentials verified at one access serial, and whose they are.

    Every change to users, tokens, teams or maintainers bumps the access serial
    (``models/access.py``); uploads do not. An entry is good exactly while the access serial a
    request reads equals the cache's: a password change, deactivation or new role takes effect
    on the next request of this process and within ``serial_check_seconds`` on every other. A
    request that reads another serial empties the cache (the serial may also go back, with a
    restored database); each login then costs one user-row read, and bcrypt only when the
    ``CredentialCache`` no longer vouches for that (username, password, hash): an unrelated
    user's change never costs anyone a bcrypt check. Keys are HMACs of (username, password).
    """

    def __init__(self, secret: str, ttl_seconds: int = 300, max_entries: int = 10_000):
        self._key = hashlib.sha256(b"login-cache:" + secret.encode()).digest()
        self.ttl = ttl_seconds
        self.max_entries = max_entries
        self.serial = -1
        self._entries: OrderedDict[bytes, tuple[float, Account]] = OrderedDict()
        self._lock = threading.Lock()

    def _digest(self, username: str, password: str) -> bytes:
        message = f"{len(username)}:{username}\0{password}".encode(errors="surrogatepass")
        return hmac.new(self._key, message, hashlib.sha256).digest()

    def get(self, serial: int, username: str, password: str) -> Account | None:
        if self.ttl <= 0:
            return None
        digest = self._digest(username, password)
        with self._lock:
            if serial != self.serial:
                self._entries.clear()
                self.serial = serial
                return None
            entry = self._entries.get(digest)
            if entry is None:
                return None
            if entry[0] < time.monotonic():
                del self._entries[digest]
                return None
            return entry[1]

    def put(self, serial: int, username: str, password: str, account: Account) -> None:
        if self.ttl <= 0:
            return
        digest = self._digest(username, password)
        with self._lock:
            if serial != self.serial:
                self._entries.clear()
                self.serial = serial
            self._entries[digest] = (time.monotonic() + self.ttl, account)
            self._entries.move_to_end(digest)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self.serial = -1


def get_user(dbsession: Session, username: str) -> User | None:
    if "\x00" in username:
        return None  # no user is named so, and PostgreSQL refuses NUL in any text parameter
    return dbsession.scalars(select(User).where(User.username == username)).one_or_none()


def authenticate(
    dbsession: Session,
    username: str,
    password: str,
    cache: CredentialCache | None = None,
    throttle: LoginThrottle | None = None,
    address: str = "",
    rounds: int = 12,
) -> User | None:
    """The active user with these credentials, or None; as slow for unknown users as for known
    (pass the configured ``bcrypt_rounds`` as ``rounds``).

    With a ``throttle``, raises ``LoginThrottled`` when a budget is spent (``services/throttle.py``)
    and records a success. Credentials found in the cache skip the throttle: only a cache miss
    costs its queries.
    """
    user = get_user(dbsession, username)
    if user is not None and cache is not None and cache.ttl > 0:
        with cache.checking(username, password, user.password_hash):
            return _authenticate(
                dbsession, user, username, password, cache, throttle, address, rounds
            )
    return _authenticate(dbsession, user, username, password, cache, throttle, address, rounds)


def _authenticate(dbsession, user, username, password, cache, throttle, address, rounds=12):
    if (
        user is not None
        and cache is not None
        and cache.verified(username, password, user.password_hash)
    ):
        return user if user.is_active else None
    pair_failures = 0
    if throttle is not None:
        user_id = user.id if user is not None else None
        pair_failures = throttle.check(dbsession, username, address, user_id)
    if user is None:
        check_password(password, dummy_hash(rounds))
        if throttle is not None:
            throttle.failed(dbsession, username, address)
        return None
    if not check_password(password, user.password_hash):
        if throttle is not None:
            throttle.failed(dbsession, username, address)
        return None
    if cache is not None:
        cache.remember(username, password, user.password_hash)
    if throttle is not None and user.is_active:
        throttle.succeeded(dbsession, user.id, username, address, pair_failures)
    return user if user.is_active else None


@dataclass
class NewUser:
    username: str
    password: str
    role: Role | str = Role.INSTALLER
    email: str = ""
    is_active: bool = True


def validate_username(username: str) -> str:
    username = username.strip()
    if not username or len(username) > USERNAME_MAX:
        raise AccountError(f"A username has 1 to {USERNAME_MAX} characters.")
    if any(c.isspace() or c in ":/\\" or ord(c) < 32 for c in username):
        raise AccountError(
            "A username may not contain spaces, ':', '/', '\\' or control characters."
        )
    if username == "__token__":
        raise AccountError("'__token__' is the username for API tokens; choose another.")
    return username


def validate_role(role: str) -> Role:
    try:
        return Role(role)
    except ValueError:
        raise AccountError(
            f"Unknown role {role!r}: choose one of {', '.join(r.value for r in Role)}."
        ) from None


def create_user(
    dbsession: Session,
    new: NewUser,
    rounds: int = 12,
    actor: User | None = None,
    policy: PasswordPolicy = DEFAULT_POLICY,
) -> User:
    username = validate_username(new.username)
    role = validate_role(new.role)
    if get_user(dbsession, username) is not None:
        raise AccountError(f"A user named {username!r} already exists.")
    user = User(
        username=username,
        email=new.email.strip(),
        password_hash=hash_password(new.password, rounds, policy),
        role=role.value,
        is_active=new.is_active,
    )
    dbsession.add(user)
    dbsession.flush()
    record(dbsession, "create user", detail=f"{username} ({role.value})", user=actor)
    return user


def set_password(
    dbsession: Session,
    user: User,
    password: str,
    rounds: int = 12,
    policy: PasswordPolicy = DEFAULT_POLICY,
) -> None:
    user.password_hash = hash_password(password, rounds, policy)


def count_users(dbsession: Session) -> int:
    return dbsession.scalar(select(func.count()).select_from(User))


def count_active_admins(dbsession: Session) -> int:
    return dbsession.scalar(
        select(func.count())
        .select_from(User)
        .where(User.role == Role.ADMIN.value, User.is_active.is_(True))
    )


def touch_last_login(user: User) -> None:
    user.last_login = utcnow()


#: ``last_login`` moves at most this often for logins that pip and twine repeat all day.
LAST_LOGIN_RESOLUTION = timedelta(hours=1)


def note_login(session_factory: sessionmaker, user: User, now: datetime | None = None) -> bool:
    """Record a Basic (or token) login in ``last_login``, at most once an hour per user.

    Called where a credential is verified against the database (a login-cache miss: at most
    once per cache lifetime per process), never per request. Within the hour it costs nothing;
    otherwise one conditional UPDATE in a short transaction of its own, so a download never
    turns into a write that could conflict or fail: a failure is logged and forgotten. The
    column is no access column: writing it bumps no serial and empties no cache.
    """
    now = now or utcnow()
    if user.last_login is not None and now - user.last_login < LAST_LOGIN_RESOLUTION:
        return False
    cutoff = now - LAST_LOGIN_RESOLUTION
    try:
        with session_factory() as session, session.begin():
            result = session.execute(
                update(User)
                .where(
                    User.id == user.id,
                    or_(User.last_login.is_(None), User.last_login < cutoff),
                )
                .values(last_login=now)
            )
    except SQLAlchemyError as error:
        log.warning("could not note the login of %s: %s", user.username, error)
        return False
    return result.rowcount == 1


def list_users(dbsession: Session) -> list[User]:
    return list(dbsession.scalars(select(User).order_by(User.username)))


def _is_active_admin(user: User) -> bool:
    return user.is_active and user.role == Role.ADMIN.value


def _keep_an_admin(dbsession: Session, user: User, still_admin: bool) -> None:
    """Refuse a change that would leave no active admin to manage the index.

    The admin rows are locked (``FOR UPDATE``), so two admins demoting each other at the same
    moment cannot both pass the check.
    """
    if not _is_active_admin(user) or still_admin:
        return
    admins = dbsession.scalars(
        select(User.id)
        .where(User.role == Role.ADMIN.value, User.is_active.is_(True))
        .with_for_update()
    ).all()
    if len(admins) <= 1:
        raise AccountError(
            f"{user.username!r} is the last active admin: make another user an active admin first."
        )


def validate_email(email: str) -> str:
    email = email.strip()
    if len(email) > 255:
        raise AccountError("An email address has at most 255 characters.")
    if email and ("@" not in email or any(c.isspace() for c in email)):
        raise AccountError(f"{email!r} does not look like an email address.")
    return email


def update_user(
    dbsession: Session,
    user: User,
    *,
    role: str,
    email: str,
    is_active: bool,
    actor: User | None,
) -> None:
    """An admin's edit: role, email, active flag (deactivating ends the user's sessions too)."""
    new_role = validate_role(role)
    email = validate_email(email)
    if actor is not None and actor.id == user.id and not is_active:
        raise AccountError("You cannot deactivate your own account.")
    _keep_an_admin(dbsession, user, is_active and new_role is Role.ADMIN)
    changes = []
    if user.role != new_role.value:
        changes.append(f"role {user.role} → {new_role.value}")
    if user.email != email:
        changes.append("email")
    if user.is_active != is_active:
        changes.append("activated" if is_active else "deactivated")
    user.role, user.email, user.is_active = new_role.value, email, is_active
    if changes:
        record(
            dbsession, "update user", detail=f"{user.username}: {', '.join(changes)}", user=actor
        )


def delete_user(dbsession: Session, user: User, actor: User | None = None) -> None:
    """Remove an account; its uploads and journal entries stay, with the uploader unset."""
    if actor is not None and actor.id == user.id:
        raise AccountError("You cannot delete your own account.")
    _keep_an_admin(dbsession, user, still_admin=False)
    username = user.username
    dbsession.delete(user)
    dbsession.flush()
    record(dbsession, "delete user", detail=username, user=actor)


def check_confirmation(password: str, confirmation: str) -> None:
    if password != confirmation:
        raise AccountError("The password and its confirmation differ.")


def admin_set_password(
    dbsession: Session,
    user: User,
    password: str,
    confirmation: str,
    actor: User | None,
    rounds: int = 12,
    policy: PasswordPolicy = DEFAULT_POLICY,
) -> None:
    check_confirmation(password, confirmation)
    set_password(dbsession, user, password, rounds, policy)
    record(dbsession, "set password", detail=user.username, user=actor)


def change_own_password(
    dbsession: Session,
    user: User,
    current: str,
    new: str,
    confirmation: str,
    rounds: int = 12,
    policy: PasswordPolicy = DEFAULT_POLICY,
) -> None:
    """A user's own password change: the current password proves it is them."""
    if not check_password(current, user.password_hash):
        raise AccountError("The current password is wrong.")
    check_confirmation(new, confirmation)
    set_password(dbsession, user, new, rounds, policy)
    record(dbsession, "change password", detail=user.username, user=user)


def change_own_email(dbsession: Session, user: User, email: str) -> None:
    user.email = validate_email(email)
    record(dbsession, "change email", detail=user.username, user=user)


def change_role(dbsession: Session, user: User, role: str, actor: User | None = None) -> None:
    new_role = validate_role(role)
    _keep_an_admin(dbsession, user, still_admin=new_role is Role.ADMIN)
    old_role, user.role = user.role, new_role.value
    record(
        dbsession, "change role", detail=f"{user.username}: {old_role} → {user.role}", user=actor
    )


def set_active(dbsession: Session, user: User, active: bool, actor: User | None = None) -> None:
    _keep_an_admin(dbsession, user, still_admin=active)
    user.is_active = active
    record(
        dbsession,
        "activate user" if active else "deactivate user",
        detail=user.username,
        user=actor,
    )
