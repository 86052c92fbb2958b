"""Uploads and imports: check a distribution file like PyPI does, then store it atomically.

One entry point, :func:`ingest`, serves both the legacy upload API (metadata declared in the
form, checked against the file) and ``extrapypi import`` (metadata read from the file itself).
Everything ``packaging`` can parse is parsed by it: names, versions, filenames, core metadata.
Filename rules live in :mod:`.filenames`, reading inside archives in :mod:`.archives`; this
module owns the form, the checks of file against form, and the ingest itself.
"""

import hmac
import io
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import BinaryIO

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session
from transaction.interfaces import TransientError

from ..models import File, Package, Release, User
from ..storage import FileTooLarge, StagedFile, Storage, publish_on_commit
from . import namespaces as namespace_service
from . import packages as package_service
from . import status as status_service
from .filenames import (
    EXTENSIONS,
    SDIST,
    WHEEL,
    InvalidFilename,
    check_filename,
    check_filename_matches,
    filetype_of,
    same_file,
    wheel_python_tag,
)
from .names import InvalidName, InvalidVersion, canonical_version, normalize_name

METADATA_VERSIONS = ("1.0", "1.1", "1.2", "2.0", "2.1", "2.2", "2.3", "2.4")
DIGEST_FIELDS = {"sha256_digest": "sha256", "blake2_256_digest": "blake2b_256", "md5_digest": "md5"}
#: Fields installers or PyPI hold to a length: longer values are refused, the field named.
MAX_LENGTHS = {
    "summary": 512,
    "description_content_type": 128,
    "requires_python": 255,
    "license_expression": 512,
}
#: Descriptive fields cut to their column's width (the file keeps the full text): old packages
#: with long author lists must still import.
CUT_LENGTHS = {
    "author": 512,
    "author_email": 512,
    "maintainer": 512,
    "maintainer_email": 512,
    "home_page": 1024,
    "keywords": 1024,
}
#: Description and license (MEDIUMTEXT on MySQL): longer values are cut for display; the full
#: text stays in the distribution's own METADATA.
MAX_TEXT_BYTES = 4 * 1024 * 1024
TRUNCATED = "\n\n[… cut: the full text is in the distribution's metadata]"


class UploadRefused(Exception):
    """The upload is refused; the message says why, in one line, for the HTTP status line."""

    status = 400


class UploadForbidden(UploadRefused):
    status = 403


class UploadConflict(UploadRefused):
    """The name is in a namespace the uploader does not hold (PEP 752: 409 Conflict)."""

    status = 409


class ConcurrentUpload(TransientError):
    """Another transaction wrote the same package, release or file first: retry from the start.

    A ``TransientError`` is retried by pyramid_tm/pyramid_retry; the retry sees the winner's rows
    and answers as for any duplicate.
    """


@dataclass(frozen=True)
class Limits:
    upload_bytes: int
    project_bytes: int = 0  # 0: no limit


@dataclass
class Declared:
    """What an upload says it is, checked: the release metadata plus file facts."""

    name: str
    version: str
    filetype: str
    pyversion: str
    metadata: package_service.ReleaseMetadata
    digests: dict[str, str] = field(default_factory=dict)

    @property
    def normalized_name(self) -> str:
        return normalize_name(self.name)


@dataclass
class IngestResult:
    file: File
    package: Package
    release: Release
    #: False when the identical file was already there (a harmless re-upload).
    created: bool
    #: True when that file's stored copy was missing and this upload's copy replaces it.
    restored: bool = False


def _one(values: Mapping, key: str) -> str:
    value = values.get(key, "")
    if isinstance(value, list | tuple):
        value = value[0] if value else ""
    return value.strip() if isinstance(value, str) else ""


def _many(values: Mapping, key: str) -> list[str]:
    value = values.get(key, [])
    items = value if isinstance(value, list | tuple) else [value]
    return [item.strip() for item in items if isinstance(item, str) and item.strip()]


# --- declared metadata -------------------------------------------------------------------------


def _fit_text(value: str) -> str:
    data = value.encode("utf-8")
    if len(data) <= MAX_TEXT_BYTES:
        return value
    room = MAX_TEXT_BYTES - len(TRUNCATED.encode("utf-8"))
    return data[:room].decode("utf-8", "ignore") + TRUNCATED


