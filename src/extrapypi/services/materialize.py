"""The simple index as files on disk, for an nginx front (``extrapypi nginx-config``).

``/simple/`` and every ``/simple/<name>/`` are kept in ``extrapypi.front.pages_dir`` in each media
type the Python path answers (``index.html``: text/html, ``index.v1html``: the PEP 691 HTML type,
``index.v1json``: JSON), each with a ``.gz`` twin for nginx's ``gzip_static``. The bytes come from
the same renderer as the Python path's (``services/index.py``), so the two never disagree.

The directory knows the change serial it reflects (``.serial``). :meth:`PageMirror.sync` brings it
up to the database's serial: the projects named by the journal entries since then are rewritten,
the root page when the set of projects changed (a deleted project loses its directory; a project
created is found by its id, above the newest one the directory knew: no scan of the projects or
of the directory, so a sync costs the same at 100 or 100,000 projects unless the root changes),
and everything when the serial went back (a restored backup) or a change touched every page
(a namespace grant or revocation, a deleted team). Every file is written to a temporary name,
fsynced and renamed over the old one, so nginx serves the old page or the new one, never a mix.

Writers exclude each other with an ``flock`` on ``.lock`` and read the database only once they
hold it, so a slower writer can never put an older page over a newer one.
"""

import fcntl
import gzip
import logging
import os
import shutil
import tempfile
import threading
import time
import weakref
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from ..models import IndexState, JournalEntry, Package
from .index import (
    HTML_TYPE,
    JSON_TYPE,
    TEXT_HTML_TYPE,
    every_project_page,
    project_page,
    render_html,
    render_json,
    root_page,
)
from .names import normalize_name
from .status import offers_files

log = logging.getLogger(__name__)

SIMPLE_DIR = "simple"
SERIAL_FILE = ".serial"
LOCK_FILE = ".lock"
#: In a project's directory while it offers no files (quarantined): nginx then hands its file
#: URLs to the app at once, without waiting for its cached access answers to expire.
NO_FILES_MARKER = "no-files"
TEMP_PREFIX = ".tmp-"
#: The file each media type is kept in; nginx maps the extension back to the type.
VARIANTS = {
    TEXT_HTML_TYPE: "index.html",
    HTML_TYPE: "index.v1html",
    JSON_TYPE: "index.v1json",
}
#: Journal actions that change (or may change) the pages of projects they do not name.
EVERY_PAGE_ACTIONS = frozenset({"grant namespace", "revoke namespace", "delete team"})
#: Journal actions that change the set of projects (the root page).
ROOT_ACTIONS = frozenset({"create package", "delete package"})
FINGERPRINT_PREFIX = "top:"


@dataclass
class SyncReport:
    """What one sync did: the serial reached, pages written, projects removed, full or not."""

    serial: int
    written: int = 0
    removed: int = 0
    full: bool = False


def write_atomically(path: str, body: bytes, durable: bool = True) -> bool:
    """Write ``body`` to ``path`` (temp file, fsync, rename); False when it already held it.

    Readers see the old bytes or the new ones, never a mix (the rename). ``durable=False`` skips
    the fsync, for a rebuild that syncs the whole file system once at its end."""
    try:
        with open(path, "rb") as existing:
            if existing.read(len(body) + 1) == body:
                return False
    except FileNotFoundError:
        pass
    directory = os.path.dirname(path)
    fd, temp = tempfile.mkstemp(dir=directory, prefix=TEMP_PREFIX)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(body)
            out.flush()
            if durable:
                os.fsync(out.fileno())
        os.chmod(temp, 0o644)  # nginx's worker user reads it
        os.replace(temp, path)
    except BaseException:
        try:
            os.unlink(temp)
        except FileNotFoundError:
            pass
        raise
    return True


def page_bodies(page: dict) -> dict[str, bytes]:
    """File name → body for one page, in every media type (and gzipped, as the Python path)."""
    html = render_html(page)
    bodies = {}
    for media_type, filename in VARIANTS.items():
        body = render_json(page) if media_type == JSON_TYPE else html
        bodies[filename] = body
        bodies[filename + ".gz"] = gzip.compress(body, compresslevel=6, mtime=0)
    return bodies


