"""One security policy: HTTP Basic for pip/uv/twine, a signed session cookie for browsers."""

import hashlib
import hmac

from pyramid.authentication import SessionAuthenticationHelper, extract_http_basic_credentials
from pyramid.authorization import ACLHelper, Authenticated, Everyone
from pyramid.csrf import SessionCSRFStoragePolicy
from pyramid.httpexceptions import HTTPForbidden
from pyramid.request import RequestLocalCache
from pyramid.session import JSONSerializer, SignedCookieSessionFactory

from .models import User
from .permissions import role_principal, roles_at_or_below, user_principal
from .services.accounts import Account, CredentialCache, LoginCache, authenticate, note_login
from .services.index import index_serial
from .services.throttle import LoginThrottle, LoginThrottled
from .settings import get_app_settings

BASIC = "basic"
SESSION = "session"
SESSION_FINGERPRINT_KEY = "auth.fp"
#: Set by "remember me": the session cookie outlives the browser (``session_max_age``).
SESSION_PERSISTENT_KEY = "auth.persistent"
#: Where a refused (throttled) Basic login is left for the forbidden view.
THROTTLED_KEY = "extrapypi.login_throttled"


class Identity:
    """Who is asking, and how they proved it (``basic`` or ``session``).

    ``id``, ``username`` and ``role`` come from the login cache on most Basic requests; the
    ``user`` row is loaded through the request's session only when a view asks for it.
    """

    __slots__ = ("_dbsession", "_user", "id", "method", "role", "username")

    def __init__(self, account: Account, method: str, dbsession, user: User | None = None):
        self.id = account.id
        self.username = account.username
        self.role = account.role
        self.method = method
        self._dbsession = dbsession
        self._user = user

    @property
    def user(self) -> User:
        if self._user is None:
            user = self._dbsession.get(User, self.id)
            if user is None:  # deleted by a transaction committed after this request began
                raise HTTPForbidden("Forbidden: this account no longer exists")
            self._user = user
        return self._user

    def __repr__(self) -> str:
        return f"<Identity {self.username!r} {self.role} {self.method}>"


def account_of(user: User) -> Account:
    return Account(user.id, user.username, user.role)


