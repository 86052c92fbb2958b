"""Trusted publishing: a CI job proves who it is with an OIDC identity token (a JWT its provider
signed) and gets a short-lived upload token for the projects whose trusted publishers match.

Checks, in this order, each refusal naming the one that failed:

1. the JWT's header names RS256 or ES256 (never ``none`` or HS*: an allow-list);
2. its ``iss`` is one of ``extrapypi.oidc.issuers``, exactly, *before* anything is fetched: an
   unlisted issuer costs no request (no SSRF through a token);
3. the signing key, by ``kid``, from the issuer's JWKS (found through
   ``<issuer>/.well-known/openid-configuration``; the ``jwks_uri`` must be on the issuer's own
   origin); cached per process, fetched again on an unknown ``kid`` at most once per
   ``jwks_refresh_seconds``, with timeouts and no redirects;
4. signature, ``aud`` (exactly this index's audience), ``exp``/``nbf``/``iat`` with 60 s leeway;
5. the publishers registered for that issuer whose claims all equal the JWT's;
6. the ``jti`` (or, without one, the whole JWT) was never used: kept until it expires.

The minted token is an ordinary API token (``services/tokens.py``) with the ``upload`` scope,
limited to the matched projects, expiring after 15 minutes. It belongs to the user who
registered the publisher: a token never grants more than its owner may do now, so no
privileged system account exists for it, and removing that person's rights (or the account)
stops their publishers at once; another maintainer registers the publisher again.
"""

import hashlib
import json
import logging
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from ipaddress import ip_address
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from pyramid.settings import aslist
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..models import ApiToken, Package, TrustedPublisher, UsedJwt, User
from ..models.meta import utcnow
from ..permissions import Role, roles_at_or_below
from ..settings import ConfigurationError
from . import tokens as token_service
from .journal import record
from .names import InvalidName, normalize_name
from .packages import get_package

if TYPE_CHECKING:
    import jwt  # imported where a token is checked: PyJWT loads cryptography (5 MB)

log = logging.getLogger(__name__)

#: The only signature algorithms accepted (GitHub, GitLab and Forgejo sign with RS256).
ALGORITHMS = ("RS256", "ES256")
LEEWAY_SECONDS = 60
#: PEP 807: not less than 15 minutes, not more than 6 hours.
MINTED_LIFETIME = timedelta(minutes=15, seconds=1)  # whole seconds of at least 900 s
MAX_TOKEN_LENGTH = 16 * 1024
#: How long an expired minted token stays listed before it is deleted.
MINTED_KEPT = timedelta(days=1)
#: How long a used JWT id is remembered at most (its ``exp`` decides, up to this).
MAX_REPLAY_MEMORY = timedelta(days=366)
MAX_DOCUMENT_BYTES = 1024 * 1024
MAX_CLAIMS = 20
CLAIM_MAX = 255
#: Claims a CI job's token carries that say what ran; journaled with each minted token.
CONTEXT_CLAIMS = (
    "repository",
    "project_path",
    "workflow",
    "workflow_ref",
    "job_workflow_ref",
    "ref",
    "sha",
    "environment",
    "run_id",
    "run_attempt",
    "pipeline_id",
    "job_id",
)
#: Registered claims that say nothing about who the job is.
PROTOCOL_CLAIMS = frozenset({"iss", "aud", "exp", "nbf", "iat", "jti"})


class OidcConfigError(ConfigurationError):
    """A bad ``extrapypi.oidc.*`` setting; the message says which."""


class OidcRefused(Exception):
    """A token exchange refused; ``code`` and the message say which check failed."""

    def __init__(self, code: str, description: str, status: int = 422):
        super().__init__(description)
        self.code = code
        self.description = description
        self.status = status


class PublisherError(ValueError):
    """A publisher that cannot be registered; the message is for the user."""


@dataclass(frozen=True)
class OidcSettings:
    #: Issuers trusted, exactly as their tokens' ``iss`` reads; empty: trusted publishing is off.
    issuers: tuple[str, ...] = ()
    #: The ``aud`` tokens must carry; empty: the host the request reached.
    audience: str = ""
    timeout: float = 5.0
    jwks_refresh_seconds: float = 60.0

    @property
    def enabled(self) -> bool:
        return bool(self.issuers)


def is_loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ip_address(host).is_loopback
    except ValueError:
        return False


