"""Uploads and imports: check a distribution file like PyPI does, then store it atomically.

One entry point, :func:`ingest`, serves both the legacy upload API (metadata declared in the
form, checked against the file) and ``extrapypi import`` (metadata read from the file itself).
Everything ``packaging`` can parse is parsed by it: names, versions, filenames, core metadata.
"""

import hmac
import itertools
import tarfile
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import BinaryIO

from packaging.metadata import parse_email
from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    parse_sdist_filename,
    parse_wheel_filename,
)
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session
from transaction.interfaces import TransientError

from ..models import File, Package, Release, User
from ..storage import FileTooLarge, StagedFile, Storage
from . import namespaces as namespace_service
from . import packages as package_service
from . import status as status_service
from .names import InvalidName, InvalidVersion, canonical_version, normalize_name

SDIST = "sdist"
WHEEL = "bdist_wheel"
EXTENSIONS = {SDIST: (".tar.gz", ".zip"), WHEEL: (".whl",)}
METADATA_VERSIONS = ("1.0", "1.1", "1.2", "2.0", "2.1", "2.2", "2.3", "2.4")
#: A METADATA/PKG-INFO file larger than this is refused, never read whole.
CORE_METADATA_LIMIT = 8 * 1024 * 1024
#: Real METADATA compresses 3-10×; past this ratio a member is a bomb, not text.
MAX_COMPRESSION_RATIO = 100
#: Bounds on what an sdist is searched through for its PKG-INFO.
MAX_ARCHIVE_MEMBERS = 100_000
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


def _one(values: Mapping, key: str) -> str:
    value = values.get(key, "")
    if isinstance(value, list | tuple):
        value = value[0] if value else ""
    return value.strip() if isinstance(value, str) else ""


def _many(values: Mapping, key: str) -> list[str]:
    value = values.get(key, [])
    items = value if isinstance(value, list | tuple) else [value]
    return [item.strip() for item in items if isinstance(item, str) and item.strip()]


# --- filenames ---------------------------------------------------------------------------------


def check_filename(filename: str) -> None:
    """A bare file name: nothing that could climb out of a directory or confuse a terminal."""
    if not filename:
        raise UploadRefused("Invalid filename: empty")
    if "/" in filename or "\\" in filename or ".." in filename or filename.startswith("."):
        raise UploadRefused(f"Invalid filename {filename!r}: no path separators or '..' allowed")
    if any(ord(char) < 32 or ord(char) == 127 for char in filename):
        raise UploadRefused("Invalid filename: control characters are not allowed")
    if len(filename) > 255:
        raise UploadRefused("Invalid filename: longer than 255 characters")


def filetype_of(filename: str) -> str:
    """The distribution type a filename's extension says (for files without a form)."""
    lowered = filename.lower()
    for filetype, extensions in EXTENSIONS.items():
        if lowered.endswith(extensions):
            return filetype
    raise UploadRefused(
        f"Invalid filename {filename!r}: not a wheel (.whl) or sdist (.tar.gz, .zip)"
    )


def _sdist_matches(stem: str, normalized_name: str, version: str) -> bool:
    """Old tools wrote ``Foo.Bar-1.0-dev``: try every dash as the name/version split."""
    want = canonical_version(version)
    for index, char in enumerate(stem):
        if char != "-":
            continue
        try:
            if normalize_name(stem[:index]) != normalized_name:
                continue
            if canonical_version(stem[index + 1 :]) == want:
                return True
        except (InvalidName, InvalidVersion):
            continue
    return False


def _wheel_python_tag(filename: str) -> str:
    """``py2.py3`` in ``x-1.0-py2.py3-none-any.whl`` (what twine sends as ``pyversion``)."""
    return filename[: -len(".whl")].split("-")[-3]


