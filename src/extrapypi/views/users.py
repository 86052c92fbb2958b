"""User administration (admins only: the ``users`` container's ACL says so)."""

from pyramid.httpexceptions import HTTPSeeOther
from pyramid.view import view_config, view_defaults

from ..permissions import Permission, Role
from ..resources import UserResource, Users
from ..services import accounts
from ..settings import get_app_settings

ROLES = [r.value for r in Role]


class AdminViews:
    def __init__(self, context, request):
        self.context = context
        self.request = request
        self.post = request.POST
        self.actor = request.identity.user
        settings = get_app_settings(request.registry)
        self.rounds = settings.bcrypt_rounds
        self.policy = settings.password_policy

    def page(self, status: int = 200, **values) -> dict:
        self.request.response.status = status
        return {"roles": ROLES, "error": "", **values}

    def done(self, message: str, location: str) -> HTTPSeeOther:
        self.request.session.flash(message)
        return HTTPSeeOther(location=location)


@view_defaults(context=Users, permission=Permission.ADMIN)
class UsersViews(AdminViews):
    @view_config(renderer="users/list.jinja2", request_method="GET")
    def list(self):
        return {"users": accounts.list_users(self.request.dbsession)}

    @view_config(name="new", renderer="users/new.jinja2", request_method="GET")
    def new_form(self):
        return self.page(values={"role": Role.INSTALLER.value, "is_active": True})

    @view_config(name="new", renderer="users/new.jinja2", request_method="POST")
    def create(self):
        post = self.post
        values = {
            "username": post.get("username", ""),
            "email": post.get("email", ""),
            "role": post.get("role", ""),
            "is_active": bool(post.get("is_active")),
        }
        password = post.get("password", "")
        try:
            accounts.check_confirmation(password, post.get("confirmation", ""))
            email = accounts.validate_email(values["email"])
            new = accounts.NewUser(
                values["username"], password, values["role"], email, values["is_active"]
            )
            user = accounts.create_user(
                self.request.dbsession, new, self.rounds, self.actor, self.policy
            )
        except accounts.AccountError as error:
            return self.page(400, values=values, error=str(error))
        return self.done(
            f"Created user {user.username} ({user.role}).", self.request.resource_url(self.context)
        )


@view_defaults(context=UserResource, permission=Permission.ADMIN, renderer="users/edit.jinja2")
class UserViews(AdminViews):
    def users_url(self) -> str:
        return self.request.resource_url(self.context.__parent__)

    @view_config(request_method="GET")
    def edit_form(self):
        return self.page(user=self.context.user)

    @view_config(request_method="POST", request_param="action=update")
    def update(self):
        user = self.context.user
        try:
            accounts.update_user(
                self.request.dbsession,
                user,
                role=self.post.get("role", ""),
                email=self.post.get("email", ""),
                is_active=bool(self.post.get("is_active")),
                actor=self.actor,
            )
        except accounts.AccountError as error:
            return self.page(400, user=user, error=str(error))
        return self.done(f"Saved {user.username}.", self.users_url())

    @view_config(request_method="POST", request_param="action=password")
    def set_password(self):
        user = self.context.user
        try:
            accounts.admin_set_password(
                self.request.dbsession,
                user,
                self.post.get("password", ""),
                self.post.get("confirmation", ""),
                self.actor,
                rounds=self.rounds,
                policy=self.policy,
            )
        except accounts.AccountError as error:
            return self.page(400, user=user, error=str(error))
        return self.done(f"Set a new password for {user.username}.", self.users_url())

    @view_config(name="delete", renderer="users/delete.jinja2", request_method="GET")
    def delete_confirm(self):
        return self.page(user=self.context.user)

    @view_config(name="delete", renderer="users/delete.jinja2", request_method="POST")
    def delete(self):
        user = self.context.user
        username = user.username
        try:
            accounts.delete_user(self.request.dbsession, user, self.actor)
        except accounts.AccountError as error:
            return self.page(400, user=user, error=str(error))
        return self.done(f"Deleted user {username}.", self.users_url())
