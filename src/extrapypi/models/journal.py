"""The change serial and the audit journal."""

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from .meta import Base, UTCDateTime, utcnow

#: Set on a session's ``info`` in a transaction that bumps a serial (``services/serials.py``).
SERIAL_BUMPED_KEY = "extrapypi.serial_bumped"


class IndexState(Base):
    """Row 1: its ``serial`` grows with every change to what the index shows; row 2: with every
    change to who may do what (``models/access.py``).

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
