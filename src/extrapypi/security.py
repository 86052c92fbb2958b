"""One security policy, three identity sources: HTTP Basic passwords for pip/uv/twine, API tokens
(Basic with the username ``__token__``), and a server-side session (its token in a signed cookie)
for browsers. Principals and ``permits`` are computed in one place for all three."""

from pyramid.authentication import extract_http_basic_credentials
from pyramid.authorization import ACLDenied, ACLHelper, Authenticated, Everyone
from pyramid.csrf import SessionCSRFStoragePolicy
from pyramid.httpexceptions import HTTPForbidden
from pyramid.request import RequestLocalCache
from pyramid.session import JSONSerializer, SignedCookieSessionFactory

from .models import User
from .models.meta import utcnow
from .permissions import role_principal, roles_at_or_below, user_principal
from .refusals import project_of
from .services.accounts import (
    Account,
    CredentialCache,
    LoginCache,
    authenticate,
    note_login,
)
from .services.read_cache import DECISIONS_KEY, ReadDecisions
from .services.sessions import end_session, open_session, session_user
from .services.teams import team_principals
from .services.throttle import LoginThrottle, LoginThrottled
from .services.tokens import (
    TOKEN_USERNAME,
    TokenGrant,
    TokenRefused,
    UseRecorder,
    dashboard_refusal,
    grant_of,
    note_refused_use,
    token_refusal,
    verify_token,
)
from .settings import get_app_settings

BASIC = "basic"
SESSION = "session"
TOKEN = "token"
#: Where a refused API token's reason is left for the forbidden view (a 401 that says which).
TOKEN_REFUSED_KEY = "extrapypi.token_refused"
#: Paths an API token may read: the client APIs and file downloads, never a dashboard page.
TOKEN_PATH_PREFIXES = ("/simple", "/pypi", "/legacy", "/namespace")
#: The cookie session's key for the server-side session token (``services/sessions.py``).
SESSION_TOKEN_KEY = "auth.sid"
#: Set by "remember me": the session cookie outlives the browser (``session_max_age``).
SESSION_PERSISTENT_KEY = "auth.persistent"
#: Where a refused (throttled) Basic login is left for the forbidden view.
THROTTLED_KEY = "extrapypi.login_throttled"


class Identity:
    """Who is asking, and how they proved it (``basic``, ``token`` or ``session``).

    ``id``, ``username`` and ``role`` come from the login cache on most Basic requests; the
    ``user`` row is loaded through the request's session only when a view asks for it.
    ``token`` is the API token's limits when one was used: ``permits`` narrows by it.
    """

    __slots__ = ("_request", "_user", "id", "method", "role", "token", "username")

    def __init__(
        self,
        account: Account,
        method: str,
        request,
        user: User | None = None,
        token: TokenGrant | None = None,
    ):
        self.id = account.id
        self.username = account.username
        self.role = account.role
        self.method = method
        self.token = token
        self._request = request  # its session is opened only if a view asks for the user
        self._user = user

    @property
    def user(self) -> User:
        if self._user is None:
            user = self._request.dbsession.get(User, self.id)
            if user is None:  # deleted by a transaction committed after this request began
                raise HTTPForbidden("Forbidden: this account no longer exists")
            self._user = user
        return self._user

    def __repr__(self) -> str:
        return f"<Identity {self.username!r} {self.role} {self.method}>"


def account_of(user: User) -> Account:
    return Account(user.id, user.username, user.role)


def _token_path(request) -> bool:
    """The client APIs, the upload endpoint and file downloads: what a token is for."""
    path = request.path_info
    if path.startswith(TOKEN_PATH_PREFIXES) or (path == "/" and request.method == "POST"):
        return True
    segments = path.split("/")  # /packages/<name>/<version>/<file>: a download
    return len(segments) == 5 and segments[1] == "packages" and "." in segments[4]


