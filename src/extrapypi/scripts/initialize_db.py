"""``initialize_db <ini>``: bring the schema to the newest revision and seed the first users."""

import argparse
import sys

from pyramid.paster import bootstrap, setup_logging

from .. import schema
from ..permissions import Role
from ..services.accounts import AccountError, NewUser, count_users, create_user
from ..services.passwords import NO_POLICY
from ..settings import ConfigurationError, get_app_settings

#: The defaults of --admin-password and --installer-password: a development convenience.
DOCUMENTED_PASSWORDS = {Role.ADMIN: "admin", Role.INSTALLER: "pip"}
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
    parser.add_argument("--admin-password", default="admin")
    parser.add_argument("--installer-user", default="pip")
    parser.add_argument("--installer-password", default="pip")
    parser.add_argument(
        "--no-default-users", action="store_true", help="create no users, only the schema"
    )


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="initialize_db", description=DESCRIPTION)
    add_arguments(parser)
    return parser.parse_args(argv)


def seed_users(request, args: argparse.Namespace) -> list[str]:
    dbsession = request.dbsession
    if args.no_default_users or count_users(dbsession) > 0:
        return []
    settings = get_app_settings(request.registry)
    created = []
    seeds = (
        (args.admin_user, args.admin_password, Role.ADMIN),
        (args.installer_user, args.installer_password, Role.INSTALLER),
    )
    for username, password, role in seeds:
        # The documented development pairs (admin/admin, pip/pip) stay as the README says, with
        # the warning below; a password chosen here meets the policy like any other.
        documented = password == DOCUMENTED_PASSWORDS[role]
        policy = NO_POLICY if documented else settings.password_policy
        create_user(
            dbsession,
            NewUser(username, password, role),
            rounds=settings.bcrypt_rounds,
            policy=policy,
        )
        created.append(f"{username} ({role.value})")
    return created


def main(argv: list[str] | None = None) -> int:
    return run(parse_args(sys.argv[1:] if argv is None else argv))


def run(args: argparse.Namespace) -> int:
    setup_logging(args.config_uri)
    try:
        schema.upgrade(args.config_uri)
        with bootstrap(args.config_uri) as env, env["request"].tm:
            created = seed_users(env["request"], args)
    except (ConfigurationError, AccountError) as error:
        print(f"initialize_db: {error}", file=sys.stderr)
        return 1
    print("initialize_db: the database schema is up to date.")
    if created:
        print(f"initialize_db: created users {', '.join(created)}.")
        if args.admin_password == "admin" or args.installer_password == "pip":
            print(
                "initialize_db: WARNING: default passwords in use; change them before anyone "
                "else can reach this server.",
                file=sys.stderr,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
