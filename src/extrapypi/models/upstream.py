"""What the optional upstream proxy keeps: pages it fetched, files it cached, admins' rules."""

from datetime import datetime

from sqlalchemy import BigInteger, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from .meta import Base, UTCDateTime, utcnow
from .types import ExactString, LongText


class UpstreamPage(Base):
    """The upstream's page for one project, as PEP 691 JSON with absolute file URLs."""

    __tablename__ = "upstream_pages"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    normalized_name: Mapped[str] = mapped_column(ExactString(200), unique=True)
    data: Mapped[str] = mapped_column(LongText())
    etag: Mapped[str] = mapped_column(String(255), default="")
    last_modified: Mapped[str] = mapped_column(String(64), default="")
    #: When the upstream last confirmed the page (a 200 or a 304): the ttl counts from here.
    checked: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class UpstreamFile(Base):
    """A file (or ``.metadata``) fetched from the upstream, verified and stored under ``key``.

    One row per (project, filename): whichever server commits the row first decides the content;
    the key holds the content's sha256, so two contents can never share one stored object.
    """

    __tablename__ = "upstream_files"
    __table_args__ = (UniqueConstraint("normalized_name", "filename"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    normalized_name: Mapped[str] = mapped_column(ExactString(200), index=True)
    filename: Mapped[str] = mapped_column(ExactString(255))
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(BigInteger, default=0)
    key: Mapped[str] = mapped_column(String(512))
    stored: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


class UpstreamRule(Base):
    """An admin's decision about an upstream name: ``block`` it (one version or all, version
    ``""``) or exempt it from the cooldown (``cooldown-exempt``)."""

    __tablename__ = "upstream_rules"
    __table_args__ = (UniqueConstraint("kind", "normalized_name", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))
    normalized_name: Mapped[str] = mapped_column(ExactString(200), index=True)
    version: Mapped[str] = mapped_column(String(100), default="")
    reason: Mapped[str] = mapped_column(String(255), default="")
    created: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    username: Mapped[str] = mapped_column(String(100), default="")
