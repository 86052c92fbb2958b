"""API tokens: create, list, revoke, verify; and what a token may do.

A token is ``xpypi-<id>-<secret>``: the fixed prefix lets secret scanners find leaked ones, the
id (12 hex digits) names the row without a search, the secret is 256 random bits
(``secrets.token_urlsafe(32)``). Only ``HMAC-SHA-256(server secret, secret)`` is stored, compared
in constant time: a check costs microseconds, never bcrypt.

A token never grants more than its owner may do now: the security policy computes the owner's
principals as for a password login, then ``token_permits`` narrows the answer to the token's
scope and projects (``security.py``), in one place.
"""

import hashlib
import hmac
import logging
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from ..models import ApiToken, User
from ..models.meta import utcnow
from ..permissions import Permission
from .journal import record
from .names import InvalidName, normalize_name

log = logging.getLogger(__name__)

PREFIX = "xpypi-"
ID_LENGTH = 12
#: The Basic username that says "the password is an API token" (as on PyPI).
TOKEN_USERNAME = "__token__"
NAME_MAX = 100
MAX_EXPIRY_DAYS = 3650
#: ``last_used`` moves at most this often per token.
LAST_USED_RESOLUTION = timedelta(minutes=1)


class Scope:
    READ = "read"
    UPLOAD = "upload"
    ALL = (READ, UPLOAD)


#: What each scope may ever do; the owner's rights narrow it further.
SCOPE_PERMISSIONS: dict[str, frozenset[Permission]] = {
    Scope.READ: frozenset({Permission.VIEW, Permission.DOWNLOAD}),
    Scope.UPLOAD: frozenset(
        {Permission.VIEW, Permission.DOWNLOAD, Permission.UPLOAD, Permission.CREATE}
    ),
}
#: Permissions that a project list limits (reading stays index-wide, as pip needs it).
PROJECT_LIMITED = frozenset({Permission.UPLOAD, Permission.CREATE})


class TokenError(ValueError):
    """A token request that cannot be honoured; the message is for the user."""


class TokenRefused(Exception):
    """A presented token that does not authenticate; the message says which check failed.

    ``token_id`` is None for an unknown token (a guess: it counts against the address's login
    budget), else the id of a real token used too late (journaled).
    """

    def __init__(self, message: str, token_id: str | None = None):
        super().__init__(message)
        self.token_id = token_id


@dataclass(frozen=True)
class TokenGrant:
    """What an authenticated request's token may do: carried by the identity, no ORM row."""

    id: str
    name: str
    scope: str
    projects: tuple[str, ...]
    expires: datetime | None
    #: Trusted publishing: who published (``org/repo``) and through which publishers.
    publisher: str = ""
    publisher_ids: tuple[int, ...] = ()


def grant_of(token: ApiToken) -> TokenGrant:
    return TokenGrant(
        token.id,
        token.name,
        token.scope,
        tuple(token.project_names),
        token.expires,
        token.publisher,
        tuple(int(i) for i in token.publisher_ids.split()),
    )


def token_refusal(grant: TokenGrant, permission, project: str | None) -> str | None:
    """Why this token may not use ``permission`` (on ``project``, a normalized name), or None."""
    if permission is None:  # a refusal no permission check made: a dashboard page's own
        return dashboard_refusal(grant)
    if permission not in SCOPE_PERMISSIONS.get(grant.scope, ()):
        if permission in SCOPE_PERMISSIONS[Scope.UPLOAD]:
            return (
                f"Forbidden: token {grant.name!r} has the {grant.scope!r} scope, "
                f"which does not allow {permission}: create an 'upload' token"
            )
        return (
            f"Forbidden: token {grant.name!r} may not {permission}: API tokens cannot manage "
            "users, maintainers, tokens or settings, nor use the dashboard"
        )
    limited = grant.projects and permission in PROJECT_LIMITED
    if limited and (project is None or project not in grant.projects):
        where = repr(project) if project else "this project"
        return (
            f"Forbidden: token {grant.name!r} is limited to "
            f"{', '.join(grant.projects)}, not {where}"
        )
    return None


def dashboard_refusal(grant: TokenGrant) -> str:
    return (
        f"Forbidden: API token {grant.name!r} cannot be used for the dashboard: "
        "log in with your password"
    )


