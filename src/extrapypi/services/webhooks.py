"""Webhooks: events queued in the database with the change, POSTed after commit, signed, retried.

Why a queue in the database: an event row is written in the transaction that makes the change,
so a rollback sends nothing and a crash loses nothing; a receiver that is down gets the event
later (exponential backoff). Delivery claims rows with ``SELECT ... FOR UPDATE SKIP LOCKED`` on
PostgreSQL/MariaDB (one UPDATE on SQLite, whose single writer serializes the claim) and moves
``next_attempt`` past the request timeout before sending, so several app processes never send
one event twice. A background thread per app process (started by its first request) and
``extrapypi webhook deliver`` (for cron) run the same ``deliver_due``.
"""

import hashlib
import hmac
import json
import logging
import random
import secrets
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from pyramid.events import NewRequest
from sqlalchemy import select, update
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from ..lifecycle import on_close, one_line
from ..models import JournalEntry, WebhookDelivery, WebhookEndpoint
from ..models.meta import utcnow
from .names import normalize_name

log = logging.getLogger(__name__)

#: Journal action → event name. Extensible: a new journal action only needs a line here
#: (or ``register_event``) to be sent to the endpoints that subscribe to its event.
EVENT_FOR_ACTION: dict[str, str] = {
    "add file": "upload",
    "yank release": "yank",
    "unyank release": "unyank",
    "delete file": "delete",
    "delete release": "delete",
    "delete package": "delete",
    "change status": "status",
    "set status": "status",
    "create user": "new_user",
}
#: Events about no package: only endpoints for every package receive them.
USER_EVENTS = {"new_user"}
ALL = "*"
SIGNATURE_HEADER = "X-Extrapypi-Signature"


def register_event(action: str, event: str) -> None:
    """Send journal entries with ``action`` to the endpoints subscribed to ``event``."""
    EVENT_FOR_ACTION[action] = event


def event_names() -> list[str]:
    return sorted(set(EVENT_FOR_ACTION.values()))


class WebhookError(ValueError):
    """An endpoint that cannot be configured as asked; the message is for the admin."""


@dataclass(frozen=True)
class WebhookSettings:
    """``extrapypi.webhooks.*``: see docs/configuration.md."""

    timeout: float = 10.0
    max_attempts: int = 12
    backoff: float = 10.0
    backoff_max: float = 3600.0
    background: bool = True
    poll_interval: float = 5.0
    batch: int = 20

    @property
    def lease(self) -> timedelta:
        """How long a claimed row stays invisible to other workers: past any request timeout."""
        return timedelta(seconds=self.timeout * 2 + 30)

    def delay(self, attempts: int) -> timedelta:
        return timedelta(seconds=min(self.backoff * 2 ** max(attempts - 1, 0), self.backoff_max))


def parse_webhook_settings(settings: dict) -> WebhookSettings:
    from pyramid.settings import asbool

    from ..settings import ConfigurationError

    prefix = "extrapypi.webhooks."
    defaults = WebhookSettings()

    def number(name: str, kind=float):
        value = settings.get(prefix + name, getattr(defaults, name))
        try:
            parsed = kind(value)
        except (TypeError, ValueError):
            parsed = -1
        if parsed < 0 or (kind is int and parsed < 1):
            raise ConfigurationError(f"{prefix}{name}: {value!r} is not a positive number")
        return parsed

    return WebhookSettings(
        timeout=number("timeout"),
        max_attempts=number("max_attempts", int),
        backoff=number("backoff"),
        backoff_max=number("backoff_max"),
        background=asbool(settings.get(prefix + "background", defaults.background)),
        poll_interval=number("poll_interval"),
        batch=number("batch", int),
    )


# ---------------------------------------------------------------------------------------------
# endpoints


def validate_url(url: str) -> str:
    url = url.strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise WebhookError("The URL must start with http:// or https:// and name a host.")
    if parts.username or parts.password:
        raise WebhookError("Put no credentials in the URL: receivers check the signature.")
    if len(url) > 2048 or any(c.isspace() or ord(c) < 32 for c in url):
        raise WebhookError("The URL is too long or contains spaces or control characters.")
    return url


def loggable_url(url: str) -> str:
    """The endpoint as logs show it: scheme and host only (receivers such as Slack's put the
    secret in the path, and logs travel further than the database)."""
    parts = urlsplit(url)
    rest = "/…" if parts.path.strip("/") or parts.query else "/"
    return f"{parts.scheme}://{parts.netloc}{rest}"