def check_filename_matches(filename: str, declared: Declared) -> None:
    """Extension per type, and the name and version the filename encodes are the declared ones."""
    filetype = declared.filetype
    if not filename.endswith(EXTENSIONS[filetype]):
        wanted = " or ".join(EXTENSIONS[filetype])
        raise UploadRefused(f"Invalid filename {filename!r}: a {filetype} must end with {wanted}")
    normalized = declared.normalized_name
    if filetype == WHEEL:
        try:
            name, version, _build, tags = parse_wheel_filename(filename)
        except (InvalidWheelFilename, InvalidVersion) as error:
            raise UploadRefused(f"Invalid wheel filename: {error}") from None
        matches = name == normalized and canonical_version(version) == canonical_version(
            declared.version
        )
        python_tag = _wheel_python_tag(filename)
        interpreters = {tag.interpreter for tag in tags} | {python_tag}
        if declared.pyversion and declared.pyversion not in interpreters:
            raise UploadRefused(
                f"pyversion {declared.pyversion!r} does not match the wheel's tag {python_tag!r}"
            )
    else:
        stem = filename[: -len(".tar.gz")] if filename.endswith(".tar.gz") else filename[:-4]
        try:
            name, version = parse_sdist_filename(filename)
            matches = name == normalized and canonical_version(version) == canonical_version(
                declared.version
            )
        except (InvalidSdistFilename, InvalidVersion):
            matches = False
        matches = matches or _sdist_matches(stem, normalized, declared.version)
    if not matches:
        raise UploadRefused(
            f"Invalid filename {filename!r}: it must start with the project name and version "
            f"({declared.name} {declared.version})"
        )


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
        normalize_name(name)
    except InvalidName:
        raise UploadRefused(f"Invalid project name {name!r}") from None
    if not version:
        raise UploadRefused("Missing version")
    try:
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
    pyversion = _wheel_python_tag(filename) if filetype == WHEEL else "source"
    return Declared(
        name=name,
        version=version,
        filetype=filetype,
        pyversion=pyversion,
        metadata=_release_metadata(values, project_urls, raw.get("description", "")),
    )


def _parse_core_metadata(data: bytes) -> dict:
    raw, unparsed = parse_email(data)
    for key in ("metadata_version", "name", "version"):
        if key in unparsed:
            raise UploadRefused(f"Invalid core metadata: the {key} field is malformed or repeated")
    return raw


# --- reading the file --------------------------------------------------------------------------


def _bounded_read(read: Callable[[int], bytes], what: str) -> bytes:
    data = read(CORE_METADATA_LIMIT + 1)
    if len(data) > CORE_METADATA_LIMIT:
        raise UploadRefused(f"{what} is larger than {CORE_METADATA_LIMIT} bytes")
    return data


def wheel_metadata(filename: str, stream: BinaryIO) -> bytes:
    """The bytes of the wheel's one ``*.dist-info/METADATA``, read without expanding anything else.

    zipfile never reads past a member's recorded size, and the size and ratio are checked first:
    a bomb is refused before a byte of it is inflated.
    """
    try:
        archive = zipfile.ZipFile(stream)
    except (zipfile.BadZipFile, OSError, ValueError) as error:
        raise UploadRefused(f"Invalid wheel {filename!r}: not a valid zip file ({error})") from None
    with archive:
        candidates = [
            info
            for info in archive.infolist()
            if info.filename.count("/") == 1
            and info.filename.endswith("/METADATA")
            and info.filename.split("/")[0].endswith(".dist-info")
        ]
        if len(candidates) != 1:
            raise UploadRefused(
                f"Invalid wheel {filename!r}: expected exactly one *.dist-info/METADATA, "
                f"found {len(candidates)}"
            )
        info = candidates[0]
        if info.file_size > CORE_METADATA_LIMIT:
            raise UploadRefused(f"Invalid wheel {filename!r}: METADATA is too large")
        if info.file_size > 64 * 1024 and info.file_size > MAX_COMPRESSION_RATIO * max(
            info.compress_size, 1
        ):
            raise UploadRefused(
                f"Invalid wheel {filename!r}: METADATA has an absurd compression ratio"
            )
        try:
            with archive.open(info) as member:
                return _bounded_read(member.read, "METADATA")
        except (zipfile.BadZipFile, OSError, ValueError, NotImplementedError) as error:
            raise UploadRefused(
                f"Invalid wheel {filename!r}: cannot read METADATA ({error})"
            ) from None