def check_issuer_url(url: str) -> str:
    """An issuer URL PEP 807 calls trustworthy: https, or http on a loopback address."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (raises on a bad port)
    except ValueError:
        raise OidcConfigError(f"extrapypi.oidc.issuers: {url!r} is not a URL") from None
    if not parts.hostname or parts.query or parts.fragment or parts.username:
        raise OidcConfigError(f"extrapypi.oidc.issuers: {url!r} is not an issuer URL")
    if parts.scheme == "https" or (parts.scheme == "http" and is_loopback(parts.hostname)):
        return url
    raise OidcConfigError(
        f"extrapypi.oidc.issuers: {url!r} must use https (plain http only on a loopback address)"
    )


def parse_oidc_settings(settings: dict[str, Any]) -> OidcSettings:
    issuers = tuple(check_issuer_url(u) for u in aslist(settings.get("extrapypi.oidc.issuers", "")))
    try:
        timeout = float(settings.get("extrapypi.oidc.timeout", 5))
        refresh = float(settings.get("extrapypi.oidc.jwks_refresh_seconds", 60))
    except ValueError:
        raise OidcConfigError(
            "extrapypi.oidc.timeout and extrapypi.oidc.jwks_refresh_seconds are seconds"
        ) from None
    if not 0 < timeout <= 60 or refresh < 0:
        raise OidcConfigError(
            "extrapypi.oidc.timeout is 0 to 60 seconds; jwks_refresh_seconds is 0 or more"
        )
    return OidcSettings(
        issuers, str(settings.get("extrapypi.oidc.audience", "")).strip(), timeout, refresh
    )


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None  # a 3xx stays an error: nothing but the configured origin is fetched


_OPENER = urllib.request.build_opener(_NoRedirects)


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    return parts.scheme, (parts.hostname or "").lower(), parts.port


class KeyCache:
    """Each trusted issuer's signing keys, per process; refetched on an unknown ``kid``."""

    def __init__(self, settings: OidcSettings):
        self.settings = settings
        self._keys: dict[str, dict[str | None, jwt.PyJWK]] = {}
        self._fetched: dict[str, float] = {}
        self._lock = threading.Lock()

    def _get_json(self, url: str) -> dict:
        # only https or loopback http issuers are configured, and jwks_uri shares their origin
        request = urllib.request.Request(url, headers={"Accept": "application/json"})  # noqa: S310
        with _OPENER.open(request, timeout=self.settings.timeout) as response:
            body = response.read(MAX_DOCUMENT_BYTES + 1)
        if len(body) > MAX_DOCUMENT_BYTES:
            raise ValueError("document too large")
        document = json.loads(body)
        if not isinstance(document, dict):
            raise ValueError("not a JSON object")
        return document

    def _fetch(self, issuer: str) -> dict[str | None, "jwt.PyJWK"]:
        import jwt

        config = self._get_json(issuer.rstrip("/") + "/.well-known/openid-configuration")
        if config.get("issuer") != issuer:
            raise ValueError(f"its configuration names the issuer {config.get('issuer')!r}")
        jwks_uri = config.get("jwks_uri")
        if not isinstance(jwks_uri, str) or _origin(jwks_uri) != _origin(issuer):
            raise ValueError(f"its jwks_uri {jwks_uri!r} is not on the issuer's own origin")
        keyset = jwt.PyJWKSet.from_dict(self._get_json(jwks_uri))
        # Public keys only: a symmetric ("oct") key in a JWKS is never a signing key here.
        return {key.key_id: key for key in keyset.keys if key.key_type in ("RSA", "EC")}

    def key(self, issuer: str, kid: str | None) -> "jwt.PyJWK":
        import jwt

        with self._lock:
            keys = self._keys.get(issuer)
            fetched = self._fetched.get(issuer)
            refresh = self.settings.jwks_refresh_seconds
            due = fetched is None or time.monotonic() - fetched >= refresh
            if (keys is None or kid not in keys) and due:
                self._fetched[issuer] = time.monotonic()
                try:
                    keys = self._keys[issuer] = self._fetch(issuer)
                except (
                    OSError,
                    ValueError,
                    RecursionError,
                    jwt.PyJWKSetError,
                    jwt.PyJWKError,
                ) as error:
                    log.warning("could not fetch the signing keys of %s: %s", issuer, error)
                    if keys is None:
                        raise OidcRefused(
                            "issuer-unavailable",
                            f"could not fetch the signing keys of {issuer}: {error}",
                            503,
                        ) from None
        if keys is None:  # the last fetch failed moments ago: not asked again before the refresh
            raise OidcRefused(
                "issuer-unavailable",
                f"the signing keys of {issuer} could not be fetched; try again in a minute",
                503,
            )
        if kid is None and len(keys) == 1:
            return next(iter(keys.values()))
        if kid not in keys:
            raise OidcRefused(
                "unknown-key",
                f"the token names signing key {kid!r}, which {issuer} does not publish",
            )
        return keys[kid]