def parse_events(events: str | list[str] | None) -> str:
    """``upload,yank`` or a list → the stored form; empty or ``*`` → every event."""
    if events is None:
        return ALL
    names = events.replace(",", " ").split() if isinstance(events, str) else list(events)
    names = [n.strip() for n in names if n.strip()]
    if not names or ALL in names:
        return ALL
    unknown = sorted(set(names) - set(event_names()))
    if unknown:
        raise WebhookError(
            f"Unknown event {', '.join(unknown)}: choose from {', '.join(event_names())}."
        )
    return " ".join(sorted(set(names)))


def create_endpoint(
    dbsession: Session, url: str, package_name: str = "", events=None
) -> WebhookEndpoint:
    """A new endpoint with a fresh secret (the caller shows it once)."""
    package_name = package_name.strip()
    if package_name:
        from .packages import get_package

        package = get_package(dbsession, package_name)
        if package is None:
            raise WebhookError(f"No package named {package_name!r}.")
        package_name = package.normalized_name
    endpoint = WebhookEndpoint(
        url=validate_url(url),
        secret=secrets.token_urlsafe(32),
        package_name=package_name,
        events=parse_events(events),
        is_active=True,
    )
    dbsession.add(endpoint)
    dbsession.flush()
    return endpoint


def list_endpoints(dbsession: Session) -> list[WebhookEndpoint]:
    return list(dbsession.scalars(select(WebhookEndpoint).order_by(WebhookEndpoint.id)))


def get_endpoint(dbsession: Session, endpoint_id) -> WebhookEndpoint | None:
    try:
        number = int(endpoint_id)
    except (TypeError, ValueError, OverflowError):
        return None
    if not 0 < number < 2**31:  # past an INTEGER column, PostgreSQL refuses the query itself
        return None
    return dbsession.get(WebhookEndpoint, number)


def remove_endpoint(dbsession: Session, endpoint: WebhookEndpoint) -> None:
    """Its queued and logged deliveries go with it (nothing more will be sent there)."""
    dbsession.delete(endpoint)
    dbsession.flush()


def recent_deliveries(
    dbsession: Session, endpoint: WebhookEndpoint | None = None, limit: int = 50
) -> list[WebhookDelivery]:
    query = select(WebhookDelivery).order_by(WebhookDelivery.id.desc()).limit(limit)
    if endpoint is not None:
        query = query.where(WebhookDelivery.endpoint_id == endpoint.id)
    return list(dbsession.scalars(query))


def subscribes(endpoint: WebhookEndpoint, event: str) -> bool:
    return endpoint.events == ALL or event in endpoint.events.split()


# ---------------------------------------------------------------------------------------------
# queueing (in the transaction that makes the change)


def payload_for(entry: JournalEntry, event: str) -> dict:
    payload = {
        "event": event,
        "action": entry.action,
        "package": entry.package_name,
        "version": entry.version,
        "filename": entry.filename,
        "detail": entry.detail,
        "actor": entry.username,
        "serial": entry.serial,
        "timestamp": utcnow().isoformat(),
    }
    if event in USER_EVENTS:
        payload["username"] = entry.detail.split(" (")[0]
    return payload


def queue_for_journal(dbsession: Session, entry: JournalEntry) -> int:
    """Queue the event a journal entry stands for, for every endpoint that wants it.

    Called by ``journal.record`` in the same transaction: the deliveries commit (or roll back)
    with the change. Returns how many were queued.
    """
    event = EVENT_FOR_ACTION.get(entry.action)
    if event is None:
        return 0
    scopes = [""]
    if entry.package_name and event not in USER_EVENTS:
        try:
            scopes.append(normalize_name(entry.package_name))
        except ValueError:
            pass
    with dbsession.no_autoflush:
        endpoints = dbsession.scalars(
            select(WebhookEndpoint)
            .where(WebhookEndpoint.is_active.is_(True), WebhookEndpoint.package_name.in_(scopes))
            .order_by(WebhookEndpoint.id)
        ).all()
    endpoints = [e for e in endpoints if subscribes(e, event)]
    if not endpoints:
        return 0
    body = json.dumps(payload_for(entry, event), sort_keys=True)
    now = utcnow()
    for endpoint in endpoints:
        dbsession.add(
            WebhookDelivery(
                endpoint_id=endpoint.id,
                event=event,
                payload=body,
                state="pending",
                next_attempt=now,
                attempts=0,
                claim="",
                last_error="",
                created=now,
            )
        )
    _wake_after_commit(dbsession)
    return len(endpoints)


