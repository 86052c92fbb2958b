"""API tokens in the dashboard: My account → Tokens, and an admin's view of a user's tokens.

Only session identities reach these pages: the security policy refuses API tokens every
dashboard permission (``services/tokens.py``), so a token can never mint or revoke tokens.
"""

from pyramid.httpexceptions import HTTPSeeOther
from pyramid.view import view_config

from ..permissions import Permission
from ..resources import Root, UserResource
from ..services import tokens as token_service
from ..settings import get_app_settings


def _page(request, user, status: int = 200, **values) -> dict:
    request.response.status = status
    return {
        "user": user,
        "tokens": token_service.list_tokens(request.dbsession, user),
        "scopes": token_service.Scope.ALL,
        "error": "",
        "new_token": "",
        **values,
    }


def _revoke(request, user, location: str) -> HTTPSeeOther:
    """Revoke one of ``user``'s tokens; another user's id is as unknown as a made-up one."""
    token = token_service.find_token(request.dbsession, request.POST.get("token_id", ""))
    if token is None or token.user_id != user.id:
        request.session.flash("No such token.")
    elif token_service.revoke_token(request.dbsession, token, request.identity.user):
        request.session.flash(f"Revoked token {token.id} ({token.name}).")
    else:
        request.session.flash(f"Token {token.id} was revoked already.")
    return HTTPSeeOther(location=location)


@view_config(
    context=Root,
    name="tokens",
    renderer="tokens/mine.jinja2",
    permission=Permission.ACCOUNT,
    request_method="GET",
)
def my_tokens(request):
    return _page(request, request.identity.user)


@view_config(
    context=Root,
    name="tokens",
    renderer="tokens/mine.jinja2",
    permission=Permission.ACCOUNT,
    request_method="POST",
    request_param="action=create",
)
def create_my_token(request):
    """The token is in this response only (dashboard pages are ``no-store``), never again."""
    user = request.identity.user
    post = request.POST
    expires = post.get("expires", "").strip()
    try:
        days = int(expires) if expires else None
    except ValueError:
        return _page(request, user, 400, error="Expiry is a number of days.")
    projects = [p for p in post.get("projects", "").replace(",", " ").split() if p]
    try:
        row, token = token_service.create_token(
            request.dbsession,
            get_app_settings(request.registry).secret,
            user,
            post.get("name", ""),
            post.get("scope", ""),
            projects,
            days,
        )
    except token_service.TokenError as error:
        return _page(request, user, 400, error=str(error))
    return _page(request, user, new_token=token, new_token_id=row.id)


@view_config(
    context=Root,
    name="tokens",
    permission=Permission.ACCOUNT,
    request_method="POST",
    request_param="action=revoke",
)
def revoke_my_token(request):
    return _revoke(request, request.identity.user, request.resource_url(request.root, "tokens"))


@view_config(
    context=UserResource,
    name="tokens",
    renderer="tokens/user.jinja2",
    permission=Permission.ADMIN,
    request_method="GET",
)
def user_tokens(context, request):
    return _page(request, context.user)


@view_config(
    context=UserResource,
    name="tokens",
    permission=Permission.ADMIN,
    request_method="POST",
    request_param="action=revoke",
)
def revoke_user_token(context, request):
    return _revoke(request, context.user, request.resource_url(context, "tokens"))
