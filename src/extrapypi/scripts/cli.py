"""The ``extrapypi`` command: configuration, users, consistency check, export and import.

Exit codes: 0 done, 1 failed (the message says why), 2 the command line itself was wrong.
Business rules live in the services; this module parses arguments, opens the app and prints.
"""

import argparse
import getpass
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from pyramid.paster import bootstrap, setup_logging
from sqlalchemy.exc import SQLAlchemyError

from ..permissions import Role
from ..services import accounts
from ..settings import ConfigurationError, get_app_settings
from . import initialize_db
from .progress import progress

OK, FAILED, USAGE = 0, 1, 2
ROLE_CHOICES = [role.value for role in Role]


class CommandError(Exception):
    """A failure to report in one line; exit code 1."""


class UsageError(Exception):
    """The command line was wrong in a way argparse cannot see; exit code 2."""


# ---------------------------------------------------------------------------------------------
# helpers


def _count(number: int, noun: str) -> str:
    """``1 package``, ``2 packages``."""
    return f"{number} {noun}{'' if number == 1 else 's'}"


def _print(*lines: str) -> None:
    for line in lines:
        print(line)


@contextmanager
def app_env(config_uri: str, logging: bool = True) -> Iterator[dict]:
    """The app built from ``config_uri``, with a request whose transaction is open."""
    if not os.path.isfile(config_uri.partition("#")[0]):
        raise CommandError(f"no such configuration file: {config_uri}")
    if logging:
        setup_logging(config_uri)
    with bootstrap(config_uri) as env:
        try:
            with env["request"].tm:
                yield env
        finally:
            # A command's database connections end with it, also when it runs in-process.
            engine = env["registry"].get("db_engine")
            if engine is not None:
                engine.dispose()


def read_password(from_stdin: bool, stdin=None) -> str:
    """From the first line of stdin (``--password-stdin``) or a prompt with confirmation."""
    stdin = stdin or sys.stdin
    if from_stdin:
        password = stdin.readline().rstrip("\r\n")
        if not password:
            raise CommandError("no password on standard input")
        return password
    if not stdin.isatty():
        raise UsageError("no terminal to ask for the password: pass it with --password-stdin")
    password = getpass.getpass("Password: ")
    if getpass.getpass("Password (again): ") != password:
        raise CommandError("the two passwords differ; nothing changed")
    return password


def _user_or_fail(dbsession, username: str):
    user = accounts.get_user(dbsession, username)
    if user is None:
        raise CommandError(f"no user named {username!r} (see: extrapypi user list)")
    return user


# ---------------------------------------------------------------------------------------------
# new-config / start


def cmd_new_config(args: argparse.Namespace) -> int:
    from .new_config import ConfigExists, render_config, write_config

    text = render_config(args.base_dir, args.host, args.port, args.database_url)
    try:
        path = write_config(args.file, text, args.base_dir)
    except ConfigExists as error:
        raise CommandError(str(error)) from None
    except OSError as error:
        raise CommandError(f"cannot write {args.file}: {error.strerror}") from None
    _print(
        f"Wrote {path} (readable by you only; it holds the secret).",
        "Next steps:",
        f"  extrapypi init {path}              # create the database and a first admin",
        f"  pserve {path}                      # serve on http://{args.host}:{args.port}/",
    )
    return OK


# ---------------------------------------------------------------------------------------------
# init (the original's spelling of initialize_db)


def cmd_init(args: argparse.Namespace) -> int:
    args.config_uri = _config_or_env(args.config_uri)
    if not os.path.isfile(args.config_uri):
        raise CommandError(f"no such configuration file: {args.config_uri}")
    return initialize_db.run(args)


def _config_or_env(config_uri: str | None) -> str:
    config_uri = config_uri or os.environ.get("EXTRAPYPI_CONFIG")
    if not config_uri:
        raise UsageError("name the ini file (or set EXTRAPYPI_CONFIG)")
    return config_uri


# ---------------------------------------------------------------------------------------------
# user ...


