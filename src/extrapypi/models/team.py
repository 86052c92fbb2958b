"""Teams (named groups of users) and namespace grants (PEP 752 reserved name prefixes)."""

from datetime import datetime

from sqlalchemy import CheckConstraint, Column, ForeignKey, Integer, Table
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .meta import Base, UTCDateTime, utcnow
from .types import ExactString
from .user import User

team_members = Table(
    "team_members",
    Base.metadata,
    Column("team_id", ForeignKey("teams.id", ondelete="CASCADE"), primary_key=True),
    Column("user_id", ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True),
)

#: Teams that maintain a package: each member gets what a maintainer grant gives their role.
package_team_maintainers = Table(
    "package_team_maintainers",
    Base.metadata,
    Column("package_id", ForeignKey("packages.id", ondelete="CASCADE"), primary_key=True),
    Column("team_id", ForeignKey("teams.id", ondelete="CASCADE"), primary_key=True),
)


class Team(Base):
    __tablename__ = "teams"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(ExactString(100), unique=True)
    created: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    members: Mapped[list[User]] = relationship(secondary=team_members, order_by=User.username)

    def __repr__(self) -> str:
        return f"<Team {self.name!r}>"


class Namespace(Base):
    """A reserved, normalized name prefix granted to one user or one team."""

    __tablename__ = "namespaces"
    __table_args__ = (CheckConstraint("(user_id IS NULL) <> (team_id IS NULL)", name="one_owner"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(ExactString(200), unique=True)
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), nullable=True, index=True
    )
    team_id: Mapped[int | None] = mapped_column(
        ForeignKey("teams.id", ondelete="CASCADE"), nullable=True, index=True
    )
    created: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    user: Mapped[User | None] = relationship()
    team: Mapped[Team | None] = relationship()

    @property
    def owner(self) -> str:
        """``USER`` or ``team:NAME``: how the CLI and the API name the owner."""
        return f"team:{self.team.name}" if self.team is not None else self.user.username

    def __repr__(self) -> str:
        return f"<Namespace {self.name!r} {self.owner}>"
