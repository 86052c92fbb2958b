"""teams, project status markers (PEP 792) and namespace grants (PEP 752)

Revision ID: 5c3f7a9e1d42
Revises: 3a1f5e7c9b20
Create Date: 2026-11-29 16:00:00.000000
"""

import sqlalchemy as sa

from alembic import op
from extrapypi.models.meta import UTCDateTime
from extrapypi.models.types import ExactString

revision = "5c3f7a9e1d42"
down_revision = "3a1f5e7c9b20"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "teams",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", ExactString(100), nullable=False),
        sa.Column("created", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_teams")),
        sa.UniqueConstraint("name", name=op.f("uq_teams_name")),
    )
    op.create_table(
        "team_members",
        sa.Column("team_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["team_id"],
            ["teams.id"],
            name=op.f("fk_team_members_team_id_teams"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_team_members_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("team_id", "user_id", name=op.f("pk_team_members")),
    )
    with op.batch_alter_table("team_members", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_team_members_user_id"), ["user_id"], unique=False)
    op.create_table(
        "package_team_maintainers",
        sa.Column("package_id", sa.Integer(), nullable=False),
        sa.Column("team_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["package_id"],
            ["packages.id"],
            name=op.f("fk_package_team_maintainers_package_id_packages"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["team_id"],
            ["teams.id"],
            name=op.f("fk_package_team_maintainers_team_id_teams"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("package_id", "team_id", name=op.f("pk_package_team_maintainers")),
    )
    op.create_table(
        "namespaces",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", ExactString(200), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("team_id", sa.Integer(), nullable=True),
        sa.Column("created", UTCDateTime(), nullable=False),
        sa.CheckConstraint(
            "(user_id IS NULL) <> (team_id IS NULL)", name=op.f("ck_namespaces_one_owner")
        ),
        sa.ForeignKeyConstraint(
            ["team_id"], ["teams.id"], name=op.f("fk_namespaces_team_id_teams"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_namespaces_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_namespaces")),
        sa.UniqueConstraint("name", name=op.f("uq_namespaces_name")),
    )
    with op.batch_alter_table("namespaces", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_namespaces_team_id"), ["team_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_namespaces_user_id"), ["user_id"], unique=False)
    with op.batch_alter_table("packages", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("status", sa.String(length=20), server_default="active", nullable=False)
        )
        batch_op.add_column(
            sa.Column("status_reason", sa.String(length=512), server_default="", nullable=False)
        )


def downgrade() -> None:
    # Never recreate ``packages`` (batch mode's way on SQLite): with foreign keys on, dropping
    # the old table would cascade to releases and maintainers. SQLite >= 3.35 drops columns.
    with op.batch_alter_table("packages", schema=None, recreate="never") as batch_op:
        batch_op.drop_column("status_reason")
        batch_op.drop_column("status")
    op.drop_table("namespaces")
    op.drop_table("package_team_maintainers")
    op.drop_table("team_members")
    op.drop_table("teams")
