"""The traversal tree: Root → packages → package → release → file, plus simple, pypi and users.

Each node's ``__acl__`` says who may do what there; views only name the permission they need.
One ``PackageResource`` serves ``/simple/<name>/``, ``/packages/<name>/`` and ``/pypi/<name>/``:
views tell them apart with the ``containment=`` predicate, the ACL lives in one place.
"""

from pyramid.authorization import ALL_PERMISSIONS, DENY_ALL, Allow, Authenticated, Everyone
from sqlalchemy import select

from .models import File, Package, Release, User
from .permissions import (
    MAINTAINER_PERMISSIONS,
    ROLE_PERMISSIONS,
    Permission,
    Role,
    role_principal,
    team_principal,
    user_principal,
)
from .services import packages as package_service
from .services import status as status_service
from .services import teams as team_service
from .services.names import InvalidName, normalize_name
from .settings import get_app_settings


class Resource:
    __name__: str = ""
    __parent__ = None
    #: The security policy keeps its read answers here for ``fastpath.py`` (``read_path``).
    memoize_reads = False

    def __init__(self, request, parent=None, name: str = ""):
        self.request = request
        self.__parent__ = parent
        self.__name__ = name

    def __acl__(self) -> list:
        return []

    def read_path(self) -> tuple[str, ...]:
        """The names from the root down to here: what a kept read decision is keyed by."""
        names = []
        node = self
        while node is not None and node.__name__:
            names.append(node.__name__)
            node = node.__parent__
        return tuple(reversed(names))


class Root(Resource):
    def __init__(self, request):
        super().__init__(request)
        self.children = {
            "simple": SimpleIndex,
            "packages": PackageBrowser,
            "pypi": JsonApi,
            "legacy": LegacyUpload,
            "users": Users,
            "teams": Teams,
            "namespaces": NamespaceList,
            "namespace": NamespaceDetails,
            "webhooks": Webhooks,
            "metrics": Metrics,
            "audit": AuditLog,
            "_": Internal,
            ".well-known": WellKnown,
            "upstream": UpstreamFiles,
        }

    def __acl__(self) -> list:
        acl = [
            (Allow, role_principal(role), ALL_PERMISSIONS if role is Role.ADMIN else perms)
            for role, perms in ROLE_PERMISSIONS.items()
        ]
        acl.append((Allow, Authenticated, Permission.ACCOUNT))
        if get_app_settings(self.request.registry).anonymous_read:
            acl.append((Allow, Everyone, (Permission.VIEW, Permission.DOWNLOAD)))
        acl.append(DENY_ALL)
        return acl

    def __getitem__(self, key: str) -> Resource:
        return self.children[key](self.request, parent=self, name=key)


class OidcEndpoints(Resource):
    """``/_/oidc/``: trusted publishing's machine endpoints (audience, mint-token, burn-token)."""


class Internal(Resource):
    """``/_/``: where PyPI keeps its machine endpoints, and clients look for them."""

    def __getitem__(self, key: str) -> Resource:
        return {"oidc": OidcEndpoints}[key](self.request, parent=self, name=key)


class WellKnown(Resource):
    """``/.well-known/``: RFC 8615 discovery documents (PEP 807's ``pytp``)."""


class PackageContainer(Resource):
    """A collection of packages looked up by any spelling of their name."""

    def __getitem__(self, key: str) -> "PackageResource":
        if not self.request.has_permission(Permission.VIEW, self):
            # Checked before the lookup: who may not look learns no names, not even by timing.
            raise KeyError(key)
        package = package_service.get_package(self.request.dbsession, key)
        if package is None:
            raise KeyError(key)
        return PackageResource(self.request, package, parent=self, name=key)


class SimpleIndex(PackageContainer):
    """``/simple/``: the index pip and uv read (and where twine uploads)."""

    memoize_reads = True

    def __getitem__(self, key: str) -> "SimpleProject":
        return SimpleProject(self.request, None, parent=self, name=key)


class PackageBrowser(PackageContainer):
    """``/packages/``: the dashboard's package pages and the file downloads."""


class JsonApi(PackageContainer):
    """``/pypi/<name>/json``: PyPI's JSON API."""


class NewProject(Resource):
    """A project an upload would create: carries its normalized name so the security policy
    can hold an API token to its project list (``Permission.CREATE`` is asked here)."""

    def __init__(self, request, name: str, parent=None):
        super().__init__(request, parent, name)
        try:
            self.new_project_name = normalize_name(name)
        except InvalidName:
            self.new_project_name = name.lower()


