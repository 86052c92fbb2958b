"""API tokens: credentials for machines (twine, uv, pip, CI) that are not a person's password.

The token itself is shown once; the table keeps only an HMAC-SHA-256 of its secret part keyed
with the server secret, so a leaked database holds nothing usable and a check costs microseconds
(bcrypt would make every pip request slow). Limits (scope, projects, expiry) live on the row;
what the owner may do is read from the owner's row on every use, so role changes apply at once.
"""

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .meta import Base, UTCDateTime, utcnow
from .types import ExactString
from .user import User


class ApiToken(Base):
    __tablename__ = "api_tokens"

    #: Public and short: shown in lists, part of the token, used to revoke it.
    id: Mapped[str] = mapped_column(ExactString(16), primary_key=True)
    user_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(100))
    #: ``read`` or ``upload`` (``services/tokens.py``).
    scope: Mapped[str] = mapped_column(String(10))
    #: Space-separated normalized project names; empty: every project the owner may use.
    projects: Mapped[str] = mapped_column(String(1024), default="")
    #: Hex HMAC-SHA-256 of the secret part, keyed with the server secret.
    secret_hash: Mapped[str] = mapped_column(ExactString(64))
    created: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    #: Written at most once a minute per token (not per request).
    last_used: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_used_from: Mapped[str] = mapped_column(String(64), default="")
    revoked: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    #: A token minted by trusted publishing: who published (``org/repo``), else empty.
    publisher: Mapped[str] = mapped_column(String(255), default="")
    #: The trusted publishers' ids it was minted through (space-separated), else empty.
    publisher_ids: Mapped[str] = mapped_column(String(255), default="")

    user: Mapped[User] = relationship()

    @property
    def project_names(self) -> list[str]:
        return self.projects.split()

    def __repr__(self) -> str:
        return f"<ApiToken {self.id} {self.name!r} {self.scope}>"
