"""Long descriptions rendered once, under limits, to safe HTML kept in the database.

readme_renderer does the rendering and the sanitizing, as on PyPI: reStructuredText through
docutils with raw HTML and file insertion (``include``) off, Markdown through cmark-gfm, then nh3
(tags, attributes and URL schemes on an allow-list: no ``<script>``, no ``javascript:`` links).

Rendering is expensive and a description is written by whoever uploads, so it is never done on
a page view's own account more than once:

- at most ``extrapypi.description_render_limit`` bytes are rendered and shown; a note says
  the rest is in the release's metadata;
- the renderer runs in a child process under a CPU, memory and wall-clock limit
  (:mod:`.render_worker`); a description that overruns them, nests too deeply or is not valid
  markup is shown as escaped plain text under a note saying why;
- the result is stored in ``rendered_descriptions``, one row per release, written when the
  release is created (or on the first view of a release that predates the table); page views read
  it by the release's id and never load the description itself. Each row carries the sha256 of
  (renderer, content type, text), so a text rendered once is copied, not rendered again.
"""

import functools
import hashlib
from dataclasses import dataclass
from email.message import Message
from importlib.metadata import PackageNotFoundError, version

from markupsafe import Markup, escape
from pyramid.threadlocal import get_current_registry
from sqlalchemy import select
from sqlalchemy.orm import Session

from ..models import Release, RenderedDescription
from ..models.meta import utcnow
from ..settings import ConfigurationError, parse_size
from .render_worker import RenderWorker

#: Bump to have every description rendered again (on its next view) after a change here.
RENDERER_VERSION = "1"
REGISTRY_KEY = "extrapypi.descriptions"
RST, MARKDOWN = "text/x-rst", "text/markdown"
LABELS = {RST: "reStructuredText", MARKDOWN: "Markdown"}


@dataclass(frozen=True)
class DescriptionSettings:
    """``extrapypi.description_render_*``: how much to show, how long and how much memory."""

    render_bytes: int = 64 * 1024
    seconds: float = 3.0
    memory_bytes: int = 512 * 1024 * 1024


def parse_description_settings(settings: dict) -> DescriptionSettings:
    defaults = DescriptionSettings()
    try:
        parsed = DescriptionSettings(
            render_bytes=parse_size(
                settings.get("extrapypi.description_render_limit", defaults.render_bytes)
            ),
            seconds=float(settings.get("extrapypi.description_render_seconds", defaults.seconds)),
            memory_bytes=parse_size(
                settings.get("extrapypi.description_render_memory", defaults.memory_bytes)
            ),
        )
    except ValueError as error:
        raise ConfigurationError(f"extrapypi.description_render_*: {error}") from None
    if parsed.seconds <= 0:
        raise ConfigurationError("extrapypi.description_render_seconds must be more than 0")
    if parsed.memory_bytes and parsed.memory_bytes < 128 * 1024 * 1024:
        raise ConfigurationError(
            "extrapypi.description_render_memory must be at least 128M (or 0 for no limit)"
        )
    return parsed


def parse_content_type(content_type: str) -> tuple[str, dict[str, str]]:
    """``text/markdown; variant=GFM`` → ``("text/markdown", {"variant": "GFM"})``."""
    message = Message()
    message["content-type"] = content_type or "text/x-rst"
    params = {k.lower(): v for k, v in message.get_params()[1:]}
    return message.get_content_type(), params


@functools.cache
def _library_versions() -> str:
    """The renderers' versions are part of the key: an upgrade renders descriptions again."""
    found = []
    for name in ("readme_renderer", "docutils", "cmarkgfm", "nh3"):
        try:
            found.append(f"{name}={version(name)}")
        except PackageNotFoundError:
            found.append(f"{name}=-")
    return ",".join(found)


@dataclass(frozen=True)
class Rendered:
    html: Markup
    #: Why the description is shown as plain text ("" when it rendered).
    failure: str = ""
    #: False when the failure was the server's (no renderer), not the description's.
    lasting: bool = True


def _plain(text: str) -> Markup:
    return Markup('<pre class="plain">') + escape(text) + Markup("</pre>")


def _note(message: str) -> Markup:
    return Markup('<p class="warning description-note">') + escape(message) + Markup("</p>")


def _split(text: str, limit: int) -> tuple[str, str]:
    """The part to render (at most ``limit`` UTF-8 bytes, ending at a paragraph when it can)."""
    data = text.encode("utf-8")
    if len(data) <= limit:
        return text, ""
    head = data[:limit].decode("utf-8", "ignore")
    paragraph = head.rfind("\n\n")
    if paragraph > len(head) // 2:
        head = head[: paragraph + 1]
    return head, text[len(head) :]


