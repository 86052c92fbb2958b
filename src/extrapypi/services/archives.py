"""The core metadata inside an uploaded distribution, read without trusting the archive.

Wheels and ``.zip`` sdists are zip files, ``.tar.gz`` sdists gzip-compressed tars. An attacker
controls every byte of them, so each is read in place from the (seekable) upload: nothing is
ever extracted, nothing is held whole, and every cost is bounded before it is paid:

- zip: the entry count and the size of the central directory are checked *before* ``zipfile``
  builds its list of members (a crafted wheel with millions of entries once cost 0.8 GB);
  the count is taken from the end-of-central-directory record (ZIP64 too) and then counted
  honestly over the very bytes ``zipfile`` will parse, because ``zipfile`` never looks at the
  recorded count itself.
- tar.gz: members are walked one header at a time, at most :data:`MAX_ARCHIVE_ENTRIES`, and the
  decompressed stream refuses any single read larger than a PKG-INFO (a GNU long-name or pax
  header of gigabytes would otherwise be read into memory whole) and any position past a
  decompression budget (a gzip bomb costs at most that much CPU, never memory).
- the metadata member itself: size and compression ratio checked first, then read bounded.
"""

import gzip
import io
import struct
import tarfile
import zipfile
import zlib
from collections.abc import Callable
from typing import BinaryIO

#: More entries than this in a wheel or sdist is an attack, not a distribution (the largest
#: real wheels hold a few tens of thousands of files).
MAX_ARCHIVE_ENTRIES = 100_000
#: ``zipfile`` reads the central directory whole: 100,000 entries with long paths fit in this.
MAX_CENTRAL_DIRECTORY_BYTES = 32 * 1024 * 1024
#: A METADATA/PKG-INFO file larger than this is refused, never read whole.
CORE_METADATA_LIMIT = 8 * 1024 * 1024
#: Real archives compress 3-10×; past this ratio a member (or an sdist) is a bomb, not text.
MAX_COMPRESSION_RATIO = 100
#: A tar.gz sdist is decompressed at most this far while looking for its PKG-INFO...
MAX_UNPACKED_BYTES = 2 * 1024 * 1024 * 1024
#: ... and at most MAX_COMPRESSION_RATIO times its own size, but never less than this.
MIN_UNPACKED_ALLOWANCE = 64 * 1024 * 1024
#: The largest single read a tar header may ask for (pax and GNU long-name headers included).
MAX_TAR_READ = CORE_METADATA_LIMIT + 2 * tarfile.RECORDSIZE

# The end-of-central-directory record as ``zipfile`` reads it (APPNOTE 4.3.14-4.3.16).
_ZIP64_EOCD_SIGNATURE = b"PK\x06\x06"
_ZIP64_EOCD_SIZE = 56
_ZIP64_LOCATOR_SIZE = 20
_CENTRAL_HEADER = struct.Struct("<4s4B4HL2L5H2L")  # APPNOTE 4.3.12: 46 bytes
_CENTRAL_SIGNATURE = b"PK\x01\x02"
_TAR_ERRORS = (tarfile.TarError, OSError, EOFError, zlib.error, ValueError)
_ZIP_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError)


class InvalidArchive(ValueError):
    """The archive cannot be (safely) read; the message says why, in one line, for the user."""


def _bounded_read(read: Callable[[int], bytes], what: str) -> bytes:
    data = read(CORE_METADATA_LIMIT + 1)
    if len(data) > CORE_METADATA_LIMIT:
        raise InvalidArchive(f"{what} is larger than {CORE_METADATA_LIMIT} bytes")
    return data


# --- zip -----------------------------------------------------------------------------------------


def _central_directory(stream: BinaryIO, label: str) -> tuple[int, int, int]:
    """``(start, size, recorded entry count)`` of the central directory, as ``zipfile`` finds it.

    ``zipfile``'s own reader of the end record is used on purpose: the guard must check the very
    numbers ``zipfile`` will trust, ZIP64 records and archive comments included.
    """
    try:
        end = zipfile._EndRecData(stream)
    except OSError:
        end = None
    if not end:
        raise InvalidArchive(f"{label}: not a valid zip file (no end of central directory)")
    size, offset, location = end[zipfile._ECD_SIZE], end[zipfile._ECD_OFFSET], end[-1]
    count = end[zipfile._ECD_ENTRIES_TOTAL]
    start = location - size
    if end[zipfile._ECD_SIGNATURE] == _ZIP64_EOCD_SIGNATURE:
        start -= _ZIP64_EOCD_SIZE + _ZIP64_LOCATOR_SIZE
    if start < 0 or offset < 0:
        raise InvalidArchive(f"{label}: not a valid zip file (bad central directory offset)")
    return start, size, count


