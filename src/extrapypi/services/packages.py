"""Packages, releases and files: lookups, creation, maintainers, yanking and deletion."""

import io
import logging
from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from ..models import File, FileTombstone, Package, Release, User
from ..models.meta import utcnow
from ..storage import StagedFile, Storage, delete_after_commit, publish_on_commit
from .descriptions import describe_new_release
from .journal import record
from .metrics import count_upload
from .names import canonical_version, normalize_name, version_sort_key
from .namespaces import owning_teams

log = logging.getLogger(__name__)


def log_after_commit(transaction, message: str, *args) -> None:
    """Log an upload or deletion at INFO once it is committed (an aborted one never happened)."""
    transaction.addAfterCommitHook(lambda success: success and log.info(message, *args))


class PackageError(ValueError):
    """A request about packages that cannot be honoured; the message is for the user."""


def storage_key(package: Package, filename: str) -> str:
    return f"{package.normalized_name}/{filename}"


def get_package(dbsession: Session, name: str) -> Package | None:
    """The package named ``name`` in any spelling PEP 503 treats as the same."""
    try:
        normalized = normalize_name(name)
    except ValueError:
        return None
    return dbsession.scalars(
        select(Package).where(Package.normalized_name == normalized)
    ).one_or_none()


def create_package(dbsession: Session, name: str, creator: User | None) -> Package:
    package = Package(name=name, normalized_name=normalize_name(name))
    if creator is not None:
        package.maintainers.append(creator)
    # A project created in a team's namespace is the team's (PEP 752 "owned").
    package.team_maintainers.extend(owning_teams(dbsession, package.normalized_name))
    dbsession.add(package)
    dbsession.flush()
    record(dbsession, "create package", package_name=package.name, user=creator)
    return package


def is_maintainer(package: Package, user: User) -> bool:
    return any(m.id == user.id for m in package.maintainers)


def add_maintainer(dbsession: Session, package: Package, user: User, actor: User | None) -> None:
    if is_maintainer(package, user):
        raise PackageError(f"{user.username} already maintains {package.name}.")
    package.maintainers.append(user)
    record(dbsession, "add maintainer", package_name=package.name, detail=user.username, user=actor)


def remove_maintainer(dbsession: Session, package: Package, user: User, actor: User | None) -> None:
    if not is_maintainer(package, user):
        raise PackageError(f"{user.username} does not maintain {package.name}.")
    package.maintainers.remove(user)
    record(
        dbsession, "remove maintainer", package_name=package.name, detail=user.username, user=actor
    )


def get_release(
    dbsession: Session, package: Package, version: str, with_files: bool = True
) -> Release | None:
    """The release in any spelling of its version; ``with_files=False`` leaves them to a lookup."""
    try:
        canonical = canonical_version(version)
    except ValueError:
        return None
    query = select(Release).where(
        Release.package_id == package.id, Release.canonical_version == canonical
    )
    if with_files:
        query = query.options(selectinload(Release.files))
    return dbsession.scalars(query).one_or_none()


def get_release_file(dbsession: Session, release: Release, filename: str) -> File | None:
    """One file of a release by name (a download needs no other row)."""
    return dbsession.scalars(
        select(File).where(File.release_id == release.id, File.filename == filename)
    ).one_or_none()


def get_file(dbsession: Session, filename: str) -> File | None:
    return dbsession.scalars(select(File).where(File.filename == filename)).one_or_none()


def filename_was_deleted(dbsession: Session, filename: str) -> bool:
    return dbsession.get(FileTombstone, filename) is not None


def deleted_filenames(dbsession: Session, normalized_name: str) -> list[str]:
    """Deleted filenames that may belong to this project in any spelling (``Foo.Bar``,
    ``foo_bar``): a superset, callers compare the parsed names."""
    pattern = "%".join(normalized_name.split("-")) + "%"
    return list(
        dbsession.scalars(
            select(FileTombstone.filename).where(func.lower(FileTombstone.filename).like(pattern))
        )
    )


@dataclass
class ReleaseMetadata:
    """The core metadata a release row keeps (from the upload form or the file itself)."""

    metadata_version: str = ""
    summary: str = ""
    description: str = ""
    description_content_type: str = ""
    requires_python: str = ""
    requires_dist: list[str] = field(default_factory=list)
    provides_extra: list[str] = field(default_factory=list)
    author: str = ""
    author_email: str = ""
    maintainer: str = ""
    maintainer_email: str = ""
    license: str = ""
    license_expression: str = ""
    home_page: str = ""
    project_urls: list[list[str]] = field(default_factory=list)
    keywords: str = ""
    classifiers: list[str] = field(default_factory=list)


def create_release(
    dbsession: Session,
    package: Package,
    version: str,
    metadata: ReleaseMetadata,
    uploader: User | None,
) -> Release:
    release = Release(
        package=package,
        version=version,
        canonical_version=canonical_version(version),
        sort_key=version_sort_key(version),
        uploader=uploader,
        **vars(metadata),
    )
    dbsession.add(release)
    # Rendered now (bounded, in a child process), before the release row takes a write lock.
    describe_new_release(dbsession, release)
    dbsession.flush()
    return release


