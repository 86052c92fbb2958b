"""Files on the local disk under one root directory."""

import os
import tempfile
import time
from collections.abc import Iterator
from typing import BinaryIO
from urllib.parse import quote

from pyramid.response import FileIter, Response
from pyramid.settings import asbool

from .base import Digests, StagedFile, Storage, check_key, copy_hashing

STAGING_DIR = ".staging"
#: Bytes per read when the server iterates the file itself (Range answers, no file_wrapper).
BLOCK_SIZE = 256 * 1024


class RangeIter:
    """``length`` bytes of ``file`` from where it stands, in blocks; closing it closes the file."""

    def __init__(self, file, length: int, block_size: int = BLOCK_SIZE):
        self.file = file
        self.remaining = length
        self.block_size = block_size

    def __iter__(self):
        return self

    def __next__(self) -> bytes:
        if self.remaining <= 0:
            raise StopIteration
        chunk = self.file.read(min(self.block_size, self.remaining))
        if not chunk:
            raise StopIteration
        self.remaining -= len(chunk)
        return chunk

    def close(self) -> None:
        self.file.close()


class LocalFileResponse(Response):
    """A stored file through the server's standard ``wsgi.file_wrapper`` (PEP 3333).

    waitress sends a ``wsgi.file_wrapper`` straight from its I/O thread, gunicorn with
    ``sendfile()``; with no wrapper the file is read in blocks. Conditional requests (304) and
    ``HEAD`` are webob's; a ``Range`` is answered by seeking to its start, where webob's generic
    range support would read and drop every byte before it.
    """

    def __init__(self, path: str, request, content_type: str):
        super().__init__(conditional_response=True, content_type=content_type)
        file = open(path, "rb")  # noqa: SIM115 - the server closes it (app_iter.close)
        try:
            stat = os.fstat(file.fileno())
        except BaseException:
            file.close()
            raise
        self.last_modified = stat.st_mtime
        self._file = file
        wrapper = request.environ.get("wsgi.file_wrapper") if request is not None else None
        self.app_iter = wrapper(file, BLOCK_SIZE) if wrapper else FileIter(file, BLOCK_SIZE)
        self.content_length = stat.st_size  # after app_iter: setting app_iter clears it

    def app_iter_range(self, start: int, stop: int) -> RangeIter:
        self._file.seek(start)
        return RangeIter(self._file, stop - start)


class LocalStorage(Storage):
    def __init__(self, root: str, accel_redirect: str = "", sendfile: bool = False):
        self.root = os.path.abspath(root)
        self.staging = os.path.join(self.root, STAGING_DIR)
        os.makedirs(self.staging, exist_ok=True)
        #: nginx ``internal`` location serving ``root`` (``X-Accel-Redirect``), e.g. ``/_files/``
        self.accel_redirect = "/" + accel_redirect.strip("/") + "/" if accel_redirect else ""
        #: Apache mod_xsendfile / lighttpd: answer with ``X-Sendfile: <path>`` instead of bytes
        self.sendfile = sendfile

    @classmethod
    def from_settings(cls, settings: dict) -> "LocalStorage":
        root = settings.get("extrapypi.storage.path") or settings.get("extrapypi.packages_root")
        if not root:
            raise ValueError("extrapypi.storage.path must name the directory that holds the files")
        return cls(
            root,
            accel_redirect=settings.get("extrapypi.storage.accel_redirect", "").strip(),
            sendfile=asbool(settings.get("extrapypi.storage.sendfile", False)),
        )

    def path(self, key: str) -> str:
        directory, _, filename = check_key(key).partition("/")
        return os.path.join(self.root, directory, filename)

    def stage(self, source: BinaryIO, limit: int | None = None) -> StagedFile:
        fd, temp_path = tempfile.mkstemp(dir=self.staging, prefix="upload-", suffix=".part")
        try:
            with os.fdopen(fd, "wb") as out:
                digests = copy_hashing(source, out.write, limit)
                out.flush()
                os.fsync(out.fileno())
        except BaseException:
            os.unlink(temp_path)
            raise
        return StagedFile(token=os.path.basename(temp_path), digests=digests)

    def _staged_path(self, token: str) -> str:
        if os.sep in token or token.startswith("."):
            raise ValueError(f"not a staging token: {token!r}")
        return os.path.join(self.staging, token)

    def publish(self, staged: StagedFile, key: str) -> None:
        target = self.path(key)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        os.replace(self._staged_path(staged.token), target)

    def discard(self, staged: StagedFile) -> None:
        try:
            os.unlink(self._staged_path(staged.token))
        except FileNotFoundError:
            pass

    def open(self, key: str) -> BinaryIO:
        return open(self.path(key), "rb")

    def exists(self, key: str) -> bool:
        return os.path.isfile(self.path(key))

    def delete(self, key: str) -> None:
        path = self.path(key)
        try:
            os.unlink(path)
        except FileNotFoundError:
            return
        try:
            os.rmdir(os.path.dirname(path))
        except OSError:
            pass  # not empty

    def iter_keys(self) -> Iterator[str]:
        for directory in sorted(os.listdir(self.root)):
            full = os.path.join(self.root, directory)
            if directory.startswith(".") or not os.path.isdir(full):
                continue
            for filename in sorted(os.listdir(full)):
                if not filename.startswith(".") and os.path.isfile(os.path.join(full, filename)):
                    yield f"{directory}/{filename}"

    def iter_staged(self) -> Iterator[str]:
        yield from sorted(os.listdir(self.staging))

    def inspect_staged(self, token: str) -> tuple[Digests, float]:
        path = self._staged_path(token)
        age = time.time() - os.stat(path).st_mtime
        with open(path, "rb") as stream:
            return copy_hashing(stream, lambda chunk: None), age

    def download_response(self, request, key: str, content_type: str):
        path = self.path(key)
        if self.accel_redirect or self.sendfile:
            if not os.path.isfile(path):
                raise FileNotFoundError(path)
            # The front server sends the bytes; the app only decided who may have them.
            response = Response(content_type=content_type)
            if self.accel_redirect:
                response.headers["X-Accel-Redirect"] = self.accel_redirect + quote(key)
            else:
                response.headers["X-Sendfile"] = path
            return response
        return LocalFileResponse(path, request, content_type)
