"""PyPI's legacy upload API, as twine and setuptools speak it: parse the form, map refusals.

Exempt from CSRF (twine has no token), so it accepts only HTTP Basic identities: a browser
holding a dashboard session cannot be tricked into uploading. Basic alone is not enough either:
a browser replays a saved Basic password on a form another site submits, so ``refuse_cross_site``
turns away every request a browser makes for another site, before the body is read.
"""

from functools import partial
from typing import TYPE_CHECKING

from pyramid.httpexceptions import (
    HTTPBadRequest,
    HTTPConflict,
    HTTPForbidden,
    HTTPGone,
    HTTPServiceUnavailable,
)
from pyramid.response import Response
from pyramid.view import exception_view_config, view_config

from ..permissions import Permission
from ..refusals import refusal_reason
from ..request import refuse_nul
from ..resources import LegacyUpload, NewProject, PackageResource, Root, SimpleIndex
from ..security import BASIC, TOKEN
from ..services.oidc import settle_pending
from ..services.uploads import (
    ConcurrentUpload,
    Declared,
    Limits,
    UploadConflict,
    UploadForbidden,
    UploadRefused,
    ingest,
)
from ..services.upstream_control import claim_refusal
from ..settings import get_app_settings
from ..storage import watch_publishing
from .errors import authentication_required, plain_error

if TYPE_CHECKING:
    import multipart

#: Room for the form's text fields (a long description) on top of the file itself.
FORM_ALLOWANCE = 16 * 1024 * 1024
#: Form parts twine may send: one per classifier, requirement, URL... generously bounded.
MAX_PARTS = 2000
#: Parts larger than this are spooled to a temporary file instead of memory.
SPOOL_BYTES = 1024 * 1024
RETIRED_ACTIONS = {
    "submit": "Gone: ':action=submit' is retired, metadata is taken from the uploaded file",
    "doc_upload": "Gone: documentation uploads are not supported by this index",
}


def _limits(request) -> Limits:
    settings = get_app_settings(request.registry)
    return Limits(settings.upload_limit_bytes, settings.project_limit_bytes)


def _authorizer(request, context):
    identity = request.identity

    def authorize(package, declared: Declared) -> None:
        if package is None:
            new = NewProject(request, declared.name, parent=context)
            if not request.has_permission(Permission.CREATE, new):
                reason = refusal_reason(identity, Permission.CREATE, context=new)
                raise UploadForbidden(f"{reason} (no package named {declared.name!r} exists yet)")
            refusal = claim_refusal(request.registry, request.dbsession, declared.name, identity)
            if refusal is not None:  # the name is the upstream's (issue 12)
                raise UploadConflict(refusal)
            return
        resource = PackageResource(
            request, package, parent=request.root["simple"], name=package.normalized_name
        )
        if not request.has_permission(Permission.UPLOAD, resource):
            raise UploadForbidden(refusal_reason(identity, Permission.UPLOAD, package))

    return authorize


def parse_form(
    request, limits: Limits
) -> tuple[dict[str, list[str]], "multipart.MultipartPart | None"]:
    """The text fields, and the ``content`` part spooled to a temporary file (never held whole).

    ``multipart`` scans the body in large chunks; webob's cgi-based parser reads it line by
    line, which for binary data is an order of magnitude slower. Imported here, on the first
    upload: a server that only serves pip starts without it.
    """
    import multipart

    content_type, options = multipart.parse_options_header(request.headers.get("Content-Type", ""))
    if content_type != "multipart/form-data" or not options.get("boundary"):
        # Not a file upload at all (e.g. an urlencoded ':action=submit'): webob reads it.
        try:
            return {key: request.POST.getall(key) for key in request.POST}, None
        except (ValueError, UnicodeDecodeError):
            raise plain_error(HTTPBadRequest, "Malformed form body") from None
    request.make_body_seekable()  # rewinds too: a retried request reads the body again
    stream = request.body_file_raw
    try:
        parser = multipart.MultipartParser(
            stream,
            options["boundary"],
            request.content_length or -1,
            buffer_size=SPOOL_BYTES,
            part_limit=MAX_PARTS,
            spool_limit=SPOOL_BYTES,
            memory_limit=FORM_ALLOWANCE,
            disk_limit=limits.upload_bytes + FORM_ALLOWANCE,
        )
        parts = list(parser)
    except multipart.MultipartError as error:
        raise plain_error(
            HTTPBadRequest, f"Malformed or oversized multipart/form-data body: {error}"
        ) from None
    request.add_finished_callback(lambda request: [part.close() for part in parts])
    fields: dict[str, list[str]] = {}
    content = None
    for part in parts:
        if part.filename is not None:
            if part.name == "content":
                content = part
            continue
        try:
            value = part.value
        except UnicodeDecodeError:
            raise plain_error(
                HTTPBadRequest, f"Form field {part.name!r} is not valid UTF-8 text"
            ) from None
        refuse_nul({part.name: value}, "form")  # PostgreSQL refuses NUL in any text
        fields.setdefault(part.name, []).append(value)
    return fields, content


