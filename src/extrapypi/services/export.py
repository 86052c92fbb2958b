"""``extrapypi export``: every file plus a JSON manifest of what the database knows about it.

The directory it writes::

    manifest.json                       packages (with status), releases, files (with hashes),
                                        users, maintainers (users and teams), teams, namespaces,
                                        trusted publishers, API tokens (keyed hashes only)
    files/<normalized-name>/<filename>  the distributions, byte for byte
    files/<normalized-name>/<filename>.metadata   wheels' METADATA (PEP 658), when kept

Password hashes are left out on purpose: an export is something people copy around. API tokens
are kept as their HMAC (256 random bits behind it, nothing to guess): they work again on an
index with the same ``extrapypi.secret``.
``manifest.json`` is written last, so a directory that has one holds a complete export.
"""

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from ..models import ApiToken, File, Package, Release, TrustedPublisher, User
from ..storage import Storage
from ..storage.base import copy_hashing
from .accounts import list_users
from .journal import current_serial
from .namespaces import list_namespaces
from .teams import list_teams

MANIFEST = "manifest.json"
FILES_DIR = "files"
FORMAT = "extrapypi-export"
FORMAT_VERSION = 1

RELEASE_FIELDS = (
    "version",
    "metadata_version",
    "summary",
    "description",
    "description_content_type",
    "requires_python",
    "requires_dist",
    "provides_extra",
    "author",
    "author_email",
    "maintainer",
    "maintainer_email",
    "license",
    "license_expression",
    "home_page",
    "project_urls",
    "keywords",
    "classifiers",
    "yanked",
    "yanked_reason",
)
TOKEN_FIELDS = ("name", "scope", "projects", "secret_hash", "last_used_from", "publisher")
TOKEN_TIMES = ("created", "expires", "last_used", "revoked")
FILE_FIELDS = (
    "filename",
    "filetype",
    "python_version",
    "requires_python",
    "size",
    "sha256",
    "blake2b_256",
    "md5",
    "metadata_sha256",
)


class ExportError(Exception):
    """The export cannot start (the target is not usable); nothing was written."""


@dataclass
class ExportReport:
    directory: Path
    packages: int = 0
    releases: int = 0
    files: int = 0
    bytes: int = 0
    users: int = 0
    teams: int = 0
    namespaces: int = 0
    problems: list[str] = field(default_factory=list)
    progress: Callable[[], None] | None = field(default=None, repr=False)