def _claim_text(value: Any) -> str | None:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    return None


def received_claims(claims: dict) -> str:
    """The identity claims of a token, for a refusal (the CI log) and the journal."""
    shown = []
    for name, value in sorted(claims.items()):
        text = _claim_text(value)
        if name in PROTOCOL_CLAIMS or text is None:
            continue
        shown.append(f"{name}={text[:200]}")
        if len(shown) >= 40:
            break
    return ", ".join(shown) or "none"


def publisher_name(claims: dict) -> str:
    """Who publishes: GitHub's/Forgejo's ``repository``, GitLab's ``project_path``, or ``sub``."""
    for name in ("repository", "project_path", "sub"):
        text = _claim_text(claims.get(name))
        if text:
            return text[:200]
    return "unknown"


def verify_identity_token(
    token: Any, settings: OidcSettings, keys: KeyCache, audience: str
) -> dict:
    """The claims of an identity token that passes every check, else ``OidcRefused``."""
    import jwt

    if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_LENGTH:
        raise OidcRefused("invalid-payload", "the body's 'token' must be the JWT, as a string")
    try:
        header = jwt.get_unverified_header(token)
        unverified = jwt.decode(token, options={"verify_signature": False})
    except (jwt.PyJWTError, RecursionError):  # a deeply nested JSON part, too
        raise OidcRefused("invalid-token", "the token is not a well-formed JWT") from None
    algorithm = header.get("alg")
    if algorithm not in ALGORITHMS:
        raise OidcRefused(
            "invalid-algorithm",
            f"the token is signed with {algorithm!r}; only {' and '.join(ALGORITHMS)} are accepted",
        )
    issuer = unverified.get("iss")
    if not isinstance(issuer, str) or issuer not in settings.issuers:
        raise OidcRefused(
            "unknown-issuer",
            f"the token's issuer {issuer!r} is not one this index trusts (extrapypi.oidc.issuers)",
        )
    kid = header.get("kid")
    key = keys.key(issuer, kid if isinstance(kid, str) else None)
    try:
        return jwt.decode(
            token,
            key.key,
            algorithms=[algorithm],
            audience=audience,
            issuer=issuer,
            leeway=LEEWAY_SECONDS,
            options={"require": ["exp", "iat", "iss", "aud"]},
        )
    except jwt.ExpiredSignatureError:
        raise OidcRefused("expired-token", "the token has expired") from None
    except jwt.ImmatureSignatureError:
        raise OidcRefused("not-yet-valid", "the token is not valid yet (nbf or iat)") from None
    except jwt.InvalidAudienceError:
        raise OidcRefused(
            "invalid-audience",
            f"the token's audience is {unverified.get('aud')!r}; this index expects {audience!r}",
        ) from None
    except jwt.MissingRequiredClaimError as error:
        raise OidcRefused("invalid-token", f"the token has no {error.claim!r} claim") from None
    except (jwt.InvalidSignatureError, jwt.InvalidKeyError, jwt.InvalidAlgorithmError):
        raise OidcRefused("invalid-signature", f"the token's signature is not {issuer}'s") from None
    except jwt.PyJWTError as error:
        raise OidcRefused("invalid-token", f"the token is invalid: {error}") from None


def matches(publisher: TrustedPublisher, claims: dict) -> bool:
    return bool(publisher.claims) and all(
        _claim_text(claims.get(name)) == value for name, value in publisher.claims.items()
    )


def matching_publishers(dbsession: Session, issuer: str, claims: dict) -> list[TrustedPublisher]:
    rows = dbsession.scalars(
        select(TrustedPublisher)
        .where(TrustedPublisher.issuer == issuer)
        .order_by(TrustedPublisher.id)
    )
    found = []
    for publisher in rows:
        if not matches(publisher, claims):
            continue
        if publisher.package is None and get_package(dbsession, publisher.pending_name):
            continue  # pending for a name someone else has taken since: it creates nothing
        found.append(publisher)
    return found


