"""Refusals in plain words: 401 + Basic challenge for clients, login redirect for browsers, 403."""

from pyramid.exceptions import BadCSRFOrigin, BadCSRFToken, PredicateMismatch, URLDecodeError
from pyramid.httpexceptions import (
    HTTPBadRequest,
    HTTPForbidden,
    HTTPFound,
    HTTPMethodNotAllowed,
    HTTPNotFound,
    HTTPTooManyRequests,
    HTTPUnauthorized,
)
from pyramid.location import lineage
from pyramid.view import exception_view_config, forbidden_view_config, notfound_view_config

from ..cross_site import SAFE_METHODS, CrossSiteRefused, browser_made, cross_site_reason
from ..permissions import Permission
from ..refusals import package_of, refusal_reason
from ..security import THROTTLED_KEY, TOKEN_REFUSED_KEY
from ..services.throttle import LoginThrottled
from ..settings import get_app_settings

REALM = 'Basic realm="extrapypi"'
#: Paths only programs use: they get a 401 challenge, never a login page.
#: /namespace(s): PEP 752; /upstream: the upstream proxy's files.
API_PREFIXES = ("/simple", "/pypi", "/legacy", "/namespace", "/metrics", "/upstream")
BROWSER_TYPES = ("text/html", "application/xhtml+xml")
CLIENT_TYPES = (
    "application/vnd.pypi.simple.v1+json",
    "application/vnd.pypi.simple.v1+html",
    "application/vnd.pypi.simple.latest+json",
    "application/vnd.pypi.simple.latest+html",
    "application/json",
)


def status_reason(reason: str) -> str:
    """A reason fit for an HTTP status line (where twine shows it): one line, latin-1, bounded."""
    reason = " ".join(reason.split())
    return reason.encode("latin-1", "replace").decode("latin-1")[:300]


def plain_error(exception_class, reason: str):
    """An HTTP error whose status line and plain-text body both carry ``reason``."""
    reason = status_reason(reason)
    response = exception_class(body=reason + "\n", content_type="text/plain", charset="utf-8")
    response.status = f"{response.code} {reason}"
    return response


def authentication_required(reason: str = "Authentication required"):
    """A 401 with the Basic challenge: pip and twine send credentials only after one."""
    response = plain_error(HTTPUnauthorized, reason)
    response.headers["WWW-Authenticate"] = REALM
    return response


def is_file_path(path: str) -> bool:
    """``/packages/<name>/<version>/<file>``: a download, by its shape alone.

    Decided from the path, never from what traversal found, so an anonymous request learns
    nothing about which packages, releases or files exist (file names have a dot, view names not).
    """
    segments = path.split("/")
    return len(segments) == 5 and segments[1] == "packages" and "." in segments[4]


def wants_login_page(request) -> bool:
    """Browsers asking for a dashboard page get the login form; programs get a 401 challenge."""
    if not get_app_settings(request.registry).dashboard or request.method not in ("GET", "HEAD"):
        return False
    if is_file_path(request.path_info) or request.path_info.startswith(API_PREFIXES):
        return False
    if "Authorization" in request.headers:
        return False
    offers = request.accept.acceptable_offers(BROWSER_TYPES + CLIENT_TYPES)
    return bool(offers) and offers[0][0] in BROWSER_TYPES


def throttled_response(refusal: LoginThrottled):
    """Too many failed logins: 429 with Retry-After, for browsers and clients alike."""
    response = plain_error(HTTPTooManyRequests, str(refusal))
    response.headers["Retry-After"] = str(refusal.retry_after)
    return response


