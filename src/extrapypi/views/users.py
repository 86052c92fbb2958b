"""User administration (admins only: the ``users`` container's ACL says so)."""

from pyramid.httpexceptions import HTTPSeeOther
from pyramid.view import view_config

from ..permissions import Permission, Role
from ..resources import UserResource, Users
from ..services import accounts
from ..settings import get_app_settings


def form_page(request, values: dict, error: str = "", status: int = 200) -> dict:
    request.response.status = status
    return {"values": values, "error": error, "roles": [r.value for r in Role]}


@view_config(
    context=Users, renderer="users/list.jinja2", permission=Permission.ADMIN, request_method="GET"
)
def user_list(request):
    return {"users": accounts.list_users(request.dbsession)}


@view_config(
    context=Users,
    name="new",
    renderer="users/new.jinja2",
    permission=Permission.ADMIN,
    request_method="GET",
)
def user_new_form(request):
    return form_page(request, {"role": Role.INSTALLER.value, "is_active": True})


@view_config(
    context=Users,
    name="new",
    renderer="users/new.jinja2",
    permission=Permission.ADMIN,
    request_method="POST",
)
def user_create(context, request):
    post = request.POST
    values = {
        "username": post.get("username", ""),
        "email": post.get("email", ""),
        "role": post.get("role", ""),
        "is_active": bool(post.get("is_active")),
    }
    try:
        accounts.check_confirmation(post.get("password", ""), post.get("confirmation", ""))
        new = accounts.NewUser(
            values["username"],
            post.get("password", ""),
            values["role"],
            accounts.validate_email(values["email"]),
            values["is_active"],
        )
        user = accounts.create_user(
            request.dbsession,
            new,
            rounds=get_app_settings(request.registry).bcrypt_rounds,
            actor=request.identity.user,
        )
    except accounts.AccountError as error:
        return form_page(request, values, str(error), status=400)
    request.session.flash(f"Created user {user.username} ({user.role}).")
    return HTTPSeeOther(location=request.resource_url(context))


def edit_page(request, user, error: str = "", status: int = 200) -> dict:
    request.response.status = status
    return {"user": user, "error": error, "roles": [r.value for r in Role]}


@view_config(
    context=UserResource,
    renderer="users/edit.jinja2",
    permission=Permission.ADMIN,
    request_method="GET",
)
def user_edit_form(context, request):
    return edit_page(request, context.user)


@view_config(
    context=UserResource,
    renderer="users/edit.jinja2",
    permission=Permission.ADMIN,
    request_method="POST",
    request_param="action=update",
)
def user_update(context, request):
    try:
        accounts.update_user(
            request.dbsession,
            context.user,
            role=request.POST.get("role", ""),
            email=request.POST.get("email", ""),
            is_active=bool(request.POST.get("is_active")),
            actor=request.identity.user,
        )
    except accounts.AccountError as error:
        request.dbsession.refresh(context.user)
        return edit_page(request, context.user, str(error), status=400)
    request.session.flash(f"Saved {context.user.username}.")
    return HTTPSeeOther(location=request.resource_url(context.__parent__))


@view_config(
    context=UserResource,
    renderer="users/edit.jinja2",
    permission=Permission.ADMIN,
    request_method="POST",
    request_param="action=password",
)
def user_set_password(context, request):
    try:
        accounts.admin_set_password(
            request.dbsession,
            context.user,
            request.POST.get("password", ""),
            request.POST.get("confirmation", ""),
            request.identity.user,
            rounds=get_app_settings(request.registry).bcrypt_rounds,
        )
    except accounts.AccountError as error:
        return edit_page(request, context.user, str(error), status=400)
    request.session.flash(f"Set a new password for {context.user.username}.")
    return HTTPSeeOther(location=request.resource_url(context.__parent__))


@view_config(
    context=UserResource,
    name="delete",
    renderer="users/delete.jinja2",
    permission=Permission.ADMIN,
    request_method="GET",
)
def user_delete_confirm(context, request):
    return {"user": context.user, "error": ""}


@view_config(
    context=UserResource,
    name="delete",
    renderer="users/delete.jinja2",
    permission=Permission.ADMIN,
    request_method="POST",
)
def user_delete(context, request):
    username = context.user.username
    try:
        accounts.delete_user(request.dbsession, context.user, request.identity.user)
    except accounts.AccountError as error:
        request.response.status = 400
        return {"user": context.user, "error": str(error)}
    request.session.flash(f"Deleted user {username}.")
    return HTTPSeeOther(location=request.resource_url(context.__parent__))