def _use_once(dbsession: Session, claims: dict, token: str) -> None:
    """Record the JWT as used (until it expires); refuse it if it was, and prune old ones."""
    now = utcnow()
    dbsession.execute(delete(UsedJwt).where(UsedJwt.expires < now))
    # Minted tokens are kept a day past their expiry (the dashboard's token list shows them),
    # then go: every CI run makes one. Their uploads and journal entries stay.
    dbsession.execute(
        delete(ApiToken).where(ApiToken.publisher != "", ApiToken.expires < now - MINTED_KEPT)
    )
    jti = claims.get("jti")
    seed = f"{claims['iss']}\x00{jti}" if isinstance(jti, str) and jti else token
    key = hashlib.sha256(seed.encode()).hexdigest()
    refusal = OidcRefused(
        "replayed-token",
        f"this token (jti {jti!r}) was used already: each identity token mints once",
    )
    if dbsession.get(UsedJwt, key) is not None:
        raise refusal
    # Kept until the JWT expires; an absurd ``exp`` (year 10**20) is kept for a year instead.
    ceiling = now.timestamp() + MAX_REPLAY_MEMORY.total_seconds()
    exp = min(float(claims["exp"]) + LEEWAY_SECONDS, ceiling)
    expires = datetime.fromtimestamp(exp, UTC)
    try:
        with dbsession.begin_nested():
            dbsession.add(UsedJwt(key=key, expires=expires))
    except IntegrityError:  # the same JWT minting in another request at this moment
        raise refusal from None


@dataclass(frozen=True)
class Minted:
    token: str
    expires: datetime
    row: ApiToken
    projects: tuple[str, ...]


def mint(
    dbsession: Session,
    key: str,
    settings: OidcSettings,
    keys: KeyCache,
    token: Any,
    audience: str,
) -> Minted:
    """Exchange an identity token for an upload token; ``OidcRefused`` says which check failed."""
    if not settings.enabled:
        raise OidcRefused(
            "not-enabled",
            "trusted publishing is off on this index (extrapypi.oidc.issuers is empty)",
            404,
        )
    claims = verify_identity_token(token, settings, keys, audience)
    publishers = matching_publishers(dbsession, claims["iss"], claims)
    if not publishers:
        raise OidcRefused(
            "invalid-publisher",
            f"no trusted publisher for {claims['iss']} matches the claims received: "
            f"{received_claims(claims)}",
        )
    usable = [p for p in publishers if p.created_by is not None and p.created_by.is_active]
    if not usable:
        names = ", ".join(sorted({p.project for p in publishers}))
        raise OidcRefused(
            "invalid-publisher",
            f"the trusted publishers matching these claims ({names}) were registered by "
            "accounts that are removed or deactivated: a maintainer registers them again",
        )
    owner = usable[0].created_by
    chosen = [p for p in usable if p.created_by_id == owner.id]
    projects = list(dict.fromkeys(p.project for p in chosen))
    _use_once(dbsession, claims, token)
    who = publisher_name(claims)
    row, secret = token_service.mint_publishing_token(
        dbsession, key, owner, who, projects, [p.id for p in chosen], MINTED_LIFETIME
    )
    context = ", ".join(
        f"{name}={_claim_text(claims[name])}"
        for name in CONTEXT_CLAIMS
        if _claim_text(claims.get(name)) is not None
    )
    record(
        dbsession,
        "mint token",
        package_name=projects[0] if len(projects) == 1 else "",
        detail=f"{who} via trusted publishing: token {row.id} for {', '.join(projects)} "
        f"({claims['iss']}; {context or received_claims(claims)})",
        user=owner,
    )
    return Minted(secret, row.expires, row, tuple(projects))


def burn(dbsession: Session, key: str, token: Any) -> ApiToken:
    """Revoke a token trusted publishing minted, at once (uv does after its upload)."""
    if not isinstance(token, str) or not token:
        raise OidcRefused("invalid-payload", "send the minted token as 'token' or as __token__")
    try:
        row = token_service.verify_token(dbsession, key, token)
    except token_service.TokenRefused as refusal:
        raise OidcRefused("invalid-token", str(refusal).removeprefix("Unauthorized: ")) from None
    if not row.publisher:
        raise OidcRefused(
            "invalid-token",
            "only tokens minted by trusted publishing are burnt here: revoke API tokens "
            "in the dashboard or with 'extrapypi token revoke'",
        )
    token_service.revoke_token(dbsession, row, row.user)
    return row


def settle_pending(dbsession: Session, package: Package, grant: token_service.TokenGrant) -> None:
    """A pending publisher's first upload created ``package``: it becomes the package's
    publisher; other pending publishers for that name (other people's) are dropped."""
    pending = dbsession.scalars(
        select(TrustedPublisher).where(
            TrustedPublisher.package_id.is_(None),
            TrustedPublisher.pending_name == package.normalized_name,
        )
    )
    for publisher in pending:
        if publisher.id in grant.publisher_ids:
            publisher.package = package
            publisher.pending_name = None
            record(
                dbsession,
                "add publisher",
                package_name=package.name,
                detail=f"pending publisher {publisher.id} now publishes {package.name}",
                user=publisher.created_by,
            )
        else:
            dbsession.delete(publisher)


