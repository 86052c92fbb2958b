"""Prometheus metrics, and per-file download counts kept in the database in batches.

Metrics are ``prometheus_client`` objects of this module. Under gunicorn (several worker
processes) set ``PROMETHEUS_MULTIPROC_DIR`` to an empty directory before the server starts: each
worker then writes its values there and ``/metrics`` adds them up (``MultiProcessCollector``).

Download counts: a write per download would put a database transaction on the hottest path, so
each process adds downloads up in memory and writes them in one short transaction of its own
every ``extrapypi.downloads.flush_count`` downloads or ``flush_seconds`` seconds (checked at
each download, and at exit). A crash loses at most the counts not yet written.
"""

import ipaddress
import logging
import os
import threading
import time
from dataclasses import dataclass, field

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client import multiprocess as prometheus_multiprocess
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import sessionmaker

from ..lifecycle import on_close, one_line
from ..models import DownloadCount, File, Package, Release
from ..settings import ConfigurationError

log = logging.getLogger(__name__)

REQUESTS = Counter(
    "extrapypi_http_requests",
    "HTTP requests by view, method and status",
    ["view", "method", "status"],
)
LATENCY = Histogram(
    "extrapypi_http_request_duration_seconds",
    "Time to answer a request (the body of a download is streamed after it), by view",
    ["view"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
UPLOADS = Counter("extrapypi_uploads", "Files uploaded (committed)")
UPLOAD_BYTES = Counter("extrapypi_upload_bytes", "Bytes of the files uploaded (committed)")
DOWNLOADS = Counter("extrapypi_downloads", "Whole-file downloads by project", ["project"])
PAGE_CACHE = Counter(
    "extrapypi_index_page_cache", "Simple index page lookups in the page cache", ["result"]
)
LOGIN_THROTTLED = Counter(
    "extrapypi_login_throttled", "Logins refused because of too many recent failures"
)
STORAGE_ERRORS = Counter(
    "extrapypi_storage_errors", "Storage operations that raised, by operation", ["operation"]
)


def render_latest() -> tuple[bytes, str]:
    """The text exposition of every metric, summed over worker processes when multiprocess."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        prometheus_multiprocess.MultiProcessCollector(registry)
    else:
        registry = REGISTRY
    return generate_latest(registry), CONTENT_TYPE_LATEST


def count_upload(transaction, size: int) -> None:
    """An upload counts once committed (an aborted one never happened)."""

    def after_commit(success: bool) -> None:
        if success:
            UPLOADS.inc()
            UPLOAD_BYTES.inc(size)

    transaction.addAfterCommitHook(after_commit)


def view_label(request, status: int) -> str:
    """A bounded label: the context's class and, for answered requests, the view name.

    Only a view that answered itself names a view: a refusal's redirect (an anonymous browser
    sent to the login page) is under 400 too, and its ``view_name`` is whatever the client typed;
    each label is a series kept for the life of the process.
    """
    context = getattr(request, "context", None)
    if context is None:
        return "none"
    name = type(context).__name__
    view_name = getattr(request, "view_name", "")
    if view_name and status < 400 and getattr(request, "exception", None) is None:
        name += ":" + view_name[:40]
    return name


#: Request methods with a label of their own; any other a client makes up is "other".
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "TRACE"})


def metrics_tween_factory(handler, registry):
    def metrics_tween(request):
        start = time.perf_counter()
        status = 500
        try:
            response = handler(request)
            status = response.status_code
            return response
        finally:
            label = view_label(request, status)
            method = request.method if request.method in METHODS else "other"
            REQUESTS.labels(label, method, str(status)).inc()
            LATENCY.labels(label).observe(time.perf_counter() - start)

    return metrics_tween


class CountingStorage:
    """The storage backend, counting the operations that raise (a missing file included)."""

    def __init__(self, storage):
        self._storage = storage

    def __getattr__(self, name: str):
        attribute = getattr(self._storage, name)
        if not callable(attribute) or name.startswith("_"):
            return attribute

        def counted(*args, **kwargs):
            try:
                return attribute(*args, **kwargs)
            except Exception:
                STORAGE_ERRORS.labels(name).inc()
                raise

        return counted


# ---------------------------------------------------------------------------------------------
# download counts


@dataclass
class DownloadStats:
    total: int = 0
    files: list[tuple[str, int]] = field(default_factory=list)


class DownloadCounter:
    """This process's downloads not yet written; written in batches by ``flush``.

    Counts are kept by filename, which names one file forever (a deleted file's name is never
    reused, while a database may reuse its row id), and matched to the file's row when written.
    """

    def __init__(
        self,
        session_factory: sessionmaker,
        flush_count: int,
        flush_seconds: float,
        min_flush_seconds: float = 1.0,
    ):
        self.session_factory = session_factory
        self.flush_count = flush_count
        self.flush_seconds = flush_seconds
        #: A full batch waits until this long after the last write: at 1,000 downloads a second,
        #: one write a second, not ten (each a transaction competing with the downloads).
        self.min_flush_seconds = min_flush_seconds
        self._pending: dict[str, int] = {}  # filename → downloads not yet written
        self._pending_total = 0
        self._last_flush = time.monotonic()
        self._lock = threading.Lock()
        self._flushing = threading.Lock()
        self.closed = False

    def add(self, filename: str) -> bool:
        """Count one download; True when a flush is due."""
        with self._lock:
            self._pending[filename] = self._pending.get(filename, 0) + 1
            self._pending_total += 1
            since = time.monotonic() - self._last_flush
            return (
                self._pending_total >= self.flush_count and since >= self.min_flush_seconds
            ) or since >= self.flush_seconds

    def flush_soon(self) -> None:
        """Flush on a thread of its own: the download that made a batch due does not wait for
        the write (a transaction, an fsync on SQLite)."""
        if not self._flushing.locked() and not self.closed:
            self._thread = threading.Thread(target=self.flush, name="download-counts", daemon=True)
            self._thread.start()

    def close(self, timeout: float = 5.0) -> None:
        """The app is ending: wait for a flush under way, write what is left, start no more."""
        self.closed = True
        thread = getattr(self, "_thread", None)
        if thread is not None:
            thread.join(timeout)
        self.flush()

    def pending(self, filename: str) -> int:
        with self._lock:
            return self._pending.get(filename, 0)

    def flush(self) -> int:
        """Write the pending counts in one short transaction; returns how many were written."""
        if not self._flushing.acquire(blocking=False):
            return 0  # another thread is writing; the counts wait for the next flush
        try:
            with self._lock:
                batch, self._pending = self._pending, {}
                self._pending_total = 0
                self._last_flush = time.monotonic()
            if not batch:
                return 0
            try:
                return self._write(batch)
            except SQLAlchemyError as error:
                # The database is away (restarting, or gone with the app): one line, no
                # traceback; the counts are kept for the next flush.
                log.warning("could not write %d download counts: %s", len(batch), one_line(error))
                with self._lock:  # keep them for the next flush
                    for filename, count in batch.items():
                        self._pending[filename] = self._pending.get(filename, 0) + count
                        self._pending_total += count
                return 0
        finally:
            self._flushing.release()

    def _write(self, batch: dict[str, int]) -> int:
        written = 0
        with self.session_factory() as session, session.begin():
            files = dict(
                session.execute(
                    select(File.filename, File.id).where(File.filename.in_(sorted(batch)))
                ).all()
            )
            packages = dict(
                session.execute(
                    select(File.id, Release.package_id)
                    .join(Release, File.release_id == Release.id)
                    .where(File.id.in_(files.values()))
                ).all()
            )
            for filename, file_id in sorted(files.items(), key=lambda item: item[1]):
                count = batch[filename]  # a deleted file's counts are dropped with it
                written += count
                if self._add(session, file_id, count):
                    continue
                try:
                    with session.begin_nested():
                        session.add(
                            DownloadCount(
                                file_id=file_id, package_id=packages[file_id], count=count
                            )
                        )
                except IntegrityError:
                    # Another process inserted it meanwhile: add to it (or the file has just
                    # been deleted, and then nothing matches and the count goes with it).
                    self._add(session, file_id, count)
        return written

    @staticmethod
    def _add(session, file_id: int, count: int) -> bool:
        return bool(
            session.execute(
                update(DownloadCount)
                .where(DownloadCount.file_id == file_id)
                .values(count=DownloadCount.count + count)
                .execution_options(synchronize_session=False)
            ).rowcount
        )


COUNTER_KEY = "extrapypi.download_counter"
ALLOWED_KEY = "extrapypi.metrics.allow"


def parse_networks(value: str) -> tuple:
    """``extrapypi.metrics.allow``: addresses or networks, space- or comma-separated."""
    networks = []
    for item in value.replace(",", " ").split():
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ConfigurationError(
                f"extrapypi.metrics.allow: {item!r} is not an IP address or network"
            ) from None
    return tuple(networks)


def address_allowed(request) -> bool:
    networks = request.registry.get(ALLOWED_KEY, ())
    if not networks or not request.remote_addr:
        return False
    try:
        address = ipaddress.ip_address(request.remote_addr)
    except ValueError:
        return False
    return any(address in network for network in networks)


def _whole_file(request, response) -> bool:
    """A GET answered 200 with the whole body: webob turns the 200 a view returns into a 304 or
    206 only when the response is served, so the conditions are read from the request here."""
    if request.method != "GET" or response.status_code != 200 or request.range is not None:
        return False
    if response.etag and response.etag in request.if_none_match:
        return False
    since = request.if_modified_since
    return not (since and response.last_modified and response.last_modified <= since)


def count_download(request, response, package: Package, file: File) -> None:
    """Count a whole-file GET (not HEAD, a 304 or a range) once its response is ready."""
    if not _whole_file(request, response):
        return
    DOWNLOADS.labels(package.normalized_name).inc()
    counter: DownloadCounter | None = request.registry.get(COUNTER_KEY)
    if counter is not None and counter.add(file.filename):
        request.add_finished_callback(lambda request: counter.flush())


def download_stats(request, package: Package) -> DownloadStats:
    """Downloads of a package's files: written counts plus this process's pending ones."""
    counter: DownloadCounter | None = request.registry.get(COUNTER_KEY)
    rows = request.dbsession.execute(
        select(File.filename, func.coalesce(DownloadCount.count, 0))
        .join(Release, File.release_id == Release.id)
        .outerjoin(DownloadCount, DownloadCount.file_id == File.id)
        .where(Release.package_id == package.id)
        .order_by(File.filename)
    ).all()
    stats = DownloadStats()
    for filename, count in rows:
        count = int(count) + (counter.pending(filename) if counter is not None else 0)
        stats.total += count
        if count:
            stats.files.append((filename, count))
    return stats


def includeme(config) -> None:
    settings = config.get_settings()
    try:
        flush_count = int(settings.get("extrapypi.downloads.flush_count", 100))
        flush_seconds = float(settings.get("extrapypi.downloads.flush_seconds", 30))
        min_flush_seconds = float(settings.get("extrapypi.downloads.min_flush_seconds", 1))
    except ValueError as error:
        raise ConfigurationError(f"extrapypi.downloads.*: {error}") from None
    counter = DownloadCounter(
        config.registry["dbsession_factory"], flush_count, flush_seconds, min_flush_seconds
    )
    config.registry[COUNTER_KEY] = counter
    config.registry[ALLOWED_KEY] = parse_networks(settings.get("extrapypi.metrics.allow", ""))
    on_close(config.registry, counter.close)  # the last counts are written at exit too
    config.registry["extrapypi.storage"] = CountingStorage(config.registry["extrapypi.storage"])
    config.add_request_method(download_stats, "download_stats")
    config.add_tween("extrapypi.services.metrics.metrics_tween_factory")
