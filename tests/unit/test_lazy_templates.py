"""The `.jinja2` renderer made on first use is the one `config.include("pyramid_jinja2")` made."""

import pytest
from pyramid.config import Configurator
from pyramid.interfaces import IRendererFactory

import extrapypi.views
from extrapypi.views import TEMPLATE_SEARCH_PATH, LazyJinja2Renderers


def environments(settings: dict):
    """(pyramid_jinja2's environment as the views configured it before, the lazy one)."""
    # included from extrapypi.views, as its includeme did (pyramid_jinja2 adds the caller's
    # package to the search path)
    views_module = {"__name__": "extrapypi.views"}
    exec("def include(config):\n    config.include('pyramid_jinja2')\n", views_module)
    with Configurator(settings=dict(settings), package=extrapypi.views) as config:
        views_module["include"](config)
        config.add_jinja2_renderer(".jinja2")
        config.add_jinja2_search_path(TEMPLATE_SEARCH_PATH[1], name=".jinja2")
    reference = config.registry.getUtility(IRendererFactory, name=".jinja2").environment
    with Configurator(settings=dict(settings), package=extrapypi.views) as config:
        config.add_renderer(".jinja2", LazyJinja2Renderers(config.registry, config.package))
    lazy = config.registry.getUtility(IRendererFactory, name=".jinja2")
    return reference, lazy, config.registry


@pytest.mark.parametrize(
    "settings",
    [{}, {"pyramid.reload_templates": "true"}, {"jinja2.undefined": "strict"}],
    ids=["default", "reload", "strict"],
)
def test_the_lazy_environment_is_pyramid_jinja2s(settings):
    reference, lazy, _ = environments(settings)
    environment = lazy.environment
    assert environment.loader.searchpath == reference.loader.searchpath
    assert type(environment.loader) is type(reference.loader)
    for option in ("autoescape", "auto_reload", "undefined", "trim_blocks", "cache"):
        assert type(getattr(environment, option)) is type(getattr(reference, option)), option
    assert environment.autoescape == reference.autoescape
    assert environment.auto_reload == reference.auto_reload
    assert environment.undefined is reference.undefined
    assert sorted(environment.extensions) == sorted(reference.extensions)
    assert sorted(environment.globals) == sorted(reference.globals)
    assert sorted(environment.filters) == sorted(reference.filters)


def test_it_is_built_on_first_use_and_finds_the_templates():
    _, lazy, _ = environments({})
    assert lazy._factory is None  # nothing built at start-up
    template = lazy.environment.get_template("macros.jinja2")  # found on the search path
    assert template.filename.endswith("templates/macros.jinja2")
    assert lazy.environment.from_string("{{ v }}").render(v="<b>") == "&lt;b&gt;"
    assert lazy.factory() is lazy.factory()  # built once
