"""PyPI's JSON API and a small yank API for scripts and CI.

``POST /packages/<name>/<version>/yank`` (form field ``reason``) and ``.../unyank`` take HTTP Basic
credentials without a CSRF token. A browser does replay a saved Basic password on a form another
site submits, so these views refuse whatever a browser sends for another site
(``refuse_cross_site``, before the permission check). A request authenticated by the session cookie
still needs the CSRF token, so a logged-in browser cannot be tricked into yanking.
"""

from pyramid.csrf import check_csrf_token
from pyramid.httpexceptions import HTTPNotFound
from pyramid.view import view_config

from ..permissions import Permission
from ..resources import JsonApi, PackageBrowser, PackageResource, ReleaseResource
from ..security import BASIC
from ..services.jsonapi import file_path, project_json
from ..services.packages import set_yanked
from ..services.status import refuse_quarantined_download
from ..settings import get_app_settings
from .errors import plain_error


def _json_api(request, package, version: str | None):
    refuse_quarantined_download(package)
    base = request.application_url

    def file_url(release, file):
        return base + file_path(package, release, file)

    def project_url(release):
        url = f"{base}/pypi/{package.normalized_name}/"
        return url if release is None else f"{url}{release.version}/"

    data = project_json(request.dbsession, package, version, file_url, project_url)
    if data is None:
        return plain_error(HTTPNotFound, f"Not Found: {package.name} has no release")
    allow_cors(request)
    return data


def allow_cors(request) -> None:
    """Let the configured origins' pages read this (CORS is opt-in: with anonymous reads on, an
    intranet user's browser would otherwise hand it to any site). Never with credentials."""
    allowed = get_app_settings(request.registry).json_api_cors_origins
    if not allowed:
        return
    if "*" in allowed:
        request.response.headers["Access-Control-Allow-Origin"] = "*"
        return
    request.response.vary = (*(request.response.vary or ()), "Origin")
    origin = request.headers.get("Origin", "")
    if origin in allowed:
        request.response.headers["Access-Control-Allow-Origin"] = origin


@view_config(
    context=PackageResource,
    containment=JsonApi,
    name="json",
    request_method=("GET", "HEAD"),
    permission=Permission.VIEW,
    renderer="json",
)
def project_json_view(context: PackageResource, request):
    return _json_api(request, context.package, None)


@view_config(
    context=ReleaseResource,
    containment=JsonApi,
    name="json",
    request_method=("GET", "HEAD"),
    permission=Permission.VIEW,
    renderer="json",
)
def release_json_view(context: ReleaseResource, request):
    return _json_api(request, context.__parent__.package, context.release.version)


def _set_yanked(context: ReleaseResource, request, yanked: bool):
    if request.identity.method != BASIC:
        check_csrf_token(request)  # a browser session must prove the form is ours
    release = context.release
    reason = request.POST.get("reason", "") if yanked else ""
    set_yanked(request.dbsession, release, yanked, reason, request.identity.user)
    return {
        "name": context.__parent__.package.name,
        "version": release.version,
        "yanked": release.yanked,
        "yanked_reason": release.yanked_reason,
    }


@view_config(
    context=ReleaseResource,
    containment=PackageBrowser,
    name="yank",
    request_method="POST",
    permission=Permission.YANK,
    require_csrf=False,
    refuse_cross_site=True,
    renderer="json",
)
def yank(context: ReleaseResource, request):
    return _set_yanked(context, request, True)


@view_config(
    context=ReleaseResource,
    containment=PackageBrowser,
    name="unyank",
    request_method="POST",
    permission=Permission.YANK,
    require_csrf=False,
    refuse_cross_site=True,
    renderer="json",
)
def unyank(context: ReleaseResource, request):
    return _set_yanked(context, request, False)