def _top_level(path: str, suffix: str) -> bool:
    """``<one directory>/<suffix>``: where PKG-INFO sits in an sdist."""
    return path.count("/") == 1 and path.endswith("/" + suffix)


def sdist_metadata(filename: str, stream: BinaryIO) -> bytes:
    """The bytes of an sdist's top-level ``PKG-INFO`` (bounded, nothing else expanded)."""
    try:
        if filename.endswith(".zip"):
            with zipfile.ZipFile(stream) as archive:
                infos = archive.infolist()[:MAX_ARCHIVE_MEMBERS]
                found = next((i for i in infos if _top_level(i.filename, "PKG-INFO")), None)
                if found is not None and found.file_size <= CORE_METADATA_LIMIT:
                    with archive.open(found) as member:
                        return _bounded_read(member.read, "PKG-INFO")
        else:
            with tarfile.open(fileobj=stream, mode="r:gz") as archive:
                members = itertools.islice(archive, MAX_ARCHIVE_MEMBERS)
                found = next(
                    (m for m in members if m.isfile() and _top_level(m.name, "PKG-INFO")), None
                )
                if found is not None and found.size <= CORE_METADATA_LIMIT:
                    return _bounded_read(archive.extractfile(found).read, "PKG-INFO")
    except (tarfile.TarError, zipfile.BadZipFile, OSError, EOFError, ValueError) as error:
        raise UploadRefused(
            f"Invalid sdist {filename!r}: cannot read the archive ({error})"
        ) from None
    raise UploadRefused(f"Invalid sdist {filename!r}: no usable top-level PKG-INFO")


def _check_core_metadata(filename: str, data: bytes, declared: Declared) -> None:
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
            f"Invalid wheel {filename!r}: its METADATA says {name} {version}, "
            f"the upload says {declared.name} {declared.version}"
        )
    if raw.get("metadata_version") not in METADATA_VERSIONS:
        raise UploadRefused(
            f"Invalid wheel {filename!r}: unknown Metadata-Version {raw.get('metadata_version')!r}"
        )


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
    metadata is read from the file. ``fileobj`` must be seekable (wheels are opened as zips).
    ``authorize(package_or_None, declared)`` raises :class:`UploadForbidden` to refuse.
    Raises :class:`UploadRefused` (nothing stored) or :class:`ConcurrentUpload` (retry).
    """
    check_filename(filename)
    core_metadata: bytes | None = None
    if declared is None:
        filetype = filetype_of(filename)
        _seek_start(fileobj)
        reader = wheel_metadata if filetype == WHEEL else sdist_metadata
        core_metadata = reader(filename, fileobj)
        checked = declared_from_core_metadata(filename, filetype, core_metadata)
        if filetype == SDIST:
            core_metadata = None  # PEP 658 serves wheels' METADATA only
    else:
        checked = declared_from_form(declared)
    check_filename_matches(filename, checked)
    if package_service.filename_was_deleted(dbsession, filename):
        raise UploadRefused(
            f"Filename {filename!r} was used by a deleted file and cannot be reused: "
            "upload a new version"
        )

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
    if not result.created:
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
            return IngestResult(existing, existing.release.package, existing.release, False)
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
    if checked.filetype == WHEEL and core_metadata is None:
        _seek_start(fileobj)
        core_metadata = wheel_metadata(filename, fileobj)
        _check_core_metadata(filename, core_metadata, checked)

    try:
        if package is None:
            package = package_service.create_package(dbsession, checked.name, user)
        release = package_service.get_release(dbsession, package, checked.version)
        if release is None:
            release = package_service.create_release(
                dbsession, package, checked.version, checked.metadata, user
            )
        file = package_service.add_file(
            dbsession,
            storage,
            transaction,
            release,
            filename=filename,
            filetype=checked.filetype,
            python_version=checked.pyversion,
            staged=staged,
            core_metadata=core_metadata,
            uploader=user,
        )
        dbsession.flush()
    except IntegrityError as error:
        raise ConcurrentUpload(f"concurrent upload of {filename}") from error
    except OperationalError as error:
        if _is_lock_conflict(error):
            raise ConcurrentUpload(f"concurrent upload of {filename}") from error
        raise
    return IngestResult(file, package, release, True)
