"""extrapypi: a private Python package index (PEP 503/691 simple API, uploads, dashboard)."""

from pyramid.config import Configurator

from .fastpath import FastReads
from .resources import root_factory


def main(global_config, **settings):
    """Build the WSGI application; the only place a Configurator is made."""
    with Configurator(settings=settings, root_factory=root_factory) as config:
        config.include(".settings")
        config.include(".models")
        config.include(".lifecycle")  # what stops the background work below
        config.include(".services.serials")
        config.include(".services.read_cache")
        config.include(".storage")
        config.include(".services.upstream")
        config.include(".services.descriptions")
        config.include(".services.webhooks")
        config.include(".services.metrics")
        config.include(".services.oidc")
        config.include(".security")
        config.include(".views")
        config.include(".tweens")
        config.include(".request")
        config.include(".front")  # the nginx front, when extrapypi.front.pages_dir is set
    return FastReads(config.make_wsgi_app())
