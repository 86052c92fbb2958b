"""``extrapypi token create|list|revoke``: API tokens from the command line.

``token create`` prints the token on stdout and nothing else there (``TOKEN=$(extrapypi token
create ...)`` works); everything else goes to stderr. The token is never shown again.
"""

import argparse
import sys

from ..services import tokens as token_service
from ..settings import get_app_settings
from .cli import OK, CommandError, _command, _count, _print, _user_or_fail, app_env


def _when(moment) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC") if moment is not None else "-"


def cmd_token_create(args: argparse.Namespace) -> int:
    with app_env(args.config_uri) as env:
        request = env["request"]
        user = _user_or_fail(request.dbsession, args.username)
        try:
            row, token = token_service.create_token(
                request.dbsession,
                get_app_settings(request.registry).secret,
                user,
                args.name,
                args.scope,
                args.project,
                args.expires,
            )
        except token_service.TokenError as error:
            raise CommandError(str(error)) from None
        token_id = row.id
    print(token)
    print(
        f"Created token {token_id} for {args.username}: it is shown only this once.",
        file=sys.stderr,
    )
    return OK


def cmd_token_list(args: argparse.Namespace) -> int:
    with app_env(args.config_uri) as env:
        dbsession = env["request"].dbsession
        user = _user_or_fail(dbsession, args.username) if args.username else None
        rows = token_service.list_tokens(dbsession, user)
        lines = []
        for row in rows:
            state = "revoked " + _when(row.revoked) if row.revoked else "active"
            used = (
                f"{_when(row.last_used)} from {row.last_used_from or 'unknown address'}"
                if row.last_used
                else "never"
            )
            lines.append(
                f"{row.id}  {row.user.username}  {row.name!r}  scope={row.scope}  "
                f"projects={','.join(row.project_names) or '*'}  created={_when(row.created)}  "
                f"expires={_when(row.expires)}  last-used={used}  {state}"
            )
    _print(*lines, _count(len(rows), "token"))
    return OK


def cmd_token_revoke(args: argparse.Namespace) -> int:
    with app_env(args.config_uri) as env:
        dbsession = env["request"].dbsession
        row = token_service.find_token(dbsession, args.token)
        if row is None:
            raise CommandError("no such token (see: extrapypi token list)")
        revoked = token_service.revoke_token(dbsession, row)
        token_id, owner = row.id, row.user.username
    if revoked:
        _print(f"Revoked token {token_id} of {owner}.")
    else:
        _print(f"{token_id} was revoked already.")
    return OK


def add_commands(commands) -> None:
    """Register ``token`` on the CLI's parser."""
    token = commands.add_parser(
        "token",
        help="manage API tokens",
        description="API tokens: HTTP Basic with the username __token__ and the token as password.",
    )
    tokens = token.add_subparsers(dest="token_command", metavar="ACTION", required=True)
    create = _command(tokens, "create", cmd_token_create, "create a token; prints it once")
    create.add_argument("username", metavar="USERNAME")
    create.add_argument("--name", required=True, help="what the token is for, e.g. ci-release")
    create.add_argument(
        "--scope", choices=token_service.Scope.ALL, default="upload", help="default: upload"
    )
    create.add_argument(
        "--project",
        action="append",
        default=[],
        metavar="NAME",
        help="limit uploads to this project (repeat for more)",
    )
    create.add_argument("--expires", type=int, metavar="DAYS", help="expire after DAYS days")
    _command(tokens, "list", cmd_token_list, "list tokens (never their secrets)").add_argument(
        "username", metavar="USERNAME", nargs="?"
    )
    _command(tokens, "revoke", cmd_token_revoke, "revoke a token").add_argument(
        "token", metavar="TOKEN_ID_OR_TOKEN"
    )
