"""Trusted publishers in the dashboard: a package's card (its maintainers and admins), and the
pending publishers a developer registers for projects that do not exist yet (``/publishers``).
"""

from pyramid.httpexceptions import HTTPSeeOther
from pyramid.view import view_config

from ..models import TrustedPublisher
from ..permissions import Permission
from ..resources import PackageBrowser, PackageResource, Root
from ..services import oidc as oidc_service
from .packages import PackageViews


def _settings(request) -> oidc_service.OidcSettings:
    return request.registry["extrapypi.oidc"]


def _add(request, project: str, pending: bool | None) -> TrustedPublisher:
    """Raises ``PublisherError`` with the reason for the form."""
    post = request.POST
    claims = oidc_service.parse_claims(post.get("claims", "").splitlines())
    return oidc_service.add_publisher(
        request.dbsession,
        _settings(request),
        project,
        post.get("issuer", ""),
        claims,
        request.identity.user,
        pending,
    )


def _find(request, allowed) -> TrustedPublisher | None:
    """The posted publisher if ``allowed(publisher)``; others are as unknown as made-up ids."""
    value = request.POST.get("publisher_id", "")
    publisher = request.dbsession.get(TrustedPublisher, int(value)) if value.isdigit() else None
    if publisher is None or not allowed(publisher):
        return None
    return publisher


@view_config(
    context=PackageResource,
    containment=PackageBrowser,
    name="publishers",
    renderer="packages/detail.jinja2",
    permission=Permission.PUBLISHERS,
    request_method="POST",
)
def change_publishers(context, request):
    page = PackageViews(context, request)
    package = context.package
    if request.POST.get("action") == "remove":
        publisher = _find(request, lambda p: p.package_id == package.id)
        if publisher is None:
            return page.page(error="No such trusted publisher.", status=400)
        oidc_service.remove_publisher(request.dbsession, publisher, page.actor)
        return page.done(f"Removed trusted publisher {publisher.id}.", context)
    try:
        publisher = _add(request, package.normalized_name, False)
    except oidc_service.PublisherError as error:
        return page.page(error=str(error), status=400)
    return page.done(f"Added trusted publisher {publisher.id}.", context)


def _pending_page(request, error: str = "", status: int = 200) -> dict:
    request.response.status = status
    user = request.identity.user
    admin = request.has_permission(Permission.ADMIN, request.root)
    rows = [
        p
        for p in oidc_service.list_publishers(request.dbsession, pending_by=None if admin else user)
        if p.package is None
    ]
    return {
        "rows": rows,
        "issuers": _settings(request).issuers,
        "error": error,
        "post": request.POST if status != 200 else {},
    }


@view_config(
    context=Root,
    name="publishers",
    renderer="publishers/pending.jinja2",
    permission=Permission.CREATE,
    request_method="GET",
)
def pending_publishers(request):
    return _pending_page(request)


@view_config(
    context=Root,
    name="publishers",
    renderer="publishers/pending.jinja2",
    permission=Permission.CREATE,
    request_method="POST",
)
def change_pending_publishers(request):
    url = request.resource_url(request.root, "publishers")
    if request.POST.get("action") == "remove":
        admin = request.has_permission(Permission.ADMIN, request.root)
        user_id = request.identity.id
        publisher = _find(
            request, lambda p: p.package is None and (admin or p.created_by_id == user_id)
        )
        if publisher is None:
            return _pending_page(request, "No such pending publisher.", 400)
        oidc_service.remove_publisher(request.dbsession, publisher, request.identity.user)
        request.session.flash(f"Removed pending publisher {publisher.id}.")
        return HTTPSeeOther(location=url)
    if not _settings(request).enabled:
        return _pending_page(request, "Trusted publishing is off on this index.", 400)
    try:
        publisher = _add(request, request.POST.get("project", ""), True)
    except oidc_service.PublisherError as error:
        return _pending_page(request, str(error), 400)
    request.session.flash(
        f"Added pending publisher {publisher.id}: its first upload creates {publisher.project}."
    )
    return HTTPSeeOther(location=url)
