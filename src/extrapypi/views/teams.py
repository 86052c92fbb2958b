"""Dashboard pages for teams, namespaces (admins) and a package's status and team maintainers.

Views parse the form and map service errors to a page with the reason; the rules live in
``services/teams.py``, ``services/namespaces.py`` and ``services/status.py``. Every change is a
POST with the CSRF token; who may post is the ACL's business (``permission=``).
"""

from pyramid.httpexceptions import HTTPSeeOther
from pyramid.view import view_config, view_defaults

from ..permissions import Permission
from ..resources import PackageBrowser, PackageResource, TeamResource, Teams
from ..services import accounts
from ..services import namespaces as namespace_service
from ..services import status as status_service
from ..services import teams as team_service
from ..settings import get_app_settings
from .packages import PackageViews


def owner_from(dbsession, value: str):
    """``USER`` or ``team:NAME`` → the user or team row; TeamError when there is none."""
    value = value.strip()
    if value.startswith(team_service.TEAM_PREFIX):
        name = value[len(team_service.TEAM_PREFIX) :]
        team = team_service.get_team(dbsession, name)
        if team is None:
            raise team_service.TeamError(f"No team named {name!r}.")
        return team
    user = accounts.get_user(dbsession, value) if value else None
    if user is None:
        raise team_service.TeamError(f"No user named {value!r}.")
    return user


class _AdminViews:
    def __init__(self, context, request):
        self.context = context
        self.request = request
        self.dbsession = request.dbsession
        self.actor = request.identity.user

    def done(self, message: str, location: str) -> HTTPSeeOther:
        self.request.session.flash(message)
        return HTTPSeeOther(location=location)


@view_defaults(context=Teams, permission=Permission.ADMIN, renderer="teams/list.jinja2")
class TeamsViews(_AdminViews):
    def page(self, error: str = "", status: int = 200) -> dict:
        self.request.response.status = status
        return {
            "teams": team_service.list_teams(self.dbsession),
            "namespaces": namespace_service.list_namespaces(self.dbsession),
            "max_depth": get_app_settings(self.request.registry).namespace_max_depth,
            "error": error,
        }

    @view_config(request_method="GET")
    def list(self):
        return self.page()

    @view_config(name="new", request_method="POST")
    def create(self):
        try:
            team = team_service.create_team(
                self.dbsession, self.request.POST.get("name", ""), self.actor
            )
        except team_service.TeamError as error:
            return self.page(str(error), 400)
        return self.done(f"Created team {team.name}.", self.request.resource_url(self.context))

    @view_config(name="namespaces", request_method="POST", request_param="action=grant")
    def grant(self):
        post = self.request.POST
        try:
            owner = owner_from(self.dbsession, post.get("owner", ""))
            reserved = namespace_service.grant(
                self.dbsession,
                post.get("namespace", ""),
                owner,
                self.actor,
                max_depth=get_app_settings(self.request.registry).namespace_max_depth,
            )
        except (team_service.TeamError, namespace_service.NamespaceError) as error:
            return self.page(str(error), 400)
        return self.done(
            f"Granted namespace {reserved.name} to {reserved.owner}.",
            self.request.resource_url(self.context),
        )

    @view_config(name="namespaces", request_method="POST", request_param="action=revoke")
    def revoke(self):
        try:
            reserved = namespace_service.revoke(
                self.dbsession, self.request.POST.get("namespace", ""), self.actor
            )
        except namespace_service.NamespaceError as error:
            return self.page(str(error), 400)
        return self.done(
            f"Revoked namespace {reserved.name}.", self.request.resource_url(self.context)
        )


@view_defaults(context=TeamResource, permission=Permission.ADMIN, renderer="teams/detail.jinja2")
class TeamViews(_AdminViews):
    def page(self, error: str = "", status: int = 200) -> dict:
        self.request.response.status = status
        return {"team": self.context.team, "error": error}

    def team_url(self) -> str:
        return self.request.resource_url(self.context)

    @view_config(request_method="GET")
    def show(self):
        return self.page()

    def _member_change(self, change, verb: str):
        username = self.request.POST.get("username", "").strip()
        user = accounts.get_user(self.dbsession, username)
        try:
            if user is None:
                raise team_service.TeamError(f"No user named {username!r}.")
            change(self.dbsession, self.context.team, user, self.actor)
        except team_service.TeamError as error:
            return self.page(str(error), 400)
        return self.done(f"{verb} {username}.", self.team_url())

    @view_config(request_method="POST", request_param="action=add-member")
    def add_member(self):
        return self._member_change(team_service.add_member, "Added")

    @view_config(request_method="POST", request_param="action=remove-member")
    def remove_member(self):
        return self._member_change(team_service.remove_member, "Removed")

    @view_config(request_method="POST", request_param="action=delete")
    def delete(self):
        name = self.context.team.name
        team_service.delete_team(self.dbsession, self.context.team, self.actor)
        return self.done(
            f"Deleted team {name}.", self.request.resource_url(self.context.__parent__)
        )


@view_defaults(
    context=PackageResource, containment=PackageBrowser, renderer="packages/detail.jinja2"
)
class PackageTeamViews:
    """Forms on the package page: status (maintainers; quarantine: admins), team maintainers.

    Errors re-render the package page as ``PackageViews`` does.
    """

    def __init__(self, context, request):
        self.context = context
        self.request = request
        self.package_views = PackageViews(context, request)
        self.actor = self.package_views.actor
        self.page = self.package_views.page
        self.done = self.package_views.done

    def _set_status(self, may_quarantine: bool):
        post = self.request.POST
        package = self.context.package
        try:
            status_service.set_status(
                self.request.dbsession,
                package,
                post.get("status", ""),
                post.get("reason", ""),
                self.actor,
                may_quarantine=may_quarantine,
            )
        except status_service.StatusError as error:
            return self.page(error=str(error), status=400)
        return self.done(f"{package.name} is now {package.status}.", self.context)

    @view_config(name="status", permission=Permission.STATUS, request_method="POST")
    def set_status(self):
        return self._set_status(may_quarantine=False)

    @view_config(name="quarantine", permission=Permission.QUARANTINE, request_method="POST")
    def set_any_status(self):
        return self._set_status(may_quarantine=True)

    @view_config(name="team-maintainers", permission=Permission.MANAGE, request_method="POST")
    def change_team_maintainers(self):
        name = self.request.POST.get("team", "").strip().removeprefix(team_service.TEAM_PREFIX)
        action = self.request.POST.get("action", "add")
        dbsession = self.request.dbsession
        try:
            team = team_service.get_team(dbsession, name)
            if team is None:
                raise team_service.TeamError(f"No team named {name!r}.")
            if action == "remove":
                team_service.remove_team_maintainer(
                    dbsession, self.context.package, team, self.actor
                )
            else:
                team_service.add_team_maintainer(dbsession, self.context.package, team, self.actor)
        except team_service.TeamError as error:
            return self.page(error=str(error), status=400)
        done = "Removed" if action == "remove" else "Added"
        return self.done(f"{done} maintainer team:{name}.", self.context)
