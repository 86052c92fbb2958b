"""Project names and versions, always through ``packaging``."""

from packaging.utils import InvalidName, canonicalize_name, canonicalize_version, is_normalized_name
from packaging.version import InvalidVersion, Version

__all__ = [
    "InvalidName",
    "InvalidVersion",
    "canonical_version",
    "is_normalized_name",
    "normalize_name",
    "version_sort_key",
]

_WIDTH = 12
_PRE_RANK = {"a": "a", "b": "b", "rc": "c"}


def normalize_name(name: str) -> str:
    """The PEP 503 name, refusing what is not a valid project name at all."""
    return canonicalize_name(name, validate=True)


def canonical_version(version: str | Version) -> str:
    """The form two spellings of one version share (``1.0`` and ``1.0.0`` are one release)."""
    return canonicalize_version(Version(str(version)), strip_trailing_zero=True)


def _num(value: int) -> str:
    # Numbers wider than the field still sort right among themselves by a length prefix.
    digits = str(value)
    if len(digits) > _WIDTH:
        return "9" * _WIDTH + f"{len(digits):03d}" + digits
    return digits.rjust(_WIDTH, "0")


def version_sort_key(version: str | Version) -> str:
    """A string whose plain byte order is PEP 440 order, for ``ORDER BY`` in SQL.

    Mirrors ``packaging``'s comparison key field by field: epoch, release (trailing zeros
    dropped), pre, post, dev, local. ``!`` ends a variable-length field and sorts before every
    digit and letter used inside one.
    """
    v = Version(str(version))
    release = list(v.release)
    while len(release) > 1 and release[-1] == 0:
        release.pop()
    parts = [_num(v.epoch), "".join("." + _num(n) for n in release) + "!"]
    if v.pre is None and v.post is None and v.dev is not None:
        parts.append("0")  # 1.0.dev1 sorts before 1.0a1
    elif v.pre is None:
        parts.append("2")
    else:
        parts.append("1" + _PRE_RANK[v.pre[0]] + _num(v.pre[1]))
    parts.append("0" if v.post is None else "1" + _num(v.post))
    parts.append("1" if v.dev is None else "0" + _num(v.dev))
    if v.local is None:
        parts.append("0")
    else:
        segments = []
        for segment in v.local.split("."):
            if segment.isdigit():
                segments.append("." + "1" + _num(int(segment)))
            else:
                segments.append("." + "0" + segment.lower())
        parts.append("1" + "".join(segments) + "!")
    return "~".join(parts)
