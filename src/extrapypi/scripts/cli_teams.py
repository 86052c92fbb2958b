"""``extrapypi team|maintainer|status|namespace``: teams, package maintainers, project status
markers (PEP 792) and reserved namespaces (PEP 752) from the command line.

The CLI runs with the operator's full rights (it reads the ini): it may quarantine and lift a
quarantine. Rules live in the services; this module parses, calls and prints.
"""

import argparse

from ..models import User
from ..services import namespaces as namespace_service
from ..services import packages as package_service
from ..services import status as status_service
from ..services import teams as team_service
from ..settings import get_app_settings
from .cli import OK, CommandError, _command, _print, _user_or_fail, app_env

SERVICE_ERRORS = (
    team_service.TeamError,
    namespace_service.NamespaceError,
    status_service.StatusError,
    package_service.PackageError,
)


def _team_or_fail(dbsession, name: str):
    team = team_service.get_team(dbsession, name.removeprefix(team_service.TEAM_PREFIX))
    if team is None:
        raise CommandError(f"no team named {name!r} (see: extrapypi team list)")
    return team


def _package_or_fail(dbsession, name: str):
    package = package_service.get_package(dbsession, name)
    if package is None:
        raise CommandError(f"no package named {name!r}")
    return package


def _owner(dbsession, value: str):
    """``USER`` or ``team:NAME``."""
    if value.startswith(team_service.TEAM_PREFIX):
        return _team_or_fail(dbsession, value)
    return _user_or_fail(dbsession, value)


def _run(args: argparse.Namespace, action) -> int:
    """Open the app, run ``action(dbsession)``, turn a service refusal into a one-line failure."""
    with app_env(args.config_uri) as env:
        request = env["request"]
        try:
            action(request)
        except SERVICE_ERRORS as error:
            raise CommandError(str(error)) from None
    return OK


# team ...


def cmd_team_add(args):
    def action(request):
        team = team_service.create_team(request.dbsession, args.team, None)
        _print(f"Created team {team.name!r}.")

    return _run(args, action)


def cmd_team_remove(args):
    def action(request):
        team = _team_or_fail(request.dbsession, args.team)
        team_service.delete_team(request.dbsession, team, None)
        _print(f"Removed team {args.team!r} (its maintainer listings and namespaces too).")

    return _run(args, action)


def _member_change(change, verb: str):
    def command(args):
        def action(request):
            team = _team_or_fail(request.dbsession, args.team)
            user = _user_or_fail(request.dbsession, args.username)
            change(request.dbsession, team, user, None)
            _print(f"{verb} {user.username!r} {'to' if verb == 'Added' else 'from'} {team.name!r}.")

        return _run(args, action)

    return command


def cmd_team_list(args):
    def action(request):
        teams = team_service.list_teams(request.dbsession)
        if not teams:
            _print("No teams.")
        for team in teams:
            members = ", ".join(m.username for m in team.members) or "-"
            _print(f"{team.name}\t{members}")

    return _run(args, action)


# maintainer ...


def _maintainer_change(add: bool):
    def command(args):
        def action(request):
            dbsession = request.dbsession
            package = _package_or_fail(dbsession, args.package)
            owner = _owner(dbsession, args.owner)
            if isinstance(owner, User):
                change = (
                    package_service.add_maintainer if add else package_service.remove_maintainer
                )
            else:
                change = (
                    team_service.add_team_maintainer if add else team_service.remove_team_maintainer
                )
            change(dbsession, package, owner, None)
            dbsession.flush()
            verb = "Added" if add else "Removed"
            _print(f"{verb} maintainer {args.owner} {'to' if add else 'from'} {package.name}.")

        return _run(args, action)

    return command


def cmd_maintainer_list(args):
    def action(request):
        package = _package_or_fail(request.dbsession, args.package)
        for user in package.maintainers:
            _print(f"{user.username}\t{user.role}{'' if user.is_active else ' (inactive)'}")
        for team in package.team_maintainers:
            _print(f"{team_service.TEAM_PREFIX}{team.name}\tteam")
        if not package.maintainers and not package.team_maintainers:
            _print(f"{package.name} has no maintainers.")

    return _run(args, action)


# status ...


def cmd_status_set(args):
    def action(request):
        package = _package_or_fail(request.dbsession, args.project)
        changed = status_service.set_status(
            request.dbsession, package, args.status, args.reason or "", None, may_quarantine=True
        )
        reason = f" ({package.status_reason})" if package.status_reason else ""
        state = "" if changed else " (unchanged)"
        _print(f"{package.name} is {package.status}{reason}{state}.")

    return _run(args, action)


