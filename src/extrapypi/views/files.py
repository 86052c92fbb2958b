"""File downloads and PEP 658 ``.metadata``, streamed from storage.

Every file goes out as ``application/octet-stream`` with no ``Content-Encoding``, as PyPI's file
host does: guessing ``application/x-tar`` + ``Content-Encoding: gzip`` for a ``.tar.gz`` (what
``mimetypes`` suggests) invites clients and proxies to decompress it on the fly, and then the bytes
pip hashes are not the bytes whose sha256 the index announced.
"""

from pyramid.httpexceptions import HTTPNotFound
from pyramid.view import view_config

from ..permissions import Permission
from ..resources import FileMetadataResource, FileResource, PackageBrowser
from ..services.metrics import count_download
from ..services.packages import metadata_key, storage_key
from ..services.read_cache import FileFacts, remember_file
from ..storage.disposition import attachment
from .errors import plain_error

CONTENT_TYPE = "application/octet-stream"
#: A published file never changes (its name can never be reused), so caches may keep it.
CACHE_CONTROL = "private, max-age=31536000, immutable"


def _stream(request, key: str, sha256: str, filename: str):
    try:
        response = request.storage.download_response(request, key, CONTENT_TYPE)
    except FileNotFoundError:
        return plain_error(HTTPNotFound, f"Not Found: {filename} is missing from storage")
    response.content_encoding = None
    if response.status_code == 200:
        response.etag = sha256
        response.cache_control = CACHE_CONTROL
        response.content_disposition = attachment(filename)
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
    key = storage_key(package, file.filename)
    response = _stream(request, key, file.sha256, file.filename)
    count_download(request, response, package, file)  # metrics + batched download counts
    if response.status_code == 200:  # the next download of this path skips the stack
        facts = FileFacts(context.read_path(), key, file.sha256, attachment(file.filename))
        remember_file(request, facts.counted(package.normalized_name, file.filename))
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
    name = file.filename + ".metadata"
    response = _stream(request, key, file.metadata_sha256, name)
    if response.status_code == 200:
        facts = FileFacts(context.read_path(), key, file.metadata_sha256, attachment(name))
        remember_file(request, facts)
    return response