@view_config(context=Root, request_method="POST", require_csrf=False, refuse_cross_site=True)
@view_config(context=SimpleIndex, request_method="POST", require_csrf=False, refuse_cross_site=True)
@view_config(
    context=LegacyUpload, request_method="POST", require_csrf=False, refuse_cross_site=True
)
def upload(context, request):
    identity = request.identity
    if identity is None:
        raise HTTPForbidden()  # the forbidden view answers 401 with the Basic challenge
    if identity.method not in (BASIC, TOKEN):
        raise authentication_required(
            "Uploads need HTTP Basic credentials or an API token (twine -u/-p); "
            "a browser session cannot upload"
        )
    limits = _limits(request)
    if (request.content_length or 0) > limits.upload_bytes + FORM_ALLOWANCE:
        raise plain_error(
            HTTPBadRequest, f"File too large: the limit is {limits.upload_bytes} bytes per file"
        )
    fields, content = parse_form(request, limits)
    action = (fields.get(":action") or [""])[0]
    if action in RETIRED_ACTIONS:
        raise plain_error(HTTPGone, RETIRED_ACTIONS[action])
    if action != "file_upload":
        raise plain_error(
            HTTPBadRequest,
            f"Unknown or missing :action {action!r}: this endpoint takes ':action=file_upload'",
        )
    if (fields.get("protocol_version") or ["1"])[0] != "1":
        raise plain_error(HTTPBadRequest, "Unsupported protocol_version: only 1 is known")
    if content is None or not content.filename:
        raise plain_error(HTTPBadRequest, "Missing file: send the distribution as 'content'")
    transaction = request.tm.get()
    request.add_response_callback(partial(_fail_if_unpublished, watch_publishing(transaction)))
    try:
        result = ingest(
            request.dbsession,
            request.storage,
            transaction,
            identity.user,
            content.filename,
            content.file,
            fields,
            limits=limits,
            authorize=_authorizer(request, context),
        )
    except UploadForbidden as refusal:
        raise HTTPForbidden(str(refusal)) from None  # the forbidden view puts it in the status
    except UploadConflict as refusal:
        raise plain_error(HTTPConflict, str(refusal)) from None
    except UploadRefused as refusal:
        raise plain_error(HTTPBadRequest, str(refusal)) from None
    if result.created and identity.token is not None:
        if identity.token.publisher:  # shown as: org/repo via trusted publishing
            result.file.upload_publisher = identity.token.publisher
            settle_pending(request.dbsession, result.package, identity.token)
        else:
            result.file.upload_token = identity.token.name  # shown as: alice (token "ci-release")
    if result.created:
        outcome = "uploaded"
    elif result.restored:
        outcome = "already recorded; its missing stored copy is restored from this upload"
    else:
        outcome = "already there, identical: nothing changed"
    return Response(f"OK: {result.file.filename} {outcome}\n", content_type="text/plain")


def _fail_if_unpublished(unpublished: list[str], request, response) -> None:
    """Runs after the commit and its publishing: a 200 must mean the file can be downloaded.

    If storage failed then, the file is recorded but missing: the client hears so (503, retry
    the same upload to finish it), and the staged copy waits for ``extrapypi check --repair``.
    """
    if not unpublished:
        return
    error = plain_error(
        HTTPServiceUnavailable,
        f"Storage failed after the upload was recorded ({', '.join(unpublished)}): upload "
        "the same file again, or an administrator runs 'extrapypi check --repair'",
    )
    response.status = error.status
    response.content_type = "text/plain"
    response.charset = "utf-8"
    response.body = error.body


@exception_view_config(ConcurrentUpload)
def concurrent_upload(exc, request):
    """Only after pyramid_retry's last attempt: the same file kept racing another upload."""
    return plain_error(
        HTTPConflict, "Another upload of the same file was in progress: run the upload again"
    )