def cmd_user_add(args: argparse.Namespace) -> int:
    role = accounts.validate_role(args.role)
    with app_env(args.config_uri) as env:
        request = env["request"]
        if accounts.get_user(request.dbsession, args.username.strip()) is not None:
            raise CommandError(f"A user named {args.username.strip()!r} already exists.")
        password = read_password(args.password_stdin)  # only once the name is known to be free
        settings = get_app_settings(request.registry)
        user = accounts.create_user(
            request.dbsession,
            accounts.NewUser(args.username, password, role, args.email or "", not args.inactive),
            rounds=settings.bcrypt_rounds,
            policy=settings.password_policy,
        )
        state = "" if user.is_active else ", inactive"
        _print(f"Created user {user.username!r} ({user.role}{state}).")
    return OK


def cmd_user_list(args: argparse.Namespace) -> int:
    with app_env(args.config_uri) as env:
        users = accounts.list_users(env["request"].dbsession)
        rows = [("USERNAME", "ROLE", "ACTIVE", "EMAIL", "LAST LOGIN")]
        for user in users:
            last = user.last_login.strftime("%Y-%m-%d %H:%M") if user.last_login else "never"
            rows.append(
                (user.username, user.role, "yes" if user.is_active else "no", user.email, last)
            )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )
    return OK


def cmd_user_set_role(args: argparse.Namespace) -> int:
    accounts.validate_role(args.role)
    with app_env(args.config_uri) as env:
        dbsession = env["request"].dbsession
        user = _user_or_fail(dbsession, args.username)
        accounts.change_role(dbsession, user, args.role)
        _print(f"{user.username!r} is now {user.role}.")
    return OK


def cmd_user_set_password(args: argparse.Namespace) -> int:
    with app_env(args.config_uri) as env:
        request = env["request"]
        user = _user_or_fail(request.dbsession, args.username)  # before asking
        password = read_password(args.password_stdin)
        settings = get_app_settings(request.registry)
        accounts.set_password(
            request.dbsession, user, password, settings.bcrypt_rounds, settings.password_policy
        )
        _print(f"Password of {user.username!r} changed.")
    return OK


def _set_active(active: bool) -> Callable[[argparse.Namespace], int]:
    def command(args: argparse.Namespace) -> int:
        with app_env(args.config_uri) as env:
            dbsession = env["request"].dbsession
            user = _user_or_fail(dbsession, args.username)
            accounts.set_active(dbsession, user, active)
            _print(f"{user.username!r} is now {'active' if active else 'inactive'}.")
        return OK

    return command


def cmd_user_delete(args: argparse.Namespace) -> int:
    with app_env(args.config_uri) as env:
        dbsession = env["request"].dbsession
        user = _user_or_fail(dbsession, args.username)
        accounts.delete_user(dbsession, user)
        _print(f"Deleted user {args.username!r}.")
    return OK


def cmd_create_user(args: argparse.Namespace) -> int:
    """The original extrapypi's ``create-user USERNAME EMAIL --role R``."""
    args.config_uri = _config_or_env(args.config)
    args.inactive = False
    return cmd_user_add(args)


# ---------------------------------------------------------------------------------------------
# check / export / import


def cmd_check(args: argparse.Namespace) -> int:
    from ..services.consistency import check_storage

    with app_env(args.config_uri) as env:
        dbsession = env["request"].dbsession
        with progress(_file_rows(dbsession), "files") as advance:
            report = check_storage(
                dbsession,
                env["registry"]["extrapypi.storage"],
                repair=args.repair,
                verify_hashes=not args.no_hashes,
                min_staged_age=args.min_staged_age,
                progress=advance,
            )
    for problem in report.problems:
        print(("repaired " if problem.repaired else "") + problem.describe())
    unresolved = len(report.unresolved)
    counts = (
        f"{_count(report.files_checked, 'distribution')} and "
        f"{_count(report.metadata_checked, 'metadata file')} in the database, "
        f"{_count(report.distribution_keys_seen, 'distribution')} and "
        f"{_count(report.metadata_keys_seen, 'metadata file')} in storage"
    )
    if report.problems:
        repaired = len(report.problems) - unresolved
        print(
            f"{counts}: {_count(len(report.problems), 'problem')}, {repaired} repaired, "
            f"{unresolved} left."
        )
    else:
        print(f"{counts}: consistent.")
    if unresolved and not args.repair:
        print("Run again with --repair to fix what can be fixed.", file=sys.stderr)
    return OK if report.consistent else FAILED


