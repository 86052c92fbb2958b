"""Dashboard pages for packages and releases: list, search, details, yank, maintainers, deletion."""

from pyramid.httpexceptions import HTTPSeeOther
from pyramid.view import view_config

from ..permissions import Permission
from ..resources import PackageBrowser, PackageResource, ReleaseResource
from ..services import dashboard
from ..services import packages as package_service
from ..services.descriptions import render_description
from ..settings import get_app_settings


def index_url(request) -> str:
    configured = get_app_settings(request.registry).index_url
    return configured + "/" if configured else request.resource_url(request.root, "simple", "")


def actor(request):
    return request.identity.user if request.identity is not None else None


@view_config(
    context=PackageBrowser,
    renderer="packages/list.jinja2",
    permission=Permission.VIEW,
    request_method="GET",
)
def package_list(context, request):
    query = request.params.get("q", "").strip()
    sort = request.params.get("sort", "recent")
    if sort not in dashboard.SORTS:
        sort = "recent"
    page = dashboard.list_packages(
        request.dbsession,
        query=query,
        sort=sort,
        page=dashboard.page_number(request.params.get("page")),
    )
    return {"page": page, "query": query, "sort": sort}


def package_page(request, package, error: str = "", status: int = 200) -> dict:
    request.response.status = status
    releases = dashboard.releases_newest_first(package)
    latest = dashboard.latest_release(package)
    return {
        "package": package,
        "releases": releases,
        "latest": latest,
        "description": render_description(latest.description, latest.description_content_type)
        if latest
        else "",
        "index_url": index_url(request),
        "error": error,
    }


@view_config(
    context=PackageResource,
    containment=PackageBrowser,
    renderer="packages/detail.jinja2",
    permission=Permission.VIEW,
    request_method="GET",
)
def package_detail(context, request):
    return package_page(request, context.package)


@view_config(
    context=ReleaseResource,
    containment=PackageBrowser,
    renderer="packages/release.jinja2",
    permission=Permission.VIEW,
    request_method="GET",
)
def release_detail(context, request):
    return release_page(request, context.release)


def release_page(request, release, error: str = "", status: int = 200) -> dict:
    request.response.status = status
    return {
        "package": release.package,
        "release": release,
        "description": render_description(release.description, release.description_content_type),
        "project_urls": safe_links(release),
        "index_url": index_url(request),
        "error": error,
    }


def safe_links(release) -> list[tuple[str, str]]:
    """Home page and project URLs, keeping only http(s) links (never ``javascript:``)."""
    links = []
    if release.home_page:
        links.append(("Homepage", release.home_page))
    for entry in release.project_urls or []:
        if isinstance(entry, list | tuple) and len(entry) == 2:
            links.append((str(entry[0]), str(entry[1])))
    return [
        (label, url)
        for label, url in links
        if url.strip().lower().startswith(("http://", "https://"))
    ]


@view_config(
    context=ReleaseResource,
    containment=PackageBrowser,
    name="yank",
    permission=Permission.YANK,
    request_method="POST",
)
def release_yank(context, request):
    yank = request.POST.get("action") != "unyank"
    package_service.set_yanked(
        request.dbsession, context.release, yank, request.POST.get("reason", ""), actor(request)
    )
    verb = "Yanked" if yank else "Unyanked"
    request.session.flash(f"{verb} {context.release.package.name} {context.release.version}.")
    return HTTPSeeOther(location=request.resource_url(context))


@view_config(
    context=ReleaseResource,
    containment=PackageBrowser,
    name="delete",
    renderer="packages/confirm_delete.jinja2",
    permission=Permission.MANAGE,
    request_method="GET",
)
def release_delete_confirm(context, request):
    release = context.release
    return {
        "what": f"release {release.version} of {release.package.name}",
        "files": release.files,
        "cancel_url": request.resource_url(context),
    }


@view_config(
    context=ReleaseResource,
    containment=PackageBrowser,
    name="delete",
    permission=Permission.MANAGE,
    request_method="POST",
)
def release_delete(context, request):
    release = context.release
    name, version = release.package.name, release.version
    package_service.delete_release(
        request.dbsession, request.storage, request.tm.get(), release, actor(request)
    )
    request.session.flash(f"Deleted {name} {version} and its files.")
    return HTTPSeeOther(location=request.resource_url(context.__parent__))


@view_config(
    context=PackageResource,
    containment=PackageBrowser,
    name="maintainers",
    renderer="packages/detail.jinja2",
    permission=Permission.MANAGE,
    request_method="POST",
)
def maintainers_change(context, request):
    package = context.package
    username = request.POST.get("username", "").strip()
    action = request.POST.get("action", "add")
    try:
        dashboard.change_maintainer(request.dbsession, package, username, action, actor(request))
    except package_service.PackageError as error:
        return package_page(request, package, error=str(error), status=400)
    done = "Added" if action == "add" else "Removed"
    request.session.flash(f"{done} maintainer {username}.")
    return HTTPSeeOther(location=request.resource_url(context))


@view_config(
    context=PackageResource,
    containment=PackageBrowser,
    name="delete",
    renderer="packages/confirm_delete.jinja2",
    permission=Permission.DELETE,
    request_method="GET",
)
def package_delete_confirm(context, request):
    package = context.package
    return {
        "what": f"the package {package.name}, all its releases",
        "files": [f for r in package.releases for f in r.files],
        "cancel_url": request.resource_url(context),
    }


@view_config(
    context=PackageResource,
    containment=PackageBrowser,
    name="delete",
    permission=Permission.DELETE,
    request_method="POST",
)
def package_delete(context, request):
    name = context.package.name
    package_service.delete_package(
        request.dbsession, request.storage, request.tm.get(), context.package, actor(request)
    )
    request.session.flash(f"Deleted the package {name}.")
    return HTTPSeeOther(location=request.resource_url(context.__parent__))
