"""My account: any logged-in user changes their own email and password."""

from pyramid.httpexceptions import HTTPSeeOther
from pyramid.security import forget, remember
from pyramid.view import view_config, view_defaults

from ..permissions import Permission
from ..resources import Root
from ..services import accounts
from ..services.sessions import end_all_sessions
from ..settings import get_app_settings


@view_defaults(
    context=Root, name="account", renderer="account.jinja2", permission=Permission.ACCOUNT
)
class AccountViews:
    def __init__(self, request):
        self.request = request
        self.user = request.identity.user

    def page(self, error: str = "", status: int = 200) -> dict:
        self.request.response.status = status
        return {"user": self.user, "error": error}

    def done(self, message: str, headers=None) -> HTTPSeeOther:
        self.request.session.flash(message)
        url = self.request.resource_url(self.request.root, "account")
        return HTTPSeeOther(location=url, headers=headers)

    @view_config(request_method="GET")
    def show(self):
        return self.page()

    @view_config(request_method="POST", request_param="action=email")
    def change_email(self):
        try:
            accounts.change_own_email(
                self.request.dbsession, self.user, self.request.POST.get("email", "")
            )
        except accounts.AccountError as error:
            return self.page(str(error), status=400)
        return self.done("Saved your email address.")

    @view_config(request_method="POST", request_param="action=password")
    def change_password(self):
        post = self.request.POST
        try:
            accounts.change_own_password(
                self.request.dbsession,
                self.user,
                post.get("current", ""),
                post.get("password", ""),
                post.get("confirmation", ""),
                rounds=get_app_settings(self.request.registry).bcrypt_rounds,
                policy=get_app_settings(self.request.registry).password_policy,
            )
        except accounts.AccountError as error:
            return self.page(str(error), status=400)
        # Other sessions end (their fingerprint no longer matches); this one carries on.
        return self.done("Changed your password.", headers=remember(self.request, self.user))

    @view_config(request_method="POST", request_param="action=logout-everywhere")
    def logout_everywhere(self):
        """End every session of this account, this one too: "everywhere" means here as well."""
        ended = end_all_sessions(self.request.dbsession, self.user)
        headers = forget(self.request)
        self.request.session.invalidate()
        self.request.session.flash(f"Logged out everywhere ({ended} session(s) ended).")
        login = self.request.resource_url(self.request.root, "login")
        return HTTPSeeOther(location=login, headers=headers)
