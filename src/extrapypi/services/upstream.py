"""The optional upstream index (e.g. PyPI): settings, the HTTP client, and its project pages.

The resolution rule: a name hosted here, reserved (a namespace, the block list, an admin's block)
or not allowed is never resolved upstream; any other name not hosted here is the upstream's.
With no ``extrapypi.upstream.url`` nothing in this module runs and no request ever leaves.

Pages are kept in the database (``UpstreamPage``) as PEP 691 JSON with absolute file URLs, for
``extrapypi.upstream.ttl`` seconds, then revalidated with ``If-None-Match``/``If-Modified-Since``;
when the upstream fails, the cached page is served stale (and said so). Writes to the cache use
sessions of their own, never the request's transaction.
"""

import base64
import fnmatch
import json
import logging
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from typing import NamedTuple
from urllib.parse import quote, urljoin, urlsplit

from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    parse_sdist_filename,
    parse_wheel_filename,
)
from pyramid.settings import aslist
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from ..lifecycle import on_close
from ..models import Package, UpstreamPage, UpstreamRule
from ..models.meta import utcnow
from .names import InvalidName, normalize_name
from .namespaces import matching

log = logging.getLogger(__name__)

REGISTRY_KEY = "extrapypi.upstream"
STATUS_HEADER = "X-Extrapypi-Upstream"
JSON_TYPE = "application/vnd.pypi.simple.v1+json"
ACCEPT = f"{JSON_TYPE}, application/vnd.pypi.simple.v1+html;q=0.2, text/html;q=0.1"
USER_AGENT = "extrapypi (upstream proxy)"
#: Storage keys of cached upstream files: a directory no project name can have (names are
#: letters, digits and hyphens), so they never meet an uploaded file's key.
KEY_PREFIX = "~upstream~"
BLOCK = "block"
COOLDOWN_EXEMPT = "cooldown-exempt"
RULE_KINDS = (BLOCK, COOLDOWN_EXEMPT)
#: Largest upstream page accepted (PyPI's biggest project pages are a few MiB of JSON).
MAX_PAGE_BYTES = 64 * 1024 * 1024

_DURATION = re.compile(r"^\s*(\d+)\s*([smhdw]?)\s*$", re.IGNORECASE)
_DURATION_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


class UpstreamConfigurationError(ValueError):
    """An ``extrapypi.upstream.*`` setting is wrong; the message says which and how."""


class UpstreamUnavailable(Exception):
    """The upstream could not be asked (refused, timed out, answered garbage or 5xx)."""

    def __init__(self, message: str, timed_out: bool = False):
        super().__init__(message)
        self.timed_out = timed_out


class NotUpstream(Exception):
    """This name or file is not resolved upstream; the message says why (for a 404)."""


def parse_duration(value: str | int, setting: str = "duration") -> int:
    """``"7d"``, ``"12h"``, ``"90"`` (seconds) → seconds."""
    match = _DURATION.match(str(value))
    if not match:
        raise UpstreamConfigurationError(
            f"{setting}: not a duration: {value!r} (use e.g. 90s, 10m, 12h, 7d, 2w)"
        )
    return int(match.group(1)) * _DURATION_UNITS[match.group(2).lower()]


@dataclass(frozen=True)
class UpstreamSettings:
    url: str
    username: str = ""
    password: str = field(default="", repr=False)
    connect_timeout: float = 5.0
    read_timeout: float = 30.0
    ttl: int = 600
    cooldown: int = 0
    #: What the cooldown does with a file whose upload-time the upstream does not give.
    cooldown_without_upload_time: str = "hide"
    allow: tuple[str, ...] = ()
    block: tuple[str, ...] = ()
    #: Hosts (``host[:port]``) files may be fetched from: the upstream's own and these.
    file_hosts: tuple[str, ...] = ()
    #: Background fetches of a file whose ``.metadata`` was asked for (0: none).
    prefetch: int = 4

    @property
    def host(self) -> str:
        return urlsplit(self.url).netloc

    def safe_url(self) -> str:
        """The URL for logs and pages: never any credentials."""
        parts = urlsplit(self.url)
        return parts._replace(
            netloc=parts.hostname + (f":{parts.port}" if parts.port else "")
        ).geturl()


