"""Restore an ``extrapypi export`` directory: the files and what the manifest says about them.

Each distribution goes through :func:`uploads.ingest` (validated like an upload, in a transaction
of its own, duplicates skipped), and its bytes must hash to the manifest's sha256. What the
files do not carry comes from the manifest, checked before it is written: release metadata
(validated like an upload form), upload times and uploaders, yanks with their reasons,
maintainers, and users, who get no password (exports hold none): they set one before they can
log in. ``.metadata`` files are not imported: ingest extracts each wheel's METADATA again.

The manifest is a JSON object whose top-level keys are sections (``packages``, ``users``);
sections this version does not know are listed as ignored, so exports of newer versions (teams,
project status) restore what this one understands. Running a restore twice changes nothing.
"""

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import transaction
from sqlalchemy.orm import Session, sessionmaker

from ..models import User, get_tm_session
from ..storage import Storage
from . import packages as package_service
from .accounts import AccountError, get_user, validate_email, validate_role, validate_username
from .export import FILES_DIR, FORMAT, FORMAT_VERSION, MANIFEST
from .names import InvalidName, InvalidVersion, canonical_version, normalize_name
from .uploads import ConcurrentUpload, Limits, UploadRefused, _release_metadata, ingest

#: The manifest sections this version restores; others are reported as ignored.
KNOWN_SECTIONS = {
    "format",
    "format_version",
    "exported",
    "serial",
    "packages",
    "users",
    "problems",
}
#: Keys of a package entry this version restores; others are reported (``packages[].KEY``).
KNOWN_PACKAGE_KEYS = {
    "name",
    "normalized_name",
    "summary",
    "created",
    "updated",
    "maintainers",
    "releases",
}
#: A password hash no password matches: bcrypt refuses it, ``check_password`` says no.
NO_PASSWORD = "!restored-without-password"


class RestoreError(Exception):
    """The directory is not a usable export; nothing was changed."""


@dataclass
class RestoreReport:
    users_created: list[str] = field(default_factory=list)
    users_kept: list[str] = field(default_factory=list)
    imported: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    #: ``(what, reason)``, each refusal once
    refused: list[tuple[str, str]] = field(default_factory=list)
    ignored_sections: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return (
            f"{len(self.imported)} imported, {len(self.duplicates)} skipped (already there), "
            f"{len(self.refused)} refused; {len(self.users_created)} users created "
            f"(without passwords), {len(self.users_kept)} already there"
        )


def is_export(directory: str | Path) -> bool:
    return (Path(directory) / MANIFEST).is_file()


