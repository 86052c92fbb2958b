"""Webhook endpoints and their delivery log in the dashboard (admins only: the ACL says so)."""

from pyramid.httpexceptions import HTTPSeeOther
from pyramid.view import view_config, view_defaults

from ..permissions import Permission
from ..resources import WebhookResource, Webhooks
from ..services import webhooks


def _list_page(request, status: int = 200, **values) -> dict:
    request.response.status = status
    dbsession = request.dbsession
    return {
        "endpoints": webhooks.list_endpoints(dbsession),
        "deliveries": webhooks.recent_deliveries(dbsession, limit=50),
        "event_names": webhooks.event_names(),
        "error": "",
        "created": None,
        "values": {},
        **values,
    }


@view_defaults(context=Webhooks, permission=Permission.ADMIN, renderer="webhooks/list.jinja2")
class WebhooksViews:
    def __init__(self, context, request):
        self.context = context
        self.request = request

    @view_config(request_method="GET")
    def list(self):
        return _list_page(self.request)

    @view_config(request_method="POST")
    def create(self):
        post = self.request.POST
        values = {
            "url": post.get("url", ""),
            "package": post.get("package", ""),
            "events": post.getall("events"),
        }
        try:
            endpoint = webhooks.create_endpoint(
                self.request.dbsession, values["url"], values["package"], values["events"]
            )
        except webhooks.WebhookError as error:
            return _list_page(self.request, 400, error=str(error), values=values)
        # Rendered, not redirected: the secret is shown this once and never put in a cookie.
        self.request.response.cache_control = "no-store"
        return _list_page(self.request, 201, created=endpoint)


@view_defaults(context=WebhookResource, permission=Permission.ADMIN)
class WebhookViews:
    def __init__(self, context, request):
        self.context = context
        self.request = request

    @view_config(request_method="GET", renderer="webhooks/detail.jinja2")
    def show(self):
        endpoint = self.context.endpoint
        return {
            "endpoint": endpoint,
            "deliveries": webhooks.recent_deliveries(self.request.dbsession, endpoint, 200),
        }

    @view_config(name="delete", request_method="POST")
    def delete(self):
        url = self.context.endpoint.url
        webhooks.remove_endpoint(self.request.dbsession, self.context.endpoint)
        # The flash rides in the session cookie (about 4 KB): a long URL is only named.
        shown = url if len(url) <= 200 else url[:200] + "…"
        self.request.session.flash(f"Removed the webhook to {shown}.")
        return HTTPSeeOther(location=self.request.resource_url(self.context.__parent__))
