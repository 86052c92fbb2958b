"""The nginx front (opt-in with ``extrapypi.front.pages_dir``): the pages directory nginx serves,
kept up to date after every commit, and ``/_/front/auth``, the access check nginx asks.

``extrapypi nginx-config INI`` prints the nginx side (``scripts/nginx_config.py``); the pages are
written by ``services/materialize.py``; docs/deployment.md ("nginx front") tells the whole story.
"""

import logging
from dataclasses import dataclass
from typing import Any

from pyramid.security import NO_PERMISSION_REQUIRED

from .lifecycle import on_close
from .services import mirrors
from .services.materialize import PageMirror, start_catch_up
from .settings import ConfigurationError

log = logging.getLogger(__name__)

REGISTRY_KEY = "extrapypi.front"
AUTH_PATH = "/_/front/auth"
#: nginx keeps an access answer at most this long: the revocation delay the docs promise.
MAX_AUTH_CACHE_SECONDS = 10


@dataclass(frozen=True)
class FrontSettings:
    pages_dir: str
    auth_cache_seconds: int = MAX_AUTH_CACHE_SECONDS
    catch_up_seconds: float = 1.0
    upstream: str = ""
    listen: str = "80"
    server_name: str = "_"
    auth_cache_dir: str = "/var/cache/nginx/extrapypi-auth"

    @property
    def enabled(self) -> bool:
        return bool(self.pages_dir)


def parse_front_settings(settings: dict[str, Any]) -> FrontSettings:
    """The ``extrapypi.front.*`` settings (docs/configuration.md)."""
    prefix = "extrapypi.front."
    seconds = str(settings.get(prefix + "auth_cache_seconds", MAX_AUTH_CACHE_SECONDS)).strip()
    if not seconds.isdigit() or not 1 <= int(seconds) <= MAX_AUTH_CACHE_SECONDS:
        raise ConfigurationError(
            f"{prefix}auth_cache_seconds must be a whole number from 1 to "
            f"{MAX_AUTH_CACHE_SECONDS} (the revocation delay), not {seconds!r}"
        )
    catch_up = str(settings.get(prefix + "catch_up_seconds", 1)).strip()
    try:
        catch_up_seconds = float(catch_up)
        if catch_up_seconds < 0:
            raise ValueError
    except ValueError:
        raise ConfigurationError(
            f"{prefix}catch_up_seconds must be a number of seconds (0: off), not {catch_up!r}"
        ) from None
    return FrontSettings(
        pages_dir=str(settings.get(prefix + "pages_dir", "")).strip(),
        auth_cache_seconds=int(seconds),
        catch_up_seconds=catch_up_seconds,
        upstream=str(settings.get(prefix + "upstream", "")).strip(),
        listen=str(settings.get(prefix + "listen", "80")).strip() or "80",
        server_name=str(settings.get(prefix + "server_name", "_")).strip() or "_",
        auth_cache_dir=str(
            settings.get(prefix + "auth_cache_dir", FrontSettings.auth_cache_dir)
        ).strip(),
    )


def get_front_settings(registry) -> FrontSettings:
    return registry[REGISTRY_KEY]


def build_mirror(registry) -> PageMirror:
    """The pages directory of this app's database (registered: commits rewrite it)."""
    mirror = registry.get("extrapypi.front.mirror")
    if mirror is None:
        front = get_front_settings(registry)
        mirror = PageMirror(front.pages_dir, registry["dbsession_factory"])
        mirrors.register(registry["db_engine"], mirror)
        registry["extrapypi.front.mirror"] = mirror
    return mirror


def includeme(config) -> None:
    front = parse_front_settings(config.get_settings())
    config.registry[REGISTRY_KEY] = front
    if not front.enabled:
        return
    mirror = build_mirror(config.registry)
    try:
        report = mirror.sync()  # at start, if stale (a no-op when the serial is the stored one)
        if report.written or report.removed:
            log.info("pages directory brought to serial %s", report.serial)
    except Exception as error:  # e.g. ``extrapypi init`` before the tables exist
        log.warning("pages directory %s not up to date at start: %s", front.pages_dir, error)
    on_close(config.registry, mirror.close)
    if front.catch_up_seconds:
        start_catch_up(mirror, front.catch_up_seconds)
    from .views.front_auth import front_auth

    config.add_route("extrapypi.front_auth", AUTH_PATH)
    config.add_view(
        front_auth,
        route_name="extrapypi.front_auth",
        request_method=("GET", "HEAD"),
        permission=NO_PERMISSION_REQUIRED,
    )
