"""``extrapypi front build`` and ``extrapypi nginx-config``: the nginx front, from the CLI."""

import argparse
import dataclasses

from pyramid.paster import get_appsettings, setup_logging

from ..front import parse_front_settings
from ..models import get_engine, get_session_factory
from ..services.materialize import PageMirror
from .cli import OK, CommandError, _command, _count, _print

NOT_ENABLED = (
    "extrapypi.front.pages_dir is not set in {ini}: the nginx front serves the pages kept "
    "there (see docs/deployment.md, 'nginx front')"
)


def cmd_front_build(args: argparse.Namespace) -> int:
    """Only the database and the directory: building the app would sync the pages at its start."""
    settings = _app_settings(args.config_uri)
    front = parse_front_settings(settings)
    if not front.enabled:
        raise CommandError(NOT_ENABLED.format(ini=args.config_uri))
    setup_logging(args.config_uri)
    engine = get_engine(settings)
    try:
        mirror = PageMirror(front.pages_dir, get_session_factory(engine))
        report = mirror.sync(full=True)
    finally:
        engine.dispose()
    _print(
        f"Pages in {mirror.directory} reflect serial {report.serial}: "
        f"{_count(report.written, 'file')} written, {_count(report.removed, 'project')} removed."
    )
    return OK


def _app_settings(config_uri: str) -> dict:
    try:
        return get_appsettings(config_uri)
    except (FileNotFoundError, LookupError) as error:
        raise CommandError(f"cannot read {config_uri}: {error}") from None


def cmd_nginx_config(args: argparse.Namespace) -> int:
    from .nginx_config import render

    settings = _app_settings(args.config_uri)
    front = parse_front_settings(settings)
    if not front.enabled:
        raise CommandError(NOT_ENABLED.format(ini=args.config_uri))
    overrides = {
        name: value
        for name, value in (
            ("listen", args.listen),
            ("server_name", args.server_name),
            ("auth_cache_dir", args.auth_cache_dir),
        )
        if value
    }
    front = dataclasses.replace(front, **overrides)
    local = settings.get("extrapypi.storage", "local") == "local"
    storage_root = settings.get("extrapypi.storage.path") if local else None
    try:
        text = render(
            front,
            args.config_uri,
            storage_root=storage_root,
            upload_limit=settings.get("extrapypi.upload_limit", "100M"),
            upstream=args.upstream or "",
        )
    except ValueError as error:
        raise CommandError(str(error)) from None
    print(text, end="")
    return OK


def add_commands(commands) -> None:
    front = commands.add_parser(
        "front",
        help="the pages directory of the nginx front",
        description="Look after the pages directory nginx serves (extrapypi.front.pages_dir).",
    )
    actions = front.add_subparsers(dest="front_command", metavar="ACTION", required=True)
    _command(
        actions,
        "build",
        cmd_front_build,
        "rewrite every page of the pages directory",
        "Render /simple/ and every /simple/<name>/ (HTML, PEP 691 HTML, JSON, each gzipped too) "
        "into extrapypi.front.pages_dir and remove pages of projects that are gone. The app "
        "keeps the directory up to date by itself; this is for a new or damaged directory.",
    )
    nginx = _command(
        commands,
        "nginx-config",
        cmd_nginx_config,
        "print the nginx configuration of the nginx front",
        "Print an nginx configuration (for the http context: an upstream, a cache, a map and "
        "the server block) that serves /simple/ pages from extrapypi.front.pages_dir and files "
        "from the storage directory, asking the app who may read them.",
    )
    nginx.add_argument(
        "--upstream",
        metavar="HOST:PORT",
        help="where the app listens (default: extrapypi.front.upstream, else [server:main])",
    )
    nginx.add_argument("--listen", help="nginx's listen value (default: extrapypi.front.listen)")
    nginx.add_argument("--server-name", help="server_name (default: extrapypi.front.server_name)")
    nginx.add_argument(
        "--auth-cache-dir",
        metavar="DIR",
        help="where nginx keeps access answers (default: extrapypi.front.auth_cache_dir)",
    )
