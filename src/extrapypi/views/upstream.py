"""The upstream proxy's two surfaces: ``/simple/<name>/`` for a name not hosted here (called by
``views/simple.py``) and ``/upstream/<name>/<filename>`` downloads. Both only map the services'
answers to responses: 404 with the reason, 502/504 when the upstream fails and nothing is cached.
"""

from pyramid.httpexceptions import (
    HTTPBadGateway,
    HTTPGatewayTimeout,
    HTTPNotFound,
)
from pyramid.view import view_config

from ..permissions import Permission
from ..resources import UpstreamFileResource
from ..services.names import InvalidName, normalize_name
from ..services.upstream import (
    STATUS_HEADER,
    NotUpstream,
    UpstreamUnavailable,
    get_upstream,
    rendered_page,
)
from ..services.upstream_files import UpstreamFileRefused, cached_file
from .errors import plain_error
from .files import _stream
from .simple import page_response, redirect


def unavailable(error: UpstreamUnavailable, what: str):
    exception = HTTPGatewayTimeout if error.timed_out else HTTPBadGateway
    response = plain_error(
        exception, f"the upstream index failed and {what} is not cached: {error}"
    )
    response.headers[STATUS_HEADER] = "unavailable"
    return response


def upstream_project(request, requested_name: str, normalized: str, media_type: str):
    """The upstream's page for a name not hosted here (a plain 404 with no upstream)."""
    upstream = get_upstream(request.registry)
    if upstream is None:
        raise HTTPNotFound()
    try:
        rendered, stale = rendered_page(
            upstream, request.dbsession, request.index_serial, normalized, media_type
        )
    except NotUpstream as reason:
        return plain_error(HTTPNotFound, f"Not Found: {reason}")
    except UpstreamUnavailable as error:
        return unavailable(error, f"the page of {normalized}")
    if normalized != requested_name or not request.path_info.endswith("/"):
        return redirect(request, f"/simple/{normalized}/")
    response = page_response(request, rendered, media_type)
    response.headers[STATUS_HEADER] = "stale" if stale else "fresh"
    return response


@view_config(
    context=UpstreamFileResource,
    request_method=("GET", "HEAD"),
    permission=Permission.DOWNLOAD,
)
def upstream_download(context: UpstreamFileResource, request):
    upstream = get_upstream(request.registry)
    if upstream is None:
        raise HTTPNotFound()
    filename = context.__name__
    try:
        normalized = normalize_name(context.__parent__.__name__)
    except InvalidName:
        raise HTTPNotFound() from None
    if normalized != context.__parent__.__name__ or "/" in filename or filename.startswith("."):
        raise HTTPNotFound()
    for attempt in (1, 2):
        try:
            stored = cached_file(
                upstream,
                request.storage,
                request.dbsession,
                normalized,
                filename,
                request.index_serial,
            )
        except NotUpstream as reason:
            return plain_error(HTTPNotFound, f"Not Found: {reason}")
        except UpstreamUnavailable as error:
            return unavailable(error, filename)
        except UpstreamFileRefused as error:
            response = plain_error(HTTPBadGateway, str(error))
            response.headers[STATUS_HEADER] = "refused"
            return response
        response = _stream(request, stored.key, stored.sha256, filename)
        if response.status_code != 404 or attempt == 2:
            return response
        upstream.files.drop((normalized, filename))  # pruned since it was memoized: ask again
