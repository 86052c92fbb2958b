"""Failed logins, kept a short while so every app process can throttle password guessing."""

from datetime import datetime

from sqlalchemy import Integer
from sqlalchemy.orm import Mapped, mapped_column

from .meta import Base, UTCDateTime, utcnow
from .types import ExactString


class LoginFailure(Base):
    """One failed attempt, counted against ``user:<name>`` and, in another row, ``addr:<ip>``."""

    __tablename__ = "login_failures"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(ExactString(255), index=True)
    attempted: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