# namespace ...


def cmd_namespace_grant(args):
    def action(request):
        owner = _owner(request.dbsession, args.owner)
        reserved = namespace_service.grant(
            request.dbsession,
            args.namespace,
            owner,
            None,
            max_depth=get_app_settings(request.registry).namespace_max_depth,
        )
        _print(f"Granted namespace {reserved.name!r} to {reserved.owner}.")

    return _run(args, action)


def cmd_namespace_revoke(args):
    def action(request):
        reserved = namespace_service.revoke(request.dbsession, args.namespace, None)
        _print(f"Revoked namespace {reserved.name!r} (was {reserved.owner}).")

    return _run(args, action)


def cmd_namespace_list(args):
    def action(request):
        grants = namespace_service.list_namespaces(request.dbsession)
        if not grants:
            _print("No namespaces.")
        for reserved in grants:
            _print(f"{reserved.name}\t{reserved.owner}")

    return _run(args, action)


def add_commands(commands) -> None:
    """Register ``team``, ``maintainer``, ``status`` and ``namespace`` on the CLI's parser."""
    team = commands.add_parser(
        "team", help="manage teams", description="Manage teams (named groups of users)."
    )
    teams = team.add_subparsers(dest="team_command", metavar="ACTION", required=True)
    _command(teams, "add", cmd_team_add, "create a team").add_argument("team", metavar="TEAM")
    _command(
        teams, "remove", cmd_team_remove, "delete a team, its maintainer listings and namespaces"
    ).add_argument("team", metavar="TEAM")
    for name, verb, change, summary in (
        ("add-member", "Added", team_service.add_member, "add a user to a team"),
        ("remove-member", "Removed", team_service.remove_member, "take a user out of a team"),
    ):
        parser = _command(teams, name, _member_change(change, verb), summary)
        parser.add_argument("team", metavar="TEAM")
        parser.add_argument("username", metavar="USER")
    _command(teams, "list", cmd_team_list, "list teams and their members")

    maintainer = commands.add_parser(
        "maintainer",
        help="manage a package's maintainers",
        description="Manage who maintains a package: a user, or a team as team:NAME.",
    )
    maintainers = maintainer.add_subparsers(
        dest="maintainer_command", metavar="ACTION", required=True
    )
    for name, handler, summary in (
        ("add", _maintainer_change(True), "make a user or team:NAME a maintainer"),
        ("remove", _maintainer_change(False), "remove a maintainer (user or team:NAME)"),
    ):
        parser = _command(maintainers, name, handler, summary)
        parser.add_argument("package", metavar="PACKAGE")
        parser.add_argument("owner", metavar="USER|team:NAME")
    _command(maintainers, "list", cmd_maintainer_list, "list a package's maintainers").add_argument(
        "package", metavar="PACKAGE"
    )

    status = commands.add_parser(
        "status",
        help="set a project's status (PEP 792)",
        description="Project status markers: active, archived, deprecated, quarantined.",
    )
    statuses = status.add_subparsers(dest="status_command", metavar="ACTION", required=True)
    set_status = _command(
        statuses,
        "set",
        cmd_status_set,
        "set a project's status and reason",
        "Set a project's status. archived and quarantined refuse uploads; quarantined offers "
        "no files at all. The reason is shown to installers and in the dashboard.",
    )
    set_status.add_argument("project", metavar="PROJECT")
    set_status.add_argument(
        "status", metavar="STATUS", choices=[s.value for s in status_service.ProjectStatus]
    )
    set_status.add_argument("--reason", metavar="TEXT", default="", help="why (default: none)")

    namespace = commands.add_parser(
        "namespace",
        help="reserve name prefixes (PEP 752)",
        description="Reserve name prefixes: only their owner may create projects in them.",
    )
    namespaces = namespace.add_subparsers(dest="namespace_command", metavar="ACTION", required=True)
    grant = _command(
        namespaces, "grant", cmd_namespace_grant, "grant a namespace to a user or team:NAME"
    )
    grant.add_argument("namespace", metavar="NAMESPACE")
    grant.add_argument("owner", metavar="USER|team:NAME")
    _command(namespaces, "revoke", cmd_namespace_revoke, "revoke a namespace").add_argument(
        "namespace", metavar="NAMESPACE"
    )
    _command(namespaces, "list", cmd_namespace_list, "list namespaces and their owners")
