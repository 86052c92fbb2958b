"""Dashboard pages for packages and releases: list, search, details, yank, maintainers, deletion."""

from pyramid.httpexceptions import HTTPSeeOther
from pyramid.view import view_config, view_defaults

from ..permissions import Permission
from ..resources import PackageBrowser, PackageResource, ReleaseResource
from ..services import audit, dashboard
from ..services import oidc as oidc_service
from ..services import packages as package_service
from ..services.client_setup import client_setup, install_command
from ..services.description_html import polish_description
from ..services.descriptions import description_html
from ..services.project_facts import project_facts
from ..services.status import offers_files
from ..settings import get_app_settings


def index_url(request) -> str:
    """The simple index URL for install snippets (``extrapypi.index_url`` when set)."""
    configured = get_app_settings(request.registry).index_url
    return configured + "/" if configured else request.resource_url(request.root, "simple", "")


def publisher_card(request, context) -> dict | None:
    """The trusted publishers card, for who may manage them, when trusted publishing is on."""
    settings = request.registry["extrapypi.oidc"]
    if not settings.enabled or not request.has_permission(Permission.PUBLISHERS, context):
        return None
    return {
        "rows": oidc_service.list_publishers(request.dbsession, context.package),
        "issuers": settings.issuers,
    }


def page_description(request, release) -> str:
    """The release's description, headings demoted and external images as placeholders."""
    if release is None:
        return ""
    html = description_html(request.dbsession, release)
    allow = get_app_settings(request.registry).description_images == "https"
    return polish_description(html, allow_https_images=allow)


@view_config(
    context=PackageBrowser,
    renderer="packages/list.jinja2",
    permission=Permission.VIEW,
    request_method="GET",
)
def package_list(context, request):
    query = request.params.get("q", "").strip()
    # "Best match" is the default, so a query typed on a listing is ranked; with nothing to
    # match it lists by recent activity.
    sort = request.params.get("sort", "relevance")
    if sort not in dashboard.SORTS:
        sort = "relevance"
    page = dashboard.list_packages(
        request.dbsession,
        query=query,
        sort=sort,
        page=dashboard.page_number(request.params.get("page")),
    )
    return {"page": page, "query": query, "sort": sort}


class DashboardViews:
    def __init__(self, context, request):
        self.context = context
        self.request = request
        self.actor = request.identity.user if request.identity is not None else None

    def done(self, message: str, resource) -> HTTPSeeOther:
        self.request.session.flash(message)
        return HTTPSeeOther(location=self.request.resource_url(resource))

    def confirm_delete(self, what: str, files) -> dict:
        return {"what": what, "files": files, "cancel_url": self.request.resource_url(self.context)}


@view_defaults(context=PackageResource, containment=PackageBrowser)
class PackageViews(DashboardViews):
    def page(self, error: str = "", status: int = 200) -> dict:
        self.request.response.status = status
        package = self.context.package
        latest = dashboard.latest_release(package)
        setup = client_setup(index_url(self.request))
        return {
            "package": package,
            "releases": dashboard.releases_newest_first(package),
            "latest": latest,
            "is_prerelease": dashboard.is_prerelease,
            "offers_files": offers_files(package.status),
            "facts": project_facts(latest),
            "description": page_description(self.request, latest),
            "index_url": index_url(self.request),
            "install": install_command(setup, package.normalized_name),
            "history": audit.package_history(self.request.dbsession, package.name),
            "publishers": publisher_card(self.request, self.context),
            "error": error,
        }

    @view_config(
        renderer="packages/detail.jinja2", permission=Permission.VIEW, request_method="GET"
    )
    def show(self):
        return self.page()

    @view_config(
        name="maintainers",
        renderer="packages/detail.jinja2",
        permission=Permission.MANAGE,
        request_method="POST",
    )
    def change_maintainers(self):
        username = self.request.POST.get("username", "").strip()
        action = self.request.POST.get("action", "add")
        try:
            dashboard.change_maintainer(
                self.request.dbsession, self.context.package, username, action, self.actor
            )
        except package_service.PackageError as error:
            return self.page(error=str(error), status=400)
        done = "Added" if action == "add" else "Removed"
        return self.done(f"{done} maintainer {username}.", self.context)

    @view_config(
        name="delete",
        renderer="packages/confirm_delete.jinja2",
        permission=Permission.DELETE,
        request_method="GET",
    )
    def delete_confirm(self):
        package = self.context.package
        files = [f for r in package.releases for f in r.files]
        return self.confirm_delete(f"the package {package.name}, all its releases", files)

    @view_config(name="delete", permission=Permission.DELETE, request_method="POST")
    def delete(self):
        package = self.context.package
        name = package.name
        package_service.delete_package(
            self.request.dbsession, self.request.storage, self.request.tm.get(), package, self.actor
        )
        return self.done(f"Deleted the package {name}.", self.context.__parent__)


@view_defaults(context=ReleaseResource, containment=PackageBrowser)
class ReleaseViews(DashboardViews):
    @view_config(
        renderer="packages/release.jinja2", permission=Permission.VIEW, request_method="GET"
    )
    def show(self):
        release = self.context.release
        package = release.package
        setup = client_setup(index_url(self.request))
        latest = dashboard.latest_release(package)
        newer = latest if latest is not None and latest.sort_key > release.sort_key else None
        return {
            "package": package,
            "release": release,
            "releases": dashboard.releases_newest_first(package),
            "latest": latest,
            "newer": newer,
            "is_prerelease": dashboard.is_prerelease,
            "offers_files": offers_files(package.status),
            "facts": project_facts(release),
            "description": page_description(self.request, release),
            "install": install_command(setup, f"{package.normalized_name}=={release.version}"),
        }

    @view_config(name="set-yanked", permission=Permission.YANK, request_method="POST")
    def yank(self):
        release = self.context.release
        yank = self.request.POST.get("action") != "unyank"
        reason = self.request.POST.get("reason", "")
        package_service.set_yanked(self.request.dbsession, release, yank, reason, self.actor)
        verb = "Yanked" if yank else "Unyanked"
        return self.done(f"{verb} {release.package.name} {release.version}.", self.context)

    @view_config(
        name="delete",
        renderer="packages/confirm_delete.jinja2",
        permission=Permission.MANAGE,
        request_method="GET",
    )
    def delete_confirm(self):
        release = self.context.release
        what = f"release {release.version} of {release.package.name}"
        return self.confirm_delete(what, release.files)

    @view_config(name="delete", permission=Permission.MANAGE, request_method="POST")
    def delete(self):
        release = self.context.release
        name, version = release.package.name, release.version
        package_service.delete_release(
            self.request.dbsession, self.request.storage, self.request.tm.get(), release, self.actor
        )
        return self.done(f"Deleted {name} {version} and its files.", self.context.__parent__)
