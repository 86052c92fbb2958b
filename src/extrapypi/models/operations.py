"""Operations: webhook endpoints and their delivery queue, retention overrides, download counts."""

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .meta import Base, UTCDateTime, utcnow
from .types import ExactString, LongText


class WebhookEndpoint(Base):
    """Where events are POSTed: every package (``package_name`` empty) or one package."""

    __tablename__ = "webhook_endpoints"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    url: Mapped[str] = mapped_column(String(2048))
    #: Signs every body (HMAC-SHA-256); kept in clear because signing needs it, shown once.
    secret: Mapped[str] = mapped_column(String(128))
    #: The normalized package name, or "" for every package (and the user events).
    package_name: Mapped[str] = mapped_column(ExactString(200), default="", index=True)
    #: Space-separated event names, or ``*`` for all of them.
    events: Mapped[str] = mapped_column(String(512), default="*")
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    created: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    deliveries: Mapped[list["WebhookDelivery"]] = relationship(
        back_populates="endpoint", cascade="all, delete-orphan", passive_deletes=True
    )


class WebhookDelivery(Base):
    """One event for one endpoint: the queue row and, once done, the delivery log.

    Written in the transaction that made the change, so a rollback never sends anything and a
    crash never loses an event. A worker claims a due row by moving ``next_attempt`` past the
    request timeout (a lease), so no other worker picks it while it is being sent.
    """

    __tablename__ = "webhook_deliveries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    endpoint_id: Mapped[int] = mapped_column(
        ForeignKey("webhook_endpoints.id", ondelete="CASCADE"), index=True
    )
    event: Mapped[str] = mapped_column(String(50))
    payload: Mapped[str] = mapped_column(LongText())
    #: ``pending`` (queued or waiting for a retry), ``delivered`` or ``failed`` (gave up).
    state: Mapped[str] = mapped_column(String(20), default="pending")
    next_attempt: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    claim: Mapped[str] = mapped_column(String(32), default="")
    last_status: Mapped[int | None] = mapped_column(Integer, nullable=True)
    last_error: Mapped[str] = mapped_column(String(512), default="")
    created: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    endpoint: Mapped[WebhookEndpoint] = relationship(back_populates="deliveries")


class RetentionRule(Base):
    """A package's own retention rule; a NULL field falls back to the configured default."""

    __tablename__ = "retention_rules"

    package_id: Mapped[int] = mapped_column(
        ForeignKey("packages.id", ondelete="CASCADE"), primary_key=True
    )
    #: Keep this many newest releases (0: no limit).
    keep_last: Mapped[int | None] = mapped_column(Integer, nullable=True)
    #: Delete pre-/dev releases older than this many days (0: never).
    prerelease_days: Mapped[int | None] = mapped_column(Integer, nullable=True)


class DownloadCount(Base):
    """Downloads of one file, added up in memory and written in batches (never per download)."""

    __tablename__ = "download_counts"

    file_id: Mapped[int] = mapped_column(
        ForeignKey("files.id", ondelete="CASCADE"), primary_key=True
    )
    package_id: Mapped[int] = mapped_column(
        ForeignKey("packages.id", ondelete="CASCADE"), index=True
    )
    count: Mapped[int] = mapped_column(BigInteger, default=0)
