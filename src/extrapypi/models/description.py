"""Descriptions rendered to HTML once, kept so that page views only read them."""

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from .meta import Base, UTCDateTime, utcnow
from .types import ExactString, LongText


class RenderedDescription(Base):
    """The sanitized HTML of one description, keyed by what it was rendered from.

    ``digest`` is the sha256 of (renderer version, render limit, content type, text), so releases
    with the same description share a row, and a new renderer version or limit renders again.
    Rows are never updated; an unused row is harmless (a later upload may use it again).
    """

    __tablename__ = "rendered_descriptions"

    digest: Mapped[str] = mapped_column(ExactString(64), primary_key=True)
    html: Mapped[str] = mapped_column(LongText())
    #: Why the text is shown plain (markup errors, too deep, too slow); empty when it rendered.
    failure: Mapped[str] = mapped_column(String(255), default="")
    created: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