def _release_metadata(
    values: Mapping, project_urls: list[list[str]], description: str
) -> package_service.ReleaseMetadata:
    """Release metadata from form-shaped values, each field checked where installers rely on it."""
    # packaging's metadata modules load with the first upload, not at start-up
    from packaging.requirements import InvalidRequirement, Requirement

    metadata_version = _one(values, "metadata_version")
    if metadata_version not in METADATA_VERSIONS:
        raise UploadRefused(
            f"Unknown Metadata-Version {metadata_version!r}: expected one of "
            + ", ".join(METADATA_VERSIONS)
        )
    requires_python = _one(values, "requires_python")
    if requires_python:
        try:
            SpecifierSet(requires_python)
        except InvalidSpecifier:
            raise UploadRefused(f"Invalid Requires-Python {requires_python!r}") from None
    requires_dist = _many(values, "requires_dist")
    for requirement in requires_dist:
        try:
            Requirement(requirement)
        except InvalidRequirement as error:
            raise UploadRefused(f"Invalid Requires-Dist {requirement!r}: {error}") from None
    provides_extra = _many(values, "provides_extra")
    for extra in provides_extra:
        try:
            normalize_name(extra)
        except InvalidName:
            raise UploadRefused(f"Invalid Provides-Extra {extra!r}") from None
    metadata = package_service.ReleaseMetadata(
        metadata_version=metadata_version,
        summary=_one(values, "summary"),
        description=_fit_text(description),
        description_content_type=_one(values, "description_content_type"),
        requires_python=requires_python,
        requires_dist=requires_dist,
        provides_extra=provides_extra,
        author=_one(values, "author"),
        author_email=_one(values, "author_email"),
        maintainer=_one(values, "maintainer"),
        maintainer_email=_one(values, "maintainer_email"),
        license=_fit_text(_one(values, "license")),
        license_expression=_one(values, "license_expression"),
        home_page=_one(values, "home_page"),
        project_urls=project_urls,
        keywords=_one(values, "keywords"),
        classifiers=_many(values, "classifiers"),
    )
    for name, limit in MAX_LENGTHS.items():
        if len(getattr(metadata, name)) > limit:
            raise UploadRefused(f"{name} is too long: at most {limit} characters")
    for name, limit in CUT_LENGTHS.items():
        setattr(metadata, name, getattr(metadata, name)[:limit])
    return metadata


def _name_and_version(name: str, version: str) -> tuple[str, str]:
    if not name:
        raise UploadRefused("Missing project name")
    try:
        if not name.isascii():
            raise InvalidName(name)
        normalize_name(name)
    except InvalidName:
        raise UploadRefused(f"Invalid project name {name!r}") from None
    if not version:
        raise UploadRefused("Missing version")
    try:
        if not version.isascii():
            raise InvalidVersion(version)
        canonical_version(version)
    except InvalidVersion:
        raise UploadRefused(f"Invalid version {version!r}: not a PEP 440 version") from None
    if len(name) > 200 or len(version) > 100:
        raise UploadRefused("Project name or version too long")
    return name, version


def declared_from_form(values: Mapping) -> Declared:
    """Check what the legacy upload form declares (the fields twine and setuptools send)."""
    name, version = _name_and_version(_one(values, "name"), _one(values, "version"))
    filetype = _one(values, "filetype")
    if filetype not in EXTENSIONS:
        raise UploadRefused(
            f"Unsupported filetype {filetype!r}: only sdist and bdist_wheel are accepted"
        )
    pyversion = _one(values, "pyversion")
    if filetype == SDIST and pyversion not in ("", "source"):
        raise UploadRefused(f"pyversion must be 'source' for an sdist, not {pyversion!r}")
    if filetype == WHEEL and pyversion in ("", "source"):
        raise UploadRefused("pyversion must name the wheel's Python tag (e.g. py3)")
    project_urls = []
    for entry in _many(values, "project_urls"):
        label, _, url = entry.partition(",")
        if not url.strip():
            raise UploadRefused(f"Invalid project_urls entry {entry!r}: expected 'Label, URL'")
        project_urls.append([label.strip(), url.strip()])
    digests = {}
    for form_name, digest_name in DIGEST_FIELDS.items():
        value = _one(values, form_name).lower()
        if value:
            digests[digest_name] = value
    if not digests:
        raise UploadRefused(
            "Missing digest: send at least one of sha256_digest, blake2_256_digest, md5_digest"
        )
    return Declared(
        name=name,
        version=version,
        filetype=filetype,
        pyversion=pyversion or "source",
        metadata=_release_metadata(values, project_urls, _one(values, "description")),
        digests=digests,
    )


