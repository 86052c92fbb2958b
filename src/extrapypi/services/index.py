"""The simple index (PEP 503/691/700) as data: one PEP 691-shaped dict per page, and its renderings.

Both the JSON and the HTML answers render from the same dict, so they can never disagree. Pages are
built with one query each (no per-file lookups) and rendered without a template engine: the 10,000
project root page is plain string joining. ``PageCache`` keeps rendered (and gzipped) pages keyed by
the index serial, so a request that hits it costs no query at all (the serial comes from the
process's ``SerialClock``, read at most once a second) and opens no database session.
"""

import gzip
import hashlib
import html
import json
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import groupby
from urllib.parse import quote

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..models import File, Package, Release
from .metrics import PAGE_CACHE
from .namespaces import covers, list_namespaces, project_namespaces
from .status import offers_files, status_json

#: JSON: 1.4 (PEP 792 status markers) + 1.5 (PEP 752 namespaces).
API_VERSION = "1.5"
#: HTML is frozen at 1.4 (PEP 833): new keys go to JSON only.
HTML_API_VERSION = "1.4"
JSON_TYPE = "application/vnd.pypi.simple.v1+json"
HTML_TYPE = "application/vnd.pypi.simple.v1+html"
TEXT_HTML_TYPE = "text/html"
#: What each offered media type (PEP 691 names, with the ``latest`` aliases) is answered with.
MEDIA_TYPES = {
    TEXT_HTML_TYPE: TEXT_HTML_TYPE,
    HTML_TYPE: HTML_TYPE,
    JSON_TYPE: JSON_TYPE,
    "application/vnd.pypi.simple.latest+html": HTML_TYPE,
    "application/vnd.pypi.simple.latest+json": JSON_TYPE,
}