def _time(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _username(user: User | None) -> str | None:
    return user.username if user is not None else None


def prepare_directory(directory: Path) -> None:
    if directory.exists() and (not directory.is_dir() or any(directory.iterdir())):
        raise ExportError(f"{directory} exists and is not an empty directory; choose a new one.")
    directory.mkdir(parents=True, exist_ok=True)


def copy_out(storage: Storage, key: str, target: Path) -> tuple[int, str]:
    """Stream one stored file to ``target``; return its size and sha256 as read."""
    with storage.open(key) as source:  # FileNotFoundError before any directory is made
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(target, "wb") as out:
            digests = copy_hashing(source, out.write)
    return digests.size, digests.sha256


def _export_file(storage: Storage, directory: Path, package: Package, file: File, report) -> dict:
    if report.progress is not None:
        report.progress()
    key = f"{package.normalized_name}/{file.filename}"
    entry = {name: getattr(file, name) for name in FILE_FIELDS}
    entry["path"] = f"{FILES_DIR}/{key}"
    entry["upload_time"] = _time(file.upload_time)
    entry["uploader"] = _username(file.uploader)
    try:
        size, sha256 = copy_out(storage, key, directory / FILES_DIR / key)
    except FileNotFoundError:
        report.problems.append(f"{key}: missing from storage, not exported")
        entry["path"] = None
        return entry
    if sha256 != file.sha256 or size != file.size:
        report.problems.append(
            f"{key}: stored bytes have sha256 {sha256}, the database says {file.sha256}"
        )
    report.files += 1
    report.bytes += size
    if file.metadata_sha256:
        try:
            copy_out(storage, key + ".metadata", directory / FILES_DIR / (key + ".metadata"))
            entry["metadata_path"] = f"{FILES_DIR}/{key}.metadata"
        except FileNotFoundError:
            report.problems.append(f"{key}.metadata: missing from storage, not exported")
    return entry


def _export_release(storage, directory, package: Package, release: Release, report) -> dict:
    entry = {name: getattr(release, name) for name in RELEASE_FIELDS}
    entry["created"] = _time(release.created)
    entry["uploader"] = _username(release.uploader)
    entry["files"] = [
        _export_file(storage, directory, package, file, report) for file in release.files
    ]
    report.releases += 1
    return entry


def export_index(
    dbsession: Session,
    storage: Storage,
    directory: Path,
    progress: Callable[[], None] | None = None,
) -> ExportReport:
    """Copy every file out and write the manifest; problems are listed, not fatal.

    ``progress()`` is called once per distribution file (for a progress bar).
    """
    directory = Path(directory)
    prepare_directory(directory)
    report = ExportReport(directory)
    report.progress = progress
    packages = dbsession.scalars(
        select(Package)
        .order_by(Package.normalized_name)
        .options(
            selectinload(Package.maintainers),
            selectinload(Package.team_maintainers),
            selectinload(Package.releases).selectinload(Release.files),
        )
    )
    package_entries = []
    for package in packages:
        package_entries.append(
            {
                "name": package.name,
                "normalized_name": package.normalized_name,
                "summary": package.summary,
                "created": _time(package.created),
                "updated": _time(package.updated),
                "maintainers": [user.username for user in package.maintainers],
                "team_maintainers": [team.name for team in package.team_maintainers],
                "status": package.status,
                "status_reason": package.status_reason,
                "releases": [
                    _export_release(storage, directory, package, release, report)
                    for release in sorted(package.releases, key=lambda r: r.sort_key)
                ],
            }
        )
        report.packages += 1
    users = [
        {
            "username": user.username,
            "email": user.email,
            "role": user.role,
            "is_active": user.is_active,
            "created": _time(user.created),
            "last_login": _time(user.last_login),
        }
        for user in list_users(dbsession)
    ]
    report.users = len(users)
    teams = [
        {
            "name": team.name,
            "created": _time(team.created),
            "members": [user.username for user in team.members],
        }
        for team in list_teams(dbsession)
    ]
    report.teams = len(teams)
    namespaces = [
        {"name": grant.name, "owner": grant.owner, "created": _time(grant.created)}
        for grant in list_namespaces(dbsession)
    ]
    report.namespaces = len(namespaces)
    publishers = [
        {
            "project": publisher.project,
            "pending": publisher.package is None,
            "issuer": publisher.issuer,
            "claims": publisher.claims,
            "created_by": _username(publisher.created_by),
            "created": _time(publisher.created),
        }
        for publisher in dbsession.scalars(select(TrustedPublisher).order_by(TrustedPublisher.id))
    ]
    tokens = [
        {
            "id": token.id,
            "user": token.user.username,
            **{name: getattr(token, name) for name in TOKEN_FIELDS},
            **{name: _time(getattr(token, name)) for name in TOKEN_TIMES},
        }
        for token in dbsession.scalars(select(ApiToken).order_by(ApiToken.created))
    ]
    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "exported": _time(datetime.now().astimezone()),
        "serial": current_serial(dbsession),
        "packages": package_entries,
        "users": users,
        "teams": teams,
        "namespaces": namespaces,
        "trusted_publishers": publishers,
        "api_tokens": tokens,
        "problems": report.problems,
    }
    temporary = directory / (MANIFEST + ".part")
    with open(temporary, "w", encoding="utf-8") as out:
        json.dump(manifest, out, indent=2, ensure_ascii=False)
        out.write("\n")
        out.flush()
        os.fsync(out.fileno())
    os.replace(temporary, directory / MANIFEST)
    return report