def _patterns(value: str, setting: str) -> tuple[str, ...]:
    """Names, normalized; ``prefix-*`` patterns keep their star (and the separator before it)."""
    patterns = []
    for item in aslist(value or ""):
        star = item.endswith("*")
        base = item[:-1] if star else item
        separator = "-" if star and base[-1:] in ("-", "_", ".") else ""
        try:
            name = normalize_name(base.rstrip("-_.")) if base.rstrip("-_.") else ""
        except InvalidName:
            raise UpstreamConfigurationError(f"{setting}: not a project name: {item!r}") from None
        patterns.append(name + separator + ("*" if star else ""))
    return tuple(patterns)


def parse_upstream_settings(settings: dict) -> UpstreamSettings | None:
    """The ``extrapypi.upstream.*`` settings; None when no upstream is configured."""
    url = str(settings.get("extrapypi.upstream.url", "")).strip()
    if not url:
        return None
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UpstreamConfigurationError(
            f"extrapypi.upstream.url must be an http(s) URL of a simple index, not {url!r}"
        )
    if parts.username or parts.password:
        raise UpstreamConfigurationError(
            "extrapypi.upstream.url must not hold credentials: set extrapypi.upstream.username "
            "and extrapypi.upstream.password (or EXTRAPYPI_UPSTREAM_PASSWORD)"
        )
    import os

    without_upload_time = str(
        settings.get("extrapypi.upstream.cooldown_without_upload_time", "hide")
    ).strip()
    if without_upload_time not in ("hide", "show"):
        raise UpstreamConfigurationError(
            "extrapypi.upstream.cooldown_without_upload_time must be hide or show, "
            f"not {without_upload_time!r}"
        )
    try:
        prefetch = int(settings.get("extrapypi.upstream.prefetch", 4))
    except ValueError:
        prefetch = -1
    if not 0 <= prefetch <= 64:
        raise UpstreamConfigurationError(
            "extrapypi.upstream.prefetch is how many files may be fetched in the background "
            "at once, 0 to 64 (0: none)"
        )
    try:
        connect_timeout = float(settings.get("extrapypi.upstream.connect_timeout", 5))
        read_timeout = float(settings.get("extrapypi.upstream.read_timeout", 30))
    except ValueError:
        raise UpstreamConfigurationError(
            "extrapypi.upstream.connect_timeout and read_timeout are seconds (e.g. 5 or 2.5)"
        ) from None
    return UpstreamSettings(
        url=url.rstrip("/") + "/",
        username=str(settings.get("extrapypi.upstream.username", "")).strip(),
        password=os.environ.get("EXTRAPYPI_UPSTREAM_PASSWORD")
        or str(settings.get("extrapypi.upstream.password", "")).strip(),
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        ttl=parse_duration(settings.get("extrapypi.upstream.ttl", "10m"), "extrapypi.upstream.ttl"),
        cooldown=parse_duration(
            settings.get("extrapypi.upstream.cooldown", "0"), "extrapypi.upstream.cooldown"
        ),
        cooldown_without_upload_time=without_upload_time,
        allow=_patterns(settings.get("extrapypi.upstream.allow", ""), "extrapypi.upstream.allow"),
        block=_patterns(settings.get("extrapypi.upstream.block", ""), "extrapypi.upstream.block"),
        file_hosts=tuple(aslist(settings.get("extrapypi.upstream.file_hosts", ""))),
        prefetch=prefetch,
    )


def _matches(patterns: tuple[str, ...], normalized: str) -> bool:
    return any(fnmatch.fnmatchcase(normalized, pattern) for pattern in patterns)


# --- the HTTP client -------------------------------------------------------------------------


@dataclass
class PageAnswer:
    status: int  # 200, 304 or 404
    data: dict | None = None
    etag: str = ""
    last_modified: str = ""


class _LinkParser(HTMLParser):
    """The anchors of a PEP 503 page, with their ``data-*`` attributes."""

    def __init__(self):
        super().__init__()
        self.links: list[tuple[dict, str]] = []
        self._current: dict | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag == "a":
            self._current, self._text = dict(attrs), []

    def handle_data(self, data):
        if self._current is not None:
            self._text.append(data)

    def handle_endtag(self, tag):
        if tag == "a" and self._current is not None:
            self.links.append((self._current, "".join(self._text).strip()))
            self._current = None


def _hash_fragment(value: str | None) -> dict | bool:
    """``sha256=<hex>`` (a ``data-core-metadata`` value or URL fragment) → ``{"sha256": hex}``."""
    if not value:
        return False
    name, _, digest = value.partition("=")
    return {name: digest} if digest else True