def check_zip_entries(stream: BinaryIO, label: str) -> int:
    """Refuse a zip whose central directory is absurd, before ``zipfile`` reads it; the count.

    First the count recorded in the end record (cheap), then the entries actually present in the
    bytes ``zipfile`` will parse, walked header by header without keeping any of them.
    """
    start, size, recorded = _central_directory(stream, label)
    if recorded > MAX_ARCHIVE_ENTRIES:
        raise InvalidArchive(
            f"{label}: {recorded} entries, more than the {MAX_ARCHIVE_ENTRIES} allowed"
        )
    if size > MAX_CENTRAL_DIRECTORY_BYTES:
        raise InvalidArchive(
            f"{label}: a central directory of {size} bytes, more than the "
            f"{MAX_CENTRAL_DIRECTORY_BYTES} allowed"
        )
    stream.seek(start)
    reader = io.BufferedReader(_Window(stream, size), buffer_size=256 * 1024)
    walked = entries = 0
    while walked < size:  # the loop zipfile runs, without building anything
        header = reader.read(_CENTRAL_HEADER.size)
        if len(header) != _CENTRAL_HEADER.size:
            raise InvalidArchive(f"{label}: not a valid zip file (truncated central directory)")
        fields = _CENTRAL_HEADER.unpack(header)
        if fields[0] != _CENTRAL_SIGNATURE:
            raise InvalidArchive(f"{label}: not a valid zip file (bad central directory entry)")
        variable = fields[12] + fields[13] + fields[14]  # name, extra field, comment
        entries += 1
        if entries > MAX_ARCHIVE_ENTRIES:
            raise InvalidArchive(
                f"{label}: more than the {MAX_ARCHIVE_ENTRIES} entries allowed "
                f"(its end record claims {recorded})"
            )
        reader.seek(variable, io.SEEK_CUR)
        walked += _CENTRAL_HEADER.size + variable
    return entries


class _Window(io.RawIOBase):
    """``length`` bytes of ``stream`` from its current position, read-only, for BufferedReader."""

    def __init__(self, stream: BinaryIO, length: int):
        self.stream, self.start, self.length = stream, stream.tell(), length
        self.position = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        want = min(len(buffer), self.length - self.position)
        if want <= 0:
            return 0
        self.stream.seek(self.start + self.position)
        data = self.stream.read(want)
        buffer[: len(data)] = data
        self.position += len(data)
        return len(data)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.position, io.SEEK_END: self.length}[whence]
        self.position = max(0, base + offset)
        return self.position

    def tell(self) -> int:
        return self.position


def open_zip(stream: BinaryIO, label: str) -> zipfile.ZipFile:
    """A ``ZipFile`` on ``stream``, once its central directory passed :func:`check_zip_entries`."""
    try:
        check_zip_entries(stream, label)
        stream.seek(0)
        return zipfile.ZipFile(stream)
    except InvalidArchive:
        raise
    except _ZIP_ERRORS as error:
        raise InvalidArchive(f"{label}: not a valid zip file ({error})") from None


def _read_zip_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, label: str) -> bytes:
    what = info.filename.rpartition("/")[2]
    if info.file_size > CORE_METADATA_LIMIT:
        raise InvalidArchive(f"{label}: {what} is too large")
    if info.file_size > 64 * 1024 and info.file_size > MAX_COMPRESSION_RATIO * max(
        info.compress_size, 1
    ):
        raise InvalidArchive(f"{label}: {what} has an absurd compression ratio")
    try:
        with archive.open(info) as member:
            return _bounded_read(member.read, what)
    except InvalidArchive:
        raise
    except (*_ZIP_ERRORS, NotImplementedError, zlib.error) as error:
        raise InvalidArchive(f"{label}: cannot read {what} ({error})") from None


