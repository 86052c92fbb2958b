"""``/audit/``: the journal of changes, for admins (the container's ACL says so)."""

from pyramid.view import view_config

from ..permissions import Permission
from ..resources import AuditLog
from ..services import audit
from ..services.dashboard import page_number


@view_config(
    context=AuditLog,
    renderer="audit.jinja2",
    permission=Permission.ADMIN,
    request_method="GET",
)
def audit_log(context, request):
    chosen = audit.audit_filter(request.params)
    page = audit.entries(request.dbsession, chosen, page_number(request.params.get("page")))
    return {"filter": chosen, "page": page, "actions": audit.actions(request.dbsession)}