def parse_html_page(body: bytes, page_url: str) -> dict:
    """A PEP 503 page as the PEP 691 dict it stands for."""
    parser = _LinkParser()
    parser.feed(body.decode("utf-8", "replace"))
    files = []
    for attrs, text in parser.links:
        href = attrs.get("href")
        if not href:
            continue
        url, _, fragment = href.partition("#")
        hashes = _hash_fragment(fragment)
        metadata = _hash_fragment(
            attrs.get("data-core-metadata") or attrs.get("data-dist-info-metadata")
        )
        yanked = attrs.get("data-yanked")
        files.append(
            {
                "filename": text or url.rsplit("/", 1)[-1],
                "url": urljoin(page_url, url),
                "hashes": hashes if isinstance(hashes, dict) else {},
                "requires-python": attrs.get("data-requires-python"),
                "yanked": (yanked or True) if yanked is not None else False,
                "core-metadata": metadata,
            }
        )
    return {"files": files}


def parse_json_page(body: bytes, page_url: str) -> dict:
    data = json.loads(body)
    if not isinstance(data, dict) or not isinstance(data.get("files"), list):
        raise ValueError("not a PEP 691 project page")
    files = []
    for entry in data["files"]:
        if not isinstance(entry, dict) or "filename" not in entry or "url" not in entry:
            continue
        metadata = entry.get("core-metadata", entry.get("dist-info-metadata", False))
        files.append(
            {
                "filename": str(entry["filename"]),
                "url": urljoin(page_url, str(entry["url"])),
                "hashes": entry.get("hashes") if isinstance(entry.get("hashes"), dict) else {},
                "requires-python": entry.get("requires-python"),
                "yanked": entry.get("yanked", False),
                "upload-time": entry.get("upload-time"),
                "size": entry.get("size"),
                "core-metadata": metadata,
            }
        )
    page = {"files": files}
    if isinstance(data.get("versions"), list):
        page["versions"] = [str(v) for v in data["versions"]]
    return page


class UpstreamClient:
    """One connection pool for all threads; explicit timeouts; no retries (a failure is
    answered from the cache at once rather than after a retry loop)."""

    def __init__(self, config: UpstreamSettings):
        import urllib3  # only an index with an upstream needs it

        self.config = config
        self.pool = urllib3.PoolManager(
            num_pools=8,
            maxsize=32,
            retries=False,
            timeout=urllib3.Timeout(connect=config.connect_timeout, read=config.read_timeout),
        )
        self.allowed_hosts = {config.host, *config.file_hosts}

    def _headers(self, url: str, **extra) -> dict:
        headers = {"User-Agent": USER_AGENT, **extra}
        if self.config.username and urlsplit(url).netloc == self.config.host:
            token = f"{self.config.username}:{self.config.password}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(token).decode()
        return headers

    def allowed(self, url: str) -> bool:
        parts = urlsplit(url)
        return parts.scheme in ("http", "https") and parts.netloc in self.allowed_hosts

    def _request(self, url: str, headers: dict, preload: bool):
        import urllib3

        try:
            return self.pool.request(
                "GET", url, headers=headers, preload_content=preload, redirect=False
            )
        except urllib3.exceptions.TimeoutError:
            raise UpstreamUnavailable(f"{_safe(url)} timed out", timed_out=True) from None
        except urllib3.exceptions.HTTPError as error:
            reason = type(getattr(error, "reason", None) or error).__name__
            raise UpstreamUnavailable(f"{_safe(url)} could not be reached ({reason})") from None

    def project_page(self, normalized: str, etag: str = "", last_modified: str = "") -> PageAnswer:
        url = f"{self.config.url}{quote(normalized)}/"
        conditional = {}
        if etag:
            conditional["If-None-Match"] = etag
        if last_modified:
            conditional["If-Modified-Since"] = last_modified
        answer = self._request(url, self._headers(url, Accept=ACCEPT, **conditional), True)
        if answer.status == 304:
            return PageAnswer(304, etag=etag, last_modified=last_modified)
        if answer.status in (404, 410):
            return PageAnswer(404)
        if answer.status != 200:
            raise UpstreamUnavailable(f"{_safe(url)} answered {answer.status}")
        body = answer.data
        if len(body) > MAX_PAGE_BYTES:
            raise UpstreamUnavailable(f"{_safe(url)} answered a page larger than allowed")
        content_type = answer.headers.get("Content-Type", "").split(";")[0].strip()
        try:
            if content_type.endswith("+json") or content_type == "application/json":
                data = parse_json_page(body, url)
            else:
                data = parse_html_page(body, url)
        except ValueError as error:
            raise UpstreamUnavailable(
                f"{_safe(url)} answered an unreadable page ({error})"
            ) from None
        return PageAnswer(
            200,
            data,
            answer.headers.get("ETag", ""),
            answer.headers.get("Last-Modified", ""),
        )

    def open_file(self, url: str):
        """The upstream's streaming response for a file (the caller reads and releases it)."""
        if not self.allowed(url):
            raise UpstreamUnavailable(
                f"the upstream links this file to {urlsplit(url).netloc}, which is not an "
                "allowed file host (extrapypi.upstream.file_hosts)"
            )
        answer = self._request(url, self._headers(url), False)
        if answer.status != 200:
            answer.drain_conn()  # a connection with an unread body must not go back to the pool
            answer.release_conn()
            raise UpstreamUnavailable(f"{_safe(url)} answered {answer.status}")
        return answer