def cmd_export(args: argparse.Namespace) -> int:
    from ..services.export import ExportError, export_index

    with app_env(args.config_uri) as env:
        dbsession = env["request"].dbsession
        try:
            with progress(_file_rows(dbsession), "files") as advance:
                report = export_index(
                    dbsession,
                    env["registry"]["extrapypi.storage"],
                    Path(args.directory),
                    progress=advance,
                )
        except ExportError as error:
            raise CommandError(str(error)) from None
    for problem in report.problems:
        print(f"problem: {problem}", file=sys.stderr)
    print(
        f"Exported {_count(report.packages, 'package')}, {_count(report.releases, 'release')}, "
        f"{_count(report.files, 'file')} ({_count(report.bytes, 'byte')}) and "
        f"{_count(report.users, 'user')} to {report.directory}."
    )
    return FAILED if report.problems else OK


def cmd_import(args: argparse.Namespace) -> int:
    """Validated like uploads (services/importer.py); the same code as ``import_dists``.

    A directory written by ``extrapypi export`` (it has a manifest.json) is restored whole:
    services/restore.py.
    """
    from ..services.restore import is_export
    from . import import_dists

    if not os.path.isdir(args.directory):
        raise CommandError(f"no such directory: {args.directory}")
    if not os.path.isfile(args.config_uri):
        raise CommandError(f"no such configuration file: {args.config_uri}")
    if is_export(args.directory):
        if args.user:
            raise UsageError("--user does not apply to an export: its manifest names uploaders")
        return cmd_restore(args)
    return import_dists.run(args)


def cmd_restore(args: argparse.Namespace) -> int:
    from ..services.restore import RestoreError, restore_export
    from ..services.uploads import Limits

    with app_env(args.config_uri) as env:
        registry = env["registry"]
        settings = get_app_settings(registry)
        try:
            total = count_export_files(args.directory)
            with progress(total, "files") as advance:
                report = restore_export(
                    registry["dbsession_factory"],
                    registry["extrapypi.storage"],
                    args.directory,
                    limits=Limits(settings.upload_limit_bytes, settings.project_limit_bytes),
                    namespace_max_depth=settings.namespace_max_depth,
                    progress=lambda filename: advance(),
                )
        except RestoreError as error:
            raise CommandError(str(error)) from None
    for what, reason in report.refused:
        print(f"refused {what}: {reason}", file=sys.stderr)
    if report.ignored_sections:
        print(
            "ignored (not known to this version): " + ", ".join(report.ignored_sections),
            file=sys.stderr,
        )
    if report.users_created:
        print(
            f"Users restored without passwords: {', '.join(report.users_created)}. Each needs "
            "one before logging in: extrapypi user set-password INI NAME (or the dashboard)."
        )
    print(f"extrapypi import: {report.summary()}")
    return FAILED if report.refused else OK


def count_export_files(directory: str) -> int:
    """How many distributions an export's manifest lists (the progress bar's total)."""
    from ..services.restore import read_manifest

    manifest = read_manifest(Path(directory))
    return sum(
        len(release.get("files") or [])
        for package in manifest.get("packages", [])
        if isinstance(package, dict)
        for release in package.get("releases") or []
        if isinstance(release, dict)
    )


def _file_rows(dbsession) -> int:
    from sqlalchemy import func, select

    from ..models import File

    return dbsession.scalar(select(func.count()).select_from(File)) or 0


# ---------------------------------------------------------------------------------------------
# the parser


class DefaultsFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Every option's help ends with its default, unless there is none to state (None, off)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        stated = action.help and "(default" in action.help
        if action.default is None or action.default is False or not action.help or stated:
            return action.help or ""
        if action.default == "":
            return action.help + " (default: none)"  # not "(default: )"
        return super()._get_help_string(action)