def wheel_metadata(filename: str, stream: BinaryIO) -> bytes:
    """The bytes of the wheel's one ``*.dist-info/METADATA``, nothing else expanded."""
    label = f"Invalid wheel {filename!r}"
    with open_zip(stream, label) as archive:
        candidates = [
            info
            for info in archive.infolist()
            if info.filename.count("/") == 1
            and info.filename.endswith("/METADATA")
            and info.filename.split("/")[0].endswith(".dist-info")
        ]
        if len(candidates) != 1:
            raise InvalidArchive(
                f"{label}: expected exactly one *.dist-info/METADATA, found {len(candidates)}"
            )
        return _read_zip_member(archive, candidates[0], label)


# --- sdists ------------------------------------------------------------------------------------


def _is_pkg_info(path: str) -> bool:
    """``<top directory>/PKG-INFO``: where every sdist keeps its metadata (the top directory is
    ``<name>-<version>`` today; old tools spelled it in many ways, so any one is accepted)."""
    path = path.removeprefix("./")
    top, _, rest = path.partition("/")
    return bool(top) and rest == "PKG-INFO"


def sdist_metadata(filename: str, stream: BinaryIO) -> bytes:
    """The bytes of an sdist's top-level ``PKG-INFO``, found without extracting anything."""
    label = f"Invalid sdist {filename!r}"
    if filename.lower().endswith(".zip"):
        with open_zip(stream, label) as archive:
            for info in archive.infolist():
                if not info.is_dir() and _is_pkg_info(info.filename):
                    return _read_zip_member(archive, info, label)
    else:
        found = _tar_pkg_info(stream, label)
        if found is not None:
            return found
    raise InvalidArchive(f"{label}: no usable top-level PKG-INFO (is it really an sdist?)")


def _tar_pkg_info(stream: BinaryIO, label: str) -> bytes | None:
    stream.seek(0, io.SEEK_END)
    compressed = stream.tell()
    stream.seek(0)
    allowance = max(MIN_UNPACKED_ALLOWANCE, MAX_COMPRESSION_RATIO * compressed)
    budget = min(MAX_UNPACKED_BYTES, allowance)
    decompressed = gzip.GzipFile(fileobj=stream, mode="rb")
    unpacked = _Budgeted(decompressed, budget, label)
    try:
        with tarfile.open(fileobj=unpacked, mode="r:") as archive:
            for count in range(1, MAX_ARCHIVE_ENTRIES + 2):
                member = archive.next()
                # Each TarInfo would stay in ``archive.members``: keep none, memory stays flat.
                archive.members.clear()
                if member is None:
                    return None
                if count > MAX_ARCHIVE_ENTRIES:
                    break
                if member.isfile() and _is_pkg_info(member.name):
                    if member.size > CORE_METADATA_LIMIT:
                        raise InvalidArchive(f"{label}: PKG-INFO is too large")
                    return _bounded_read(archive.extractfile(member).read, "PKG-INFO")
    except InvalidArchive:
        raise
    except _TAR_ERRORS as error:
        raise InvalidArchive(f"{label}: not a readable .tar.gz archive ({error})") from None
    finally:
        decompressed.close()  # leaves the upload itself open
    raise InvalidArchive(f"{label}: more than the {MAX_ARCHIVE_ENTRIES} entries allowed")


class _Budgeted(io.RawIOBase):
    """The decompressed tar stream, refusing reads and seeks that would cost too much.

    ``tarfile`` in seekable mode asks for whole pax/long-name headers in one ``read`` and skips
    member data with ``seek`` (which decompresses up to the target): both are checked first.
    """

    def __init__(self, raw: gzip.GzipFile, budget: int, label: str):
        self.raw, self.budget, self.label = raw, budget, label
        self.position = 0  # kept here: GzipFile.tell() costs a call chain per header

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def _within(self, position: int) -> None:
        if position > self.budget:
            raise InvalidArchive(
                f"{self.label}: it unpacks to more than {self.budget} bytes before its PKG-INFO "
                f"(a compression ratio over {MAX_COMPRESSION_RATIO} or over "
                f"{MAX_UNPACKED_BYTES} bytes)"
            )

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0 or size > MAX_TAR_READ:
            raise InvalidArchive(f"{self.label}: a tar header or member claims an absurd size")
        self._within(self.position + size)
        data = self.raw.read(size)
        self.position += len(data)
        return data

    def readinto(self, buffer) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence not in (io.SEEK_SET, io.SEEK_CUR):
            raise OSError("only forward seeks in a compressed stream")
        target = offset if whence == io.SEEK_SET else self.position + offset
        if target != self.position:
            self._within(target)
            self.position = self.raw.seek(target)
        return self.position

    def tell(self) -> int:
        return self.position
