"""PyPI's legacy upload API, as twine and setuptools speak it: parse the form, map refusals.

The only view that is exempt from CSRF, so it accepts only HTTP Basic identities: a browser
holding a dashboard session cannot be tricked into uploading.
"""

from pyramid.httpexceptions import HTTPBadRequest, HTTPConflict, HTTPForbidden, HTTPGone
from pyramid.response import Response
from pyramid.view import exception_view_config, view_config

from ..permissions import Permission
from ..resources import LegacyUpload, PackageResource, Root, SimpleIndex
from ..security import BASIC
from ..services.uploads import (
    ConcurrentUpload,
    Declared,
    Limits,
    UploadForbidden,
    UploadRefused,
    form_fields,
    ingest,
)
from ..settings import get_app_settings
from .errors import authentication_required, plain_error

#: Room for the form's text fields (a long description) on top of the file itself.
FORM_ALLOWANCE = 16 * 1024 * 1024
RETIRED_ACTIONS = {
    "submit": "Gone: ':action=submit' is retired, metadata is taken from the uploaded file",
    "doc_upload": "Gone: documentation uploads are not supported by this index",
}


def _limits(request) -> Limits:
    settings = get_app_settings(request.registry)
    return Limits(settings.upload_limit_bytes, settings.project_limit_bytes)


def _authorizer(request, context):
    identity = request.identity
    who = f"user {identity.username!r} ({identity.user.role})"

    def authorize(package, declared: Declared) -> None:
        if package is None:
            if not request.has_permission(Permission.CREATE, context):
                raise UploadForbidden(
                    f"Forbidden: {who} may not create new packages "
                    f"(no package named {declared.name!r} exists yet)"
                )
            return
        resource = PackageResource(
            request, package, parent=request.root["simple"], name=package.normalized_name
        )
        if not request.has_permission(Permission.UPLOAD, resource):
            raise UploadForbidden(
                f"Forbidden: {who} may not upload to {package.name!r}: not one of its maintainers"
            )

    return authorize


@view_config(context=Root, request_method="POST", require_csrf=False)
@view_config(context=SimpleIndex, request_method="POST", require_csrf=False)
@view_config(context=LegacyUpload, request_method="POST", require_csrf=False)
def upload(context, request):
    identity = request.identity
    if identity is None:
        raise HTTPForbidden()  # the forbidden view answers 401 with the Basic challenge
    if identity.method != BASIC:
        raise authentication_required(
            "Uploads need HTTP Basic credentials (twine -u/-p); a browser session cannot upload"
        )
    limits = _limits(request)
    if (request.content_length or 0) > limits.upload_bytes + FORM_ALLOWANCE:
        raise plain_error(
            HTTPBadRequest, f"File too large: the limit is {limits.upload_bytes} bytes per file"
        )
    try:
        form = request.POST
        action = form.get(":action", "")
    except (ValueError, KeyError, UnicodeDecodeError):
        raise plain_error(HTTPBadRequest, "Malformed multipart/form-data body") from None
    if action in RETIRED_ACTIONS:
        raise plain_error(HTTPGone, RETIRED_ACTIONS[action])
    if action != "file_upload":
        raise plain_error(
            HTTPBadRequest,
            f"Unknown or missing :action {action!r}: this endpoint takes ':action=file_upload'",
        )
    if form.get("protocol_version", "1") != "1":
        raise plain_error(HTTPBadRequest, "Unsupported protocol_version: only 1 is known")
    content = form.get("content")
    if not hasattr(content, "file") or not getattr(content, "filename", None):
        raise plain_error(HTTPBadRequest, "Missing file: send the distribution as 'content'")
    try:
        result = ingest(
            request.dbsession,
            request.storage,
            request.tm.get(),
            identity.user,
            content.filename,
            content.file,
            form_fields(form.items()),
            limits=limits,
            authorize=_authorizer(request, context),
        )
    except UploadForbidden as refusal:
        raise HTTPForbidden(str(refusal)) from None  # the forbidden view puts it in the status
    except UploadRefused as refusal:
        raise plain_error(HTTPBadRequest, str(refusal)) from None
    outcome = "uploaded" if result.created else "already there, identical: nothing changed"
    return Response(f"OK: {result.file.filename} {outcome}\n", content_type="text/plain")


@exception_view_config(ConcurrentUpload)
def concurrent_upload(exc, request):
    """Only after pyramid_retry's last attempt: the same file kept racing another upload."""
    return plain_error(
        HTTPConflict, "Another upload of the same file was in progress: run the upload again"
    )
