"""Packages (projects), their releases and release files: what the index lists."""

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Integer,
    String,
    Table,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship
from sqlalchemy.types import JSON

from .meta import Base, UTCDateTime, utcnow
from .team import Team, package_team_maintainers
from .types import ExactString, LongText
from .user import User

package_maintainers = Table(
    "package_maintainers",
    Base.metadata,
    Column("package_id", ForeignKey("packages.id", ondelete="CASCADE"), primary_key=True),
    Column("user_id", ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
)


class Package(Base):
    __tablename__ = "packages"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    normalized_name: Mapped[str] = mapped_column(ExactString(200), unique=True)
    summary: Mapped[str] = mapped_column(String(512), default="")
    created: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    #: PEP 792 project status marker (``services/status.py`` owns the rules), and why.
    status: Mapped[str] = mapped_column(String(20), default="active", server_default="active")
    status_reason: Mapped[str] = mapped_column(String(512), default="", server_default="")

    maintainers: Mapped[list[User]] = relationship(
        secondary=package_maintainers, order_by=User.username
    )
    team_maintainers: Mapped[list[Team]] = relationship(
        secondary=package_team_maintainers, order_by=Team.name
    )
    releases: Mapped[list["Release"]] = relationship(
        back_populates="package",
        cascade="all, delete-orphan",
        passive_deletes=True,
        order_by="Release.sort_key.desc()",
    )

    def __repr__(self) -> str:
        return f"<Package {self.name!r}>"


class Release(Base):
    __tablename__ = "releases"
    __table_args__ = (UniqueConstraint("package_id", "canonical_version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    package_id: Mapped[int] = mapped_column(ForeignKey("packages.id", ondelete="CASCADE"))
    version: Mapped[str] = mapped_column(String(100))
    canonical_version: Mapped[str] = mapped_column(ExactString(100))
    #: PEP 440 order as a plain string, so SQL can ``ORDER BY`` it.
    sort_key: Mapped[str] = mapped_column(ExactString(255), index=True)

    metadata_version: Mapped[str] = mapped_column(String(10), default="")
    summary: Mapped[str] = mapped_column(String(512), default="")
    #: Deferred: up to 4 MiB each, and listing a package's releases must not read them all.
    description: Mapped[str] = mapped_column(LongText(), default="", deferred=True)
    description_content_type: Mapped[str] = mapped_column(String(128), default="")
    requires_python: Mapped[str] = mapped_column(String(255), default="")
    requires_dist: Mapped[list] = mapped_column(JSON, default=list)
    provides_extra: Mapped[list] = mapped_column(JSON, default=list)
    author: Mapped[str] = mapped_column(String(512), default="")
    author_email: Mapped[str] = mapped_column(String(512), default="")
    maintainer: Mapped[str] = mapped_column(String(512), default="")
    maintainer_email: Mapped[str] = mapped_column(String(512), default="")
    license: Mapped[str] = mapped_column(LongText(), default="")
    license_expression: Mapped[str] = mapped_column(String(512), default="")
    home_page: Mapped[str] = mapped_column(String(1024), default="")
    #: ``[[label, url], ...]`` in the order given.
    project_urls: Mapped[list] = mapped_column(JSON, default=list)
    keywords: Mapped[str] = mapped_column(String(1024), default="")
    classifiers: Mapped[list] = mapped_column(JSON, default=list)

    yanked: Mapped[bool] = mapped_column(Boolean, default=False)
    yanked_reason: Mapped[str] = mapped_column(String(512), default="")
    created: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    uploader_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), nullable=True
    )

    package: Mapped[Package] = relationship(back_populates="releases")
    uploader: Mapped[User | None] = relationship()
    files: Mapped[list["File"]] = relationship(
        back_populates="release",
        cascade="all, delete-orphan",
        passive_deletes=True,
        order_by="File.filename",
    )

    @property
    def first_file(self) -> "File | None":
        """The file whose upload created the release (its uploader is the release's)."""
        return min(self.files, key=lambda f: (f.upload_time, f.id), default=None)

    def __repr__(self) -> str:
        return f"<Release {self.package_id}:{self.version}>"


class File(Base):
    __tablename__ = "files"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    release_id: Mapped[int] = mapped_column(
        ForeignKey("releases.id", ondelete="CASCADE"), index=True
    )
    filename: Mapped[str] = mapped_column(ExactString(255), unique=True)
    filetype: Mapped[str] = mapped_column(String(20))
    python_version: Mapped[str] = mapped_column(String(50), default="")
    requires_python: Mapped[str] = mapped_column(String(255), default="")
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    blake2b_256: Mapped[str] = mapped_column(String(64))
    md5: Mapped[str] = mapped_column(String(32))
    #: sha256 of the wheel's METADATA file, served at ``<file>.metadata`` (PEP 658).
    metadata_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    upload_time: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    uploader_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), nullable=True
    )

    #: The name of the API token the uploader used, if any (shown as ``alice (token "ci")``).
    upload_token: Mapped[str | None] = mapped_column(String(100), nullable=True)
    #: Who uploaded through trusted publishing (``org/repo``): shown as "via trusted publishing".
    upload_publisher: Mapped[str | None] = mapped_column(String(255), nullable=True)

    release: Mapped[Release] = relationship(back_populates="files")
    uploader: Mapped[User | None] = relationship()

    def __repr__(self) -> str:
        return f"<File {self.filename!r}>"


class FileTombstone(Base):
    """A filename that was once published: it may never name different content again."""

    __tablename__ = "file_tombstones"

    filename: Mapped[str] = mapped_column(ExactString(255), primary_key=True)
    deleted: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
