"""User administration (admins only: the ``users`` container's ACL says so)."""

from pyramid.view import view_config
from sqlalchemy import select

from ..models import User
from ..permissions import Permission
from ..resources import Users


@view_config(
    context=Users, renderer="users/list.jinja2", permission=Permission.ADMIN, request_method="GET"
)
def user_list(request):
    users = request.dbsession.scalars(select(User).order_by(User.username)).all()
    return {"users": users}
