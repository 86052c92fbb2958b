"""``initialize_db <ini>``: bring the schema to the newest revision and seed the first users."""

import argparse
import secrets
import sys
from dataclasses import dataclass

from pyramid.paster import bootstrap, setup_logging
from pyramid.settings import asbool

from .. import schema
from ..permissions import Role
from ..services.accounts import AccountError, NewUser, count_users, create_user
from ..services.passwords import NO_POLICY
from ..settings import ConfigurationError, get_app_settings

#: The defaults of --admin-password and --installer-password: a development convenience.
DESCRIPTION = (
    "Run the database migrations (safe to repeat) and, on an empty database, "
    "create a first admin and a first installer account."
)


def add_arguments(parser: argparse.ArgumentParser, config_optional: bool = False) -> None:
    """The options, shared with ``extrapypi init`` (whose ini may come from the environment)."""
    if config_optional:
        parser.add_argument(
            "config_uri", nargs="?", help="the ini file (default: $EXTRAPYPI_CONFIG)"
        )
    else:
        parser.add_argument("config_uri", help="the ini file, e.g. production.ini")
    parser.add_argument("--admin-user", default="admin")
    parser.add_argument(
        "--admin-password",
        help="the first admin's password. UNSAFE outside development: a password on the command "
        "line is visible to other users (ps) and kept in shell history; prefer "
        "--admin-password-stdin (default: a random one, printed once; admin with "
        "extrapypi.demo_passwords = true)",
    )
    parser.add_argument(
        "--admin-password-stdin",
        action="store_true",
        help="read the admin password from the first line of standard input",
    )
    parser.add_argument("--installer-user", default="pip")
    parser.add_argument(
        "--installer-password",
        help="the first installer's password; UNSAFE like --admin-password (default: a random "
        "one, printed once; pip with extrapypi.demo_passwords = true)",
    )
    parser.add_argument(
        "--no-default-users", action="store_true", help="create no users, only the schema"
    )


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="initialize_db", description=DESCRIPTION)
    add_arguments(parser)
    return parser.parse_args(argv)


#: The well-known passwords of ``development.ini`` (``extrapypi.demo_passwords = true``).
DEMO_PASSWORDS = {Role.ADMIN: "admin", Role.INSTALLER: "pip"}


@dataclass
class Seeded:
    username: str
    role: Role
    generated: str | None  # a password made here, to show once
    well_known: bool  # admin/admin or pip/pip


def seed_users(request, args: argparse.Namespace) -> list[Seeded]:
    """Create the first users on an empty database.

    A password not given is generated (and shown once by the caller), never a well-known one,
    unless the ini opts into the demo passwords (``development.ini`` does).
    """
    dbsession = request.dbsession
    if args.no_default_users or count_users(dbsession) > 0:
        return []
    settings = get_app_settings(request.registry)
    demo = asbool(request.registry.settings.get("extrapypi.demo_passwords", False))
    created = []
    seeds = (
        (args.admin_user, args.admin_password, Role.ADMIN),
        (args.installer_user, args.installer_password, Role.INSTALLER),
    )
    for username, password, role in seeds:
        generated = None
        if password is None:
            password = DEMO_PASSWORDS[role] if demo else secrets.token_urlsafe(18)
            generated = None if demo else password
        # The demo pairs (admin/admin, pip/pip) stay as development.ini documents them; a
        # password chosen here meets the policy like any other.
        policy = (
            NO_POLICY if demo and password == DEMO_PASSWORDS[role] else settings.password_policy
        )
        create_user(
            dbsession,
            NewUser(username, password, role),
            rounds=settings.bcrypt_rounds,
            policy=policy,
        )
        well_known = password == DEMO_PASSWORDS[role] or password == username
        created.append(Seeded(username, role, generated, well_known))
    return created


def read_stdin_password(args: argparse.Namespace) -> None:
    """``--admin-password-stdin``: the first line of standard input (never the command line)."""
    if args.admin_password_stdin:
        args.admin_password = sys.stdin.readline().rstrip("\r\n")
        if not args.admin_password:
            raise AccountError("--admin-password-stdin: standard input held no password")


def main(argv: list[str] | None = None) -> int:
    return run(parse_args(sys.argv[1:] if argv is None else argv))


def run(args: argparse.Namespace) -> int:
    setup_logging(args.config_uri)
    try:
        read_stdin_password(args)
        schema.upgrade(args.config_uri)
        with bootstrap(args.config_uri) as env, env["request"].tm:
            created = seed_users(env["request"], args)
    except (ConfigurationError, AccountError) as error:
        print(f"initialize_db: {error}", file=sys.stderr)
        return 1
    print("initialize_db: the database schema is up to date.")
    if created:
        names = ", ".join(f"{seed.username} ({seed.role.value})" for seed in created)
        print(f"initialize_db: created users {names}.")
        for seed in created:
            if seed.generated is not None:
                print(
                    f"initialize_db: password of {seed.username} (shown only now): {seed.generated}"
                )
        if any(seed.well_known for seed in created):
            print(
                "initialize_db: WARNING: default passwords in use; change them before anyone "
                "else can reach this server.",
                file=sys.stderr,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
