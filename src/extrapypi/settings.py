"""The ``extrapypi.*`` settings, parsed once at start-up and kept on the registry."""

import os
import re
from dataclasses import dataclass
from typing import Any

from pyramid.settings import asbool, aslist

from .services.passwords import PasswordPolicy

PLACEHOLDER_SECRETS = {"", "change-me", "changeme", "CHANGE-ME", "CHANGE_ME", "secret"}
MIN_SECRET_LENGTH = 16

_SIZE = re.compile(r"^\s*(\d+)\s*([kmgt]?i?b?)?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}


class ConfigurationError(Exception):
    """A setting is missing or wrong; the message says how to fix it."""


def parse_size(value: str | int) -> int:
    """``"100M"``, ``"2 GiB"``, ``"1048576"`` → bytes (binary units)."""
    if isinstance(value, int):
        return value
    match = _SIZE.match(str(value))
    if not match:
        raise ConfigurationError(f"not a size: {value!r} (use e.g. 100M, 2G or a byte count)")
    unit = (match.group(2) or "")[:1].lower()
    return int(match.group(1)) * _UNITS[unit]


@dataclass(frozen=True)
class AppSettings:
    secret: str
    anonymous_read: bool
    dashboard: bool
    upload_limit_bytes: int
    project_limit_bytes: int
    bcrypt_rounds: int
    cookie_secure: bool
    session_max_age: int
    credential_cache_seconds: int
    index_url: str
    login_throttle_attempts: int = 10
    login_throttle_window: int = 300
    login_throttle_address_attempts: int = 50
    login_throttle_account_attempts: int = 100
    login_throttle_account_window: int = 3600
    #: Origins whose pages may read the JSON API (``*``: any); empty: none (CORS is opt-in).
    json_api_cors_origins: tuple[str, ...] = ()
    #: Most hyphens a granted namespace may contain (PEP 752's depth limit).
    namespace_max_depth: int = 1
    min_password_length: int = 12

    @property
    def password_policy(self) -> PasswordPolicy:
        """For passwords people set (dashboard, CLI)."""
        return PasswordPolicy(self.min_password_length)

    description_images: str = "placeholder"


def parse_settings(settings: dict[str, Any]) -> AppSettings:
    secret = os.environ.get("EXTRAPYPI_SECRET") or settings.get("extrapypi.secret", "")
    secret = secret.strip()
    if secret in PLACEHOLDER_SECRETS or len(secret) < MIN_SECRET_LENGTH:
        raise ConfigurationError(
            "extrapypi.secret is missing, too short or still the placeholder: set it in the ini "
            f"(at least {MIN_SECRET_LENGTH} characters) or in the EXTRAPYPI_SECRET environment "
            "variable, e.g. with the output of: python -c 'import secrets; "
            "print(secrets.token_urlsafe(32))'"
        )
    return AppSettings(
        secret=secret,
        anonymous_read=asbool(settings.get("extrapypi.anonymous_read", False)),
        dashboard=asbool(settings.get("extrapypi.dashboard", True)),
        upload_limit_bytes=parse_size(settings.get("extrapypi.upload_limit", "100M")),
        project_limit_bytes=parse_size(settings.get("extrapypi.project_limit", "0")),
        bcrypt_rounds=int(settings.get("extrapypi.bcrypt_rounds", 12)),
        cookie_secure=asbool(settings.get("extrapypi.cookie_secure", False)),
        session_max_age=int(settings.get("extrapypi.session_max_age", 14 * 24 * 3600)),
        credential_cache_seconds=int(settings.get("extrapypi.credential_cache_seconds", 300)),
        index_url=settings.get("extrapypi.index_url", "").rstrip("/"),
        login_throttle_attempts=int(settings.get("extrapypi.login_throttle_attempts", 10)),
        login_throttle_window=int(settings.get("extrapypi.login_throttle_window", 300)),
        json_api_cors_origins=tuple(
            origin.rstrip("/")
            for origin in aslist(settings.get("extrapypi.json_api_cors_origins", ""))
        ),
        login_throttle_address_attempts=int(
            settings.get("extrapypi.login_throttle_address_attempts", 50)
        ),
        login_throttle_account_attempts=int(
            settings.get("extrapypi.login_throttle_account_attempts", 100)
        ),
        login_throttle_account_window=int(
            settings.get("extrapypi.login_throttle_account_window", 3600)
        ),
        namespace_max_depth=_non_negative(settings, "extrapypi.namespace_max_depth", 1),
        min_password_length=_min_password_length(settings),
        description_images=parse_description_images(
            settings.get("extrapypi.description_images", "placeholder")
        ),
    )


def _non_negative(settings: dict[str, Any], key: str, default: int) -> int:
    value = str(settings.get(key, default)).strip()
    if not value.isdigit():
        raise ConfigurationError(f"{key} must be a whole number of 0 or more, not {value!r}")
    return int(value)


def _min_password_length(settings: dict[str, Any]) -> int:
    value = str(settings.get("extrapypi.min_password_length", 12)).strip()
    if not value.isdigit() or int(value) < 1:
        raise ConfigurationError(
            f"extrapypi.min_password_length must be a whole number of characters, not {value!r}"
        )
    return int(value)


DESCRIPTION_IMAGES = ("placeholder", "https")


def parse_description_images(value: str) -> str:
    """``placeholder`` (external images shown as their alt text) or ``https`` (loaded)."""
    value = str(value).strip().lower()
    if value not in DESCRIPTION_IMAGES:
        raise ConfigurationError(
            f"extrapypi.description_images must be one of {', '.join(DESCRIPTION_IMAGES)}, "
            f"not {value!r}"
        )
    return value


def includeme(config) -> None:
    config.registry["extrapypi.settings"] = parse_settings(config.get_settings())


def get_app_settings(registry) -> AppSettings:
    return registry["extrapypi.settings"]
