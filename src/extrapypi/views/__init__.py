"""Views: each module owns one surface. The dashboard's modules load only when it is switched on."""

import threading

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


#: Where ``.jinja2`` templates are looked up, after the view's own package.
TEMPLATE_SEARCH_PATH = ("extrapypi.views:", "extrapypi:templates")


class LazyJinja2Renderers:
    """The ``.jinja2`` renderer factory: pyramid_jinja2 and Jinja2 load with the first page.

    A server that only answers pip renders no template, and Jinja2 costs it 2 MB and a tenth of
    a second at start-up. Built on first use, the environment is the one
    ``config.include("pyramid_jinja2")`` plus ``add_jinja2_renderer(".jinja2")`` and
    ``add_jinja2_search_path`` made at start-up (the same settings, ``jinja2.*`` and
    ``pyramid.reload_templates``, and the same search path), with pyramid_jinja2's own functions.
    """

    def __init__(self, registry, package):
        self.registry = registry
        self.package = package
        self._factory = None
        self._lock = threading.Lock()

    @property
    def environment(self):
        return self.factory().environment

    def factory(self):
        with self._lock:
            if self._factory is None:
                from pyramid.path import AssetResolver, DottedNameResolver
                from pyramid_jinja2 import Jinja2RendererFactory, create_environment_from_options
                from pyramid_jinja2.settings import (
                    parse_env_options_from_settings,
                    parse_loader_options_from_settings,
                )

                settings = self.registry.settings
                resolve = DottedNameResolver(package=self.package).maybe_resolve
                environment = create_environment_from_options(
                    parse_env_options_from_settings(settings, "jinja2.", resolve, self.package),
                    parse_loader_options_from_settings(settings, "jinja2.", resolve, self.package),
                )
                assets = AssetResolver(self.package)
                for spec in TEMPLATE_SEARCH_PATH:
                    environment.loader.searchpath.append(assets.resolve(spec).abspath())
                factory = Jinja2RendererFactory()
                factory.environment = environment
                self._factory = factory
            return self._factory

    def __call__(self, info):
        return self.factory()(info)


def includeme(config) -> None:
    config.include("extrapypi.cross_site")  # the ``refuse_cross_site=True`` view option
    config.add_renderer(".jinja2", LazyJinja2Renderers(config.registry, config.package))
    config.add_static_view("static", "extrapypi:static", cache_max_age=3600)
    config.set_default_permission(Permission.VIEW)
    ignore = () if get_app_settings(config.registry).dashboard else DASHBOARD_MODULES
    config.scan("extrapypi.views", ignore=list(ignore))