class LegacyUpload(Resource):
    """``/legacy/``: PyPI's upload endpoint."""


class PackageResource(Resource):
    def __init__(self, request, package: Package, parent=None, name: str = ""):
        super().__init__(request, parent, name)
        self.package = package

    def __acl__(self) -> list:
        identity = self.request.identity
        if identity is None or not MAINTAINER_PERMISSIONS.get(Role(identity.role)):
            # Maintainer entries grant only to maintainers' own user principals, and a role
            # a maintainer listing adds nothing to (installers, admins) needs none of them:
            # pip's downloads skip loading the maintainers.
            return []
        acl = []
        for maintainer in self.package.maintainers:
            if not maintainer.is_active:
                continue
            permissions = MAINTAINER_PERMISSIONS.get(Role(maintainer.role), ())
            if permissions:
                acl.append((Allow, user_principal(maintainer.id), permissions))
        # A team grant gives each member what a maintainer grant gives their own role: only
        # members hold ``team:<name>``, so the asking identity's role is the member's role.
        team_permissions = MAINTAINER_PERMISSIONS[Role(identity.role)]
        for team in self.package.team_maintainers:
            acl.append((Allow, team_principal(team.name), team_permissions))
        return acl

    def __getitem__(self, key: str) -> "ReleaseResource":
        release = package_service.get_release(
            self.request.dbsession, self.package, key, with_files=False
        )
        if release is None:
            raise KeyError(key)
        return ReleaseResource(self.request, release, parent=self, name=key)


class SimpleProject(PackageResource):
    """``/simple/<name>/``: a project page, served from the page cache without loading the package.

    Only reading happens here (uploads POST to ``/simple/`` itself) and reading is granted at the
    root, so the maintainer rows are not loaded: the ACL is empty, which can only deny, never grant.
    Whether the project exists is the view's business (a cached page or a 404).
    """

    memoize_reads = True

    def __acl__(self) -> list:
        return []

    def __getitem__(self, key: str):
        raise KeyError(key)


class ReleaseResource(Resource):
    def __init__(self, request, release: Release, parent=None, name: str = ""):
        super().__init__(request, parent, name)
        self.release = release

    def __getitem__(self, key: str) -> "FileResource":
        dbsession = self.request.dbsession
        file = package_service.get_release_file(dbsession, self.release, key)
        if file is not None:
            status_service.refuse_quarantined_download(self.release.package)
            return FileResource(self.request, file, parent=self, name=key)
        if key.endswith(".metadata"):
            file = package_service.get_release_file(
                dbsession, self.release, key[: -len(".metadata")]
            )
            if file is not None and file.metadata_sha256:
                status_service.refuse_quarantined_download(self.release.package)
                return FileMetadataResource(self.request, file, parent=self, name=key)
        raise KeyError(key)


class FileResource(Resource):
    memoize_reads = True

    def __init__(self, request, file: File, parent=None, name: str = ""):
        super().__init__(request, parent, name)
        self.file = file


class FileMetadataResource(FileResource):
    """``<file>.metadata``: the wheel's METADATA, served on its own (PEP 658)."""


class Users(Resource):
    admin_only = "administer users"  # the refusal names it (refusals.admin_place)

    def __acl__(self) -> list:
        return [(Allow, role_principal(Role.ADMIN), ALL_PERMISSIONS), DENY_ALL]

    def __getitem__(self, key: str) -> "UserResource":
        if not self.request.has_permission(Permission.ADMIN, self):
            # Checked before the lookup: a placeholder that every view's ``permission=`` refuses,
            # so ``/users/<any name>/`` answers alike whether the account exists or not.
            return UserResource(self.request, None, parent=self, name=key)
        user = self.request.dbsession.scalars(select(User).where(User.username == key)).first()
        if user is None:
            raise KeyError(key)
        return UserResource(self.request, user, parent=self, name=key)


class AuditLog(Resource):
    """``/audit/``: the journal, for admins."""

    admin_only = "read the audit log"  # the refusal names it (refusals.admin_place)

    def __acl__(self) -> list:
        return [(Allow, role_principal(Role.ADMIN), ALL_PERMISSIONS), DENY_ALL]


class UserResource(Resource):
    """One account; ``user`` is None only for a requester who may not administer users."""

    def __init__(self, request, user: User | None, parent=None, name: str = ""):
        super().__init__(request, parent, name)
        self.user = user


