"""Refuse requests a browser makes on another site's behalf at endpoints that accept HTTP Basic.

A browser that once answered the Basic prompt (someone opened ``/simple/`` in it) replays the saved
password on *any* request to this site, whoever started it: a page elsewhere can auto-submit a
multipart form to ``/legacy/`` or a form to ``.../yank``, get a 401 challenge, and the browser
sends the credentials along on its own. CSRF tokens protect the dashboard's session forms; these
endpoints serve programs (twine, uv, poetry, curl) that send neither ``Origin`` nor
``Sec-Fetch-*``, while every current browser sends them with each POST (Fetch standard). So a
request that carries them and names another site, or is a navigation (a submitted form), was not
sent by an upload tool and is refused before anything reads its body or looks at who sent it.

A view opts in with one word: ``@view_config(..., refuse_cross_site=True)``.
"""

from urllib.parse import urlsplit

from pyramid.httpexceptions import HTTPForbidden
from pyramid.viewderivers import INGRESS

#: The view option: ``refuse_cross_site=True``.
OPTION = "refuse_cross_site"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
#: Headers only browsers send (Fetch standard); upload tools send none of them.
BROWSER_HEADERS = ("Origin", "Sec-Fetch-Site", "Sec-Fetch-Mode")
DEFAULT_PORTS = {"http": 80, "https": 443}
FOR_PROGRAMS = "this endpoint is for upload tools (twine, uv, curl), not for web pages"


class CrossSiteRefused(HTTPForbidden):
    """A browser made this request for another site (or as a navigation): 403 with the reason."""


def browser_made(request) -> bool:
    """True when the request carries a header only browsers send."""
    return any(name in request.headers for name in BROWSER_HEADERS)


def _origin(url: str) -> tuple[str, str, int] | None:
    """(scheme, host, port) of an origin or base URL; None when it is not an http(s) origin."""
    try:
        parts = urlsplit(url.strip().lower())
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
        return None
    return parts.scheme, parts.hostname, port or DEFAULT_PORTS[parts.scheme]


def is_this_site(origin: str, request) -> bool:
    """``origin`` (an ``Origin`` header value) is this site as the request reached it."""
    theirs = _origin(origin)
    return theirs is not None and theirs == _origin(f"{request.scheme}://{request.host}")


def other_site_reason(request) -> str | None:
    """Why a browser sent this request from another site; None when nothing says so.

    ``Sec-Fetch-Site: same-site`` counts too: another port or a sibling subdomain is another
    application, and it can be hostile.
    """
    headers = request.headers
    origin = headers.get("Origin")
    if origin is not None and not is_this_site(origin, request):
        return (
            f"Forbidden: refused a request a browser sent from another site (Origin); "
            f"{FOR_PROGRAMS}"
        )
    site = headers.get("Sec-Fetch-Site", "").strip().lower()
    if site in ("cross-site", "same-site"):
        return (
            "Forbidden: refused a request a browser sent from another site "
            f"(Sec-Fetch-Site: {site}); {FOR_PROGRAMS}"
        )
    return None


def cross_site_reason(request) -> str | None:
    """Why this request was made by a browser for a page (another site's, or a submitted form)."""
    reason = other_site_reason(request)
    if reason is None and headers_say_navigate(request):
        reason = (
            "Forbidden: refused a form a browser submitted (Sec-Fetch-Mode: navigate); "
            f"{FOR_PROGRAMS}"
        )
    return reason


def headers_say_navigate(request) -> bool:
    return request.headers.get("Sec-Fetch-Mode", "").strip().lower() == "navigate"


def retry_attempts(request) -> int | None:
    """pyramid_retry's activate hook: a single attempt for a state change another site sent.

    With retries on, pyramid_retry copies the whole body before any view runs (to replay it);
    such a request is refused (or CSRF-checked) without its body, so it is never copied.
    """
    if request.method not in SAFE_METHODS and other_site_reason(request) is not None:
        return 1
    return None  # the configured ``retry.attempts``


def refuse_cross_site_view(view, info):
    """The view deriver behind the option; it runs before the permission check, so an anonymous
    cross-site POST never reaches the 401 challenge that would make the browser replay a saved
    password, and before the view reads the body."""
    if not info.options.get(OPTION):
        return view

    def refuse_cross_site(context, request):
        reason = cross_site_reason(request)
        if reason is not None:
            raise CrossSiteRefused(reason)
        return view(context, request)

    return refuse_cross_site


refuse_cross_site_view.options = (OPTION,)


def includeme(config) -> None:
    config.add_view_deriver(refuse_cross_site_view, name=OPTION, under=INGRESS, over="secured_view")
