"""Descriptions rendered to HTML once, kept so that page views only read them."""

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .meta import Base, UTCDateTime, utcnow
from .package import Release
from .types import ExactString, LongText


class RenderedDescription(Base):
    """The sanitized HTML of one release's description.

    One row per release, so a page view reads it by the release's id without loading the
    description itself (up to 4 MiB). ``digest`` is the sha256 of (renderer, content type, text):
    a release whose text was rendered before copies that result instead of rendering again.
    ``renderer`` names the renderer version and limit; a row made by another one is rendered
    again on the next view.
    """

    __tablename__ = "rendered_descriptions"

    release_id: Mapped[int] = mapped_column(
        ForeignKey("releases.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    digest: Mapped[str] = mapped_column(ExactString(64), index=True)
    renderer: Mapped[str] = mapped_column(String(255))
    html: Mapped[str] = mapped_column(LongText())
    #: Why the text is shown plain (markup errors, too deep, too slow); empty when it rendered.
    failure: Mapped[str] = mapped_column(String(255), default="")
    created: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    release: Mapped[Release] = relationship()
