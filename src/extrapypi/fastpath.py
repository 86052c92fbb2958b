"""Cached reads answered before Pyramid builds a request: the simple pages and files pip fetches.

A cached page costs microseconds; routing, traversal, the security policy, the transaction and
the response machinery around it cost ten times that. So once the full stack has answered a
read, this WSGI layer answers the same read again from what the full stack left behind:

- the login cache (``security.py``): who the Basic credentials are, at this access serial;
- the read decisions (``ReadDecisions``): what the security policy answered (the traversal ACLs
  decided) for this user and role on this context path, at this access serial;
- the page cache (``services/index.py``) or the file facts (``FileFacts``) at this index serial.

Anything it does not already know (a first login, a token, a cookie, a query string, a range or
conditional request, a refusal, a 404, a redirect) goes through the full stack unchanged, which
then fills the caches. Both serials come from the process's ``SerialClock``: no database round
trip. Responses carry the headers the full stack would add (security headers, metrics, the
request log line).
"""

import base64
import binascii
import logging
import os
import time
from email.utils import formatdate
from urllib.parse import quote

from webob.request import PATH_SAFE

from .services.metrics import COUNTER_KEY, DOWNLOADS, LATENCY, PAGE_CACHE, REQUESTS
from .services.read_cache import DECISIONS_KEY, FILES_KEY, FileFactsCache, ReadDecisions
from .services.serials import serial_clock
from .services.tokens import TOKEN_USERNAME
from .storage.local import BLOCK_SIZE, LocalStorage
from .tweens import log
from .views.headers import ALWAYS, HTML_ONLY
from .views.simple import negotiate, page_answer, page_cache

log_requests = log
PREFIXES = ("/simple/", "/packages/")
#: Requests whose answer depends on more than the path and the credentials: the full stack.
FULL_STACK_HEADERS = (
    "HTTP_COOKIE",
    "HTTP_RANGE",
    "HTTP_IF_RANGE",
    "HTTP_IF_MODIFIED_SINCE",
    "HTTP_IF_UNMODIFIED_SINCE",
    "HTTP_IF_MATCH",
)
VIEW = "view"
DOWNLOAD = "download"
#: Files up to this size are read in one go: cheaper than the server's file wrapper machinery.
SMALL_FILE = 64 * 1024