def _safe(url: str) -> str:
    parts = urlsplit(url)
    if parts.username or parts.password:
        parts = parts._replace(netloc=parts.hostname or "")
    return parts._replace(query="", fragment="").geturl()


# --- single flight ---------------------------------------------------------------------------


class SingleFlight:
    """One lock per key, alive only while someone holds or waits for it: concurrent requests
    for one uncached page or file wait for the first one instead of asking the upstream too."""

    def __init__(self):
        self._guard = threading.Lock()
        self._locks: dict[object, list] = {}  # key -> [lock, users]

    @contextmanager
    def hold(self, key) -> Iterator[None]:
        with self._guard:
            entry = self._locks.setdefault(key, [threading.Lock(), 0])
            entry[1] += 1
        try:
            with entry[0]:
                yield
        finally:
            self._leave(key, entry)

    def wait(self, key) -> None:
        """Wait for the key's flight under way, if any (its commit is seen before it ends)."""
        with self._guard:
            busy = key in self._locks
        if busy:
            with self.hold(key):
                pass

    def claim(self, key) -> Callable[[], None] | None:
        """Take the key's flight now if nobody has it (None if somebody does); the returned
        function ends it, from any thread: a background job started here keeps the flight,
        so a request arriving before the job runs waits for it instead of asking again."""
        with self._guard:
            entry = self._locks.setdefault(key, [threading.Lock(), 0])
            entry[1] += 1
            taken = entry[0].acquire(blocking=False)
        if not taken:
            self._leave(key, entry)
            return None

        def release() -> None:
            entry[0].release()
            self._leave(key, entry)

        return release

    def _leave(self, key, entry: list) -> None:
        with self._guard:
            entry[1] -= 1
            if entry[1] == 0:
                del self._locks[key]


class Memo:
    """Answers kept for a few seconds in this process. Keys that depend on the database carry
    the index serial (every change to names, namespaces or upstream rules bumps it), so the
    time bound only delays what is about time: the cooldown and the upstream's own changes."""

    def __init__(self, seconds: float = 30.0, max_entries: int = 4096):
        self.seconds = seconds
        self.max_entries = max_entries
        self._entries: dict = {}
        self._lock = threading.Lock()

    def get(self, key):
        entry = self._entries.get(key)
        if entry is None or entry[0] < time.monotonic():
            return None
        return entry[1]

    def put(self, key, value, seconds: float | None = None) -> None:
        expires = time.monotonic() + (self.seconds if seconds is None else seconds)
        with self._lock:
            if len(self._entries) >= self.max_entries:
                self._entries.clear()
            self._entries[key] = (expires, value)

    def drop(self, key) -> None:
        with self._lock:
            self._entries.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


