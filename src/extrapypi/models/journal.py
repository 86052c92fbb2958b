"""The change serial and the audit journal."""

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from .meta import Base, UTCDateTime, utcnow


class IndexState(Base):
    """One row whose ``serial`` grows with every change to what the index shows.

    Writers bump it with ``UPDATE ... SET serial = serial + 1``: the row lock orders them, so the
    serial a reader sees only grows once every change below it is committed (a safe cache key).
    """

    __tablename__ = "index_state"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    serial: Mapped[int] = mapped_column(BigInteger, default=0)


class JournalEntry(Base):
    """Who changed what, when: uploads, yanks, deletions, maintainer and user changes."""

    __tablename__ = "journal"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    serial: Mapped[int] = mapped_column(BigInteger, index=True)
    action: Mapped[str] = mapped_column(String(50))
    package_name: Mapped[str] = mapped_column(String(200), default="", index=True)
    version: Mapped[str] = mapped_column(String(100), default="")
    filename: Mapped[str] = mapped_column(String(255), default="")
    detail: Mapped[str] = mapped_column(String(1024), default="")
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), nullable=True
    )
    username: Mapped[str] = mapped_column(String(100), default="")
    submitted: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