def logged_path(environ) -> str:
    """``request.path`` as the request log writes it (WSGI strings carry bytes as latin-1)."""
    raw = (environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")).encode("latin-1")
    return quote(raw, PATH_SAFE)


def basic_credentials(authorization: str | None) -> tuple[str, str] | None:
    """(username, password) of a Basic header, as ``extract_http_basic_credentials`` reads it."""
    if not authorization or authorization[:6].lower() != "basic ":
        return None
    try:
        decoded = base64.b64decode(authorization[6:].strip(), validate=True)
    except (binascii.Error, ValueError):
        return None
    try:
        text = decoded.decode("utf-8")
    except UnicodeDecodeError:
        text = decoded.decode("latin-1")
    username, colon, password = text.partition(":")
    return (username, password) if colon else None


class FastReads:
    """WSGI middleware around the Pyramid router (``main()`` wraps it)."""

    def __init__(self, router):
        self.router = router
        registry = router.registry
        self.registry = registry
        self.clock = serial_clock(registry)
        self.policy = registry["extrapypi.security_policy"]
        self.decisions: ReadDecisions = registry[DECISIONS_KEY]
        self.files: FileFactsCache = registry[FILES_KEY]
        self.pages = page_cache(registry)  # the one the views fill
        storage = registry["extrapypi.storage"]
        storage = getattr(storage, "_storage", storage)  # under the metrics' CountingStorage
        plain = isinstance(storage, LocalStorage) and not storage.accel_redirect
        self.storage = storage if plain and not storage.sendfile else None
        self.counter = registry.get(COUNTER_KEY)
        self.session_factory = registry["dbsession_factory"]

    def __getattr__(self, name: str):
        return getattr(self.router, name)  # registry users (tests, scripts) see the router

    def __call__(self, environ, start_response):
        method = environ.get("REQUEST_METHOD")
        path = environ.get("PATH_INFO", "")
        if (
            (method == "GET" or method == "HEAD")
            and path.startswith(PREFIXES)
            and not environ.get("QUERY_STRING")
            and not any(name in environ for name in FULL_STACK_HEADERS)
        ):
            started = time.perf_counter()
            answer = self._answer(environ, method, path)
            if answer is not None:
                username, label, status, headers, body = answer
                start_response(status, headers)
                code = status[:3]
                REQUESTS.labels(label, method, code).inc()
                LATENCY.labels(label).observe(time.perf_counter() - started)
                if log_requests.isEnabledFor(logging.INFO):
                    log_requests.info(
                        "%s %s %s %s %.1fms",
                        username,
                        method,
                        logged_path(environ),
                        code,
                        (time.perf_counter() - started) * 1000,
                    )
                return body
        return self.router(environ, start_response)

    def _account(self, environ, serials):
        """(account, API token id or None) of credentials the full stack verified before."""
        credentials = basic_credentials(environ.get("HTTP_AUTHORIZATION"))
        if credentials is None:
            return None
        username, password = credentials
        if username == TOKEN_USERNAME:
            address = environ.get("REMOTE_ADDR", "")
            entry = self.policy.cached_token(
                serials.access, password, address, self.session_factory
            )
            return None if entry is None else (entry[0], entry[1].id)
        account = self.policy.cached_account(serials.access, username, password)
        return None if account is None else (account, None)

    def _allowed(self, serials, who, context_path: tuple, permission: str) -> bool:
        account, token_id = who
        key = (account.id, account.role, context_path, permission)
        if token_id is not None:  # the token's own answer: its scope and projects narrow it
            key = (*key, token_id)
        return self.decisions.get(serials.access, key) is True

    def _answer(self, environ, method: str, path: str):
        serials = self.clock.current()
        if path.startswith("/simple/"):
            return self._page(environ, method, path, serials)
        return self._file(environ, method, path, serials)

    def _page(self, environ, method: str, path: str, serials):
        name = path[len("/simple/") : -1] if path.endswith("/") else None
        if name is None or "/" in name:
            return None
        accept = environ.get("HTTP_ACCEPT")
        media_type = "text/html" if accept is None else negotiate(accept)
        if media_type is None:
            return None
        found, page = self.pages.get(serials.index, (name or None, media_type))
        if not found or page is None:
            return None
        who = self._account(environ, serials)
        if who is None:
            return None
        context_path = ("simple", name) if name else ("simple",)
        if not self._allowed(serials, who, context_path, VIEW):
            return None
        PAGE_CACHE.labels("hit").inc()
        code, headers, body = page_answer(environ, page, media_type)
        headers.extend(ALWAYS.items())
        if media_type == "text/html":  # what ``views/headers.py`` adds to text/html answers
            headers.extend(HTML_ONLY.items())
        status = "304 Not Modified" if code == 304 else "200 OK"
        label = "SimpleProject" if name else "SimpleIndex"
        return who[0].username, label, status, headers, [] if method == "HEAD" else [body]

    def _file(self, environ, method: str, path: str, serials):
        if self.storage is None or "HTTP_IF_NONE_MATCH" in environ:
            return None
        facts = self.files.get(serials.index, path)
        if facts is None:
            return None
        who = self._account(environ, serials)
        if who is None or not self._allowed(serials, who, facts.path, DOWNLOAD):
            return None
        try:
            file = open(self.storage.path(facts.storage_key), "rb")  # noqa: SIM115 - server closes
        except OSError:
            return None  # the full stack says what is wrong (a 404 naming the file)
        try:
            stat = os.fstat(file.fileno())
        except OSError:
            file.close()
            return None
        headers = [
            ("Content-Type", "application/octet-stream"),
            ("Content-Length", str(stat.st_size)),
            ("Last-Modified", formatdate(stat.st_mtime, usegmt=True)),
            ("ETag", f'"{facts.sha256}"'),
            ("Cache-Control", "private, max-age=31536000, immutable"),
            ("Content-Disposition", facts.disposition),
            ("Accept-Ranges", "bytes"),
            *ALWAYS.items(),
        ]
        if method == "HEAD":
            file.close()
            body = []
        elif stat.st_size <= SMALL_FILE:  # a wheel's .metadata, a small wheel: one read
            with file:
                body = [file.read()]
        else:  # streamed by the server (flat memory whatever the size)
            wrapper = environ.get("wsgi.file_wrapper")
            body = wrapper(file, BLOCK_SIZE) if wrapper else _FileIter(file)
        if method == "GET" and facts.filename:  # a whole-file download (``count_download``)
            DOWNLOADS.labels(facts.project).inc()
            if self.counter is not None and self.counter.add(facts.filename):
                self.counter.flush_soon()
        return who[0].username, facts.view_label, "200 OK", headers, body


class _FileIter:
    def __init__(self, file):
        self.file = file

    def __iter__(self):
        return iter(lambda: self.file.read(BLOCK_SIZE), b"")

    def close(self) -> None:
        self.file.close()