class Background:
    """A few worker threads for jobs nobody waits on (prefetches), bounded: at most ``workers``
    run at once and ``workers * 8`` wait; a job offered beyond that, or after ``close``, is
    dropped (the request that would have benefited simply fetches for itself)."""

    def __init__(self, workers: int):
        self.workers = workers
        self._condition = threading.Condition()
        self._jobs: list[Callable[[], None]] = []
        self._threads: list[threading.Thread] = []
        self._busy = 0
        self._closed = False

    def submit(self, job: Callable[[], None]) -> bool:
        with self._condition:
            if self._closed or len(self._jobs) >= self.workers * 8:
                return False
            self._jobs.append(job)
            if len(self._threads) < self.workers and self._busy + len(self._jobs) > len(
                self._threads
            ):
                thread = threading.Thread(
                    target=self._work, name="extrapypi-upstream-prefetch", daemon=True
                )
                self._threads.append(thread)
                thread.start()
            self._condition.notify()
            return True

    def _work(self) -> None:
        while True:
            with self._condition:
                while not self._jobs and not self._closed:
                    self._condition.wait()
                if not self._jobs:
                    return
                job = self._jobs.pop(0)
                self._busy += 1
            try:
                job()
            except Exception:
                log.exception("a background upstream job failed")
            finally:
                with self._condition:
                    self._busy -= 1
                    self._condition.notify_all()

    def wait_idle(self, timeout: float = 30.0) -> bool:
        """Wait until no job runs or waits (tests, shutdown); False if it took too long."""
        deadline = time.monotonic() + timeout
        with self._condition:
            while self._jobs or self._busy:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._condition.wait(left)
            return True

    def close(self, timeout: float = 5.0) -> None:
        """No new jobs; waiting ones are dropped; running ones are given ``timeout`` to end."""
        with self._condition:
            self._closed = True
            dropped, self._jobs = self._jobs, []
            self._condition.notify_all()
            threads = list(self._threads)
        for job in dropped:
            cancel = getattr(job, "cancel", None)
            if cancel is not None:
                cancel()
        for thread in threads:
            if thread is not threading.current_thread():
                thread.join(timeout)


@dataclass
class Upstream:
    """What the app keeps on its registry when an upstream is configured."""

    config: UpstreamSettings
    client: UpstreamClient
    session_factory: sessionmaker
    flights: SingleFlight = field(default_factory=SingleFlight)
    #: (serial, name) -> (why not upstream or None, rules)
    resolutions: Memo = field(default_factory=Memo)
    #: (serial, name, media type) -> (RenderedPage, stale)
    pages: Memo = field(default_factory=Memo)
    #: (name, filename) -> CachedFile: stored files never change
    files: Memo = field(default_factory=lambda: Memo(60.0))
    background: Background | None = None

    def __post_init__(self) -> None:
        if self.background is None:
            self.background = Background(self.config.prefetch)

    def close(self) -> None:
        """Stop the background work (an app being shut down or its engine disposed)."""
        self.background.close()

    def clear_memos(self) -> None:
        for memo in (self.resolutions, self.pages, self.files):
            memo.clear()

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session of its own, committed here: cache rows are not the request's business."""
        session = self.session_factory()
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()


def get_upstream(registry) -> Upstream | None:
    return registry.get(REGISTRY_KEY)


def includeme(config) -> None:
    upstream_config = parse_upstream_settings(config.get_settings())
    if upstream_config is None:
        config.registry[REGISTRY_KEY] = None
        return
    upstream = Upstream(
        upstream_config,
        UpstreamClient(upstream_config),
        config.registry["dbsession_factory"],
    )
    config.registry[REGISTRY_KEY] = upstream
    on_close(config.registry, upstream.close)


# --- the resolution rule ---------------------------------------------------------------------


class Rule(NamedTuple):
    kind: str
    version: str


def rules_for(dbsession: Session, normalized: str) -> list[Rule]:
    rows = dbsession.execute(
        select(UpstreamRule.kind, UpstreamRule.version).where(
            UpstreamRule.normalized_name == normalized
        )
    )
    return [Rule(kind, version) for kind, version in rows]


def resolve(
    upstream: "Upstream", dbsession: Session, normalized: str, serial: int | None = None
) -> list[Rule]:
    """The admins' rules for a name the upstream may serve; NotUpstream when it may not."""
    key = (serial, normalized)
    found = upstream.resolutions.get(key) if serial is not None else None
    if found is None:
        rules = rules_for(dbsession, normalized)
        found = (why_not_upstream(dbsession, upstream.config, normalized, rules), rules)
        if serial is not None:
            upstream.resolutions.put(key, found)
    reason, rules = found
    if reason is not None:
        raise NotUpstream(reason)
    return rules


