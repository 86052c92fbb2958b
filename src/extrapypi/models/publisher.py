"""Trusted publishers: which CI identities (an OIDC issuer and exact claims) may upload a project.

A publisher either belongs to a package, or is *pending*: registered by a developer for a name
no package has yet; the first upload through it creates the package and attaches it. Used JWT ids
are kept until the JWT expires, so a captured identity token mints at most once.
"""

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .meta import Base, UTCDateTime, utcnow
from .package import Package
from .types import ExactString
from .user import User


class TrustedPublisher(Base):
    __tablename__ = "trusted_publishers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    #: None while pending (``pending_name`` is then the normalized name it will create).
    package_id: Mapped[int | None] = mapped_column(
        ForeignKey("packages.id", ondelete="CASCADE"), nullable=True, index=True
    )
    pending_name: Mapped[str | None] = mapped_column(String(200), nullable=True, index=True)
    #: Exactly as the JWT's ``iss`` says it (and as listed in ``extrapypi.oidc.issuers``).
    issuer: Mapped[str] = mapped_column(ExactString(255))
    #: ``{claim: value}``: every one must equal the JWT's claim exactly.
    claims: Mapped[dict] = mapped_column(JSON, default=dict)
    created_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), nullable=True
    )
    created: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    package: Mapped[Package | None] = relationship()
    created_by: Mapped[User | None] = relationship()

    @property
    def project(self) -> str:
        """The normalized project name it publishes (pending or not)."""
        return self.package.normalized_name if self.package is not None else self.pending_name

    def __repr__(self) -> str:
        return f"<TrustedPublisher {self.id} {self.project} {self.issuer}>"


class UsedJwt(Base):
    """A JWT that minted a token: refused again until it expires (then pruned)."""

    __tablename__ = "used_jwts"

    #: sha256 hex of ``issuer`` + NUL + ``jti`` (or of the whole JWT when it has no ``jti``).
    key: Mapped[str] = mapped_column(ExactString(64), primary_key=True)
    expires: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