class Parser(argparse.ArgumentParser):
    """No abbreviated options: ``--password`` must not quietly mean ``--password-stdin``."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allow_abbrev", False)
        kwargs.setdefault("formatter_class", DefaultsFormatter)
        super().__init__(*args, **kwargs)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("extrapypi")
    except PackageNotFoundError:  # pragma: no cover - run from a bare checkout
        return "unknown"


#: ``initialize_db``'s options as ``extrapypi init`` shows them (the options are its own).
INIT_HELP = {
    "--admin-user": "name of the first admin, created on an empty database",
    "--admin-password": "the first admin's password. UNSAFE outside development: a password "
    "on the command line is visible to other users (ps) and kept in shell history",
    "--installer-user": "name of the first installer (read-only account for pip)",
    "--installer-password": "the first installer's password; UNSAFE like --admin-password",
}


def _describe_init_options(parser: argparse.ArgumentParser) -> None:
    for action in parser._actions:
        for option in action.option_strings:
            if option in INIT_HELP and INIT_HELP[option] not in (action.help or ""):
                # initialize_db's own help (its default) follows the warning, never replaces it
                action.help = "; ".join(filter(None, (INIT_HELP[option], action.help)))


def _add_config(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "config_uri", metavar="INI", help="the configuration file, e.g. production.ini"
    )


def _add_password_stdin(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from the first line of standard input instead of prompting",
    )


def _add_new_config_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--base-dir",
        metavar="DIR",
        help="directory for the SQLite database and the packages (default: var/ beside the ini)",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address waitress listens on")
    parser.add_argument("--port", type=int, default=6543, help="port waitress listens on")
    parser.add_argument(
        "--database-url",
        metavar="URL",
        help="a PostgreSQL/MySQL URL instead of SQLite (default: SQLite in --base-dir)",
    )


def _command(group, name: str, handler, summary: str, description: str = "", config=True):
    """One sub-command: its help line, its description, the ini argument, its handler."""
    parser = group.add_parser(
        name, help=summary, description=description or summary[0].upper() + summary[1:] + "."
    )
    if config:
        _add_config(parser)
    parser.set_defaults(handler=handler)
    return parser


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="extrapypi",
        description="Run and look after an extrapypi index. `extrapypi COMMAND --help` for more.",
        epilog="Exit codes: 0 done, 1 failed, 2 wrong usage. Documentation: docs/cli.md.",
    )
    parser.add_argument("--version", action="version", version=f"extrapypi {_version()}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    new_config = _command(
        commands,
        "new-config",
        cmd_new_config,
        "write a production-ready ini file (refuses to overwrite)",
        "Write a production-ready ini: a random secret, SQLite and the packages under "
        "--base-dir, waitress on --host/--port, logging. Never overwrites a file.",
        config=False,
    )
    new_config.add_argument("file", metavar="FILE.ini")
    _add_new_config_options(new_config)
    start = _command(
        commands,
        "start",
        cmd_new_config,
        "alias of new-config (the original extrapypi's spelling)",
        "Same as `extrapypi new-config FILE`: `extrapypi start --filename FILE`.",
        config=False,
    )
    start.add_argument("--filename", dest="file", metavar="FILE.ini", required=True)
    _add_new_config_options(start)

    init = _command(
        commands,
        "init",
        cmd_init,
        "alias of initialize_db: migrate the database, seed first users",
        f"Same as `initialize_db INI`. {initialize_db.DESCRIPTION}",
        config=False,
    )
    initialize_db.add_arguments(init, config_optional=True)
    _describe_init_options(init)

    user = commands.add_parser(
        "user", help="manage accounts", description="Manage accounts without the dashboard."
    )
    users = user.add_subparsers(dest="user_command", metavar="ACTION", required=True)
    add = _command(
        users, "add", cmd_user_add, "create a user", "Create a user; the password is prompted for."
    )
    add.add_argument("username")
    add.add_argument("--email", default="", help="the user's email address (default: none)")
    add.add_argument(
        "--role", default=Role.INSTALLER.value, choices=ROLE_CHOICES, help="what the user may do"
    )
    add.add_argument("--inactive", action="store_true", help="create the account switched off")
    _add_password_stdin(add)
    _command(
        users,
        "list",
        cmd_user_list,
        "list users",
        "List users: name, role, active, email, last login (the dashboard form, or HTTP Basic as "
        "pip and twine use it; noted at most once an hour).",
    )
    set_role = _command(
        users,
        "set-role",
        cmd_user_set_role,
        "change a user's role",
        "Change a user's role; the last active admin cannot be demoted.",
    )
    set_role.add_argument("username")
    set_role.add_argument("role", choices=ROLE_CHOICES)
    set_password = _command(users, "set-password", cmd_user_set_password, "set a user's password")
    set_password.add_argument("username")
    _add_password_stdin(set_password)
    for name, handler, summary in (
        ("activate", _set_active(True), "let a user log in again"),
        ("deactivate", _set_active(False), "stop a user logging in (not the last active admin)"),
        (
            "delete",
            cmd_user_delete,
            "delete a user; their uploads stay (not the last active admin)",
        ),
    ):
        _command(users, name, handler, summary).add_argument("username")

    create_user = _command(
        commands,
        "create-user",
        cmd_create_user,
        "alias of `user add` (the original extrapypi's spelling)",
        "Same as `extrapypi user add INI USERNAME --email EMAIL --role ROLE`.",
        config=False,
    )
    create_user.add_argument("username")
    create_user.add_argument("email")
    create_user.add_argument(
        "--role", default=Role.INSTALLER.value, choices=ROLE_CHOICES, help="what the user may do"
    )
    create_user.add_argument(
        "--config", metavar="INI", help="the configuration file (default: $EXTRAPYPI_CONFIG)"
    )
    _add_password_stdin(create_user)

    check = _command(
        commands,
        "check",
        cmd_check,
        "compare the database with the stored files",
        "Report rows without files, files without rows, hash mismatches and staged leftovers; "
        "exit 1 while anything is left inconsistent.",
    )
    check.add_argument(
        "--repair",
        action="store_true",
        help="delete orphans and leftovers, finish interrupted publishes, restore METADATA files",
    )
    check.add_argument(
        "--no-hashes", action="store_true", help="check presence only, do not read every file"
    )
    check.add_argument(
        "--min-staged-age",
        type=float,
        default=3600,
        metavar="SECONDS",
        help="ignore staged uploads younger than this (they may be in progress)",
    )

    _command(
        commands,
        "export",
        cmd_export,
        "copy all files and a JSON manifest to a directory",
        "Write every file and manifest.json (packages, releases, files with hashes, users "
        "without password hashes, maintainers) into DIR, which must be new or empty.",
    ).add_argument("directory", metavar="DIR")

    importer = commands.add_parser(
        "import",
        help="restore an export, or import the distributions found in a directory",
        description="Restore DIR written by `extrapypi export` (it has a manifest.json): users "
        "(without passwords), packages, releases, files with their hashes and upload times, "
        "yanks and maintainers. Any other DIR (a pypiserver folder, a dump): import its wheels "
        "and sdists. Validated like uploads, duplicates skipped, safe to run again.",
    )
    _add_config(importer)
    importer.add_argument("directory", metavar="DIR")
    importer.add_argument(
        "--user",
        metavar="NAME",
        help="record this user as uploader, and as maintainer of the packages it creates "
        "(not for an export: its manifest names uploaders and maintainers)",
    )
    importer.add_argument("--quiet", action="store_true", help="print only refusals and totals")
    importer.set_defaults(handler=cmd_import)

    from .cli_teams import add_commands  # it imports this module's helpers

    add_commands(commands)
    from .operations import register as register_operations

    register_operations(commands)  # webhook ..., prune

    from .cli_tokens import add_commands as add_token_commands

    add_token_commands(commands)
    from .cli_publishers import add_commands as add_publisher_commands

    add_publisher_commands(commands)
    from .cli_upstream import add_commands as add_upstream_commands

    add_upstream_commands(commands)
    from .cli_front import add_commands as add_front_commands

    add_front_commands(commands)  # front build, nginx-config
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit:  # --help (0) or a usage error (2), already printed
        return exit.code if isinstance(exit.code, int) else USAGE
    try:
        return args.handler(args)
    except UsageError as error:  # one line: the usage of the top-level parser would not help
        print(f"extrapypi: error: {error}", file=sys.stderr)
        return USAGE
    except (CommandError, accounts.AccountError, ConfigurationError) as error:
        print(f"extrapypi: {error}", file=sys.stderr)
        return FAILED
    except SQLAlchemyError as error:
        reason = str(error).splitlines()[0]
        print(
            f"extrapypi: database error: {reason}\n"
            "Is the database reachable, and initialized (`extrapypi init INI`)?",
            file=sys.stderr,
        )
        return FAILED


def run() -> None:
    """Console-script entry point: argparse's own exits keep their codes (2 for usage)."""
    sys.exit(main())


if __name__ == "__main__":
    run()
