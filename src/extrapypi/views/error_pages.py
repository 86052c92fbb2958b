"""Error pages for people: the plain-text refusals of ``errors.py``, re-dressed in the layout.

``errors.py`` decides the status and the reason (and stays the only place that does); this
layer only changes how the answer looks, and only for browsers: a request whose ``Accept``
names ``text/html`` and prefers it to every client media type, outside the paths only programs
use. pip, uv and twine (which prefer the simple API's types or send ``*/*``) keep the plain-text
reason in the status line and the body. A failed CSRF check on a browser form answers with the
form's fields again (passwords left empty) and a fresh token, so nothing typed is lost.
"""

import logging

from pyramid.csrf import get_csrf_token
from pyramid.events import NewResponse, subscriber
from pyramid.exceptions import BadCSRFToken
from pyramid.renderers import render

from ..resources import FileResource
from .errors import API_PREFIXES, BROWSER_TYPES, CLIENT_TYPES, is_file_path
from .headers import HTML_ONLY

log = logging.getLogger(__name__)

#: Form fields never sent back into a page (the person types them again).
SECRET_FIELDS = frozenset({"password", "current", "confirmation", "csrf_token"})
MAX_FIELDS = 50
MAX_VALUE = 10_000
TITLES = {
    400: "This request could not be handled",
    401: "Please log in",
    403: "Not allowed",
    404: "Page not found",
    405: "Not possible here",
    413: "Too large",
    429: "Too many attempts",
}


def wants_html_page(request) -> bool:
    """A browser asking for a page (never pip, uv, twine or a script with ``*/*``)."""
    try:
        path = request.path_info
    except UnicodeDecodeError:  # a path that names nothing here: the plain 400 says so
        return False
    if path.startswith(API_PREFIXES) or is_file_path(path):
        return False  # a download by its shape: also where traversal stopped short of the file
    if isinstance(getattr(request, "context", None), FileResource):
        return False
    if "text/html" not in request.headers.get("Accept", ""):
        return False
    offers = request.accept.acceptable_offers(BROWSER_TYPES + CLIENT_TYPES)
    return bool(offers) and offers[0][0] in BROWSER_TYPES


def way_back(request) -> str:
    """The page the person came from when it is on this site, else the home page."""
    referer = request.headers.get("Referer", "")
    own = request.application_url + "/"
    if referer.startswith(own) and referer != request.url:
        return referer
    return request.resource_url(request.root)


def posted_from_this_site(request) -> bool:
    """The refused form was on one of our pages (its Origin, else its Referer, is ours).

    Only then is it offered again: a form another site posted must not come back as ours,
    filled with its fields and a fresh token, one click away from being submitted.
    """
    own = request.host_url
    origin = request.headers.get("Origin")
    if origin is not None:
        return origin == own
    return request.headers.get("Referer", "").startswith(own + "/")


def is_secret(name: str) -> bool:
    lowered = name.lower()
    return name in SECRET_FIELDS or any(w in lowered for w in ("password", "secret", "token"))


def resubmitted_fields(request) -> tuple[list[tuple[str, str]], list[str]]:
    """(fields to send again, secret fields to type again) from the refused POST."""
    kept: list[tuple[str, str]] = []
    secret: list[str] = []
    for name, value in list(request.POST.items())[:MAX_FIELDS]:
        if not isinstance(value, str):
            continue  # an uploaded file: never resent
        if is_secret(name):
            if name != "csrf_token" and name not in secret:
                secret.append(name)
            continue
        kept.append((name, value[:MAX_VALUE]))
    return kept, secret


def page_values(request, response) -> dict:
    status = response.status_int
    reason = response.text.strip() if response.body else response.status.split(" ", 1)[-1]
    values = {
        "status": status,
        "title": TITLES.get(status, "Something went wrong"),
        "reason": reason,
        "back_url": way_back(request),
        "resubmit": None,
    }
    expired = isinstance(getattr(request, "exception", None), BadCSRFToken)
    if expired and request.method == "POST" and posted_from_this_site(request):
        kept, secret = resubmitted_fields(request)
        values["title"] = "Your session expired"
        values["resubmit"] = {
            "action": request.path_qs,
            "fields": kept,
            "secret": secret,
            "token": get_csrf_token(request),
        }
    return values


@subscriber(NewResponse)
def html_error_page(event) -> None:
    """Refusals as pages in the layout for browsers; status, reason and headers unchanged."""
    request, response = event.request, event.response
    if response.status_int < 400 or response.content_type != "text/plain":
        return
    if not wants_html_page(request):
        return
    try:
        body = render("error.jinja2", page_values(request, response), request=request)
    except Exception:  # a broken page must never hide the refusal itself
        log.exception("could not render the error page; answering in plain text")
        return
    response.content_type = "text/html"
    response.charset = "utf-8"
    response.text = body
    for name, value in HTML_ONLY.items():
        response.headers.setdefault(name, value)
    response.vary = sorted({*(response.vary or ()), "Accept"})