def _wake_after_commit(dbsession: Session) -> None:
    """Nudge this process's delivery thread once the events are committed."""
    from ..models import TM_KEY

    manager = dbsession.info.get(TM_KEY)
    request = dbsession.info.get("request")
    deliverer = request.registry.get(REGISTRY_KEY) if request is not None else None
    if manager is None or deliverer is None:
        return
    manager.get().addAfterCommitHook(lambda success: success and deliverer.wake())


# ---------------------------------------------------------------------------------------------
# delivery


def sign(secret: str, body: bytes) -> str:
    """The signature header value: ``sha256=<hex HMAC-SHA-256 of the body>``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Outbound requests go only to the URL the admin configured: a 3xx is a failure."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)


@dataclass
class Claimed:
    id: int
    url: str
    secret: str
    event: str
    payload: str
    attempts: int


@dataclass
class DeliveryReport:
    delivered: int = 0
    retrying: int = 0
    failed: int = 0

    @property
    def attempted(self) -> int:
        return self.delivered + self.retrying + self.failed


def post(claimed: Claimed, timeout: float) -> tuple[int | None, str]:
    """POST one event; (HTTP status or None, error text or "")."""
    body = claimed.payload.encode()
    try:
        validate_url(claimed.url)
    except WebhookError as error:
        return None, str(error)
    request = urllib.request.Request(  # noqa: S310 - http(s) only, checked just above
        claimed.url,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            "User-Agent": "extrapypi-webhooks",
            "X-Extrapypi-Event": claimed.event,
            "X-Extrapypi-Delivery": str(claimed.id),
            SIGNATURE_HEADER: sign(claimed.secret, body),
        },
    )
    try:
        with _OPENER.open(request, timeout=timeout) as response:
            response.read(4096)
            status = response.status
    except urllib.error.HTTPError as error:
        error.close()
        reason = "redirect not followed" if 300 <= error.code < 400 else error.reason
        return error.code, f"HTTP {error.code} {reason}"[:512]
    except (OSError, ValueError) as error:  # refused, timed out, DNS, TLS
        return None, (str(getattr(error, "reason", "") or error) or type(error).__name__)[:512]
    if 200 <= status < 300:
        return status, ""
    return status, f"HTTP {status}"


#: Lock conflicts a database resolves by aborting one transaction: MySQL/MariaDB deadlock and
#: lock wait timeout, PostgreSQL deadlock and serialization failure. Safe to run again whole.
TRANSIENT_MYSQL_ERRORS = (1205, 1213)
TRANSIENT_SQLSTATES = ("40P01", "40001")


def _transient(error: DBAPIError) -> bool:
    orig = error.orig
    if getattr(orig, "sqlstate", None) in TRANSIENT_SQLSTATES:
        return True
    args = getattr(orig, "args", ())
    return bool(args) and args[0] in TRANSIENT_MYSQL_ERRORS


def _again_on_conflict(work, attempts: int = 5):
    """Run a short transaction again when the database aborted it for a lock conflict: two
    workers claiming at once can deadlock on MariaDB's gap locks even with SKIP LOCKED."""
    for attempt in range(attempts):
        try:
            return work()
        except DBAPIError as error:
            if attempt == attempts - 1 or not _transient(error):
                raise
            time.sleep(random.uniform(0.01, 0.05) * (attempt + 1))  # noqa: S311 - jitter only
    raise AssertionError("unreachable")


def claim_due(
    session_factory: sessionmaker, settings: WebhookSettings, now: datetime | None = None
) -> list[Claimed]:
    """Take up to ``batch`` due deliveries for this worker, in one short transaction."""
    return _again_on_conflict(lambda: _claim_due(session_factory, settings, now))


