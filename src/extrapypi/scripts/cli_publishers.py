"""``extrapypi publisher add|list|remove``: trusted publishers from the command line.

A minted token carries the rights of the account that registered its publisher (``--owner``;
default: the project's first active maintainer), never more (``services/oidc.py``).
"""

import argparse

from ..models import TrustedPublisher
from ..services import oidc as oidc_service
from ..services.names import InvalidName, normalize_name
from ..services.packages import get_package
from .cli import OK, CommandError, _command, _count, _print, _user_or_fail, app_env


def _when(moment) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC") if moment is not None else "-"


def describe(publisher: TrustedPublisher) -> str:
    state = "pending" if publisher.package is None else "active"
    owner = publisher.created_by.username if publisher.created_by else "(removed account)"
    return (
        f"{publisher.id}  {publisher.project}  {state}  issuer={publisher.issuer}  "
        f"claims: {oidc_service.describe_claims(publisher.claims)}  by={owner}  "
        f"created={_when(publisher.created)}"
    )


def cmd_publisher_add(args: argparse.Namespace) -> int:
    with app_env(args.config_uri) as env:
        request = env["request"]
        dbsession = request.dbsession
        if args.owner:
            owner = _user_or_fail(dbsession, args.owner)
        else:
            package = get_package(dbsession, args.project)
            active = [m for m in (package.maintainers if package else []) if m.is_active]
            if not active:
                raise CommandError(
                    "name the account whose rights its tokens carry: --owner USERNAME"
                )
            owner = sorted(active, key=lambda user: user.username)[0]
        try:
            claims = oidc_service.parse_claims(args.claim)
            publisher = oidc_service.add_publisher(
                dbsession,
                request.registry["extrapypi.oidc"],
                args.project,
                args.issuer,
                claims,
                owner,
                True if args.pending else None,
            )
        except oidc_service.PublisherError as error:
            raise CommandError(str(error)) from None
        line = describe(publisher)
    _print(f"Added publisher: {line}")
    return OK


def cmd_publisher_list(args: argparse.Namespace) -> int:
    with app_env(args.config_uri) as env:
        dbsession = env["request"].dbsession
        publishers = oidc_service.list_publishers(dbsession)
        if args.project:
            try:
                wanted = normalize_name(args.project)
            except InvalidName:
                raise CommandError(f"{args.project!r} is not a valid project name") from None
            publishers = [p for p in publishers if p.project == wanted]
        lines = [describe(p) for p in publishers]
    _print(*lines, _count(len(lines), "publisher"))
    return OK


def cmd_publisher_remove(args: argparse.Namespace) -> int:
    with app_env(args.config_uri) as env:
        dbsession = env["request"].dbsession
        publisher = dbsession.get(TrustedPublisher, args.id)
        if publisher is None:
            raise CommandError("no such publisher (see: extrapypi publisher list)")
        line = describe(publisher)
        oidc_service.remove_publisher(dbsession, publisher, None)
    _print(f"Removed publisher: {line}")
    return OK


def add_commands(commands) -> None:
    """Register ``publisher`` on the CLI's parser."""
    publisher = commands.add_parser(
        "publisher",
        help="manage trusted publishers (CI uploads without stored secrets)",
        description="Trusted publishers: which CI jobs (OIDC issuer + exact claims) may upload.",
    )
    actions = publisher.add_subparsers(dest="publisher_command", metavar="ACTION", required=True)
    add = _command(
        actions,
        "add",
        cmd_publisher_add,
        "register a trusted publisher for a project (pending if it does not exist yet)",
    )
    add.add_argument("project", metavar="PROJECT")
    add.add_argument("--issuer", required=True, help="one of extrapypi.oidc.issuers, exactly")
    add.add_argument(
        "--claim",
        action="append",
        default=[],
        required=True,
        metavar="KEY=VALUE",
        help="a claim that must match exactly, e.g. repository=org/repo (repeat for more)",
    )
    add.add_argument(
        "--pending",
        action="store_true",
        help="the project does not exist yet: the first upload creates it (the default when "
        "no such project exists)",
    )
    add.add_argument(
        "--owner",
        metavar="USERNAME",
        help="whose rights its tokens carry (default: the project's first active maintainer)",
    )
    _command(actions, "list", cmd_publisher_list, "list trusted publishers").add_argument(
        "project", metavar="PROJECT", nargs="?"
    )
    _command(actions, "remove", cmd_publisher_remove, "remove a trusted publisher").add_argument(
        "id", metavar="ID", type=int
    )
