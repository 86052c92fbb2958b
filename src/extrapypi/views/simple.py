"""``GET /simple/`` and ``/simple/<name>/``: the PEP 503/691 index pip and uv read.

A request costs the identity (cached credentials) and a page-cache hit: no query, no session.
Redirects are built from the normalized name only, never from raw input (pypiserver's
CVE-2019-6802 reflected the requested name into the ``Location`` header).
"""

from functools import lru_cache
from urllib.parse import urlencode

from pyramid.httpexceptions import HTTPMovedPermanently, HTTPNotAcceptable, HTTPNotFound
from pyramid.response import Response
from pyramid.view import view_config
from webob.acceptparse import create_accept_encoding_header, create_accept_header

from ..permissions import Permission
from ..resources import SimpleIndex, SimpleProject
from ..services.index import (
    MEDIA_TYPES,
    TEXT_HTML_TYPE,
    PageCache,
    RenderedPage,
    cached_page,
)
from ..services.names import normalize_name
from .errors import plain_error

#: Server preference among equally acceptable types: HTML first, as PEP 691 advises for ``*/*``.
OFFERS = list(MEDIA_TYPES)
VARY = "Accept, Accept-Encoding"
CACHE_CONTROL = "private, max-age=0, must-revalidate"
CACHE_KEY = "extrapypi.index_cache"


def page_cache(registry) -> PageCache:
    cache = registry.get(CACHE_KEY)
    if cache is None:
        cache = registry.setdefault(CACHE_KEY, PageCache())
    return cache


@lru_cache(maxsize=256)
def negotiate(accept: str) -> str | None:
    """The media type for an ``Accept`` header (memoized: clients send the same few headers)."""
    offers = create_accept_header(accept).acceptable_offers(OFFERS)
    return MEDIA_TYPES[offers[0][0]] if offers else None


@lru_cache(maxsize=256)
def wants_gzip(accept_encoding: str) -> bool:
    return bool(create_accept_encoding_header(accept_encoding).acceptable_offers(["gzip"]))


def choose_media_type(request) -> str | None:
    """The media type to answer with (``?format=`` wins over ``Accept``); None: nothing fits."""
    if request.environ.get("QUERY_STRING"):
        requested = request.GET.get("format")
        if requested is not None:
            # an unencoded "+" arrives as a space
            return MEDIA_TYPES.get(requested.strip().lower().replace(" ", "+"))
    accept = request.environ.get("HTTP_ACCEPT")
    return TEXT_HTML_TYPE if accept is None else negotiate(accept)


def not_acceptable():
    response = plain_error(
        HTTPNotAcceptable,
        "Not Acceptable: this index answers " + ", ".join(OFFERS),
    )
    response.vary = VARY
    return response


def page_answer(environ, page: RenderedPage, media_type: str) -> tuple[int, list, bytes]:
    """Status, headers and body of a cached page, built by hand: the hot path of every pip run
    (this view's and ``fastpath.py``'s)."""
    # no Accept-Encoding header: send identity (RFC 9110 allows anything, clients expect that)
    accept_encoding = environ.get("HTTP_ACCEPT_ENCODING")
    gzipped = accept_encoding is not None and wants_gzip(accept_encoding)
    etag = f'"{page.etag}-gz"' if gzipped else f'"{page.etag}"'
    headers = [("ETag", etag), ("Vary", VARY), ("Cache-Control", CACHE_CONTROL)]
    if_none_match = environ.get("HTTP_IF_NONE_MATCH")
    if if_none_match and (etag in if_none_match or if_none_match.strip() == "*"):
        return 304, headers, b""
    body = page.gzipped if gzipped else page.body
    headers.append(("Content-Type", f"{media_type}; charset=utf-8"))
    headers.append(("Content-Length", str(len(body))))
    if gzipped:
        headers.append(("Content-Encoding", "gzip"))
    return 200, headers, body


def page_response(request, page: RenderedPage, media_type: str) -> Response:
    status, headers, body = page_answer(request.environ, page, media_type)
    if status == 304:
        return Response(status=304, headerlist=headers)
    return Response(body=body, headerlist=headers)


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
    cache = page_cache(request.registry)
    page = cached_page(cache, lambda: request.dbsession, request.index_serial, None, media_type)
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
    serial = request.index_serial
    cache = page_cache(request.registry)
    page = cached_page(cache, lambda: request.dbsession, serial, normalized, media_type)
    if page is None:  # not hosted here: the upstream's, if one is configured
        from .upstream import upstream_project

        return upstream_project(request, context.__name__, normalized, media_type)
    if normalized != context.__name__ or not request.path_info.endswith("/"):
        return redirect(request, f"/simple/{normalized}/")
    return page_response(request, page, media_type)