def metadata_key(package: Package, filename: str) -> str:
    """Where a wheel's METADATA is kept, served at ``<file URL>.metadata`` (PEP 658)."""
    return storage_key(package, filename) + ".metadata"


def add_file(
    dbsession: Session,
    storage: Storage,
    transaction,
    release: Release,
    *,
    filename: str,
    filetype: str,
    python_version: str,
    staged: StagedFile,
    core_metadata: bytes | None,
    uploader: User | None,
    requires_python: str | None = None,
) -> File:
    """Record a validated, staged file; storage publishes it (and its METADATA) on commit.

    ``requires_python`` is the file's own (installers read it per file); the release's otherwise.
    """
    package = release.package
    metadata_sha256 = None
    if core_metadata is not None:
        staged_metadata = storage.stage(io.BytesIO(core_metadata))
        metadata_sha256 = staged_metadata.digests.sha256
        publish_on_commit(transaction, storage, staged_metadata, metadata_key(package, filename))
    digests = staged.digests
    file = File(
        release=release,
        filename=filename,
        filetype=filetype,
        python_version=python_version,
        requires_python=release.requires_python if requires_python is None else requires_python,
        size=digests.size,
        sha256=digests.sha256,
        blake2b_256=digests.blake2b_256,
        md5=digests.md5,
        metadata_sha256=metadata_sha256,
        uploader=uploader,
    )
    # Registered before the flush, so a failing flush (a filename taken in a race) still
    # discards the staged file when the transaction aborts; nothing is published before commit.
    publish_on_commit(transaction, storage, staged, storage_key(package, filename))
    dbsession.add(file)
    dbsession.flush()  # the unique filename decides a race here, before anything is published
    log_after_commit(
        transaction,
        "upload %s (%s %s, %d bytes, sha256 %s) by %s",
        filename,
        package.name,
        release.version,
        digests.size,
        digests.sha256,
        _name(uploader),
    )
    count_upload(transaction, digests.size)
    touch_package(
        package, release.summary if release.sort_key == latest_sort_key(package) else None
    )
    record(
        dbsession,
        "add file",
        package_name=package.name,
        version=release.version,
        filename=filename,
        user=uploader,
        changes_index=True,
    )
    return file


def latest_sort_key(package: Package) -> str:
    return max((r.sort_key for r in package.releases), default="")


def touch_package(package: Package, summary: str | None = None) -> None:
    package.updated = utcnow()
    if summary is not None:
        package.summary = summary[:512]


def set_yanked(
    dbsession: Session, release: Release, yanked: bool, reason: str, actor: User | None
) -> None:
    """Yank (PEP 592) or unyank a release; installers skip it unless pinned to it exactly."""
    release.yanked = yanked
    release.yanked_reason = reason.strip()[:512] if yanked else ""
    record(
        dbsession,
        "yank release" if yanked else "unyank release",
        package_name=release.package.name,
        version=release.version,
        detail=release.yanked_reason,
        user=actor,
        changes_index=True,
    )


def _name(user: User | None) -> str:
    return user.username if user is not None else "-"


def _bury_file(dbsession: Session, storage: Storage, transaction, file: File, package: Package):
    if dbsession.get(FileTombstone, file.filename) is None:
        dbsession.add(FileTombstone(filename=file.filename))
    delete_after_commit(transaction, storage, storage_key(package, file.filename))
    if file.metadata_sha256:
        delete_after_commit(transaction, storage, metadata_key(package, file.filename))


def delete_file(
    dbsession: Session, storage: Storage, transaction, file: File, actor: User | None
) -> None:
    release = file.release
    package = release.package
    _bury_file(dbsession, storage, transaction, file, package)
    release.files.remove(file)
    dbsession.delete(file)
    log_after_commit(transaction, "delete file %s by %s", file.filename, _name(actor))
    record(
        dbsession,
        "delete file",
        package_name=package.name,
        version=release.version,
        filename=file.filename,
        user=actor,
        changes_index=True,
    )


def delete_release(
    dbsession: Session, storage: Storage, transaction, release: Release, actor: User | None
) -> None:
    package = release.package
    for file in release.files:
        _bury_file(dbsession, storage, transaction, file, package)
    package.releases.remove(release)
    dbsession.delete(release)
    log_after_commit(
        transaction, "delete release %s %s by %s", package.name, release.version, _name(actor)
    )
    record(
        dbsession,
        "delete release",
        package_name=package.name,
        version=release.version,
        user=actor,
        changes_index=True,
    )


def delete_package(
    dbsession: Session, storage: Storage, transaction, package: Package, actor: User | None
) -> None:
    for release in package.releases:
        for file in release.files:
            _bury_file(dbsession, storage, transaction, file, package)
    dbsession.delete(package)
    log_after_commit(transaction, "delete package %s by %s", package.name, _name(actor))
    record(dbsession, "delete package", package_name=package.name, user=actor, changes_index=True)
