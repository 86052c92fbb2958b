"""``/setup/``: how to use this index from pip, uv, poetry and twine, generated for its URL."""

from pyramid.view import view_config

from ..permissions import Permission
from ..resources import Root
from ..services.client_setup import client_setup, snippets
from ..services.upstream import get_upstream
from .packages import index_url


@view_config(
    context=Root,
    name="setup",
    renderer="setup.jinja2",
    permission=Permission.VIEW,
    request_method="GET",
)
def setup_page(request):
    setup = client_setup(index_url(request))
    proxies = get_upstream(request.registry) is not None
    return {
        "setup": setup,
        "snippets": {s.key: s for s in snippets(setup, proxies)},
        "proxies_upstream": proxies,
    }
