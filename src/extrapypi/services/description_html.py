"""Small, pure touch-ups of a description's sanitized HTML before it goes into a page.

They work on readme_renderer's nh3-cleaned output (well-formed tags, attributes double-quoted
and entity-escaped), so matching tags with regular expressions is safe here: text that looks
like a tag inside the description arrives escaped (``&lt;h1&gt;``) and is not touched.

* Headings go one level down (``h1`` → ``h2`` …, ``h6`` stays): the page's own ``h1`` is the
  package name, and the README's title must not compete with it.
* Images from other sites are blocked by the Content-Security-Policy (``img-src 'self'``), which
  leaves a broken icon and a console error. They become a placeholder showing their alt text,
  unless the deployment allows ``https:`` images (``extrapypi.description_images = https``).

Call ``polish_description`` on the stored/rendered HTML once, where descriptions are rendered.
"""

import re
from html import escape, unescape

from markupsafe import Markup

_HEADING = re.compile(r"<(/?)h([1-6])(?=[\s>])", re.IGNORECASE)
_IMG = re.compile(r"<img\b[^>]*>", re.IGNORECASE)
_ATTRIBUTE = r'\b{name}="([^"]*)"'


def demote_headings(html: str) -> str:
    """Every heading one level lower, ``h6`` staying ``h6``."""
    return _HEADING.sub(lambda m: f"<{m.group(1)}h{min(int(m.group(2)) + 1, 6)}", html)


def _attribute(tag: str, name: str) -> str:
    match = re.search(_ATTRIBUTE.format(name=name), tag, re.IGNORECASE)
    return unescape(match.group(1)) if match else ""


def external_images(html: str, *, allow_https: bool = False) -> str:
    """Images from other hosts as alt-text placeholders (``https:`` ones kept when allowed)."""

    def replace(match: re.Match) -> str:
        tag = match.group(0)
        source = _attribute(tag, "src").strip()
        lowered = source.lower()
        external = lowered.startswith(("http:", "https:", "//"))
        if not external or (allow_https and lowered.startswith("https:")):
            return tag
        alt = _attribute(tag, "alt").strip() or "image"
        return (
            f'<span class="img-placeholder" title="Image not loaded: {escape(source)}">'
            f"{escape(alt)}</span>"
        )

    return _IMG.sub(replace, html)


def polish_description(html: str, *, allow_https_images: bool = False) -> Markup:
    """Both touch-ups, on sanitized HTML (an empty description stays empty)."""
    if not html:
        return Markup("")
    html = external_images(demote_headings(str(html)), allow_https=allow_https_images)
    return Markup(html)  # noqa: S704 - the input is sanitized HTML; only escaped text is added
