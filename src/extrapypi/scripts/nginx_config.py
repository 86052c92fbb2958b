"""``extrapypi nginx-config INI``: the nginx configuration of the nginx front, from the ini.

The Accept-header map is worked out with the app's own negotiation (``views/simple.py``), so nginx
picks the same media type as the Python path for every header it knows; for any other header it
asks the app. The URL patterns are the ones ``views/front_auth.py`` accepts.
"""

import configparser
import os
import re
from importlib import resources

import jinja2

from ..front import AUTH_PATH, FrontSettings
from ..services.index import HTML_TYPE, JSON_TYPE, MEDIA_TYPES, TEXT_HTML_TYPE
from ..services.materialize import NO_FILES_MARKER, VARIANTS
from ..settings import parse_size
from ..views.front_auth import FILE_PATTERN, NAME_PATTERN, SEGMENT_PATTERN
from ..views.headers import ALWAYS, HTML_ONLY
from ..views.simple import negotiate

#: Accept headers nginx answers itself: absent, the PEP 691 names, pip's, uv's, browsers'.
KNOWN_ACCEPT_HEADERS = (
    "",
    "*/*",
    *MEDIA_TYPES,
    # pip (src/pip/_internal/index/collector.py)
    "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html; q=0.1, "
    "text/html; q=0.01",
    # uv
    "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html;q=0.2, "
    "text/html;q=0.01",
    # Firefox, Chromium
    "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
    "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,image/apng,"
    "*/*;q=0.8,application/signed-exchange;v=b3;q=0.7",
)
#: nginx's names for the stored variants (by file extension) and the charset it adds.
PAGE_HEADERS = f"""types {{
    {TEXT_HTML_TYPE} html;
    {HTML_TYPE} v1html;
    {JSON_TYPE} v1json;
}}
charset utf-8;
charset_types {HTML_TYPE} {JSON_TYPE};  # text/html is in by default
gzip off;
gzip_static on;
etag on;
add_header Vary "Accept, Accept-Encoding";
add_header Cache-Control "private, max-age=0, must-revalidate";
"""


#: Longer map keys overflow nginx's default ``map_hash_bucket_size``: those are anchored regexes.
LONGEST_EXACT_KEY = 40


def security_headers(html: bool) -> str:
    """The headers the app adds to every response (``views/headers.py``), for nginx's own."""
    headers = {**ALWAYS, **(HTML_ONLY if html else {})}
    return "\n".join(f'add_header {name} "{value}";' for name, value in headers.items())


def accept_map() -> list[tuple[str, str]]:
    """(map key, stored file) for each known header the Python path answers with a page."""
    rows = []
    for accept in KNOWN_ACCEPT_HEADERS:
        media_type = negotiate(accept) if accept else TEXT_HTML_TYPE
        if media_type is None:
            continue
        key = accept if len(accept) <= LONGEST_EXACT_KEY else f"~^{re.escape(accept)}$"
        rows.append((key, VARIANTS[media_type]))
    return rows


def server_address(config_uri: str) -> str:
    """``host:port`` of the ini's ``[server:main]`` (waitress ``listen``, or host and port)."""
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(config_uri.partition("#")[0])
    if not parser.has_section("server:main"):
        return "127.0.0.1:6543"
    section = parser["server:main"]
    listen = section.get("listen", "").split()
    if listen:
        return listen[0].replace("*:", "127.0.0.1:").replace("0.0.0.0:", "127.0.0.1:")
    host = section.get("host", "127.0.0.1").replace("0.0.0.0", "127.0.0.1")  # noqa: S104
    return f"{host}:{section.get('port', '6543')}"


#: What a path, address or name may hold to be pasted into nginx's syntax as it is.
_NGINX_SAFE = re.compile(r"[A-Za-z0-9_./:@\[\]*~+-]+( [A-Za-z0-9_./:@\[\]*~+-]+)*")


def nginx_value(what: str, value: str, path: bool = False) -> str:
    """``value`` (an absolute path with ``path``), refused if nginx would read it otherwise."""
    value = os.path.abspath(value) if path else value
    if not _NGINX_SAFE.fullmatch(value) or (path and " " in value):
        raise ValueError(
            f"{what} {value!r} has characters the nginx configuration cannot take as they are "
            "(quotes, semicolons, braces, spaces in paths): choose another"
        )
    return value


def body_limit(upload_limit: int) -> str:
    """nginx's request size limit: the app's upload limit plus room for the form fields."""
    return f"{upload_limit // (1024 * 1024) + 2}m"


def render(
    front: FrontSettings,
    config_uri: str,
    *,
    storage_root: str | None,
    upload_limit: str = "100M",
    upstream: str = "",
) -> str:
    template = resources.files("extrapypi").joinpath("templates/nginx/front.conf.jinja2")
    # An nginx file, not HTML: the values are checked by ``nginx_value`` instead.
    environment = jinja2.Environment(autoescape=False, keep_trailing_newline=True)  # noqa: S701
    text = environment.from_string(template.read_text()).render(
        config_uri=config_uri,
        upstream=nginx_value(
            "the upstream", upstream or front.upstream or server_address(config_uri)
        ),
        auth_cache_dir=nginx_value("the auth cache directory", front.auth_cache_dir, True),
        seconds=front.auth_cache_seconds,
        accept_map=accept_map(),
        listen=nginx_value("listen", front.listen),
        server_name=nginx_value("server_name", front.server_name),
        body_limit=body_limit(parse_size(upload_limit)),
        auth_path=AUTH_PATH,
        pages_dir=nginx_value("extrapypi.front.pages_dir", front.pages_dir, True),
        no_files_marker=NO_FILES_MARKER,
        page_headers=PAGE_HEADERS + security_headers(html=True),
        file_headers=security_headers(html=False),
        name_pattern=NAME_PATTERN,
        segment_pattern=SEGMENT_PATTERN,
        file_pattern=FILE_PATTERN,
        storage_root=nginx_value("extrapypi.storage.path", storage_root, True)
        if storage_root
        else None,
    )
    return text
