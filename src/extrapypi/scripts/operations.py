"""``extrapypi webhook ...`` and ``extrapypi prune``: the operations commands.

Registered by ``cli.build_parser`` with one call; the rules live in services/webhooks.py and
services/retention.py.
"""

import argparse

from .cli import OK, CommandError, _command, _count, app_env


def _when(value) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value else "-"


def _table(rows: list[tuple]) -> None:
    rows = [tuple(str(cell) for cell in row) for row in rows]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


# ---------------------------------------------------------------------------------------------
# webhook ...


def cmd_webhook_add(args: argparse.Namespace) -> int:
    from ..services import webhooks

    with app_env(args.config_uri) as env:
        try:
            endpoint = webhooks.create_endpoint(
                env["request"].dbsession, args.url, args.package or "", args.events
            )
        except webhooks.WebhookError as error:
            raise CommandError(str(error)) from None
        endpoint_id, secret, scope = endpoint.id, endpoint.secret, endpoint.package_name
    print(f"Added webhook {endpoint_id} to {args.url.strip()} ({scope or 'every package'}).")
    print(f"Secret (shown only now; receivers check X-Extrapypi-Signature with it): {secret}")
    return OK


def cmd_webhook_list(args: argparse.Namespace) -> int:
    from ..services import webhooks

    with app_env(args.config_uri) as env:
        rows = [("ID", "URL", "PACKAGE", "EVENTS", "CREATED")]
        for e in webhooks.list_endpoints(env["request"].dbsession):
            rows.append((e.id, e.url, e.package_name or "*", e.events, _when(e.created)))
    _table(rows)
    return OK


def cmd_webhook_remove(args: argparse.Namespace) -> int:
    from ..services import webhooks

    with app_env(args.config_uri) as env:
        dbsession = env["request"].dbsession
        endpoint = webhooks.get_endpoint(dbsession, args.id)
        if endpoint is None:
            raise CommandError(f"no webhook {args.id} (see: extrapypi webhook list)")
        url = endpoint.url
        webhooks.remove_endpoint(dbsession, endpoint)
    print(f"Removed webhook {args.id} ({url}) and its queued deliveries.")
    return OK


def cmd_webhook_deliveries(args: argparse.Namespace) -> int:
    from ..services import webhooks

    with app_env(args.config_uri) as env:
        dbsession = env["request"].dbsession
        endpoint = None
        if args.webhook is not None:
            endpoint = webhooks.get_endpoint(dbsession, args.webhook)
            if endpoint is None:
                raise CommandError(f"no webhook {args.webhook} (see: extrapypi webhook list)")
        rows = [("ID", "WEBHOOK", "EVENT", "STATE", "ATTEMPTS", "LAST RESULT", "QUEUED")]
        for d in webhooks.recent_deliveries(dbsession, endpoint, args.limit):
            result = d.last_error or (d.last_status or "-")
            rows.append(
                (d.id, d.endpoint_id, d.event, d.state, d.attempts, result, _when(d.created))
            )
    _table(rows)
    return OK


def cmd_webhook_deliver(args: argparse.Namespace) -> int:
    from ..services import webhooks

    with app_env(args.config_uri) as env:
        registry = env["registry"]
        deliverer = webhooks.get_deliverer(registry)
    report = webhooks.deliver_due(deliverer.session_factory, deliverer.settings)
    print(
        f"Sent {report.delivered} deliveries; {report.retrying} to retry later, "
        f"{report.failed} given up."
    )
    return OK


# ---------------------------------------------------------------------------------------------
# prune


