"""``extrapypi upstream prune|block|unblock|exempt|unexempt|list``: the upstream proxy's cache
and the admins' rules from the command line (each change is journaled, by no user)."""

import argparse
from datetime import timedelta

from ..services import upstream_control
from ..services.upstream import BLOCK, COOLDOWN_EXEMPT, UpstreamConfigurationError, parse_duration
from .cli import OK, CommandError, UsageError, _command, _count, _print, app_env


def _rule_command(kind: str, remove: bool):
    def handler(args: argparse.Namespace) -> int:
        version = getattr(args, "version", "") or ""
        with app_env(args.config_uri) as env:
            dbsession = env["request"].dbsession
            try:
                if remove:
                    upstream_control.remove_rule(dbsession, kind, args.name, version)
                    message = f"Removed the upstream {kind} rule for {args.name} {version}".strip()
                else:
                    rule = upstream_control.add_rule(
                        dbsession, kind, args.name, version, args.reason or ""
                    )
                    message = f"Added {upstream_control.describe(rule)}."
            except upstream_control.UpstreamControlError as error:
                raise CommandError(str(error)) from None
        _print(message)
        return OK

    return handler


def cmd_prune(args: argparse.Namespace) -> int:
    try:
        unused_for = timedelta(seconds=parse_duration(args.unused_for, "--unused-for"))
    except UpstreamConfigurationError as error:
        raise UsageError(str(error)) from None
    with app_env(args.config_uri) as env:
        request = env["request"]
        result = upstream_control.prune(
            request.dbsession, request.storage, request.tm.get(), unused_for, args.dry_run
        )
    verb = "Would remove" if args.dry_run else "Removed"
    _print(f"{verb} {_count(result.files, 'cached upstream file')} ({result.size} bytes).")
    return OK


def cmd_list(args: argparse.Namespace) -> int:
    with app_env(args.config_uri) as env:
        dbsession = env["request"].dbsession
        summary = upstream_control.cache_summary(dbsession)
        lines = [
            f"{p.name}  files={p.files}  bytes={p.size}  last-used="
            f"{p.last_used.strftime('%Y-%m-%d %H:%M UTC') if p.last_used else '-'}"
            for p in summary.projects
        ]
        lines += [
            f"{rule.kind}  {rule.normalized_name}  {rule.version or '(all versions)'}  "
            f"{rule.reason}".rstrip()
            for rule in upstream_control.list_rules(dbsession)
        ]
    _print(*lines, f"{summary.files} cached files, {summary.size} bytes, {summary.pages} pages")
    return OK


def add_commands(commands) -> None:
    """Register ``upstream`` on the CLI's parser."""
    upstream = commands.add_parser(
        "upstream",
        help="the upstream proxy's cache and rules",
        description="The upstream proxy (extrapypi.upstream.url): prune its cache, block "
        "projects or versions, exempt projects from the cooldown.",
    )
    actions = upstream.add_subparsers(dest="upstream_command", metavar="ACTION", required=True)
    prune = _command(actions, "prune", cmd_prune, "remove cached files nobody downloaded lately")
    prune.add_argument(
        "--unused-for", required=True, metavar="AGE", help="e.g. 90d: not downloaded for that long"
    )
    prune.add_argument("--dry-run", action="store_true", help="only count what would go")
    _command(actions, "list", cmd_list, "list what is cached and the rules")
    for name, kind, remove, summary in (
        ("block", BLOCK, False, "never serve an upstream project (or one --version of it)"),
        ("unblock", BLOCK, True, "lift a block"),
        ("exempt", COOLDOWN_EXEMPT, False, "exempt an upstream project from the cooldown"),
        ("unexempt", COOLDOWN_EXEMPT, True, "end a cooldown exemption"),
    ):
        parser = _command(actions, name, _rule_command(kind, remove), summary)
        parser.add_argument("name", metavar="PROJECT")
        if kind == BLOCK:
            parser.add_argument("--version", default="", help="only this version, not the project")
        if not remove:
            parser.add_argument("--reason", default="", help="why (kept in the journal)")
