"""Distribution filenames: which ones the index takes, and when two spellings name one file.

A filename ends up as a directory entry (local storage: 255 bytes at most), in an S3 key (1024),
in URLs and in the ``Content-Disposition`` header of every download: anything but plain ASCII
letters, digits and ``. _ - + !`` (all that PEP 427/440/625 names and versions ever need) is
refused, and the length leaves room for the ``.metadata`` file (PEP 658) that sits beside it.
Names and versions are parsed by ``packaging``; old sdists (``Foo.Bar-1.0-dev.tar.gz``) are
matched liberally, every dash tried as the name/version split.
"""

import re

from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    parse_sdist_filename,
    parse_wheel_filename,
)

from .names import InvalidName, InvalidVersion, canonical_version, normalize_name

SDIST = "sdist"
WHEEL = "bdist_wheel"
EXTENSIONS = {SDIST: (".tar.gz", ".zip"), WHEEL: (".whl",)}
METADATA_SUFFIX = ".metadata"
#: Filesystems take 255 bytes per name; the wheel's ``<filename>.metadata`` must fit too.
MAX_FILENAME_BYTES = 255 - len(METADATA_SUFFIX)
_ALLOWED = re.compile(r"[A-Za-z0-9._+!-]+")
#: One part of a wheel's compressed tag set (``py2.py3``, ``cp311``, ``manylinux_2_17_x86_64``).
_TAG = re.compile(r"[A-Za-z0-9_]+(?:\.[A-Za-z0-9_]+)*")


class InvalidFilename(ValueError):
    """The filename is refused; the message says why, in one line, for the HTTP status line."""


def check_filename(filename: str) -> None:
    """A bare, plain-ASCII file name that every storage backend and every header can carry."""
    if not filename:
        raise InvalidFilename("Invalid filename: empty")
    if "/" in filename or "\\" in filename or ".." in filename or filename.startswith("."):
        raise InvalidFilename(f"Invalid filename {filename!r}: no path separators or '..' allowed")
    if any(ord(char) < 32 or ord(char) == 127 for char in filename):
        raise InvalidFilename("Invalid filename: control characters are not allowed")
    if not filename.isascii():
        raise InvalidFilename(
            f"Invalid filename {filename!r}: only ASCII letters and digits are allowed "
            "(a look-alike such as the Kelvin sign is not the letter K)"
        )
    if not _ALLOWED.fullmatch(filename):
        raise InvalidFilename(
            f"Invalid filename {filename!r}: quotes, semicolons, spaces and other punctuation "
            "are not allowed, only letters, digits and . _ - + !"
        )
    if len(filename) > MAX_FILENAME_BYTES:
        raise InvalidFilename(
            f"Invalid filename: {len(filename)} bytes long, at most {MAX_FILENAME_BYTES} "
            f"(storage needs room for its {METADATA_SUFFIX} file)"
        )


def filetype_of(filename: str) -> str:
    """The distribution type a filename's extension says (for files without a form)."""
    lowered = filename.lower()
    for filetype, extensions in EXTENSIONS.items():
        if lowered.endswith(extensions):
            return filetype
    raise InvalidFilename(
        f"Invalid filename {filename!r}: not a wheel (.whl) or sdist (.tar.gz, .zip)"
    )


def _extension(filename: str) -> str:
    lowered = filename.lower()
    return next((e for es in EXTENSIONS.values() for e in es if lowered.endswith(e)), "")


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


def wheel_python_tag(filename: str) -> str:
    """``py2.py3`` in ``x-1.0-py2.py3-none-any.whl`` (what twine sends as ``pyversion``)."""
    return filename[: -len(".whl")].split("-")[-3]


def _check_wheel(filename: str, normalized_name: str, version: str, pyversion: str) -> bool:
    try:
        name, wheel_version, _build, tags = parse_wheel_filename(filename)
    except (InvalidWheelFilename, InvalidVersion) as error:
        raise InvalidFilename(f"Invalid wheel filename: {error}") from None
    tag_parts = filename[: -len(".whl")].split("-")[-3:]
    bad = [part for part in tag_parts if not _TAG.fullmatch(part)]
    if bad:
        raise InvalidFilename(
            f"Invalid wheel filename {filename!r}: {bad[0]!r} is not a Python, ABI or platform tag"
        )
    interpreters = {tag.interpreter for tag in tags} | {tag_parts[0]}
    if pyversion and pyversion not in interpreters:
        raise InvalidFilename(
            f"pyversion {pyversion!r} does not match the wheel's tag {tag_parts[0]!r}"
        )
    return name == normalized_name and canonical_version(wheel_version) == canonical_version(
        version
    )


def check_filename_matches(
    filename: str, filetype: str, name: str, version: str, pyversion: str = ""
) -> None:
    """Extension per type, and the name and version the filename encodes are the declared ones."""
    if not filename.endswith(EXTENSIONS[filetype]):
        wanted = " or ".join(EXTENSIONS[filetype])
        raise InvalidFilename(f"Invalid filename {filename!r}: a {filetype} must end with {wanted}")
    normalized = normalize_name(name)
    if filetype == WHEEL:
        matches = _check_wheel(filename, normalized, version, pyversion)
    else:
        extension = _extension(filename)
        try:
            parsed_name, parsed_version = parse_sdist_filename(filename)
            matches = parsed_name == normalized and canonical_version(
                parsed_version
            ) == canonical_version(version)
        except (InvalidSdistFilename, InvalidVersion):
            matches = False
        matches = matches or _sdist_matches(filename[: -len(extension)], normalized, version)
    if not matches:
        raise InvalidFilename(
            f"Invalid filename {filename!r}: it must start with the project name and version "
            f"({name} {version})"
        )


def same_file(other: str, filename: str, normalized_name: str, version: str) -> bool:
    """Whether ``other`` names the file ``filename`` (of that project and version) in another
    spelling: ``Alpha-1.0.tar.gz`` and ``alpha-1.0.tar.gz``, ``A-1.0-py3-none-any.whl`` and
    ``a-1.0.0-py3-none-any.whl``. Installers treat such names as one file, so must the index."""
    if other == filename:
        return True
    extension = _extension(filename)
    if not extension or _extension(other) != extension:
        return False
    if extension == ".whl":
        try:
            mine, theirs = parse_wheel_filename(filename), parse_wheel_filename(other)
        except (InvalidWheelFilename, InvalidVersion):
            return other.lower() == filename.lower()
        return (mine[0], mine[1], mine[2], mine[3]) == (theirs[0], theirs[1], theirs[2], theirs[3])
    try:
        return _sdist_matches(other[: -len(extension)], normalized_name, version)
    except InvalidVersion:
        return False
