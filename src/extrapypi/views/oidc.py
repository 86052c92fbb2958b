"""Trusted publishing's machine endpoints, as PyPI has them (uv and the PyPA action call them),
and PEP 807's discovery document.

These take no cookie identity: nothing here reads ``request.identity``; the JWT (mint) or the
minted token itself (burn) is the only credential, so a browser's session cannot act here and
CSRF tokens do not apply (``require_csrf=False``). A browser's cross-site POST is refused
before the body is read (``refuse_cross_site``).
"""

import json
from datetime import UTC

from pyramid.authentication import extract_http_basic_credentials
from pyramid.response import Response
from pyramid.security import NO_PERMISSION_REQUIRED
from pyramid.view import view_config

from ..resources import OidcEndpoints, WellKnown
from ..services import oidc as oidc_service
from ..services.tokens import TOKEN_USERNAME
from ..settings import get_app_settings

PYTP_MEDIA_TYPE = "application/vnd.pypi.pytp.v1+json"
#: Where the legacy upload API answers (relative to the application's root).
UPLOAD_PATHS = frozenset({"", "/", "/legacy", "/legacy/", "/simple", "/simple/"})
#: Bodies larger than this are not a token request.
MAX_BODY = 64 * 1024
FEATURES = ["multi-use-token"]


def _settings(request) -> oidc_service.OidcSettings:
    return request.registry["extrapypi.oidc"]


def audience_of(request) -> str:
    return _settings(request).audience or request.host


def problem(
    status: int, code: str, description: str, title: str = "Token request failed"
) -> Response:
    """RFC 9457 problem details, with PyPI's ``message``/``errors`` members (what uv prints)."""
    body = {
        "type": "about:blank",
        "title": title,
        "status": status,
        "detail": description,
        "message": title,
        "errors": [{"code": code, "description": description}],
    }
    response = Response(json.dumps(body), status=status, charset="utf-8")
    response.content_type = "application/problem+json"
    return response


def _refused(refusal: oidc_service.OidcRefused, title: str = "Token request failed") -> Response:
    return problem(refusal.status, refusal.code, refusal.description, title)


def _json_body(request) -> dict:
    if (request.content_length or 0) > MAX_BODY:
        raise oidc_service.OidcRefused("invalid-payload", "the request body is too large", 413)
    try:
        body = json.loads(request.body or b"")
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise oidc_service.OidcRefused(
            "invalid-payload", 'the body must be JSON: {"token": "<JWT>"}', 400
        ) from None
    if not isinstance(body, dict):
        raise oidc_service.OidcRefused("invalid-payload", "the body must be a JSON object", 400)
    return body


def _json(request, value: dict) -> Response:
    response = Response(json.dumps(value), charset="utf-8", content_type="application/json")
    response.cache_control = "no-store"
    return response


@view_config(
    context=OidcEndpoints,
    name="audience",
    request_method=("GET", "HEAD"),
    permission=NO_PERMISSION_REQUIRED,
)
def audience(request):
    if not _settings(request).enabled:
        return _refused(oidc_service.OidcRefused("not-enabled", "trusted publishing is off", 404))
    return _json(request, {"audience": audience_of(request)})


@view_config(
    context=OidcEndpoints,
    name="mint-token",
    request_method="POST",
    permission=NO_PERMISSION_REQUIRED,
    require_csrf=False,
    refuse_cross_site=True,
)
def mint_token(request):
    try:
        body = _json_body(request)
        features = body.get("features")
        if features is not None and (
            not isinstance(features, list) or any(f not in FEATURES for f in features)
        ):
            raise oidc_service.OidcRefused(
                "unsupported-feature",
                f"features this index offers: {', '.join(FEATURES)}; asked: {features!r:.200}",
            )
        minted = oidc_service.mint(
            request.dbsession,
            get_app_settings(request.registry).secret,
            _settings(request),
            request.registry["extrapypi.oidc_keys"],
            body.get("token"),
            audience_of(request),
        )
    except oidc_service.OidcRefused as refusal:
        return _refused(refusal)
    expires = int(minted.expires.astimezone(UTC).timestamp())
    return _json(request, {"success": True, "token": minted.token, "expires": expires})


@view_config(
    context=OidcEndpoints,
    name="burn-token",
    request_method="POST",
    permission=NO_PERMISSION_REQUIRED,
    require_csrf=False,
    refuse_cross_site=True,
)
def burn_token(request):
    """The minted token, as ``__token__`` Basic credentials or as ``{"token": ...}``."""
    credentials = extract_http_basic_credentials(request)
    try:
        if credentials is not None and credentials.username == TOKEN_USERNAME:
            token = credentials.password
        else:
            token = _json_body(request).get("token")
        oidc_service.burn(request.dbsession, get_app_settings(request.registry).secret, token)
    except oidc_service.OidcRefused as refusal:
        return _refused(refusal, "Token burn failed")
    return _json(request, {"success": True})


@view_config(
    context=WellKnown,
    name="pytp",
    request_method=("GET", "HEAD"),
    permission=NO_PERMISSION_REQUIRED,
)
def discover(request):
    """PEP 807: where to exchange an identity token for the upload URL whose path is asked."""
    accept = request.headers.get("Accept")
    if accept and not request.accept.acceptable_offers([PYTP_MEDIA_TYPE, "application/json"]):
        return problem(
            406, "not-acceptable", f"this document is {PYTP_MEDIA_TYPE}", "Not Acceptable"
        )
    path = request.GET.get("discover")
    if path is None:
        return problem(
            400, "missing-key", "ask with ?discover=<the upload URL's path>", "Bad Request"
        )
    prefix = request.script_name
    if prefix and path.startswith(prefix):
        path = path[len(prefix) :]
    if not _settings(request).enabled or path not in UPLOAD_PATHS:
        return problem(
            404,
            "not-found",
            f"no trusted publishing for uploads to {path[:200]!r} on this index",
            "Not Found",
        )
    base = request.application_url
    response = _json(
        request,
        {
            "audience-endpoint": f"{base}/_/oidc/audience",
            "token-mint-endpoint": f"{base}/_/oidc/mint-token",
            "features": FEATURES,
            "default-features": FEATURES,
        },
    )
    response.content_type = PYTP_MEDIA_TYPE
    return response