class DescriptionRenderer:
    """The settings and the worker process of one app; one per registry."""

    def __init__(self, settings: DescriptionSettings | None = None) -> None:
        self.settings = settings or DescriptionSettings()
        self.worker = RenderWorker(self.settings.seconds, self.settings.memory_bytes)

    @functools.cached_property
    def signature(self) -> str:
        """What a stored result depends on besides the text: renderer versions and the limit."""
        return f"{RENDERER_VERSION};{_library_versions()};{self.settings.render_bytes}"

    def key(self, description: str, content_type: str) -> str:
        kind, params = parse_content_type(content_type)
        variant = params.get("variant", "") if kind == MARKDOWN else ""
        digest = hashlib.sha256()
        for part in (self.signature, kind, variant):
            digest.update(part.encode("utf-8") + b"\0")
        digest.update(description.encode("utf-8", "surrogatepass"))
        return digest.hexdigest()

    def render(self, description: str, content_type: str) -> Rendered:
        """Sanitized HTML, or the escaped text with a note: never an exception for bad input.

        Only the first ``render_bytes`` are shown, rendered or plain: a page that carried
        megabytes of text would cost every view megabytes of reading and sending.
        """
        if not description or not description.strip():
            return Rendered(Markup(""))
        kind, params = parse_content_type(content_type)
        head, rest = _split(description, self.settings.render_bytes)
        cut = Markup("")
        if rest:
            limit = self.settings.render_bytes // 1024
            cut = _note(
                f"This description is longer than {limit} KiB: only its beginning is shown "
                "here. The whole text is in the release's metadata (its JSON API and files)."
            )
        if kind not in LABELS:
            return Rendered(_plain(head) + cut)
        outcome = self.worker.render(head, kind, params.get("variant", ""))
        if outcome.html is None:
            note = (
                f"This description could not be rendered as {LABELS[kind]}: {outcome.reason}. "
                "It is shown as plain text."
            )
            html = _note(note) + _plain(head) + cut
            return Rendered(html, outcome.reason, outcome.lasting)
        html = Markup(outcome.html)  # noqa: S704 - nh3-cleaned by readme_renderer in the worker
        return Rendered(html + cut)


@functools.cache
def _default_renderer() -> DescriptionRenderer:
    return DescriptionRenderer()


def renderer_for(dbsession: Session) -> DescriptionRenderer:
    """The app's renderer: from the request's registry, the bootstrapped one, or the defaults."""
    request = dbsession.info.get("request")
    registry = request.registry if request is not None else get_current_registry()
    renderer = registry.get(REGISTRY_KEY) if registry is not None else None
    return renderer if renderer is not None else _default_renderer()


def render_description(description: str, content_type: str = "") -> Markup:
    """Render without storing (the default limits): for callers with no database."""
    return _default_renderer().render(description, content_type).html


def _render_or_copy(dbsession: Session, renderer: DescriptionRenderer, release: Release) -> dict:
    """The stored row's values: copied from a release with the same text, or rendered now."""
    description, content_type = release.description, release.description_content_type
    key = renderer.key(description, content_type)
    with dbsession.no_autoflush:  # a new release is not written before its render is done
        same = dbsession.scalars(
            select(RenderedDescription).where(RenderedDescription.digest == key).limit(1)
        ).first()
    if same is not None:
        return {"digest": key, "html": same.html, "failure": same.failure, "lasting": True}
    rendered = renderer.render(description, content_type)
    return {
        "digest": key,
        "html": str(rendered.html),
        "failure": rendered.failure[:255],
        "lasting": rendered.lasting,
    }


def describe_new_release(dbsession: Session, release: Release) -> None:
    """Render a new (unflushed) release's description; the row is written with the release."""
    renderer = renderer_for(dbsession)
    values = _render_or_copy(dbsession, renderer, release)
    if values.pop("lasting"):
        dbsession.add(RenderedDescription(release=release, renderer=renderer.signature, **values))


def _upsert(dbsession: Session, release_id: int, values: dict) -> None:
    """Store a release's row, replacing a stale one; a concurrent first view may win the race."""
    values = {"release_id": release_id, **values, "created": utcnow()}
    changes = {k: v for k, v in values.items() if k != "release_id"}
    dialect = dbsession.get_bind().dialect.name
    # each dialect's module is loaded where used (PostgreSQL's costs a SQLite server 2 MB)
    if dialect == "postgresql":
        from sqlalchemy.dialects import postgresql

        statement = postgresql.insert(RenderedDescription).values(values)
        statement = statement.on_conflict_do_update(index_elements=["release_id"], set_=changes)
    elif dialect == "sqlite":
        from sqlalchemy.dialects import sqlite

        statement = sqlite.insert(RenderedDescription).values(values)
        statement = statement.on_conflict_do_update(index_elements=["release_id"], set_=changes)
    else:
        from sqlalchemy.dialects import mysql

        statement = mysql.insert(RenderedDescription).values(values)
        statement = statement.on_duplicate_key_update(**changes)
    dbsession.execute(statement)


def description_html(dbsession: Session, release: Release | None) -> Markup:
    """A release's description as stored; rendered (and stored) here only when there is none."""
    if release is None:
        return Markup("")
    renderer = renderer_for(dbsession)
    stored = dbsession.get(RenderedDescription, release.id)
    if stored is not None and stored.renderer == renderer.signature:
        return Markup(stored.html)  # noqa: S704 - stored output of DescriptionRenderer.render
    values = _render_or_copy(dbsession, renderer, release)
    if values.pop("lasting"):
        _upsert(dbsession, release.id, {**values, "renderer": renderer.signature})
        if stored is not None:
            dbsession.expire(stored)
    return Markup(values["html"])  # noqa: S704 - as above


def includeme(config) -> None:
    config.registry[REGISTRY_KEY] = DescriptionRenderer(
        parse_description_settings(config.get_settings())
    )
