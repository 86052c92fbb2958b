"""Long descriptions rendered to safe HTML with readme_renderer (what PyPI uses).

reStructuredText goes through docutils with raw HTML and file insertion (``include``) off,
Markdown through cmark-gfm; the HTML is then cleaned by nh3 (tags, attributes and URL
schemes on an allow-list: no ``<script>``, no ``javascript:`` links). Whatever fails to render
is shown as escaped plain text.
"""

from email.message import Message

from markupsafe import Markup
from readme_renderer import markdown, rst, txt


def parse_content_type(content_type: str) -> tuple[str, dict[str, str]]:
    """``text/markdown; variant=GFM`` → ``("text/markdown", {"variant": "GFM"})``."""
    message = Message()
    message["content-type"] = content_type or "text/x-rst"
    params = {k.lower(): v for k, v in message.get_params()[1:]}
    return message.get_content_type(), params


def render_description(description: str, content_type: str = "") -> Markup:
    """Sanitized HTML for a release's long description; an empty description renders empty."""
    if not description or not description.strip():
        return Markup("")
    kind, params = parse_content_type(content_type)
    html = None
    if kind == "text/markdown":
        html = markdown.render(description, variant=params.get("variant", "GFM"))
    elif kind == "text/x-rst":
        html = rst.render(description)
    if html is None:
        html = '<pre class="plain">' + txt.render(description).replace("<br>", "\n") + "</pre>"
    return Markup(html)  # noqa: S704 - readme_renderer output is nh3-cleaned or escaped