@forbidden_view_config()
def forbidden(exc, request):
    identity = request.identity
    if identity is None and THROTTLED_KEY in request.environ:
        return throttled_response(request.environ[THROTTLED_KEY])
    if identity is None and TOKEN_REFUSED_KEY in request.environ:
        return authentication_required(str(request.environ[TOKEN_REFUSED_KEY]))
    if identity is None and request.method not in SAFE_METHODS and browser_made(request):
        # Never a Basic challenge for a browser's POST: it would replay a saved password.
        reason = cross_site_reason(request) or (
            "Forbidden: not logged in (or the session has ended): log in and try again"
        )
        return plain_error(HTTPForbidden, reason)
    if identity is None:
        if wants_login_page(request):
            login = request.resource_url(
                request.root, "login", query={"came_from": request.path_qs}
            )
            return HTTPFound(location=login)
        return authentication_required()
    if exc.detail and getattr(exc, "result", None) is None:
        return plain_error(HTTPForbidden, exc.detail)  # a reason a view gave
    token_reason = getattr(getattr(exc, "result", None), "token_reason", None)
    if token_reason is not None:
        return plain_error(HTTPForbidden, token_reason)
    permission = getattr(getattr(exc, "result", None), "permission", None)
    context = request.context
    reason = refusal_reason(identity, permission, package_of(context), context)
    return plain_error(HTTPForbidden, reason)


def allowed_methods(request) -> set[str] | None:
    """The methods some view answers at this context and view name (None: any method)."""
    methods: set[str] = set()
    for view in request.registry.introspector.get_category("views"):
        view = view["introspectable"]
        context, containment = view["context"], view["containment"]
        if view["route_name"] or view["exception_only"] or view["name"] != request.view_name:
            continue
        if context is not None and not _provides(request.context, context):
            continue
        if containment is not None and not any(
            _provides(location, containment) for location in lineage(request.context)
        ):
            continue
        declared = view["request_methods"]
        if declared is None:
            return None
        declared = {declared} if isinstance(declared, str) else set(declared)
        methods |= declared | ({"HEAD"} if "GET" in declared else set())
    return methods


def _provides(obj, spec) -> bool:
    return isinstance(obj, spec) if isinstance(spec, type) else spec.providedBy(obj)


def predicate_mismatch(request):
    """A page exists here but not for this request: 405 for the method, else 400 (a form field).

    None at all for this kind of place (a view of another tree, ``/pypi/<name>/``): 404.
    """
    methods = allowed_methods(request)
    if methods is not None and not methods:
        return not_found()
    if methods and request.method not in methods:
        allowed = ", ".join(sorted(methods))
        response = plain_error(
            HTTPMethodNotAllowed,
            f"Method Not Allowed: {request.method} is not answered here (allowed: {allowed})",
        )
        response.allow = sorted(methods)
        return response
    return plain_error(
        HTTPBadRequest,
        "Bad Request: a field this page needs (such as a known 'action') is missing or unknown",
    )


@notfound_view_config()
def notfound(exc, request):
    if not request.has_permission(Permission.VIEW, request.root):
        # Whoever may not look may not learn which names exist either.
        return forbidden(HTTPForbidden(), request)
    if isinstance(exc, PredicateMismatch):
        return predicate_mismatch(request)
    return not_found()


def not_found():
    return plain_error(HTTPNotFound, "Not Found: no such page or package here")


@exception_view_config(CrossSiteRefused)
def cross_site_refused(exc, request):
    """A browser made this request on another site's behalf (``cross_site``): 403, no challenge."""
    return plain_error(HTTPForbidden, exc.detail)


@exception_view_config(URLDecodeError)
def undecodable_path(exc, request):
    """A path with percent-escapes that are not UTF-8 names nothing here: say so, no traceback."""
    return plain_error(
        HTTPBadRequest, "Bad Request: the URL path is not valid percent-encoded UTF-8"
    )


@exception_view_config(BadCSRFToken)
def bad_csrf_token(exc, request):
    return plain_error(
        HTTPBadRequest,
        "Bad Request: the form's CSRF token is missing or out of date: "
        "reload the page and submit the form again",
    )


@exception_view_config(BadCSRFOrigin)
def bad_csrf_origin(exc, request):
    return plain_error(
        HTTPBadRequest, "Bad Request: the form was not posted from this site (Origin/Referer)"
    )