def declared_from_core_metadata(filename: str, filetype: str, data: bytes) -> Declared:
    """What a file's own METADATA / PKG-INFO declares (for imports: no form)."""
    raw = _parse_core_metadata(data)
    name, version = _name_and_version(raw.get("name", ""), raw.get("version", ""))
    values = dict(raw)
    values["keywords"] = ", ".join(raw.get("keywords", []))
    project_urls = [[label, url] for label, url in raw.get("project_urls", {}).items()]
    pyversion = wheel_python_tag(filename) if filetype == WHEEL else "source"
    return Declared(
        name=name,
        version=version,
        filetype=filetype,
        pyversion=pyversion,
        metadata=_release_metadata(values, project_urls, raw.get("description", "")),
    )


def _parse_core_metadata(data: bytes) -> dict:
    from packaging.metadata import parse_email

    raw, unparsed = parse_email(data)
    for key in ("metadata_version", "name", "version"):
        if key in unparsed:
            raise UploadRefused(f"Invalid core metadata: the {key} field is malformed or repeated")
    return raw


# --- the file against the form ----------------------------------------------------------------


def _read_core_metadata(filename: str, filetype: str, stream: BinaryIO) -> bytes:
    """The METADATA of a wheel or the PKG-INFO of an sdist, read safely (see :mod:`.archives`)."""
    from .archives import InvalidArchive, sdist_metadata, wheel_metadata

    _seek_start(stream)
    reader = wheel_metadata if filetype == WHEEL else sdist_metadata
    try:
        return reader(filename, stream)
    except InvalidArchive as error:
        raise UploadRefused(str(error)) from None


def _same_requires_python(declared: str, found: str) -> bool:
    if declared == found:
        return True
    try:
        return SpecifierSet(declared) == SpecifierSet(found)
    except InvalidSpecifier:
        return False


def _check_core_metadata(filename: str, data: bytes, declared: Declared) -> None:
    """The file's own metadata must say what the upload says; its Requires-Python wins.

    Installers trust the file; the index shows the form: where they differ (``alpha-1.2.tar.gz``
    holding beta 9.9, a form saying ``>=3.6`` for a wheel that needs ``>=3.99``) the upload
    is refused rather than advertised wrongly.
    """
    what = "wheel" if declared.filetype == WHEEL else "sdist"
    member = "METADATA" if declared.filetype == WHEEL else "PKG-INFO"
    raw = _parse_core_metadata(data)
    name, version = raw.get("name", ""), raw.get("version", "")
    try:
        same = normalize_name(name) == declared.normalized_name and canonical_version(
            version
        ) == canonical_version(declared.version)
    except (InvalidName, InvalidVersion):
        same = False
    if not same:
        raise UploadRefused(
            f"Invalid {what} {filename!r}: its {member} says {name} {version}, "
            f"the upload says {declared.name} {declared.version}"
        )
    if raw.get("metadata_version") not in METADATA_VERSIONS:
        raise UploadRefused(
            f"Invalid {what} {filename!r}: unknown Metadata-Version {raw.get('metadata_version')!r}"
        )
    found = raw.get("requires_python", "").strip()
    if found:
        try:
            SpecifierSet(found)
        except InvalidSpecifier:
            raise UploadRefused(
                f"Invalid {what} {filename!r}: its {member} has an invalid Requires-Python "
                f"{found!r}"
            ) from None
    said = declared.metadata.requires_python
    if said and not _same_requires_python(said, found):
        raise UploadRefused(
            f"Requires-Python mismatch: the upload says {said!r}, the {what}'s own {member} "
            + (f"says {found!r}" if found else "has none")
        )
    declared.metadata.requires_python = found


def _seek_start(stream: BinaryIO) -> None:
    try:
        stream.seek(0)
    except (AttributeError, OSError) as error:
        raise TypeError("ingest needs a seekable file to inspect the distribution") from error


