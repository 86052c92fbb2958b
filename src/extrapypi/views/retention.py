"""A package's own retention rule, set by admins in the dashboard (applied by ``prune``)."""

from pyramid.httpexceptions import HTTPSeeOther
from pyramid.view import view_config, view_defaults

from ..models.meta import utcnow
from ..permissions import Permission
from ..resources import PackageBrowser, PackageResource
from ..services import retention


@view_defaults(
    context=PackageResource,
    containment=PackageBrowser,
    name="retention",
    permission=Permission.ADMIN,
    renderer="packages/retention.jinja2",
)
class RetentionViews:
    def __init__(self, context, request):
        self.context = context
        self.request = request

    def page(self, status: int = 200, error: str = "", values: dict | None = None) -> dict:
        self.request.response.status = status
        package = self.context.package
        rule = retention.get_rule(self.request.dbsession, package)
        if values is None:
            values = {
                "keep_last": "" if rule is None or rule.keep_last is None else rule.keep_last,
                "prerelease_days": ""
                if rule is None or rule.prerelease_days is None
                else rule.prerelease_days,
            }
        try:
            defaults = retention.get_retention_settings(self.request.registry)
        except retention.RetentionError:
            defaults = retention.Rules()
        doomed = []
        try:
            effective = defaults.override(rule)
            if effective.active:
                doomed = retention.package_plan(package, effective, utcnow())
        except retention.RetentionError:
            pass
        return {
            "package": package,
            "defaults": defaults,
            "values": values,
            "doomed": doomed,
            "error": error,
        }

    @view_config(request_method="GET")
    def show(self):
        return self.page()

    @view_config(request_method="POST")
    def save(self):
        post = self.request.POST
        values = {
            "keep_last": post.get("keep_last", ""),
            "prerelease_days": post.get("prerelease_days", ""),
        }
        actor = self.request.identity.user
        try:
            retention.set_rule(
                self.request.dbsession,
                self.context.package,
                values["keep_last"],
                values["prerelease_days"],
                actor,
            )
        except retention.RetentionError as error:
            return self.page(400, str(error), values)
        self.request.session.flash(f"Saved the retention rule of {self.context.package.name}.")
        return HTTPSeeOther(location=self.request.resource_url(self.context, "retention"))