def read_manifest(directory: Path) -> dict:
    try:
        with open(directory / MANIFEST, encoding="utf-8") as stream:
            manifest = json.load(stream)
    except (OSError, ValueError) as error:
        raise RestoreError(f"cannot read {directory / MANIFEST}: {error}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise RestoreError(f"{directory / MANIFEST} is not an extrapypi export manifest")
    version = manifest.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise RestoreError(
            f"{directory / MANIFEST} has format version {version!r}; this extrapypi reads up to "
            f"{FORMAT_VERSION}: upgrade extrapypi first"
        )
    for section, kind in (("packages", list), ("users", list)):
        if not isinstance(manifest.get(section, []), kind):
            raise RestoreError(f"{directory / MANIFEST}: {section!r} is not a list")
    return manifest


def _time(value) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def _text(entry: dict, key: str, default: str = "") -> str:
    value = entry.get(key, default)
    return value if isinstance(value, str) else default


class _Restorer:
    def __init__(self, session_factory: sessionmaker, storage: Storage, directory: Path, limits):
        self.session_factory = session_factory
        self.storage = storage
        self.directory = directory.resolve()
        self.limits = limits
        self.report = RestoreReport()

    def transaction(self):
        tm = transaction.TransactionManager(explicit=True)
        return tm, get_tm_session(self.session_factory, tm)

    # --- users ---------------------------------------------------------------------------------

    def restore_user(self, entry: dict) -> None:
        name = _text(entry, "username")
        tm, dbsession = self.transaction()
        try:
            with tm:
                username = validate_username(name)
                if get_user(dbsession, username) is not None:
                    self.report.users_kept.append(username)
                    return
                user = User(
                    username=username,
                    email=validate_email(_text(entry, "email")),
                    password_hash=NO_PASSWORD,
                    role=validate_role(_text(entry, "role")).value,
                    is_active=entry.get("is_active") is not False,
                )
                if (created := _time(entry.get("created"))) is not None:
                    user.created = created
                user.last_login = _time(entry.get("last_login"))
                dbsession.add(user)
                dbsession.flush()
                self.report.users_created.append(username)
        except AccountError as error:
            self.report.refused.append((f"user {name!r}", str(error)))

    # --- files ---------------------------------------------------------------------------------

    def file_path(self, entry: dict) -> Path | None:
        relative = entry.get("path")
        if not isinstance(relative, str) or not relative:
            return None
        path = (self.directory / relative).resolve()
        if not path.is_relative_to(self.directory / FILES_DIR):
            raise UploadRefused(f"path {relative!r} leads out of the export's {FILES_DIR}/")
        return path

    def restore_file(self, package_entry: dict, release_entry: dict, entry: dict) -> None:
        filename = _text(entry, "filename")
        label = f"{FILES_DIR}/{package_entry.get('normalized_name')}/{filename}"
        for _attempt in range(3):
            try:
                outcome = self._restore_file_once(package_entry, release_entry, entry)
            except ConcurrentUpload:
                continue
            except UploadRefused as refusal:
                self.report.refused.append((label, str(refusal)))
                return
            except OSError as error:
                self.report.refused.append((label, f"cannot read the file ({error})"))
                return
            (self.report.imported if outcome else self.report.duplicates).append(label)
            return
        self.report.refused.append((label, "kept conflicting with concurrent writes; run again"))

    def _restore_file_once(self, package_entry: dict, release_entry: dict, entry: dict) -> bool:
        path = self.file_path(entry)
        filename = _text(entry, "filename")
        if path is None:
            raise UploadRefused("not in the export (it was missing when exported)")
        if path.name != filename:
            raise UploadRefused(f"the manifest's path names another file: {path.name!r}")
        tm, dbsession = self.transaction()
        with tm, open(path, "rb") as stream:
            # No uploader for ingest: it would make them a maintainer of a package it creates;
            # maintainers are the manifest's (restore_package), the uploader is set below.
            result = ingest(
                dbsession,
                self.storage,
                tm.get(),
                None,
                filename,
                stream,
                None,
                limits=self.limits,
            )
            if result.file.sha256 != _text(entry, "sha256"):
                raise UploadRefused(
                    f"its bytes have sha256 {result.file.sha256}, the manifest says "
                    f"{_text(entry, 'sha256')!r}"
                )
            if normalize_name(result.package.name) != package_entry.get("normalized_name"):
                raise UploadRefused("it belongs to another package than the manifest says")
            if not result.created:
                return False  # already there: a restore never overwrites
            file = result.file
            if (uploaded := _time(entry.get("upload_time"))) is not None:
                file.upload_time = uploaded
            file.uploader = self.user(dbsession, entry.get("uploader"))
            self.apply_release(dbsession, result.release, release_entry)
            file.requires_python = result.release.requires_python
            python_version = _text(entry, "python_version")
            if python_version and len(python_version) <= 50:
                file.python_version = python_version
            return True

    # --- releases and packages -----------------------------------------------------------------

    def user(self, dbsession: Session, username) -> User | None:
        return get_user(dbsession, username) if isinstance(username, str) and username else None

    def apply_release(self, dbsession: Session, release, entry: dict) -> None:
        """The manifest's metadata, checked as an upload form is; yank state; dates; uploader."""
        values = {
            key: entry.get(key)
            for key in (
                "metadata_version",
                "summary",
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
                "keywords",
                "classifiers",
            )
            if entry.get(key) is not None
        }
        urls = entry.get("project_urls") or []
        if not isinstance(urls, list) or not all(
            isinstance(u, list) and len(u) == 2 and all(isinstance(p, str) for p in u) for u in urls
        ):
            raise UploadRefused("the manifest's project_urls are not [label, url] pairs")
        metadata = _release_metadata(values, urls, _text(entry, "description"))
        for key, value in vars(metadata).items():
            setattr(release, key, value)
        release.yanked = entry.get("yanked") is True
        release.yanked_reason = _text(entry, "yanked_reason")[:512] if release.yanked else ""
        if (created := _time(entry.get("created"))) is not None:
            release.created = created
        release.uploader = self.user(dbsession, entry.get("uploader"))

    def restore_package(self, entry: dict) -> None:
        """Releases without files, then maintainers, summary and dates (after the files)."""
        name = _text(entry, "name")
        tm, dbsession = self.transaction()
        try:
            with tm:
                if normalize_name(name) != entry.get("normalized_name"):
                    raise UploadRefused("its name and normalized name disagree")
                package = package_service.get_package(dbsession, name)
                if package is None:
                    package = package_service.create_package(dbsession, name, None)
                for release_entry in entry.get("releases") or []:
                    version = _text(release_entry, "version")
                    if release_entry.get("files"):
                        continue  # made with its files (or refused with them)
                    if package_service.get_release(dbsession, package, version) is None:
                        self._release_without_files(dbsession, package, release_entry)
                known = {user.id for user in package.maintainers}
                for username in entry.get("maintainers") or []:
                    user = self.user(dbsession, username)
                    if user is None:
                        self.report.refused.append(
                            (f"maintainer {username!r} of {name!r}", "no such user")
                        )
                    elif user.id not in known:
                        package.maintainers.append(user)
                package.name = name
                package.summary = _text(entry, "summary")[:512]
                if (created := _time(entry.get("created"))) is not None:
                    package.created = created
                if (updated := _time(entry.get("updated"))) is not None:
                    package.updated = updated
        except (UploadRefused, InvalidName) as error:
            self.report.refused.append((f"package {name!r}", str(error) or "invalid name"))

    def _release_without_files(self, dbsession: Session, package, entry: dict) -> None:
        version = _text(entry, "version")
        try:
            canonical_version(version)
        except InvalidVersion:
            raise UploadRefused(f"release {version!r}: not a PEP 440 version") from None
        release = package_service.create_release(
            dbsession, package, version, package_service.ReleaseMetadata(), None
        )
        self.apply_release(dbsession, release, entry)


def restore_export(
    session_factory: sessionmaker,
    storage: Storage,
    directory: str | Path,
    *,
    limits: Limits,
    progress: Callable[[str], None] | None = None,
) -> RestoreReport:
    """Restore users, then every file of every release, then packages' maintainers and dates."""
    directory = Path(directory)
    manifest = read_manifest(directory)
    restorer = _Restorer(session_factory, storage, directory, limits)
    report = restorer.report
    packages = [entry for entry in manifest.get("packages", []) if isinstance(entry, dict)]
    unknown_package_keys = {key for entry in packages for key in entry} - KNOWN_PACKAGE_KEYS
    report.ignored_sections = sorted(set(manifest) - KNOWN_SECTIONS) + sorted(
        f"packages[].{key}" for key in unknown_package_keys
    )
    for entry in manifest.get("users", []):
        if isinstance(entry, dict):
            restorer.restore_user(entry)
    for package_entry in packages:
        for release_entry in package_entry.get("releases") or []:
            if not isinstance(release_entry, dict):
                continue
            for file_entry in release_entry.get("files") or []:
                if isinstance(file_entry, dict):
                    restorer.restore_file(package_entry, release_entry, file_entry)
                    if progress is not None:
                        progress(_text(file_entry, "filename"))
        restorer.restore_package(package_entry)
    return report


def export_root_of(directory: str) -> str | None:
    """The export a ``files/`` directory belongs to (the old documented restore pointed there)."""
    parent = os.path.dirname(os.path.abspath(directory))
    if os.path.basename(os.path.abspath(directory)) == FILES_DIR and is_export(parent):
        return parent
    return None