# --- the whole ingest --------------------------------------------------------------------------


def _check_digests(declared: Declared, staged: StagedFile) -> None:
    for name, expected in declared.digests.items():
        actual = getattr(staged.digests, name)
        if not hmac.compare_digest(expected.encode(), actual.encode()):
            raise UploadRefused(
                f"The {name} digest of the received file does not match the one sent "
                "(the upload was damaged in transit)"
            )


def _project_size(dbsession: Session, package: Package) -> int:
    total = dbsession.scalar(
        select(func.coalesce(func.sum(File.size), 0))
        .join(Release, File.release_id == Release.id)
        .where(Release.package_id == package.id)
    )
    return int(total or 0)


def _is_lock_conflict(error: OperationalError) -> bool:
    return "database is locked" in str(error.orig)


def _check_not_deleted(dbsession: Session, filename: str, checked: Declared) -> None:
    """A deleted file's name is never reused, in any spelling installers take as the same."""
    for buried in package_service.deleted_filenames(dbsession, checked.normalized_name):
        if same_file(buried, filename, checked.normalized_name, checked.version):
            spelling = f" (deleted as {buried!r})" if buried != filename else ""
            raise UploadRefused(
                f"Filename {filename!r} was used by a deleted file{spelling} and cannot be "
                "reused: upload a new version"
            )


def ingest(
    dbsession: Session,
    storage: Storage,
    transaction,
    user: User | None,
    filename: str,
    fileobj: BinaryIO,
    declared: Mapping | None = None,
    *,
    limits: Limits,
    authorize: Callable[[Package | None, Declared], None] | None = None,
) -> IngestResult:
    """Check one distribution file and record it; storage publishes it on commit.

    ``declared`` is the upload form (name, version, filetype, digests, metadata); without it the
    metadata is read from the file. ``fileobj`` must be seekable (archives are opened in place).
    ``authorize(package_or_None, declared)`` raises :class:`UploadForbidden` to refuse.
    Raises :class:`UploadRefused` (nothing stored) or :class:`ConcurrentUpload` (retry).
    """
    core_metadata: bytes | None = None
    try:
        check_filename(filename)
        if declared is None:
            filetype = filetype_of(filename)
            core_metadata = _read_core_metadata(filename, filetype, fileobj)
            checked = declared_from_core_metadata(filename, filetype, core_metadata)
        else:
            checked = declared_from_form(declared)
        check_filename_matches(
            filename, checked.filetype, checked.name, checked.version, checked.pyversion
        )
    except InvalidFilename as error:
        raise UploadRefused(str(error)) from None
    _check_not_deleted(dbsession, filename, checked)

    package = package_service.get_package(dbsession, checked.name)
    if authorize is not None:
        authorize(package, checked)
    check_project_rules(dbsession, package, checked.name, user)

    _seek_start(fileobj)
    try:
        staged = storage.stage(fileobj, limits.upload_bytes)
    except FileTooLarge:
        raise UploadRefused(
            f"File too large: the limit is {limits.upload_bytes} bytes per file"
        ) from None
    try:
        result = _record(
            dbsession,
            storage,
            transaction,
            user,
            filename=filename,
            fileobj=fileobj,
            checked=checked,
            package=package,
            staged=staged,
            core_metadata=core_metadata,
            limits=limits,
        )
    except BaseException:
        storage.discard(staged)
        raise
    if not result.created and not result.restored:
        storage.discard(staged)
    return result


def check_project_rules(
    dbsession: Session, package: Package | None, name: str, user: User | None
) -> None:
    """An existing project's status may refuse uploads (PEP 792); a new project's name may lie
    in a namespace the uploader does not hold (PEP 752)."""
    if package is not None:
        refusal = status_service.upload_refusal(package)
        if refusal is not None:
            raise UploadRefused(refusal)
        return
    conflict = namespace_service.creation_conflict(dbsession, name, user)
    if conflict is not None:
        raise UploadConflict(conflict)