def _digest(key: str, secret: str) -> str:
    return hmac.new(key.encode(), secret.encode(errors="surrogatepass"), hashlib.sha256).hexdigest()


def split_token(token: str) -> tuple[str, str] | None:
    """``(id, secret)`` of a well-formed token, else None."""
    if not token.startswith(PREFIX):
        return None
    rest = token[len(PREFIX) :]
    token_id, dash = rest[:ID_LENGTH], rest[ID_LENGTH : ID_LENGTH + 1]
    secret = rest[ID_LENGTH + 1 :]
    if dash != "-" or len(secret) < 43 or len(secret) > 200:
        return None
    if any(c not in "0123456789abcdef" for c in token_id) or len(token_id) != ID_LENGTH:
        return None
    return token_id, secret


def validate_projects(names: list[str]) -> list[str]:
    normalized = []
    for name in names:
        try:
            project = normalize_name(name)
        except InvalidName:
            raise TokenError(f"{name!r} is not a valid project name.") from None
        if project not in normalized:
            normalized.append(project)
    if len(" ".join(normalized)) > 1024:
        raise TokenError("Too many projects for one token: make several tokens.")
    return normalized


def create_token(
    dbsession: Session,
    key: str,
    user: User,
    name: str,
    scope: str = Scope.UPLOAD,
    projects: list[str] | None = None,
    expires_days: int | None = None,
    actor: User | None = None,
) -> tuple[ApiToken, str]:
    """A new token for ``user``; returns the row and the token (its only appearance)."""
    name = " ".join(name.split())
    if not name or len(name) > NAME_MAX:
        raise TokenError(f"A token needs a name of 1 to {NAME_MAX} characters.")
    if scope not in Scope.ALL:
        raise TokenError(f"Unknown scope {scope!r}: choose read or upload.")
    project_names = validate_projects(projects or [])
    if project_names and scope != Scope.UPLOAD:
        raise TokenError("A project list limits uploads: it needs the 'upload' scope.")
    if not user.is_active:
        raise TokenError(f"{user.username!r} is deactivated: it cannot have new tokens.")
    expires = None
    if expires_days is not None:
        if not 1 <= expires_days <= MAX_EXPIRY_DAYS:
            raise TokenError(f"Expiry is 1 to {MAX_EXPIRY_DAYS} days.")
        expires = utcnow() + timedelta(days=expires_days)
    row, token = _issue(dbsession, key, user, name, scope, project_names, expires)
    limits = f"{scope}" + (f" for {', '.join(project_names)}" if project_names else "")
    record(
        dbsession,
        "create token",
        detail=f"{user.username}: {row.id} {name!r} ({limits})",
        user=actor or user,
    )
    return row, token


def mint_publishing_token(
    dbsession: Session,
    key: str,
    user: User,
    publisher: str,
    projects: list[str],
    publisher_ids: list[int],
    lifetime: timedelta,
) -> tuple[ApiToken, str]:
    """A short-lived upload token for trusted publishing (``services/oidc.py`` journals it)."""
    row, token = _issue(
        dbsession,
        key,
        user,
        f"trusted publishing: {publisher}"[:NAME_MAX],
        Scope.UPLOAD,
        projects,
        utcnow() + lifetime,
    )
    row.publisher = publisher[:255]
    row.publisher_ids = " ".join(str(i) for i in publisher_ids)[:255]
    return row, token