def cmd_prune(args: argparse.Namespace) -> int:
    from ..services import retention

    with app_env(args.config_uri) as env:
        request = env["request"]
        try:
            defaults = retention.get_retention_settings(request.registry)
            rules = retention.Rules(
                keep_last=defaults.keep_last if args.keep_last is None else args.keep_last,
                prerelease_days=(
                    defaults.prerelease_days
                    if args.prerelease_days is None
                    else args.prerelease_days
                ),
            )
            plan = retention.plan(request.dbsession, rules, packages=args.package or None)
        except retention.RetentionError as error:
            raise CommandError(str(error)) from None
        if not rules.active:
            print(
                "No default retention rule (extrapypi.retention.* or --keep-last/"
                "--prerelease-days): only packages with their own rule are pruned."
            )
        verb = "would delete" if args.dry_run else "deleting"
        for item in plan:
            print(f"{verb} {item.package} {item.version} ({item.reason}):")
            for filename, size in item.files:
                print(f"  {filename}  {size} bytes")
        if not args.dry_run and plan:
            retention.apply(
                request.dbsession,
                env["registry"]["extrapypi.storage"],
                request.tm.get(),
                plan,
                rules,
            )
        total = sum(item.bytes for item in plan)
        files = sum(len(item.files) for item in plan)
    summary = f"{_count(len(plan), 'release')}, {_count(files, 'file')}, {_count(total, 'byte')}"
    if args.dry_run:
        print(f"Dry run: {summary} would be freed; nothing deleted.")
    else:
        print(f"Deleted {summary}.")
    return OK


# ---------------------------------------------------------------------------------------------
# registration


def register(commands) -> None:
    """Add ``webhook`` and ``prune`` to the ``extrapypi`` sub-commands."""
    webhook = commands.add_parser(
        "webhook",
        help="manage webhook endpoints and deliveries",
        description="Configure where events (upload, yank, unyank, delete, status, new_user) "
        "are POSTed, look at the delivery log, and deliver due events (for cron).",
    )
    actions = webhook.add_subparsers(dest="webhook_command", metavar="ACTION", required=True)
    add = _command(
        actions,
        "add",
        cmd_webhook_add,
        "add an endpoint; prints its signing secret once",
        "Add an endpoint: every package (and the user events) unless --package is given.",
    )
    add.add_argument("url", metavar="URL", help="http:// or https:// (redirects not followed)")
    add.add_argument("--package", metavar="NAME", help="only events about this package")
    add.add_argument(
        "--events",
        metavar="LIST",
        help="comma-separated events (default: all): upload,yank,unyank,delete,status,new_user",
    )
    _command(actions, "list", cmd_webhook_list, "list endpoints")
    remove = _command(
        actions, "remove", cmd_webhook_remove, "remove an endpoint and its queued deliveries"
    )
    remove.add_argument("id", metavar="ID", type=int)
    deliveries = _command(
        actions, "deliveries", cmd_webhook_deliveries, "show the delivery log, newest first"
    )
    deliveries.add_argument("--webhook", metavar="ID", type=int, help="only this endpoint")
    deliveries.add_argument("--limit", type=int, default=50, help="how many to show (default: 50)")
    _command(
        actions,
        "deliver",
        cmd_webhook_deliver,
        "send the due deliveries now (for cron; the app's own thread does it too)",
    )

    prune = _command(
        commands,
        "prune",
        cmd_prune,
        "delete old releases by the retention rules",
        "Delete releases by the retention rules: keep the newest --keep-last releases, delete "
        "pre-/dev releases older than --prerelease-days. Never the newest final release, never "
        "a release with a file younger than a day; per-package rules set in the dashboard win. "
        "Deleted filenames can never be uploaded again.",
    )
    prune.add_argument(
        "--dry-run", action="store_true", help="list what would go and the bytes freed, only"
    )
    prune.add_argument(
        "--keep-last",
        type=int,
        metavar="N",
        help="keep the N newest releases (default: extrapypi.retention.keep_last; 0: all)",
    )
    prune.add_argument(
        "--prerelease-days",
        type=int,
        metavar="D",
        help="delete pre-/dev releases older than D days "
        "(default: extrapypi.retention.prerelease_days; 0: never)",
    )
    prune.add_argument(
        "--package", action="append", metavar="NAME", help="only this package (repeatable)"
    )