def why_not_upstream(
    dbsession: Session, config: UpstreamSettings, normalized: str, rules: list[Rule]
) -> str | None:
    """Why this name is never resolved upstream (a 404's reason), or None when it may be."""
    if len(normalized) > 200:
        return "no project name is that long"
    hosted = dbsession.scalar(select(Package.id).where(Package.normalized_name == normalized))
    if hosted is not None:
        return f"{normalized} is hosted here: the upstream is never asked for it"
    if config.allow and not _matches(config.allow, normalized):
        return f"{normalized} is not in the upstream allow list"
    if _matches(config.block, normalized):
        return f"{normalized} is in the upstream block list"
    if matching(dbsession, normalized):
        return f"{normalized} is in a reserved namespace: the upstream is never asked for it"
    if any(rule.kind == BLOCK and not rule.version for rule in rules):
        return f"an administrator blocked {normalized} from the upstream"
    return None


def file_version(filename: str) -> str | None:
    """The canonical version a distribution filename carries; None when it cannot be read."""
    try:
        if filename.endswith(".whl"):
            return str(parse_wheel_filename(filename)[1])
        return str(parse_sdist_filename(filename)[1])
    except (InvalidWheelFilename, InvalidSdistFilename, ValueError):
        return None


def canonical(version: str) -> str:
    from .names import canonical_version

    try:
        return canonical_version(version)
    except ValueError:
        return version


def _upload_time(value) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def hidden_reason(
    entry: dict, config: UpstreamSettings, rules: list[Rule], now: datetime
) -> str | None:
    """Why one upstream file is not offered here (None: it is)."""
    if len(entry["filename"]) > 230 or "/" in entry["filename"]:
        return "its filename is not one this index can store"
    sha256 = entry["hashes"].get("sha256") if isinstance(entry["hashes"], dict) else None
    if not isinstance(sha256, str) or not re.fullmatch(r"[0-9a-f]{64}", sha256):
        return "the upstream gives no sha256 for it"
    version = file_version(entry["filename"])
    blocked = {canonical(rule.version) for rule in rules if rule.kind == BLOCK and rule.version}
    if version is not None and canonical(version) in blocked:
        return f"an administrator blocked version {version}"
    if config.cooldown and not any(rule.kind == COOLDOWN_EXEMPT for rule in rules):
        uploaded = _upload_time(entry.get("upload-time"))
        if uploaded is None:
            if config.cooldown_without_upload_time == "hide":
                return "it has no upload time and the cooldown hides such files"
        elif now - uploaded < timedelta(seconds=config.cooldown):
            return "it is younger than the cooldown"
    return None


# --- pages -----------------------------------------------------------------------------------


@dataclass
class ProjectPage:
    normalized_name: str
    data: dict
    stale: bool = False
    rules: list = field(default_factory=list)


def _store_page(upstream: Upstream, normalized: str, answer: PageAnswer) -> None:
    for _ in range(2):
        try:
            with upstream.session() as session:
                row = session.scalars(
                    select(UpstreamPage).where(UpstreamPage.normalized_name == normalized)
                ).one_or_none()
                if row is None:
                    row = UpstreamPage(normalized_name=normalized)
                    session.add(row)
                if answer.data is not None:
                    row.data = json.dumps(answer.data, separators=(",", ":"))
                row.etag = answer.etag[:255]
                row.last_modified = answer.last_modified[:64]
                row.checked = utcnow()
            return
        except IntegrityError:
            continue  # another server inserted it first: update theirs


def _cached_page(session: Session, normalized: str) -> UpstreamPage | None:
    return session.scalars(
        select(UpstreamPage).where(UpstreamPage.normalized_name == normalized)
    ).one_or_none()


