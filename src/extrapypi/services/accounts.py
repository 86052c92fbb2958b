"""Users and authentication: password hashing, credential checks, the verified-credential cache."""

import hashlib
import hmac
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

import bcrypt
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..models import User
from ..models.meta import utcnow
from ..permissions import Role
from .journal import record

MAX_PASSWORD_BYTES = 72  # bcrypt ignores everything past this; we refuse instead of truncating
MIN_PASSWORD_LENGTH = 3
USERNAME_MAX = 100


class AccountError(ValueError):
    """A request about accounts that cannot be honoured; the message is for the user."""


def hash_password(password: str, rounds: int = 12) -> str:
    check_password_rules(password)
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds)).decode()


def check_password_rules(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(f"The password must have at least {MIN_PASSWORD_LENGTH} characters.")
    if len(password.encode()) > MAX_PASSWORD_BYTES:
        raise AccountError(
            f"The password is longer than {MAX_PASSWORD_BYTES} bytes (UTF-8), which bcrypt "
            "cannot check in full; choose a shorter one."
        )


def check_password(password: str, password_hash: str) -> bool:
    try:
        return bcrypt.checkpw(password.encode()[:MAX_PASSWORD_BYTES], password_hash.encode())
    except ValueError:
        return False


_DUMMY_HASH = bcrypt.hashpw(b"no such user", bcrypt.gensalt(12)).decode()


class CredentialCache:
    """Remembers for a while that a (username, password, hash) triple was verified by bcrypt.

    pip sends Basic credentials on every request; bcrypt costs ~0.2 s. The key is an HMAC of
    the password and the stored hash, so a password change (new hash) misses the cache on every
    process at once, and nothing reversible is kept in memory. Role and active flag are always
    read from the database, never from here.
    """

    def __init__(self, secret: str, ttl_seconds: int = 300, max_entries: int = 10_000):
        self._key = hashlib.sha256(b"credential-cache:" + secret.encode()).digest()
        self.ttl = ttl_seconds
        self.max_entries = max_entries
        self._entries: OrderedDict[bytes, float] = OrderedDict()
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

    def remember(self, username: str, password: str, password_hash: str) -> None:
        if self.ttl <= 0:
            return
        digest = self._digest(username, password, password_hash)
        with self._lock:
            self._entries[digest] = time.monotonic() + self.ttl
            self._entries.move_to_end(digest)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)


def get_user(dbsession: Session, username: str) -> User | None:
    return dbsession.scalars(select(User).where(User.username == username)).one_or_none()


def authenticate(
    dbsession: Session, username: str, password: str, cache: CredentialCache | None = None
) -> User | None:
    """The active user with these credentials, or None; as slow for unknown users as for known."""
    user = get_user(dbsession, username)
    if user is None:
        check_password(password, _DUMMY_HASH)
        return None
    if cache is not None and cache.verified(username, password, user.password_hash):
        return user if user.is_active else None
    if not check_password(password, user.password_hash):
        return None
    if cache is not None:
        cache.remember(username, password, user.password_hash)
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
    return username


def validate_role(role: str) -> Role:
    try:
        return Role(role)
    except ValueError:
        raise AccountError(
            f"Unknown role {role!r}: choose one of {', '.join(r.value for r in Role)}."
        ) from None


def create_user(
    dbsession: Session, new: NewUser, rounds: int = 12, actor: User | None = None
) -> User:
    username = validate_username(new.username)
    role = validate_role(new.role)
    if get_user(dbsession, username) is not None:
        raise AccountError(f"A user named {username!r} already exists.")
    user = User(
        username=username,
        email=new.email.strip(),
        password_hash=hash_password(new.password, rounds),
        role=role.value,
        is_active=new.is_active,
    )
    dbsession.add(user)
    dbsession.flush()
    record(dbsession, "create user", detail=f"{username} ({role.value})", user=actor)
    return user


def set_password(dbsession: Session, user: User, password: str, rounds: int = 12) -> None:
    user.password_hash = hash_password(password, rounds)


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


def list_users(dbsession: Session) -> list[User]:
    return list(dbsession.scalars(select(User).order_by(User.username)))


def _is_active_admin(user: User) -> bool:
    return user.role == Role.ADMIN.value and user.is_active


def _keep_an_admin(dbsession: Session, user: User, change: str) -> None:
    """Refuse a change that would leave nobody able to administer the index."""
    if _is_active_admin(user) and count_active_admins(dbsession) <= 1:
        raise AccountError(
            f"{user.username!r} is the last active admin: refusing to {change}. "
            "Make another user an active admin first."
        )


def change_role(dbsession: Session, user: User, role: str, actor: User | None = None) -> None:
    new_role = validate_role(role)
    if new_role is not Role.ADMIN:
        _keep_an_admin(dbsession, user, f"demote it to {new_role.value}")
    old_role, user.role = user.role, new_role.value
    record(
        dbsession, "change role", detail=f"{user.username}: {old_role} → {user.role}", user=actor
    )


def set_active(dbsession: Session, user: User, active: bool, actor: User | None = None) -> None:
    if not active:
        _keep_an_admin(dbsession, user, "deactivate it")
    user.is_active = active
    record(
        dbsession,
        "activate user" if active else "deactivate user",
        detail=user.username,
        user=actor,
    )


def delete_user(dbsession: Session, user: User, actor: User | None = None) -> None:
    """Delete an account; its uploads and journal entries stay, without the user."""
    _keep_an_admin(dbsession, user, "delete it")
    username = user.username
    dbsession.delete(user)
    dbsession.flush()
    record(dbsession, "delete user", detail=username, user=actor)