def format_time(moment: datetime) -> str:
    """ISO 8601 in UTC with a ``Z``, as PyPI writes ``upload-time``."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment.isoformat(timespec="microseconds") + "Z"


def file_url(normalized_name: str, version: str, filename: str) -> str:
    """The download link, relative to ``/simple/<name>/``: right under any host or mount point."""
    return f"../../packages/{normalized_name}/{quote(version)}/{quote(filename)}"


def root_page(dbsession: Session) -> dict:
    """``/simple/``: every project, by normalized name."""
    rows = dbsession.execute(
        select(Package.name, Package.normalized_name).order_by(Package.normalized_name)
    )
    return {
        "meta": {"api-version": API_VERSION},
        "projects": [{"name": name, "_normalized": normalized} for name, normalized in rows],
    }


def project_page(dbsession: Session, normalized_name: str) -> dict | None:
    """``/simple/<name>/``: every file of every release, by PEP 440 version then filename.

    A quarantined project lists its versions but no files (PEP 792).
    """
    project = dbsession.execute(
        select(Package.id, Package.status, Package.status_reason).where(
            Package.normalized_name == normalized_name
        )
    ).one_or_none()
    if project is None:
        return None
    rows = dbsession.execute(_files_query().where(Release.package_id == project.id))
    namespaces = project_namespaces(dbsession, normalized_name, project.id)
    return project_dict(normalized_name, project.status, project.status_reason, rows, namespaces)


def _files_query():
    """Every file of every release (a release without files gives one row of NULLs), by PEP 440
    version then filename."""
    return (
        select(
            Release.version,
            Release.yanked,
            Release.yanked_reason,
            File.filename,
            File.sha256,
            File.requires_python,
            File.size,
            File.upload_time,
            File.metadata_sha256,
        )
        .select_from(Release)
        .outerjoin(File, File.release_id == Release.id)
        .order_by(Release.sort_key, File.filename)
    )


def project_dict(
    normalized_name: str,
    status: str,
    status_reason: str | None,
    rows: Iterable,
    namespaces: list | None,
) -> dict:
    """One project page from its ``_files_query`` rows."""
    with_files = offers_files(status)
    versions: list[str] = []
    files: list[dict] = []
    for row in rows:
        if not versions or versions[-1] != row.version:
            versions.append(row.version)
        if row.filename is None or not with_files:
            continue  # a release whose files were all deleted, or a quarantined project
        entry = {
            "filename": row.filename,
            "url": file_url(normalized_name, row.version, row.filename),
            "hashes": {"sha256": row.sha256},
            "requires-python": row.requires_python or None,
            "size": row.size,
            "upload-time": format_time(row.upload_time),
            "yanked": (row.yanked_reason or True) if row.yanked else False,
        }
        metadata = {"sha256": row.metadata_sha256} if row.metadata_sha256 else False
        entry["core-metadata"] = metadata
        entry["dist-info-metadata"] = metadata
        files.append(entry)
    return {
        "meta": {"api-version": API_VERSION},
        "name": normalized_name,
        "project-status": status_json(status, status_reason),
        "namespaces": namespaces,
        "versions": versions,
        "files": files,
    }


def every_project_page(dbsession: Session, batch: int = 2000) -> Iterator[dict]:
    """Every project page in two streamed queries for the whole index (not one per project):
    the full rebuild of the nginx front's pages. Projects covered by a namespace grant (few)
    have their ``namespaces`` looked up before the files are streamed."""
    grants = list_namespaces(dbsession)
    projects = dbsession.execute(
        select(Package.id, Package.normalized_name, Package.status, Package.status_reason)
    ).all()
    by_id = {row.id: row for row in projects}
    namespaces = {
        row.id: project_namespaces(dbsession, row.normalized_name, row.id)
        for row in projects
        if any(covers(grant.name, row.normalized_name) for grant in grants)
    }
    del projects
    rows = dbsession.execute(
        _files_query()
        .add_columns(Release.package_id)
        .order_by(None)
        .order_by(Release.package_id, Release.sort_key, File.filename)
        .execution_options(yield_per=batch)
    )
    for package_id, group in groupby(rows, key=lambda row: row.package_id):
        project = by_id.pop(package_id, None)
        if project is not None:  # None: created after the first query, the next sync writes it
            yield _page_of(project, group, namespaces.get(package_id))
    for project in by_id.values():  # projects without a release
        yield _page_of(project, (), namespaces.get(project.id))


def _page_of(project, rows: Iterable, namespaces: list | None) -> dict:
    return project_dict(
        project.normalized_name, project.status, project.status_reason, rows, namespaces
    )


def render_json(page: dict) -> bytes:
    if "projects" in page:
        page = {"meta": page["meta"], "projects": [{"name": p["name"]} for p in page["projects"]]}
    return json.dumps(page, separators=(",", ":"), ensure_ascii=False).encode()


_HEAD = (
    '<!DOCTYPE html>\n<html>\n<head>\n<meta name="pypi:repository-version" content="{version}">\n'
    "{extra}<title>{title}</title>\n</head>\n<body>\n"
)
_FOOT = "</body>\n</html>\n"


def _attribute(value: str) -> str:
    return html.escape(value, quote=True)


def render_html(page: dict) -> bytes:
    """PEP 503 HTML with the PEP 629 meta tag (and PEP 792's status tags on project pages);
    attributes escaped, one anchor per line. Always version 1.4: HTML is frozen (PEP 833)."""
    version = HTML_API_VERSION
    if "projects" in page:
        parts = [_HEAD.format(version=version, extra="", title="Simple index")]
        parts.extend(
            f'<a href="{p["_normalized"]}/">{html.escape(p["name"])}</a><br>\n'
            for p in page["projects"]
        )
    else:
        name = html.escape(page["name"])
        status = page["project-status"]
        extra = f'<meta name="pypi:project-status" content="{_attribute(status["status"])}">\n'
        if status.get("reason"):
            extra += (
                '<meta name="pypi:project-status-reason" '
                f'content="{_attribute(status["reason"])}">\n'
            )
        parts = [_HEAD.format(version=version, extra=extra, title=f"Links for {name}")]
        parts.append(f"<h1>Links for {name}</h1>\n")
        for file in page["files"]:
            attributes = [f'href="{_attribute(file["url"])}#sha256={file["hashes"]["sha256"]}"']
            if file["requires-python"]:
                attributes.append(f'data-requires-python="{_attribute(file["requires-python"])}"')
            if file["core-metadata"]:
                value = f"sha256={file['core-metadata']['sha256']}"
                attributes.append(f'data-core-metadata="{value}"')
                attributes.append(f'data-dist-info-metadata="{value}"')
            if file["yanked"] is not False:
                reason = file["yanked"] if isinstance(file["yanked"], str) else ""
                attributes.append(f'data-yanked="{_attribute(reason)}"')
            parts.append(f"<a {' '.join(attributes)}>{html.escape(file['filename'])}</a><br>\n")
    parts.append(_FOOT)
    return "".join(parts).encode()


RENDERERS = {JSON_TYPE: render_json, HTML_TYPE: render_html, TEXT_HTML_TYPE: render_html}


@dataclass(frozen=True)
class RenderedPage:
    """A page ready to send: plain and gzipped bodies, and a strong ETag for each."""

    body: bytes
    gzipped: bytes
    etag: str

    @classmethod
    def build(cls, body: bytes, media_type: str) -> "RenderedPage":
        digest = hashlib.sha256(media_type.encode() + b"\0" + body).hexdigest()[:32]
        return cls(body, gzip.compress(body, compresslevel=6, mtime=0), digest)


class PageCache:
    """Rendered index pages of the newest change serial seen; older serials are dropped at once.

    Everyone who may view the index sees the same pages, so one entry serves every user. A page
    read at another serial than the cache's replaces the whole cache, lower serials included: the
    serial can go back (a database restored from a backup), and pages cached before must never
    be served again when it climbs back to the same number.
    """

    def __init__(self, max_entries: int = 4096):
        self.max_entries = max_entries
        self.serial = -1
        self._pages: OrderedDict[tuple, RenderedPage | None] = OrderedDict()
        self._building: dict[tuple, threading.Lock] = {}
        self._lock = threading.Lock()

    def get(self, serial: int, key: tuple) -> tuple[bool, RenderedPage | None]:
        """(found, page): a cached ``None`` means "no such project" at this serial."""
        with self._lock:
            if serial != self.serial or key not in self._pages:
                return False, None
            self._pages.move_to_end(key)
            return True, self._pages[key]

    def put(self, serial: int, key: tuple, page: RenderedPage | None) -> None:
        with self._lock:
            if serial != self.serial:
                self._pages.clear()
                self.serial = serial
            self._pages[key] = page
            while len(self._pages) > self.max_entries:
                self._pages.popitem(last=False)

    def building(self, key: tuple) -> threading.Lock:
        """The lock held while ``key`` is being rendered (one per page, kept while cached)."""
        with self._lock:
            lock = self._building.get(key)
            if lock is None:
                if len(self._building) > 2 * self.max_entries:
                    self._building = {}
                lock = self._building[key] = threading.Lock()
            return lock

    def clear(self) -> None:
        with self._lock:
            self._pages.clear()
            self.serial = -1


def cached_page(
    cache: PageCache,
    dbsession: Callable[[], Session],
    serial: int,
    project: str | None,
    media_type: str,
) -> RenderedPage | None:
    """The rendered root page (``project`` None) or project page; None for an unknown project.

    ``dbsession`` is called on a miss only: a hit never opens a session."""
    key = (project, media_type)
    found, page = cache.get(serial, key)
    PAGE_CACHE.labels("hit" if found else "miss").inc()
    if found:
        return page
    # One build per page and serial: the threads that miss together wait for the first one
    # (after an upload, the 100,000-project root page is rendered once, not once per thread).
    with cache.building(key):
        found, page = cache.get(serial, key)
        if found:
            return page
        session = dbsession()
        data = root_page(session) if project is None else project_page(session, project)
        if data is not None:
            page = RenderedPage.build(RENDERERS[media_type](data), media_type)
        cache.put(serial, key, page)
    return page
