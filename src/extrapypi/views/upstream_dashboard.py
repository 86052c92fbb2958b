"""``/upstream-cache``: what the upstream proxy has cached, and the admins' block and cooldown
rules (admins only; shown in the menu when an upstream is configured)."""

from pyramid.httpexceptions import HTTPSeeOther
from pyramid.view import view_config, view_defaults

from ..permissions import Permission
from ..resources import Root
from ..services import upstream_control
from ..services.upstream import RULE_KINDS, get_upstream


def _page(request, status: int = 200, **values) -> dict:
    request.response.status = status
    upstream = get_upstream(request.registry)
    return {
        "upstream": upstream.config if upstream is not None else None,
        "summary": upstream_control.cache_summary(request.dbsession),
        "rules": upstream_control.list_rules(request.dbsession),
        "kinds": RULE_KINDS,
        "error": "",
        "values": {},
        **values,
    }


@view_defaults(
    context=Root, name="upstream-cache", permission=Permission.ADMIN, renderer="upstream.jinja2"
)
class UpstreamCacheViews:
    def __init__(self, context, request):
        self.context = context
        self.request = request

    @view_config(request_method="GET")
    def show(self):
        return _page(self.request)

    @view_config(request_method="POST")
    def change(self):
        post = self.request.POST
        values = {
            "kind": post.get("kind", ""),
            "name": post.get("name", ""),
            "version": post.get("version", ""),
            "reason": post.get("reason", ""),
        }
        user = self.request.identity.user
        try:
            if post.get("remove"):
                upstream_control.remove_rule(
                    self.request.dbsession, values["kind"], values["name"], values["version"], user
                )
                message = f"Removed the upstream {values['kind']} rule for {values['name']}."
            else:
                rule = upstream_control.add_rule(self.request.dbsession, user=user, **values)
                message = f"Added {upstream_control.describe(rule)}."
        except upstream_control.UpstreamControlError as error:
            return _page(self.request, 400, error=str(error), values=values)
        self.request.session.flash(message)
        return HTTPSeeOther(location=self.request.resource_url(self.context, "upstream-cache"))
