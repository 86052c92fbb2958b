"""Failed logins, kept a short while so every app process can throttle password guessing."""

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from .meta import Base, UTCDateTime, utcnow
from .types import ExactString


class LoginFailure(Base):
    """One failed attempt, counted against ``user:<name>`` and, in another row, ``addr:<ip>``."""

    __tablename__ = "login_failures"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(ExactString(255), index=True)
    attempted: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


class LoginAddress(Base):
    """An address this account has logged in from with its password: trusted while it is attacked.

    When many addresses guess one account's password, new addresses are paused for that account
    (``services/throttle.py``); these keep working, so the attack does not lock the owner out.
    """

    __tablename__ = "login_addresses"
    __table_args__ = (UniqueConstraint("user_id", "address"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    address: Mapped[str] = mapped_column(ExactString(64))
    last_success: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
