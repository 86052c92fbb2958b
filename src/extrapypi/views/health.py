"""``GET /ping``: for load balancers and monitoring; no login, no database."""

from pyramid.response import Response
from pyramid.security import NO_PERMISSION_REQUIRED
from pyramid.view import view_config

from ..resources import Root


@view_config(
    context=Root, name="ping", permission=NO_PERMISSION_REQUIRED, request_method=("GET", "HEAD")
)
def ping(request):
    return Response("pong", content_type="text/plain", charset="utf-8")