class SecurityPolicy:
    def __init__(
        self,
        secret: str,
        credential_cache: CredentialCache,
        throttle: LoginThrottle | None = None,
        session_max_age: int | None = None,
        login_cache: LoginCache | None = None,
    ):
        self.secret = secret.encode()
        self.credential_cache = credential_cache
        self.login_cache = login_cache
        self.throttle = throttle
        self.session_max_age = session_max_age
        self.session_helper = SessionAuthenticationHelper()
        self.acl = ACLHelper()
        self._identity = RequestLocalCache(self._load_identity)

    def session_fingerprint(self, user: User) -> str:
        """Ties a session to the password it was opened with: a new password ends old sessions."""
        message = f"{user.id}:{user.password_hash}".encode()
        return hmac.new(self.secret, message, hashlib.sha256).hexdigest()[:32]

    def _load_identity(self, request) -> Identity | None:
        credentials = extract_http_basic_credentials(request)
        if credentials is not None:
            return self._basic_identity(request, credentials.username, credentials.password)
        user_id = self.session_helper.authenticated_userid(request)
        if user_id is None:
            return None
        user = request.dbsession.get(User, user_id)
        if user is None or not user.is_active:
            return None
        if request.session.get(SESSION_FINGERPRINT_KEY) != self.session_fingerprint(user):
            return None
        return Identity(account_of(user), SESSION, request.dbsession, user)

    def _basic_identity(self, request, username: str, password: str) -> Identity | None:
        """pip's credentials on every request: from the login cache while the serial stands."""
        cache = self.login_cache
        if cache is not None and cache.ttl <= 0:
            cache = None
        if cache is not None:
            serial = request.index_serial  # before the user row: entries are never older
            account = cache.get(serial, username, password)
            if account is not None:
                return Identity(account, BASIC, request.dbsession)
        try:
            user = authenticate(
                request.dbsession,
                username,
                password,
                self.credential_cache,
                self.throttle,
                request.remote_addr or "",
            )
        except LoginThrottled as refusal:
            # Anonymous then; the forbidden view answers 429 (pyramid_tm asks for the
            # identity outside the exception views, so raising here would be a 500).
            request.environ[THROTTLED_KEY] = refusal
            return None
        if user is None:
            return None
        # At most hourly, in its own transaction; this is a cache miss, not every request.
        note_login(request.registry["dbsession_factory"], user)
        account = account_of(user)
        if cache is not None:
            cache.put(serial, username, password, account)
        return Identity(account, BASIC, request.dbsession, user)

    def identity(self, request) -> Identity | None:
        return self._identity.get_or_create(request)

    def identity_if_known(self, request) -> Identity | None:
        """The identity if this request already established it; never authenticates (for logs)."""
        return self._identity.get(request, None)

    def authenticated_userid(self, request) -> int | None:
        identity = self.identity(request)
        return identity.id if identity is not None else None

    def effective_principals(self, request) -> list[str]:
        principals = [Everyone]
        identity = self.identity(request)
        if identity is not None:
            principals.append(Authenticated)
            principals.append(user_principal(identity.id))
            principals.extend(role_principal(r) for r in roles_at_or_below(identity.role))
        return principals

    def permits(self, request, context, permission):
        return self.acl.permits(context, self.effective_principals(request), permission)

    def remember(self, request, user: User, persistent: bool = False, **kw) -> list:
        request.session[SESSION_FINGERPRINT_KEY] = self.session_fingerprint(user)
        if persistent and self.session_max_age:
            request.session[SESSION_PERSISTENT_KEY] = True
            request.session._cookie_max_age = self.session_max_age
        elif SESSION_PERSISTENT_KEY not in request.session:
            request.session._cookie_max_age = None  # a browser-session cookie
        self._identity.clear(request)
        return self.session_helper.remember(request, user.id, **kw)

    def forget(self, request, **kw) -> list:
        self._identity.clear(request)
        request.session.pop(SESSION_FINGERPRINT_KEY, None)
        return self.session_helper.forget(request, **kw)


def includeme(config) -> None:
    settings = get_app_settings(config.registry)
    session_factory = SignedCookieSessionFactory(
        settings.secret,
        cookie_name="extrapypi_session",
        httponly=True,
        samesite="Lax",
        secure=settings.cookie_secure,
        timeout=settings.session_max_age,
        max_age=None,
        reissue_time=600,
        serializer=JSONSerializer(),
    )

    def session_with_lifetime(request):
        """Sessions opened with "remember me" keep a lasting cookie; others end with the browser."""
        session = session_factory(request)
        if session.get(SESSION_PERSISTENT_KEY):
            # pyramid's cookie sessions take max_age per factory only; this one session differs.
            session._cookie_max_age = settings.session_max_age
        return session

    config.set_session_factory(session_with_lifetime)
    config.set_csrf_storage_policy(SessionCSRFStoragePolicy())
    config.set_default_csrf_options(require_csrf=True)
    cache = CredentialCache(settings.secret, settings.credential_cache_seconds)
    config.registry["extrapypi.credential_cache"] = cache
    throttle = LoginThrottle(settings.login_throttle_attempts, settings.login_throttle_window)
    config.registry["extrapypi.login_throttle"] = throttle
    login_cache = LoginCache(settings.secret, settings.credential_cache_seconds)
    config.registry["extrapypi.login_cache"] = login_cache
    config.set_security_policy(
        SecurityPolicy(settings.secret, cache, throttle, settings.session_max_age, login_cache)
    )
    # Read once per request: the login cache and the index page cache share it.
    config.add_request_method(
        lambda request: index_serial(request.dbsession), "index_serial", reify=True
    )
