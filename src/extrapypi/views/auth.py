"""Log in and out of the dashboard."""

from urllib.parse import urlsplit

from pyramid.csrf import new_csrf_token
from pyramid.httpexceptions import HTTPSeeOther
from pyramid.security import NO_PERMISSION_REQUIRED, forget, remember
from pyramid.view import view_config

from ..resources import Root
from ..services.accounts import authenticate, touch_last_login
from ..services.throttle import LoginThrottled
from ..services.tokens import PREFIX as TOKEN_PREFIX
from ..services.tokens import TOKEN_USERNAME
from ..settings import get_app_settings


def safe_came_from(request, came_from: str | None) -> str:
    """Only paths on this site: never another host, scheme or protocol-relative URL."""
    home = request.resource_url(request.root)
    if not came_from:
        return home
    parts = urlsplit(came_from)
    if parts.scheme or parts.netloc or not came_from.startswith("/") or came_from.startswith("//"):
        return home
    if "\\" in came_from or any(ord(c) < 32 or ord(c) > 126 for c in came_from):
        # Only printable ASCII: a path we send is percent-encoded; anything else is forged (and
        # "/\u3002evil.com" would be a host to some browsers and an unencodable header to us).
        return home
    return request.application_url + came_from


@view_config(
    context=Root,
    name="login",
    renderer="login.jinja2",
    permission=NO_PERMISSION_REQUIRED,
    request_method=("GET", "HEAD"),
)
def login_form(request):
    return {
        "came_from": request.params.get("came_from", ""),
        "error": None,
        "username": "",
        "remember": False,
    }


@view_config(
    context=Root,
    name="login",
    renderer="login.jinja2",
    permission=NO_PERMISSION_REQUIRED,
    request_method="POST",
)
def login(request):
    username = request.POST.get("username", "")
    password = request.POST.get("password", "")
    came_from = request.POST.get("came_from", "")
    persistent = bool(request.POST.get("remember"))
    page = {"came_from": came_from, "username": username, "remember": persistent}
    if username == TOKEN_USERNAME or password.startswith(TOKEN_PREFIX):
        request.response.status = 400
        return {**page, "error": "API tokens cannot log into the dashboard: use your password."}
    try:
        user = authenticate(
            request.dbsession,
            username,
            password,
            throttle=request.registry["extrapypi.login_throttle"],
            address=request.remote_addr or "",
            rounds=get_app_settings(request.registry).bcrypt_rounds,
        )
    except LoginThrottled as error:
        request.response.status = 429
        request.response.headers["Retry-After"] = str(error.retry_after)
        return {**page, "error": str(error)}
    if user is None:
        request.response.status = 400
        return {**page, "error": "Wrong username or password."}
    request.session.invalidate()  # a fresh session at login: no fixation
    touch_last_login(user)
    headers = remember(request, user, persistent=persistent)
    new_csrf_token(request)
    return HTTPSeeOther(location=safe_came_from(request, came_from), headers=headers)


@view_config(context=Root, name="logout", permission=NO_PERMISSION_REQUIRED, request_method="POST")
def logout(request):
    headers = forget(request)
    request.session.invalidate()
    request.session.flash("You are logged out.")
    return HTTPSeeOther(location=request.resource_url(request.root, "login"), headers=headers)