#: The views of ``/teams/`` itself (``views/teams.py``): never a team for a non-admin.
TEAMS_VIEW_NAMES = frozenset({"new", "namespaces"})


class Teams(Resource):
    """``/teams/``: team and namespace administration (admins only)."""

    admin_only = "administer teams and namespaces"  # the refusal names it (refusals.admin_place)

    def __acl__(self) -> list:
        return [(Allow, role_principal(Role.ADMIN), ALL_PERMISSIONS), DENY_ALL]

    def __getitem__(self, key: str) -> "TeamResource":
        if not self.request.has_permission(Permission.ADMIN, self):
            if key in TEAMS_VIEW_NAMES:
                raise KeyError(key)  # the view itself refuses (403), as for admins it answers
            # As for users: who may not administer teams learns no team names (404 or 403).
            return TeamResource(self.request, None, parent=self, name=key)
        team = team_service.get_team(self.request.dbsession, key)
        if team is None:
            raise KeyError(key)
        return TeamResource(self.request, team, parent=self, name=key)


class TeamResource(Resource):
    """One team; ``team`` is None only for a requester who may not administer teams."""

    def __init__(self, request, team, parent=None, name: str = ""):
        super().__init__(request, parent, name)
        self.team = team


class NamespaceList(Resource):
    """``/namespaces``: the reserved namespaces (PEP 752), readable as the index is."""


class NamespaceDetails(Resource):
    """``/namespace/``: holds one ``NamespaceResource`` per name; the view looks it up."""

    def __getitem__(self, key: str) -> "NamespaceResource":
        return NamespaceResource(self.request, parent=self, name=key)


class NamespaceResource(Resource):
    """``/namespace/<name>`` (PEP 752 namespace detail)."""

    def __getitem__(self, key: str):
        raise KeyError(key)


class Webhooks(Resource):
    """``/webhooks/``: webhook endpoints and their delivery log (admins only)."""

    admin_only = "administer webhooks"  # the refusal names it (refusals.admin_place)

    def __acl__(self) -> list:
        return [(Allow, role_principal(Role.ADMIN), ALL_PERMISSIONS), DENY_ALL]

    def __getitem__(self, key: str) -> "WebhookResource":
        from .services.webhooks import get_endpoint

        if not self.request.has_permission(Permission.ADMIN, self):
            return WebhookResource(self.request, None, parent=self, name=key)  # as for teams
        endpoint = get_endpoint(self.request.dbsession, key) if key.isdigit() else None
        if endpoint is None:
            raise KeyError(key)
        return WebhookResource(self.request, endpoint, parent=self, name=key)


class WebhookResource(Resource):
    """One endpoint; ``endpoint`` is None only for a requester who may not administer them."""

    def __init__(self, request, endpoint, parent=None, name: str = ""):
        super().__init__(request, parent, name)
        self.endpoint = endpoint


class Metrics(Resource):
    """``/metrics``: admins, and scrapers from the configured addresses (no password there).

    The address is ``REMOTE_ADDR`` as the server hands it over: waitress rewrites it from
    ``X-Forwarded-For`` only for its ``trusted_proxy``, so a client cannot claim an address.
    """

    admin_only = "read the metrics"  # the refusal names it (refusals.admin_place)

    def __acl__(self) -> list:
        from .services.metrics import address_allowed

        acl = [(Allow, role_principal(Role.ADMIN), ALL_PERMISSIONS)]
        if address_allowed(self.request):
            acl.append((Allow, Everyone, Permission.VIEW))
        acl.append(DENY_ALL)
        return acl


class UpstreamFiles(Resource):
    """``/upstream/<name>/<filename>``: files of the upstream index, cached here (the view asks
    services/upstream_files; reading is granted at the root, as for local files)."""

    def __getitem__(self, key: str) -> "UpstreamProjectFiles":
        return UpstreamProjectFiles(self.request, parent=self, name=key)


class UpstreamProjectFiles(Resource):
    def __getitem__(self, key: str) -> "UpstreamFileResource":
        return UpstreamFileResource(self.request, parent=self, name=key)


class UpstreamFileResource(Resource):
    def __getitem__(self, key: str):
        raise KeyError(key)


class NowhereRoot(Root):
    """The root for a path with NUL in it: no name here contains NUL (and PostgreSQL refuses it
    in any query), so traversal stops at once and the request finds no view: a 404."""

    def __getitem__(self, key: str) -> Resource:
        raise KeyError(key)


def root_factory(request) -> Root:
    return NowhereRoot(request) if "\x00" in request.path_info else Root(request)