# Management (CLI and dashboard)


def parse_claims(pairs: list[str]) -> dict[str, str]:
    """``["repository=org/repo", ...]`` → a dict; every claim matches exactly."""
    claims: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        name, value = name.strip(), value.strip()
        if not sep or not name or not value:
            raise PublisherError(
                f"{pair!r} is not a claim: write KEY=VALUE, e.g. repository=org/repo"
            )
        if name in PROTOCOL_CLAIMS:
            raise PublisherError(f"{name!r} cannot be matched: it is checked for every token")
        if len(name) > 100 or len(value) > CLAIM_MAX or "\x00" in name + value:
            raise PublisherError(
                f"claim {name[:100]!r} is too long (at most {CLAIM_MAX} characters)"
            )
        claims[name] = value
    if not claims:
        raise PublisherError("a publisher needs at least one claim, e.g. repository=org/repo")
    if len(claims) > MAX_CLAIMS:
        raise PublisherError(f"at most {MAX_CLAIMS} claims per publisher")
    return claims


def add_publisher(
    dbsession: Session,
    settings: OidcSettings,
    project: str,
    issuer: str,
    claims: dict[str, str],
    creator: User,
    pending: bool | None = None,
) -> TrustedPublisher:
    """Register a publisher for an existing package, or (``pending``) for a name no package has.

    ``pending=None`` chooses by whether the package exists.
    """
    issuer = issuer.strip()
    if issuer not in settings.issuers:
        listed = ", ".join(settings.issuers) or "none"
        raise PublisherError(
            f"{issuer!r} is not a trusted issuer (extrapypi.oidc.issuers lists: {listed})"
        )
    try:
        normalized = normalize_name(project)
    except InvalidName:
        raise PublisherError(f"{project!r} is not a valid project name.") from None
    package = get_package(dbsession, normalized)
    if pending is None:
        pending = package is None
    if pending and package is not None:
        raise PublisherError(f"{package.name} exists: register a normal publisher for it")
    if not pending and package is None:
        raise PublisherError(f"no project named {project!r} (use a pending publisher)")
    if pending and Role.DEVELOPER not in roles_at_or_below(creator.role):
        raise PublisherError("pending publishers create projects: they need a developer or admin")
    for existing in dbsession.scalars(
        select(TrustedPublisher).where(TrustedPublisher.issuer == issuer)
    ):
        if existing.project == normalized and existing.claims == claims:
            raise PublisherError(f"publisher {existing.id} has exactly these claims already")
    publisher = TrustedPublisher(
        package=package,
        pending_name=normalized if pending else None,
        issuer=issuer,
        claims=claims,
        created_by=creator,
        created=utcnow(),
    )
    dbsession.add(publisher)
    dbsession.flush()
    record(
        dbsession,
        "add pending publisher" if pending else "add publisher",
        package_name=package.name if package is not None else normalized,
        detail=f"{publisher.id}: {issuer} {describe_claims(claims)}",
        user=creator,
    )
    return publisher


def describe_claims(claims: dict[str, str]) -> str:
    return " ".join(f"{name}={value}" for name, value in sorted(claims.items()))


def list_publishers(
    dbsession: Session, package: Package | None = None, pending_by: User | None = None
) -> list[TrustedPublisher]:
    query = select(TrustedPublisher).order_by(TrustedPublisher.id)
    if package is not None:
        query = query.where(TrustedPublisher.package_id == package.id)
    if pending_by is not None:
        query = query.where(
            TrustedPublisher.package_id.is_(None), TrustedPublisher.created_by_id == pending_by.id
        )
    return list(dbsession.scalars(query))


def remove_publisher(dbsession: Session, publisher: TrustedPublisher, actor: User | None) -> None:
    record(
        dbsession,
        "remove publisher",
        package_name=publisher.package.name if publisher.package else publisher.pending_name,
        detail=f"{publisher.id}: {publisher.issuer} {describe_claims(publisher.claims)}",
        user=actor,
    )
    dbsession.delete(publisher)


def includeme(config) -> None:
    settings = parse_oidc_settings(config.get_settings())
    config.registry["extrapypi.oidc"] = settings
    config.registry["extrapypi.oidc_keys"] = KeyCache(settings)
