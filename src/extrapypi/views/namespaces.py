"""PEP 752's JSON API 1.5 namespace endpoints: ``GET /namespaces`` and ``/namespace/<name>``.

Readable by whoever may read the index. The namespace list is a bare JSON array, as the spec
defines it; both answer with the simple API's JSON media type.
"""

from pyramid.httpexceptions import HTTPMovedPermanently, HTTPNotFound
from pyramid.view import view_config

from ..permissions import Permission
from ..resources import NamespaceList, NamespaceResource
from ..services import namespaces as namespace_service
from ..services.index import JSON_TYPE
from .errors import plain_error


def _json(request, data):
    request.response.content_type = JSON_TYPE
    request.response.headers["Cache-Control"] = "private, max-age=0, must-revalidate"
    return data


@view_config(
    context=NamespaceList,
    request_method=("GET", "HEAD"),
    permission=Permission.VIEW,
    renderer="json",
)
def namespace_list(context, request):
    return _json(request, namespace_service.namespace_list(request.dbsession))


@view_config(
    context=NamespaceResource,
    request_method=("GET", "HEAD"),
    permission=Permission.VIEW,
    renderer="json",
)
def namespace_detail(context: NamespaceResource, request):
    try:
        normalized = namespace_service.normalize_namespace(context.__name__)
    except namespace_service.NamespaceError:
        return plain_error(HTTPNotFound, "Not Found: not a valid namespace name")
    data = namespace_service.namespace_detail(request.dbsession, normalized)
    if data is None:
        return plain_error(HTTPNotFound, f"Not Found: no namespace {normalized!r} is reserved")
    if normalized != context.__name__:
        return HTTPMovedPermanently(location=request.script_name + f"/namespace/{normalized}")
    return _json(request, data)