def _claim_due(
    session_factory: sessionmaker, settings: WebhookSettings, now: datetime | None
) -> list[Claimed]:
    now = now or utcnow()
    token = secrets.token_hex(16)
    due = (
        select(WebhookDelivery.id)
        .where(WebhookDelivery.state == "pending", WebhookDelivery.next_attempt <= now)
        .order_by(WebhookDelivery.id)
        .limit(settings.batch)
    )
    claim = {
        WebhookDelivery.claim: token,
        WebhookDelivery.next_attempt: now + settings.lease,
        WebhookDelivery.attempts: WebhookDelivery.attempts + 1,
    }
    with session_factory() as session, session.begin():
        if session.get_bind().dialect.name == "sqlite":
            # One statement: SQLite takes its single write lock for it, so the claim is atomic.
            session.execute(
                update(WebhookDelivery)
                .where(WebhookDelivery.id.in_(due.scalar_subquery()))
                .values(claim)
                .execution_options(synchronize_session=False)
            )
        else:
            ids = list(session.scalars(due.with_for_update(skip_locked=True)))
            if not ids:
                return []
            session.execute(
                update(WebhookDelivery)
                .where(WebhookDelivery.id.in_(ids))
                .values(claim)
                .execution_options(synchronize_session=False)
            )
        rows = session.execute(
            select(WebhookDelivery, WebhookEndpoint)
            .join(WebhookEndpoint)
            .where(WebhookDelivery.claim == token)
            .order_by(WebhookDelivery.id)
        ).all()
        return [
            Claimed(d.id, e.url, e.secret, d.event, d.payload, d.attempts) for d, e in rows if d
        ]


def _finish(
    session_factory: sessionmaker,
    settings: WebhookSettings,
    claimed: Claimed,
    status: int | None,
    error: str,
    report: DeliveryReport,
) -> None:
    now = utcnow()
    values: dict = {"last_status": status, "last_error": error[:512]}
    if not error:
        values.update(state="delivered", finished=now)
        report.delivered += 1
        log.info("webhook %s delivered to %s", claimed.id, loggable_url(claimed.url))
    elif claimed.attempts >= settings.max_attempts:
        values.update(state="failed", finished=now)
        report.failed += 1
        log.warning(
            "webhook %s to %s failed for good: %s", claimed.id, loggable_url(claimed.url), error
        )
    else:
        values["next_attempt"] = now + settings.delay(claimed.attempts)
        report.retrying += 1
        log.info(
            "webhook %s to %s failed (%s), will retry", claimed.id, loggable_url(claimed.url), error
        )

    def write() -> None:
        with session_factory() as session, session.begin():
            session.execute(
                update(WebhookDelivery)
                .where(WebhookDelivery.id == claimed.id)
                .values(values)
                .execution_options(synchronize_session=False)
            )

    _again_on_conflict(write)


def deliver_due(
    session_factory: sessionmaker, settings: WebhookSettings, max_rounds: int = 50
) -> DeliveryReport:
    """Send what is due now (at most ``max_rounds`` batches); the rest waits for the next run."""
    report = DeliveryReport()
    for _ in range(max_rounds):
        batch = claim_due(session_factory, settings)
        for claimed in batch:
            status, error = post(claimed, settings.timeout)
            _finish(session_factory, settings, claimed, status, error, report)
        if len(batch) < settings.batch:
            break
    return report


class Deliverer:
    """The delivery thread of one app process: wakes on commit, polls for retries."""

    def __init__(self, session_factory: sessionmaker, settings: WebhookSettings):
        self.session_factory = session_factory
        self.settings = settings
        self._wakeup = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stopping = False

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        if self.running or not self.settings.background:
            return
        with self._lock:
            if not self.running:
                self._stopping = False
                self._thread = threading.Thread(
                    target=self._run, name="extrapypi-webhooks", daemon=True
                )
                self._thread.start()

    def wake(self) -> None:
        self._wakeup.set()

    def stop(self, timeout: float = 5) -> None:
        self._stopping = True
        self._wakeup.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stopping:
            try:
                deliver_due(self.session_factory, self.settings)
            except SQLAlchemyError as error:  # the database is away: try again at the next poll
                log.warning("webhook delivery failed: %s", one_line(error))
            except Exception:
                log.exception("webhook delivery failed")
            self._wakeup.wait(self.settings.poll_interval)
            self._wakeup.clear()


REGISTRY_KEY = "extrapypi.webhooks"


def get_deliverer(registry) -> Deliverer:
    return registry[REGISTRY_KEY]


def _start_on_first_request(event) -> None:
    deliverer = event.request.registry.get(REGISTRY_KEY)
    if deliverer is not None and deliverer._thread is None:
        deliverer.start()


def includeme(config) -> None:
    """A deliverer per process; its thread starts with the first request (never in the CLI)."""
    settings = parse_webhook_settings(config.get_settings())
    deliverer = Deliverer(config.registry["dbsession_factory"], settings)
    config.registry[REGISTRY_KEY] = deliverer
    on_close(config.registry, deliverer.stop)
    if settings.background:
        config.add_subscriber(_start_on_first_request, NewRequest)
