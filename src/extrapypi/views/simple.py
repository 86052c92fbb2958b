"""``GET /simple/`` and ``/simple/<name>/``: the PEP 503/691 index pip and uv read.

A request costs the identity (cached credentials), one change-serial read and a page-cache hit.
Redirects are built from the normalized name only, never from raw input (pypiserver's
CVE-2019-6802 reflected the requested name into the ``Location`` header).
"""

from urllib.parse import urlencode

from pyramid.httpexceptions import HTTPMovedPermanently, HTTPNotAcceptable, HTTPNotFound
from pyramid.response import Response
from pyramid.view import view_config

from ..permissions import Permission
from ..resources import SimpleIndex, SimpleProject
from ..services.index import MEDIA_TYPES, TEXT_HTML_TYPE, PageCache, RenderedPage, cached_page
from ..services.journal import current_serial
from ..services.names import normalize_name
from .errors import plain_error

#: Server preference among equally acceptable types: HTML first, as PEP 691 advises for ``*/*``.
OFFERS = list(MEDIA_TYPES)
VARY = ("Accept", "Accept-Encoding")
CACHE_CONTROL = "private, max-age=0, must-revalidate"
CACHE_KEY = "extrapypi.index_cache"


def page_cache(registry) -> PageCache:
    cache = registry.get(CACHE_KEY)
    if cache is None:
        cache = registry.setdefault(CACHE_KEY, PageCache())
    return cache


def choose_media_type(request) -> str | None:
    """The media type to answer with (``?format=`` wins over ``Accept``); None: nothing fits."""
    requested = request.GET.get("format")
    if requested is not None:
        # an unencoded "+" arrives as a space
        return MEDIA_TYPES.get(requested.strip().lower().replace(" ", "+"))
    if "Accept" not in request.headers:
        return TEXT_HTML_TYPE
    offers = request.accept.acceptable_offers(OFFERS)
    return MEDIA_TYPES[offers[0][0]] if offers else None


def not_acceptable():
    response = plain_error(
        HTTPNotAcceptable,
        "Not Acceptable: this index answers " + ", ".join(OFFERS),
    )
    response.vary = VARY
    return response


def page_response(request, page: RenderedPage, media_type: str) -> Response:
    # no Accept-Encoding header: send identity (RFC 9110 allows anything, clients expect that)
    gzipped = "Accept-Encoding" in request.headers and bool(
        request.accept_encoding.acceptable_offers(["gzip"])
    )
    etag = page.etag + ("-gz" if gzipped else "")
    if etag in request.if_none_match:
        response = Response(status=304)
    else:
        response = Response(
            body=page.gzipped if gzipped else page.body,
            content_type=media_type,
            charset="utf-8",
        )
        if gzipped:
            response.content_encoding = "gzip"
    response.etag = etag
    response.vary = VARY
    response.cache_control = CACHE_CONTROL
    return response


def redirect(request, path: str) -> HTTPMovedPermanently:
    query = "?" + urlencode(list(request.GET.items())) if request.GET else ""
    return HTTPMovedPermanently(location=request.script_name + path + query)


@view_config(
    context=SimpleIndex,
    request_method=("GET", "HEAD"),
    permission=Permission.VIEW,
)
def simple_root(context: SimpleIndex, request) -> Response:
    if not request.path_info.endswith("/"):
        return redirect(request, "/simple/")
    media_type = choose_media_type(request)
    if media_type is None:
        return not_acceptable()
    serial = current_serial(request.dbsession)
    page = cached_page(page_cache(request.registry), request.dbsession, serial, None, media_type)
    return page_response(request, page, media_type)


@view_config(
    context=SimpleProject,
    containment=SimpleIndex,
    request_method=("GET", "HEAD"),
    permission=Permission.VIEW,
)
def simple_project(context: SimpleProject, request) -> Response:
    try:
        normalized = normalize_name(context.__name__)
    except ValueError:
        raise HTTPNotFound() from None
    media_type = choose_media_type(request)
    if media_type is None:
        return not_acceptable()
    serial = current_serial(request.dbsession)
    cache = page_cache(request.registry)
    page = cached_page(cache, request.dbsession, serial, normalized, media_type)
    if page is None:
        raise HTTPNotFound()
    if normalized != context.__name__ or not request.path_info.endswith("/"):
        return redirect(request, f"/simple/{normalized}/")
    return page_response(request, page, media_type)
