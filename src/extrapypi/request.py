"""The request class: malformed client input becomes a 400 (or is ignored), never a traceback.

webob parses the query string, the form body and the cookies lazily and raises plain Python
errors on bad bytes (``UnicodeDecodeError``, ``ValueError`` for a multipart body without a
boundary, ``DeprecationWarning`` for a form in a charset other than UTF-8). Left alone they
surface as 500s wherever the first reader happens to be (the CSRF check, a view, the session).
Mapping them here covers every view at once.
"""

from pyramid.httpexceptions import HTTPBadRequest
from pyramid.request import Request as PyramidRequest
from webob.cookies import RequestCookies, parse_cookie

from .views.errors import plain_error

#: What webob raises for a form body or query string it cannot parse.
FORM_ERRORS = (ValueError, KeyError, IndexError, UnicodeDecodeError, DeprecationWarning)


def malformed(reason: str) -> HTTPBadRequest:
    return plain_error(HTTPBadRequest, f"Bad Request: {reason}")


def refuse_nul(fields, where: str):
    """NUL is never part of legitimate text here, and PostgreSQL refuses it in any parameter."""
    for name, value in fields.items():
        if "\x00" in name or (isinstance(value, str) and "\x00" in value):
            raise malformed(f"NUL character in the {where} field {name!r}")
    return fields


class Request(PyramidRequest):
    @property
    def GET(self):
        try:
            return refuse_nul(super().GET, "query string")
        except UnicodeDecodeError:
            raise malformed("the query string is not valid percent-encoded UTF-8") from None

    @property
    def POST(self):
        try:
            fields = super().POST
        except FORM_ERRORS:
            raise malformed(
                "malformed form body (expected UTF-8 application/x-www-form-urlencoded "
                "or multipart/form-data with a boundary)"
            ) from None
        return refuse_nul(fields, "form")

    @property
    def cookies(self):
        """The cookies; when one is not UTF-8 (another app on this host), the valid ones."""
        cookies = RequestCookies(self.environ)
        try:
            len(cookies)
        except UnicodeDecodeError:
            valid = {}
            for name, value in parse_cookie(self.environ.get("HTTP_COOKIE", "")):
                try:
                    valid[name.decode()] = value.decode()
                except UnicodeDecodeError:
                    continue
            return valid
        return cookies

    @cookies.setter
    def cookies(self, value) -> None:
        PyramidRequest.cookies.fset(self, value)


def includeme(config) -> None:
    config.set_request_factory(Request)