def fetch_project(
    upstream: Upstream, dbsession: Session, normalized: str, serial: int | None = None
) -> ProjectPage:
    """The upstream's page for a name not hosted here: cached, revalidated or fetched.

    Raises NotUpstream (a 404) or UpstreamUnavailable (nothing cached to fall back to).
    """
    rules = resolve(upstream, dbsession, normalized, serial)
    ttl = timedelta(seconds=upstream.config.ttl)
    row = _cached_page(dbsession, normalized)
    if row is not None and utcnow() - row.checked < ttl:
        return ProjectPage(normalized, json.loads(row.data), rules=rules)
    with upstream.flights.hold(("page", normalized)):
        with upstream.session() as session:  # a fresh read: another thread may have fetched it
            row = _cached_page(session, normalized)
            if row is not None and utcnow() - row.checked < ttl:
                return ProjectPage(normalized, json.loads(row.data), rules=rules)
            cached = (row.data, row.etag, row.last_modified, row.checked) if row else None
        try:
            answer = upstream.client.project_page(
                normalized, *((cached[1], cached[2]) if cached else ())
            )
        except UpstreamUnavailable as error:
            if cached is None:
                raise
            log.warning(
                "upstream %s unavailable for %s (%s): serving the page cached at %s",
                upstream.config.safe_url(),
                normalized,
                error,
                cached[3].isoformat(timespec="seconds"),
            )
            return ProjectPage(normalized, json.loads(cached[0]), stale=True, rules=rules)
        if answer.status == 404:
            if cached is not None:
                with upstream.session() as session:
                    session.execute(
                        delete(UpstreamPage).where(UpstreamPage.normalized_name == normalized)
                    )
            raise NotUpstream(f"{normalized} is neither hosted here nor on the upstream")
        _store_page(upstream, normalized, answer)
        data = answer.data if answer.status == 200 else json.loads(cached[0])
        return ProjectPage(normalized, data, rules=rules)


def visible_files(page: ProjectPage, config: UpstreamSettings) -> list[dict]:
    """The upstream files offered here: hashed, not blocked, past the cooldown."""
    now = utcnow()
    return [f for f in page.data["files"] if hidden_reason(f, config, page.rules, now) is None]


def local_url(normalized: str, filename: str) -> str:
    """A cached file's link, relative to ``/simple/<name>/``: this server, never the upstream."""
    return f"../../upstream/{normalized}/{quote(filename)}"


def page_data(page: ProjectPage, config: UpstreamSettings, api_version: str) -> dict:
    """The PEP 691 dict the index renders (JSON and HTML), links pointing at this server."""
    files = []
    versions_with_files: set[str] = set()
    for entry in visible_files(page, config):
        metadata = entry.get("core-metadata")
        metadata = (
            {"sha256": metadata["sha256"]}
            if isinstance(metadata, dict) and isinstance(metadata.get("sha256"), str)
            else False
        )
        yanked = entry.get("yanked", False)
        file = {
            "filename": entry["filename"],
            "url": local_url(page.normalized_name, entry["filename"]),
            "hashes": {"sha256": entry["hashes"]["sha256"]},
            "requires-python": entry.get("requires-python") or None,
            "yanked": yanked if isinstance(yanked, str) and yanked else bool(yanked),
            "core-metadata": metadata,
            "dist-info-metadata": metadata,
        }
        if isinstance(entry.get("size"), int):
            file["size"] = entry["size"]
        if entry.get("upload-time"):
            file["upload-time"] = entry["upload-time"]
        files.append(file)
        version = file_version(entry["filename"])
        if version:
            versions_with_files.add(canonical(version))
    blocked = {canonical(r.version) for r in page.rules if r.kind == BLOCK and r.version}
    upstream_versions = page.data.get("versions")
    if upstream_versions is None:
        upstream_versions = sorted(versions_with_files)
    all_versions = {
        canonical(v) for f in page.data["files"] if (v := file_version(f["filename"])) is not None
    }
    versions = [
        v
        for v in upstream_versions
        if canonical(v) not in blocked
        and (canonical(v) in versions_with_files or canonical(v) not in all_versions)
    ]
    return {
        "meta": {"api-version": api_version},
        "name": page.normalized_name,
        "project-status": {"status": "active"},
        "versions": versions,
        "files": files,
    }


def rendered_page(
    upstream: Upstream, dbsession: Session, serial: int, normalized: str, media_type: str
):
    """(RenderedPage, stale) of an upstream project page, kept for a few seconds per serial
    (never past the page's ttl), as local pages are kept in the page cache."""
    from .index import API_VERSION, RENDERERS, RenderedPage

    key = (serial, normalized, media_type)
    found = upstream.pages.get(key)
    if found is not None:
        return found
    page = fetch_project(upstream, dbsession, normalized, serial)
    data = page_data(page, upstream.config, API_VERSION)
    found = (RenderedPage.build(RENDERERS[media_type](data), media_type), page.stale)
    upstream.pages.put(key, found, min(upstream.pages.seconds, upstream.config.ttl))
    return found
