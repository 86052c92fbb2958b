"""``GET /metrics``: Prometheus text format, for admins and the configured scraper addresses."""

from pyramid.response import Response
from pyramid.view import view_config

from ..permissions import Permission
from ..resources import Metrics
from ..services.metrics import render_latest


@view_config(context=Metrics, request_method="GET", permission=Permission.VIEW)
def metrics(context, request):
    body, content_type = render_latest()
    response = Response(body=body)
    response.headers["Content-Type"] = content_type
    response.cache_control = "no-store"
    return response