def _restore_missing(
    storage: Storage, transaction, existing: File, staged: StagedFile, fileobj: BinaryIO
) -> bool:
    """An identical re-upload of a file whose publishing failed after its commit finishes it.

    Without this a client retrying after the 5xx would get "nothing changed" for a file that
    still cannot be downloaded. Returns whether ``staged`` is now to be published.
    """
    package = existing.release.package
    restored = False
    if not storage.exists(package_service.storage_key(package, existing.filename)):
        publish_on_commit(
            transaction, storage, staged, package_service.storage_key(package, existing.filename)
        )
        restored = True
    key = package_service.metadata_key(package, existing.filename)
    if existing.metadata_sha256 and not storage.exists(key):
        content = _read_core_metadata(existing.filename, WHEEL, fileobj)
        metadata = storage.stage(io.BytesIO(content))
        if hmac.compare_digest(metadata.digests.sha256, existing.metadata_sha256):
            publish_on_commit(transaction, storage, metadata, key)
        else:
            storage.discard(metadata)
    return restored


def _check_release_files(
    dbsession: Session, release: Release, filename: str, checked: Declared
) -> None:
    """No second spelling of a file already in the release; one sdist per release, as PyPI."""
    for file in release.files:
        if file.filename != filename and same_file(
            file.filename, filename, checked.normalized_name, checked.version
        ):
            raise UploadRefused(
                f"File already exists: {file.filename!r} is the same file under another "
                "spelling of its name; upload a new version instead"
            )
    if checked.filetype != SDIST:
        return
    # Two different sdists racing into one release: the release row serializes them, and the
    # locking read sees the winner's row even under MySQL's repeatable read.
    dbsession.execute(select(Release.id).where(Release.id == release.id).with_for_update())
    sdist = dbsession.scalars(
        select(File.filename)
        .where(File.release_id == release.id, File.filetype == SDIST, File.filename != filename)
        .with_for_update(read=True)
    ).first()
    if sdist is not None:
        raise UploadRefused(
            f"Only one sdist may be uploaded per release: {checked.name} {release.version} "
            f"already has {sdist!r}"
        )


def _record(
    dbsession: Session,
    storage: Storage,
    transaction,
    user: User | None,
    *,
    filename: str,
    fileobj: BinaryIO,
    checked: Declared,
    package: Package | None,
    staged: StagedFile,
    core_metadata: bytes | None,
    limits: Limits,
) -> IngestResult:
    _check_digests(checked, staged)
    existing = package_service.get_file(dbsession, filename)
    if existing is not None:
        if hmac.compare_digest(existing.sha256, staged.digests.sha256):
            restored = _restore_missing(storage, transaction, existing, staged, fileobj)
            return IngestResult(
                existing, existing.release.package, existing.release, False, restored
            )
        raise UploadRefused(
            f"File already exists: {filename!r} was uploaded before with different content "
            "(sha256 differs); upload a new version instead"
        )
    if limits.project_bytes:
        used = _project_size(dbsession, package) if package is not None else 0
        if used + staged.digests.size > limits.project_bytes:
            raise UploadRefused(
                f"Project size limit reached: {checked.name} may hold at most "
                f"{limits.project_bytes} bytes of files"
            )
    if core_metadata is None:  # a form upload: now the file itself must agree with it
        core_metadata = _read_core_metadata(filename, checked.filetype, fileobj)
    _check_core_metadata(filename, core_metadata, checked)

    try:
        release = None
        if package is None:
            package = package_service.create_package(dbsession, checked.name, user)
        else:
            release = package_service.get_release(dbsession, package, checked.version)
        if release is None:
            release = package_service.create_release(
                dbsession, package, checked.version, checked.metadata, user
            )
        else:
            _check_release_files(dbsession, release, filename, checked)
        file = package_service.add_file(
            dbsession,
            storage,
            transaction,
            release,
            filename=filename,
            filetype=checked.filetype,
            python_version=checked.pyversion,
            staged=staged,
            # PEP 658 serves a wheel's METADATA; an sdist's PKG-INFO is not served
            core_metadata=core_metadata if checked.filetype == WHEEL else None,
            uploader=user,
            requires_python=checked.metadata.requires_python,
        )
        dbsession.flush()
    except IntegrityError as error:
        raise ConcurrentUpload(f"concurrent upload of {filename}") from error
    except OperationalError as error:
        if _is_lock_conflict(error):
            raise ConcurrentUpload(f"concurrent upload of {filename}") from error
        raise
    return IngestResult(file, package, release, True)
