"""Views: each module owns one surface. The dashboard's modules load only when it is switched on."""

from ..permissions import Permission
from ..settings import get_app_settings

#: Modules that make up the browser dashboard (off with ``extrapypi.dashboard = false``).
DASHBOARD_MODULES = (
    "extrapypi.views.auth",
    "extrapypi.views.home",
    "extrapypi.views.users",
    "extrapypi.views.packages",
    "extrapypi.views.account",
    "extrapypi.views.teams",
    "extrapypi.views.webhooks",
    "extrapypi.views.retention",
    "extrapypi.views.setup",
    "extrapypi.views.audit",
    "extrapypi.views.error_pages",
    "extrapypi.views.tokens",
    "extrapypi.views.publishers",
    "extrapypi.views.upstream_dashboard",
)


def includeme(config) -> None:
    config.include("extrapypi.cross_site")  # the ``refuse_cross_site=True`` view option
    config.include("pyramid_jinja2")
    config.add_jinja2_renderer(".jinja2")
    config.add_jinja2_search_path("extrapypi:templates", name=".jinja2")
    config.add_static_view("static", "extrapypi:static", cache_max_age=3600)
    config.set_default_permission(Permission.VIEW)
    ignore = () if get_app_settings(config.registry).dashboard else DASHBOARD_MODULES
    config.scan("extrapypi.views", ignore=list(ignore))
