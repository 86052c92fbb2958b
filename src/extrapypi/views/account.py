"""My account: any logged-in user changes their own email and password."""

from pyramid.httpexceptions import HTTPSeeOther
from pyramid.security import remember
from pyramid.view import view_config

from ..permissions import Permission
from ..resources import Root
from ..services import accounts
from ..settings import get_app_settings


def account_page(request, error: str = "", status: int = 200) -> dict:
    request.response.status = status
    return {"user": request.identity.user, "error": error}


@view_config(
    context=Root,
    name="account",
    renderer="account.jinja2",
    permission=Permission.ACCOUNT,
    request_method="GET",
)
def account(request):
    return account_page(request)


@view_config(
    context=Root,
    name="account",
    renderer="account.jinja2",
    permission=Permission.ACCOUNT,
    request_method="POST",
    request_param="action=email",
)
def account_email(request):
    try:
        accounts.change_own_email(request.dbsession, request.identity.user, request.POST["email"])
    except (accounts.AccountError, KeyError) as error:
        request.dbsession.refresh(request.identity.user)
        return account_page(request, str(error), status=400)
    request.session.flash("Saved your email address.")
    return HTTPSeeOther(location=request.resource_url(request.root, "account"))


@view_config(
    context=Root,
    name="account",
    renderer="account.jinja2",
    permission=Permission.ACCOUNT,
    request_method="POST",
    request_param="action=password",
)
def account_password(request):
    user = request.identity.user
    try:
        accounts.change_own_password(
            request.dbsession,
            user,
            request.POST.get("current", ""),
            request.POST.get("password", ""),
            request.POST.get("confirmation", ""),
            rounds=get_app_settings(request.registry).bcrypt_rounds,
        )
    except accounts.AccountError as error:
        return account_page(request, str(error), status=400)
    # Other sessions end (their fingerprint no longer matches); this one carries on.
    headers = remember(request, user)
    request.session.flash("Changed your password.")
    return HTTPSeeOther(location=request.resource_url(request.root, "account"), headers=headers)
