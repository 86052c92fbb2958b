"""File downloads and PEP 658 ``.metadata``, streamed from storage.

Every file goes out as ``application/octet-stream`` with no ``Content-Encoding``, as PyPI's file
host does: guessing ``application/x-tar`` + ``Content-Encoding: gzip`` for a ``.tar.gz`` (what
``mimetypes`` suggests) invites clients and proxies to decompress it on the fly, and then the bytes
pip hashes are not the bytes whose sha256 the index announced.
"""

import mmap

from pyramid.httpexceptions import HTTPNotFound
from pyramid.view import view_config

from ..permissions import Permission
from ..resources import FileMetadataResource, FileResource, PackageBrowser
from ..services.metrics import count_download
from ..services.packages import metadata_key, storage_key
from .errors import plain_error

CONTENT_TYPE = "application/octet-stream"
#: A published file never changes (its name can never be reused), so caches may keep it.
CACHE_CONTROL = "private, max-age=31536000, immutable"


try:  # the server ``pserve production.ini`` runs
    from waitress.buffers import ReadOnlyFileBasedBuffer
except ImportError:  # pragma: no cover - another WSGI server
    ReadOnlyFileBasedBuffer = None


if ReadOnlyFileBasedBuffer is not None:

    class MappedFileBuffer(ReadOnlyFileBasedBuffer):
        """waitress's ``wsgi.file_wrapper``, handing the socket up to 4 MiB per ``send()``.

        waitress offers the socket as many bytes as its *initial* send buffer (16 KiB on Linux),
        read into a new ``bytes`` each time. This maps the file and hands out slices of the
        mapping (no copy in Python), dropping the pages already sent from the process, so memory
        stays flat whatever the file size and the number of downloads: about twice the MB/s.
        """

        SLICE = 4 * 1024 * 1024

        def prepare(self, size=None):
            remain = super().prepare(size)
            self._position = self.file.tell()
            self._dropped = 0
            self._map = None
            if remain:
                self._map = mmap.mmap(self.file.fileno(), 0, access=mmap.ACCESS_READ)
                self._view = memoryview(self._map)
            return remain

        def get(self, numbytes=-1, skip=False):
            if skip or getattr(self, "_map", None) is None:
                return super().get(numbytes, skip)
            stop = self._position + min(self.remain, self.SLICE)
            return self._view[self._position : stop]

        def skip(self, numbytes, allow_prune=0):
            if getattr(self, "_map", None) is None:
                return super().skip(numbytes, allow_prune)
            if numbytes > self.remain:
                raise ValueError(f"Can't skip {numbytes} bytes in buffer of {self.remain} bytes")
            self._position += numbytes
            self.remain -= numbytes
            sent = self._position - self._position % mmap.PAGESIZE
            if sent - self._dropped >= self.SLICE:  # keep only what is still to send mapped
                self._map.madvise(mmap.MADV_DONTNEED, self._dropped, sent - self._dropped)
                self._dropped = sent

        def close(self):
            if getattr(self, "_map", None) is not None:
                self._view.release()
                self._map.close()
                self._map = None
            super().close()


def _use_windowed_buffer(request) -> None:
    if (
        ReadOnlyFileBasedBuffer is not None
        and request.environ.get("wsgi.file_wrapper") is ReadOnlyFileBasedBuffer
    ):
        request.environ["wsgi.file_wrapper"] = MappedFileBuffer


def _stream(request, key: str, sha256: str, filename: str):
    _use_windowed_buffer(request)
    try:
        response = request.storage.download_response(request, key, CONTENT_TYPE)
    except FileNotFoundError:
        return plain_error(HTTPNotFound, f"Not Found: {filename} is missing from storage")
    response.content_encoding = None
    if response.status_code == 200:
        response.etag = sha256
        response.cache_control = CACHE_CONTROL
        response.content_disposition = f'attachment; filename="{filename}"'
        response.headers["Accept-Ranges"] = "bytes"
    return response


@view_config(
    context=FileResource,
    containment=PackageBrowser,
    request_method=("GET", "HEAD"),
    permission=Permission.DOWNLOAD,
)
def download(context: FileResource, request):
    file = context.file
    package = context.__parent__.__parent__.package
    response = _stream(request, storage_key(package, file.filename), file.sha256, file.filename)
    count_download(request, response, package, file)  # metrics + batched download counts
    return response


@view_config(
    context=FileMetadataResource,
    containment=PackageBrowser,
    request_method=("GET", "HEAD"),
    permission=Permission.DOWNLOAD,
)
def core_metadata(context: FileMetadataResource, request):
    file = context.file
    key = metadata_key(context.__parent__.__parent__.package, file.filename)
    return _stream(request, key, file.metadata_sha256, file.filename + ".metadata")