def _issue(
    dbsession: Session,
    key: str,
    user: User,
    name: str,
    scope: str,
    project_names: list[str],
    expires: datetime | None,
) -> tuple[ApiToken, str]:
    token_id = secrets.token_hex(ID_LENGTH // 2)
    secret = secrets.token_urlsafe(32)
    row = ApiToken(
        id=token_id,
        user_id=user.id,
        name=name,
        scope=scope,
        projects=" ".join(project_names),
        secret_hash=_digest(key, secret),
        created=utcnow(),
        expires=expires,
        last_used_from="",
        publisher="",
        publisher_ids="",
    )
    row.user = user
    dbsession.add(row)
    dbsession.flush()
    return row, f"{PREFIX}{token_id}-{secret}"


def list_tokens(dbsession: Session, user: User | None = None) -> list[ApiToken]:
    query = select(ApiToken).join(ApiToken.user).order_by(User.username, ApiToken.created)
    if user is not None:
        query = query.where(ApiToken.user_id == user.id)
    return list(dbsession.scalars(query))


def find_token(dbsession: Session, id_or_token: str) -> ApiToken | None:
    """By id (from ``token list``) or by the whole token (what a leak report hands you)."""
    value = id_or_token.strip()
    parts = split_token(value)
    token_id = parts[0] if parts else value
    if "\x00" in token_id or len(token_id) > 16:
        return None
    return dbsession.get(ApiToken, token_id)


def revoke_token(dbsession: Session, token: ApiToken, actor: User | None = None) -> bool:
    """Revoke at once (the serial moves: every process's token cache misses). False if it was."""
    if token.revoked is not None:
        return False
    token.revoked = utcnow()
    record(
        dbsession,
        "revoke token",
        detail=f"{token.user.username}: {token.id} {token.name!r}",
        user=actor,
    )
    return True


def verify_token(dbsession: Session, key: str, token: str, now: datetime | None = None) -> ApiToken:
    """The token's row if it authenticates now; else ``TokenRefused`` saying which check failed."""
    parts = split_token(token)
    row = dbsession.get(ApiToken, parts[0]) if parts else None
    expected = row.secret_hash if row is not None else "0" * 64
    presented = _digest(key, parts[1] if parts else token)
    if not hmac.compare_digest(expected, presented) or row is None:
        raise TokenRefused("Unauthorized: unknown API token (mistyped, or deleted with its owner)")
    now = now or utcnow()
    if row.revoked is not None:
        raise TokenRefused(f"Unauthorized: API token {row.name!r} ({row.id}) is revoked", row.id)
    if row.expires is not None and row.expires <= now:
        raise TokenRefused(f"Unauthorized: API token {row.name!r} ({row.id}) has expired", row.id)
    if not row.user.is_active:
        raise TokenRefused(
            f"Unauthorized: the owner of API token {row.name!r} ({row.id}) is deactivated"
        )
    return row


def note_refused_use(session_factory: sessionmaker, token_id: str, reason: str, address: str):
    """Journal a use of a revoked or expired token, in its own transaction (the request's is
    rolled back with its refusal)."""
    try:
        with session_factory() as session, session.begin():
            row = session.get(ApiToken, token_id)
            record(
                session,
                "refused token",
                detail=f"{reason} (from {address or 'unknown address'})",
                user=row.user if row is not None else None,
            )
    except SQLAlchemyError as error:
        log.warning("could not journal the refused token %s: %s", token_id, error)


class UseRecorder:
    """Writes ``last_used`` at most once a minute per token and process, and the UPDATE's
    condition makes it at most once a minute across processes: no write per request."""

    def __init__(self, resolution: timedelta = LAST_USED_RESOLUTION, max_entries: int = 10_000):
        self.resolution = resolution.total_seconds()
        self.max_entries = max_entries
        self._noted: dict[str, float] = {}
        self._lock = threading.Lock()

    def due(self, token_id: str) -> bool:
        """True at most once per resolution per token in this process."""
        now_mono = time.monotonic()
        with self._lock:
            if now_mono - self._noted.get(token_id, -1e18) < self.resolution:
                return False
            if len(self._noted) >= self.max_entries:
                self._noted.clear()
            self._noted[token_id] = now_mono
            return True

    def note(self, session_factory: sessionmaker, token_id: str, address: str) -> bool:
        if not self.due(token_id):
            return False
        now = utcnow()
        cutoff = now - timedelta(seconds=self.resolution)
        try:
            with session_factory() as session, session.begin():
                result = session.execute(
                    update(ApiToken)
                    .where(
                        ApiToken.id == token_id,
                        or_(ApiToken.last_used.is_(None), ApiToken.last_used < cutoff),
                    )
                    .values(last_used=now, last_used_from=address[:64])
                )
        except SQLAlchemyError as error:
            log.warning("could not note the use of token %s: %s", token_id, error)
            return False
        return result.rowcount == 1