class PageMirror:
    """One pages directory kept in step with one database."""

    def __init__(self, directory: str, session_factory: sessionmaker):
        self.directory = os.path.abspath(directory)
        self.simple = os.path.join(self.directory, SIMPLE_DIR)
        self.session_factory = session_factory
        self._thread_lock = threading.Lock()
        self.closed = False  # set by close(): the background catch-up stops
        os.makedirs(self.simple, exist_ok=True)

    def close(self) -> None:
        self.closed = True

    # -- state ------------------------------------------------------------------------------

    def stored_serial(self) -> int | None:
        try:
            with open(os.path.join(self.directory, SERIAL_FILE)) as file:
                return int(file.read().split()[0])
        except (FileNotFoundError, ValueError, IndexError):
            return None

    def _store_serial(self, serial: int, fingerprint: str) -> None:
        body = f"{serial}\n{fingerprint}\n".encode()
        write_atomically(os.path.join(self.directory, SERIAL_FILE), body)

    def _stored_fingerprint(self) -> str:
        try:
            with open(os.path.join(self.directory, SERIAL_FILE)) as file:
                lines = file.read().splitlines()
            return lines[1] if len(lines) > 1 else ""
        except FileNotFoundError:
            return ""

    # -- writing ----------------------------------------------------------------------------

    def _write_page(self, directory: str, page: dict, durable: bool = True) -> int:
        os.makedirs(directory, exist_ok=True)
        written = 0
        for filename, body in page_bodies(page).items():
            written += write_atomically(os.path.join(directory, filename), body, durable)
        return written

    def _project_dir(self, normalized: str) -> str:
        return os.path.join(self.simple, normalized)

    def _remove_project(self, normalized: str) -> bool:
        path = self._project_dir(normalized)
        if not os.path.isdir(path):
            return False
        shutil.rmtree(path, ignore_errors=True)
        return True

    def _write_project(
        self, dbsession: Session, normalized: str, durable: bool = True
    ) -> tuple[int, int]:
        """(files written, projects removed) for one project's page."""
        page = project_page(dbsession, normalized)
        if page is None:
            return 0, int(self._remove_project(normalized))
        return self._write_project_page(page, durable), 0

    def _write_project_page(self, page: dict, durable: bool = True) -> int:
        normalized = page["name"]
        directory = self._project_dir(normalized)
        marker = os.path.join(directory, NO_FILES_MARKER)
        if not offers_files(page["project-status"]["status"]):
            os.makedirs(directory, exist_ok=True)
            write_atomically(marker, b"")  # before the page: no moment offers both
        written = self._write_page(directory, page, durable)
        if offers_files(page["project-status"]["status"]):
            try:
                os.unlink(marker)
            except FileNotFoundError:
                pass
        return written

    def _on_disk(self) -> set[str]:
        return {
            entry
            for entry in os.listdir(self.simple)
            if not entry.startswith(".") and os.path.isdir(os.path.join(self.simple, entry))
        }

    def _write_root(self, dbsession: Session, report: SyncReport) -> set[str]:
        """The root page; projects on disk that are gone are removed. Returns the names."""
        page = root_page(dbsession)
        report.written += self._write_page(self.simple, page)
        names = {project["_normalized"] for project in page["projects"]}
        for stale in self._on_disk() - names:
            report.removed += self._remove_project(stale)
        return names

    # -- syncing ----------------------------------------------------------------------------

    def sync(self, full: bool = False) -> SyncReport:
        """Bring the directory to the database's current serial (everything with ``full``)."""
        with self._thread_lock, open(os.path.join(self.directory, LOCK_FILE), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                dbsession = self.session_factory()
                try:
                    return self._sync_locked(dbsession, full)
                finally:
                    dbsession.rollback()
                    dbsession.close()
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _sync_locked(self, dbsession: Session, full: bool) -> SyncReport:
        serial = index_serial(dbsession)
        stored = self.stored_serial()
        report = SyncReport(serial)
        if not full and stored == serial:
            return report
        if full or stored is None or stored > serial:
            return self._rebuild(dbsession, report)
        entries = dbsession.execute(
            select(JournalEntry.action, JournalEntry.package_name).where(
                JournalEntry.serial > stored, JournalEntry.serial <= serial
            )
        ).all()
        stored_fingerprint = self._stored_fingerprint()
        if any(entry.action in EVERY_PAGE_ACTIONS for entry in entries) or not (
            stored_fingerprint.startswith(FINGERPRINT_PREFIX)  # written by an older version
        ):
            return self._rebuild(dbsession, report)
        fingerprint = self._fingerprint(dbsession)
        names = {_normalized(entry.package_name) for entry in entries} - {None}
        if fingerprint != stored_fingerprint or any(
            entry.action in ROOT_ACTIONS for entry in entries
        ):
            # The root page (its render costs what the index's size costs, once per change of
            # the project set), and the projects created since: no listing of the directory.
            report.written += self._write_page(self.simple, root_page(dbsession))
            names |= self._created_since(dbsession, stored_fingerprint)
        for normalized in sorted(names):
            written, removed = self._write_project(dbsession, normalized)
            report.written += written
            report.removed += removed
        self._store_serial(serial, fingerprint)
        return report

    def _rebuild(self, dbsession: Session, report: SyncReport) -> SyncReport:
        report.full = True
        fingerprint = self._fingerprint(dbsession)
        self._write_root(dbsession, report)
        # Two streamed queries for every page (not one per project): 100,000 projects in minutes.
        for page in every_project_page(dbsession):
            report.written += self._write_project_page(page, durable=False)
        os.sync()  # one flush for every page, before the serial says they are there
        self._store_serial(report.serial, fingerprint)
        return report

    @staticmethod
    def _fingerprint(dbsession: Session) -> str:
        """The newest project's id: changes whenever a project is created (with a journal entry
        or not; deletions are journaled). One index lookup, whatever the number of projects."""
        top = dbsession.scalar(select(func.max(Package.id)))
        return f"{FINGERPRINT_PREFIX}{top or 0}"

    @staticmethod
    def _created_since(dbsession: Session, fingerprint: str) -> set[str]:
        """Projects newer than the stored fingerprint's newest."""
        top = int(fingerprint.removeprefix(FINGERPRINT_PREFIX))
        return set(dbsession.scalars(select(Package.normalized_name).where(Package.id > top)))

    def current(self) -> bool:
        """Whether the directory reflects the database's serial (one query, no lock)."""
        dbsession = self.session_factory()
        try:
            return index_serial(dbsession) == self.stored_serial()
        finally:
            dbsession.close()

    def catch_up(self) -> SyncReport | None:
        """A sync when behind, logged instead of raised: for hooks and the background thread."""
        try:
            return None if self.current() else self.sync()
        except Exception:
            log.exception("could not bring the pages directory %s up to date", self.directory)
            return None


def index_serial(dbsession: Session) -> int:
    """The change serial the pages must reflect (read from the database, not a serial clock)."""
    return dbsession.scalar(select(IndexState.serial).where(IndexState.id == 1)) or 0


def _normalized(name: str) -> str | None:
    if not name:
        return None
    try:
        return normalize_name(name)
    except ValueError:
        return None


def start_catch_up(mirror: PageMirror, interval: float) -> threading.Thread:
    """A daemon thread syncing every ``interval`` seconds (changes made by other hosts, other
    commands, or a process that died between its commit and its rewrite). It ends when the
    mirror is closed or garbage collected (the app that built it is gone)."""
    reference = weakref.ref(mirror)

    def loop() -> None:
        while True:
            time.sleep(interval)
            current = reference()
            if current is None or current.closed:
                return
            current.catch_up()
            del current

    thread = threading.Thread(target=loop, name="extrapypi-pages", daemon=True)
    thread.start()
    return thread
