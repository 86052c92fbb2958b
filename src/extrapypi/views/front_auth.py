"""``GET /_/front/auth``: nginx's ``auth_request`` asks whether a request may be served from disk.

nginx sends the client's ``Authorization`` header, the method (``X-Front-Method``) and the URL it
would serve (``X-Front-URI``: ``/simple/``, ``/simple/<name>/`` or
``/packages/<name>/<version>/<file>``, built by nginx from strict patterns). The answer comes from
the same traversal ACL as the Python path: the context of that URL is found through the resource
tree and ``request.has_permission`` decides, for the client's credentials (never a session
cookie: nginx caches by ``Authorization``, so a cookie login is left to the app).

200: serve it. 401: nobody logged in. 403: anything else (a refusal, a throttled login, a
quarantined project's file, an unknown project); nginx then hands the request to the app, which
answers exactly as without the front (404 with the reason for a quarantined file, 429 for a
throttled login). nginx caches each answer per credentials, method and project (or the root page)
for ``extrapypi.front.auth_cache_seconds``, so a 200 must hold for every URL of that project: it
is decided at the project, which carries the ACL of its page and files. A refusal may be
narrower (a quarantined project's file): it only sends the project's URLs to the app for a while.
"""

import re

from pyramid.httpexceptions import HTTPException
from pyramid.request import Request
from pyramid.response import Response

from ..permissions import Permission
from ..resources import root_factory
from ..security import SESSION
from ..services.status import ProjectQuarantined, refuse_quarantined_download

#: A normalized project name; a version or file name of the characters file URLs carry
#: (nothing that needs quoting, no leading dot); a file name has a dot.
NAME_PATTERN = r"[a-z0-9]+(?:-[a-z0-9]+)*"
SEGMENT_PATTERN = r"[A-Za-z0-9_+!][A-Za-z0-9._+!-]*"
FILE_PATTERN = SEGMENT_PATTERN + r"\.[A-Za-z0-9._+!-]+"
#: The only URLs nginx serves from disk (the same patterns as its ``location`` blocks).
FRONT_URI = re.compile(
    rf"^/simple/(?:(?P<page>{NAME_PATTERN})/)?$"
    rf"|^/packages/(?P<project>{NAME_PATTERN})/{SEGMENT_PATTERN}/{FILE_PATTERN}$"
)
SERVED_METHODS = ("GET", "HEAD")


def answer(status: int) -> Response:
    """No challenge on the 401: nginx copies it to its own answer, and the app's answer (to
    which nginx hands every refusal) carries its own: the client would get two."""
    return Response(status=status, cache_control="private, no-store")


def decide(client: Request, match: re.Match) -> int:
    """One answer for every URL of a project (its page and its files share nginx's cache key):
    both reading the page and downloading from the project must be granted. Every role and token
    scope holds both or neither, so this refuses nothing the Python path grants; a refusal only
    sends the request to the app, which decides it exactly."""
    root = root_factory(client)
    simple = root["simple"]
    project = match.group("page") or match.group("project")
    if project is None:  # the root page
        return 200 if client.has_permission(Permission.VIEW, simple) else refusal(client)
    if not client.has_permission(Permission.VIEW, simple[project]):
        return refusal(client)
    try:
        package = root["packages"][project]  # KeyError: unknown (its page is a 404 anyway)
        if match.group("project") is not None:
            refuse_quarantined_download(package.package)  # nginx also checks its marker file
    except (KeyError, ProjectQuarantined):
        return refusal(client)
    return 200 if client.has_permission(Permission.DOWNLOAD, package) else refusal(client)


def refusal(client: Request) -> int:
    return 401 if client.identity is None else 403


def front_auth(request) -> Response:
    uri = request.headers.get("X-Front-URI", "")
    method = request.headers.get("X-Front-Method", "GET").upper()
    match = FRONT_URI.match(uri)
    if match is None or method not in SERVED_METHODS:
        return answer(403)  # not a URL nginx serves from disk: the app answers it itself
    # This request carries the client's credentials; for the check it also carries the URL, as
    # the security policy reads the path (where an API token may be used).
    environ = request.environ
    own_path = environ.get("PATH_INFO", "")
    environ["PATH_INFO"] = uri
    try:
        identity = request.identity
        if identity is not None and identity.method == SESSION:
            return answer(401)  # nginx caches by Authorization only: cookies are the app's
        return answer(decide(request, match))
    except HTTPException:  # e.g. an account deleted under this request: the app decides
        return answer(403)
    finally:
        environ["PATH_INFO"] = own_path
