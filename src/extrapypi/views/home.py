"""The dashboard's front page."""

from pyramid.view import view_config

from ..permissions import Permission
from ..resources import Root


@view_config(context=Root, renderer="home.jinja2", permission=Permission.VIEW, request_method="GET")
def home(request):
    return {}
