"""``extrapypi new-config``: a production-ready ini with a fresh secret; never overwrites."""

import os
import secrets
from pathlib import Path

TEMPLATE = """\
###
# extrapypi configuration, written by `extrapypi new-config`.
# Every extrapypi.* setting: docs/configuration.md. Deployment: docs/deployment.md.
###

[app:main]
use = egg:extrapypi

pyramid.reload_templates = false
pyramid.debug_authorization = false
pyramid.debug_notfound = false
pyramid.debug_routematch = false
pyramid.default_locale_name = en

sqlalchemy.url = {database_url}
# sqlalchemy.url = postgresql+psycopg://extrapypi@127.0.0.1:5432/extrapypi
# sqlalchemy.url = mysql+pymysql://extrapypi:password@127.0.0.1:3306/extrapypi?charset=utf8mb4
retry.attempts = 3

# Keep this file private (it is created readable by its owner only).
extrapypi.secret = {secret}
extrapypi.storage = local
extrapypi.storage.path = {packages_dir}
# Behind nginx, let it send the files (see docs/deployment.md, "X-Accel-Redirect"):
# extrapypi.storage.accel_redirect = /_extrapypi_files/
extrapypi.anonymous_read = false
extrapypi.dashboard = true
extrapypi.upload_limit = 100M
# Served over HTTPS (directly or by a proxy)? Then:
# extrapypi.cookie_secure = true

# gunicorn/uwsgi behind a proxy, or mounted under a sub-path: uncomment (docs/deployment.md).
# filter-with = proxy
#
# [filter:proxy]
# use = egg:PasteDeploy#prefix
# prefix = /pypi

[alembic]
# migrations ship inside the package
script_location = extrapypi:migrations

[server:main]
use = egg:waitress#main
listen = {host}:{port}
threads = 8
# Refuse bodies larger than this before spooling them to disk (413): a little above
# extrapypi.upload_limit, since an upload carries its metadata fields too.
max_request_body_size = 110000000
# Behind a reverse proxy on this machine: trust its X-Forwarded-* headers so links are right.
# trusted_proxy = 127.0.0.1
# trusted_proxy_headers = x-forwarded-proto x-forwarded-host x-forwarded-for x-forwarded-port
# clear_untrusted_proxy_headers = true
# Mounted under a sub-path by the proxy (https://example.com/pypi/simple/):
# url_prefix = /pypi

###
# logging: request lines (user method path status duration) and upload/delete events at INFO
###

[loggers]
keys = root, extrapypi, sqlalchemy, alembic

[handlers]
keys = console

[formatters]
keys = generic

[logger_root]
level = WARN
handlers = console

[logger_extrapypi]
level = INFO
handlers =
qualname = extrapypi

[logger_sqlalchemy]
level = WARN
handlers =
qualname = sqlalchemy.engine

[logger_alembic]
level = INFO
handlers =
qualname = alembic

[handler_console]
class = StreamHandler
args = (sys.stderr,)
level = NOTSET
formatter = generic

[formatter_generic]
format = %(asctime)s %(levelname)-5.5s [%(name)s] %(message)s
"""


class ConfigExists(Exception):
    """The target file is already there; new-config never overwrites."""


def _ini_value(value: str) -> str:
    """A literal for the ini: ``%`` would start an interpolation."""
    return value.replace("%", "%%")


def render_config(
    base_dir: str | None = None,
    host: str = "127.0.0.1",
    port: int = 6543,
    database_url: str | None = None,
    secret: str | None = None,
) -> str:
    """The ini text; ``base_dir`` None keeps data beside the file (``%(here)s/var``)."""
    base = "%(here)s/var" if base_dir is None else _ini_value(str(Path(base_dir).resolve()))
    return TEMPLATE.format(
        database_url=_ini_value(database_url)
        if database_url
        else f"sqlite:///{base}/extrapypi.sqlite",
        secret=_ini_value(secret or secrets.token_urlsafe(32)),
        packages_dir=f"{base}/packages",
        host=host,
        port=port,
    )


def write_config(path: str | os.PathLike, text: str, base_dir: str | None = None) -> Path:
    """Create ``path`` (mode 0600) with ``text``; refuse if it exists. Make the data directory."""
    path = Path(path)
    data_dir = Path(base_dir) if base_dir is not None else path.resolve().parent / "var"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise ConfigExists(f"{path} already exists; not overwriting it.") from None
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)
    data_dir.mkdir(parents=True, exist_ok=True)
    return path
