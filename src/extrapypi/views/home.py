"""The dashboard's front page: my packages, recent activity, how to use the index."""

from pyramid.view import view_config

from ..permissions import Permission
from ..resources import Root
from ..services import dashboard
from ..services.client_setup import client_setup, install_command
from .packages import index_url


@view_config(context=Root, renderer="home.jinja2", permission=Permission.VIEW, request_method="GET")
def home(request):
    identity = request.identity
    mine = dashboard.maintained_by(request.dbsession, identity.id) if identity else []
    setup = client_setup(index_url(request))
    return {
        "index_url": setup.index_url,
        "install": install_command(setup, "<package>"),
        "mine": mine,
        "recent": dashboard.recently_updated(request.dbsession),
    }
