"""The dashboard's front page."""

from pyramid.view import view_config

from ..permissions import Permission
from ..resources import Root
from .packages import index_url


@view_config(context=Root, renderer="home.jinja2", permission=Permission.VIEW, request_method="GET")
def home(request):
    return {"index_url": index_url(request)}
