"""``Content-Disposition`` for downloads, built by the rules (RFC 6266, RFC 8187), never pasted.

A filename pasted between quotes once let ``x"; filename*=utf8''setup.bat; y=".whl`` rename the
download in the browser, and a non-Latin-1 name made the response fail. Names the index accepts
today are plain ASCII; rows from before may not be, and every download must still work.
"""

import re
from urllib.parse import quote

_PLAIN = re.compile(r"[A-Za-z0-9._+!-]+")
_NOT_PLAIN = re.compile(r"[^A-Za-z0-9._+!-]")
#: RFC 8187 ``attr-char`` beyond letters and digits: everything else is percent-encoded.
_ATTR_CHARS = "!#$&+-.^_`|~"


def attachment(filename: str) -> str:
    """``attachment; filename="<name>"``, plus ``filename*=UTF-8''<name>`` when the name is not
    plain: the quoted fallback then has every other character replaced by ``_``."""
    if _PLAIN.fullmatch(filename):
        return f'attachment; filename="{filename}"'
    fallback = _NOT_PLAIN.sub("_", filename) or "download"
    encoded = quote(filename, safe=_ATTR_CHARS, encoding="utf-8", errors="replace")
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{encoded}"
