"""A quarantined project offers no files (PEP 792): its file, metadata and JSON URLs refuse."""

from pyramid.httpexceptions import HTTPForbidden, HTTPNotFound
from pyramid.view import exception_view_config

from ..permissions import Permission
from ..services.status import ProjectQuarantined
from .errors import forbidden, plain_error


@exception_view_config(ProjectQuarantined)
def quarantined(exc: ProjectQuarantined, request):
    if not request.has_permission(Permission.VIEW, request.root):
        # Whoever may not look may not learn which names exist, nor their status.
        return forbidden(HTTPForbidden(), request)
    return plain_error(HTTPNotFound, f"Not Found: {exc}")