class SecurityPolicy:
    def __init__(
        self,
        secret: str,
        credential_cache: CredentialCache,
        throttle: LoginThrottle | None = None,
        session_max_age: int | None = None,
        login_cache: LoginCache | None = None,
        token_cache: LoginCache | None = None,
        read_decisions: ReadDecisions | None = None,
    ):
        self.secret = secret.encode()
        self.token_key = secret
        self.token_cache = token_cache
        self.token_uses = UseRecorder()
        #: Refused uses of a real token are journaled at most once a minute per token.
        self.token_refusals = UseRecorder()
        self.credential_cache = credential_cache
        self.login_cache = login_cache
        self.throttle = throttle
        self.session_max_age = session_max_age or 14 * 24 * 3600
        self.acl = ACLHelper()
        self._identity = RequestLocalCache(self._load_identity)
        #: ``services/read_cache.ReadDecisions``: answers ``fastpath.py`` may give again.
        self.read_decisions = read_decisions

    def cached_account(self, access_serial: int, username: str, password: str) -> Account | None:
        """A password login already verified at this access serial, or None (``fastpath.py``)."""
        if username == TOKEN_USERNAME or self.login_cache is None or self.login_cache.ttl <= 0:
            return None
        return self.login_cache.get(access_serial, username, password)

    def cached_token(self, access_serial: int, token: str, address: str, session_factory):
        """(account, grant) of an API token already verified at this access serial and not
        expired, or None (``fastpath.py``); its use is recorded as on the full stack."""
        cache = self.token_cache
        if cache is None or cache.ttl <= 0:
            return None
        entry = cache.get(access_serial, TOKEN_USERNAME, token)
        if entry is None:
            return None
        grant = entry[1]
        if grant.expires is not None and grant.expires <= utcnow():
            return None  # the full stack refuses it, saying why, and journals the attempt
        self.token_uses.note(session_factory, grant.id, address)  # at most once a minute
        return entry

    def _load_identity(self, request) -> Identity | None:
        credentials = extract_http_basic_credentials(request)
        if credentials is not None:
            if credentials.username == TOKEN_USERNAME:
                return self._token_identity(request, credentials.password)
            return self._basic_identity(request, credentials.username, credentials.password)
        token = request.session.get(SESSION_TOKEN_KEY)
        if token is None:
            return None
        user = session_user(request.dbsession, token, self.session_max_age)
        if user is None:
            # Ended on the server (logout elsewhere, password or role change): drop the cookie's
            # copy too, CSRF token included, so nothing of the old session is ever accepted.
            request.session.invalidate()
            return None
        return Identity(account_of(user), SESSION, request, user)

    def _basic_identity(self, request, username: str, password: str) -> Identity | None:
        """pip's credentials on every request: from the login cache while the access serial
        stands (uploads move only the index serial: they cost no login check)."""
        cache = self.login_cache
        if cache is not None and cache.ttl <= 0:
            cache = None
        if cache is not None:
            serial = request.access_serial  # before the user row: entries are never older
            account = cache.get(serial, username, password)
            if account is not None:
                return Identity(account, BASIC, request)
        try:
            user = authenticate(
                request.dbsession,
                username,
                password,
                self.credential_cache,
                self.throttle,
                request.remote_addr or "",
                rounds=get_app_settings(request.registry).bcrypt_rounds,
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
        return Identity(account, BASIC, request, user)

    def _token_identity(self, request, token: str) -> Identity | None:
        """An API token: an HMAC and, on a cache miss, one query; never bcrypt."""
        cache = self.token_cache
        if cache is not None and cache.ttl <= 0:
            cache = None
        address = request.remote_addr or ""
        factory = request.registry["dbsession_factory"]
        if cache is not None:
            serial = request.access_serial
            entry = cache.get(serial, TOKEN_USERNAME, token)
            if entry is not None:
                account, grant = entry
                if grant.expires is None or grant.expires > utcnow():
                    self.token_uses.note(factory, grant.id, address)
                    return Identity(account, TOKEN, request, token=grant)
        try:
            if self.throttle is not None:
                self.throttle.check(request.dbsession, TOKEN_USERNAME, address)
            row = verify_token(request.dbsession, self.token_key, token)
        except LoginThrottled as refusal:
            request.environ[THROTTLED_KEY] = refusal
            return None
        except TokenRefused as refusal:
            request.environ[TOKEN_REFUSED_KEY] = refusal
            if refusal.token_id is None:  # a guess: it spends the address's login budget
                if self.throttle is not None:
                    self.throttle.failed(request.dbsession, TOKEN_USERNAME, address, False)
            elif self.token_refusals.due(refusal.token_id):
                note_refused_use(factory, refusal.token_id, str(refusal), address)
            return None
        account, grant = account_of(row.user), grant_of(row)
        if cache is not None:
            cache.put(serial, TOKEN_USERNAME, token, (account, grant))
        self.token_uses.note(factory, grant.id, address)
        return Identity(account, TOKEN, request, row.user, grant)

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
            principals.extend(team_principals(request, identity.id))
        return principals

    def permits(self, request, context, permission):
        """The ACL's answer, narrowed for an API token to its scope, projects and paths."""
        principals = self.effective_principals(request)
        result = self.acl.permits(context, principals, permission)
        identity = self.identity(request)
        memo = self.read_decisions
        remember = (
            memo is not None
            and identity is not None
            and identity.method in (BASIC, TOKEN)  # not a session: no cookie on the fast path
            and getattr(context, "memoize_reads", False)
        )
        if not result or identity is None or identity.token is None:
            if remember:
                key = (identity.id, identity.role, context.read_path(), str(permission))
                memo.put(request.access_serial, key, bool(result))
            return result
        if not _token_path(request):
            reason = dashboard_refusal(identity.token)
        else:
            reason = token_refusal(identity.token, permission, project_of(context))
        if remember:  # a token's answer: the ACL's narrowed by its scope and projects
            key = (identity.id, identity.role, context.read_path(), str(permission))
            memo.put(request.access_serial, (*key, identity.token.id), reason is None)
        if reason is None:
            return result
        denied = ACLDenied("<token limits>", [], permission, principals, context)
        denied.token_reason = reason
        return denied

    def remember(self, request, user: User, persistent: bool = False, **kw) -> list:
        """Open a server-side session for ``user``; the cookie session carries its token."""
        request.session[SESSION_TOKEN_KEY] = open_session(
            request.dbsession, user, self.session_max_age
        )
        if persistent and self.session_max_age:
            request.session[SESSION_PERSISTENT_KEY] = True
            request.session._cookie_max_age = self.session_max_age
        elif SESSION_PERSISTENT_KEY not in request.session:
            request.session._cookie_max_age = None  # a browser-session cookie
        self._identity.clear(request)
        return []  # the cookie session sends its own Set-Cookie

    def forget(self, request, **kw) -> list:
        """End this browser's session on the server, not only the browser's copy."""
        self._identity.clear(request)
        token = request.session.pop(SESSION_TOKEN_KEY, None)
        if token is not None:
            end_session(request.dbsession, token)
        return []


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
    throttle = LoginThrottle(
        settings.login_throttle_attempts,
        settings.login_throttle_window,
        settings.login_throttle_address_attempts,
        settings.login_throttle_account_attempts,
        settings.login_throttle_account_window,
    )
    config.registry["extrapypi.login_throttle"] = throttle
    login_cache = LoginCache(settings.secret, settings.credential_cache_seconds)
    config.registry["extrapypi.login_cache"] = login_cache
    # Verified API tokens per access serial, as passwords: revocation and owner changes move it.
    token_cache = LoginCache(settings.secret, settings.credential_cache_seconds)
    config.registry["extrapypi.token_cache"] = token_cache
    policy = SecurityPolicy(
        settings.secret,
        cache,
        throttle,
        settings.session_max_age,
        login_cache,
        token_cache,
        config.registry.get(DECISIONS_KEY),
    )
    config.registry["extrapypi.security_policy"] = policy
    config.set_security_policy(policy)
