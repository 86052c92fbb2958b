"""sessions and login addresses: revocable dashboard sessions, lockout-free login throttling

Revision ID: 3a1f5e7c9b20
Revises: 5c1f0d2a9b7e
Create Date: 2026-11-29 16:00:00.000000
"""

import sqlalchemy as sa

from alembic import op
from extrapypi.models.meta import UTCDateTime
from extrapypi.models.types import ExactString

revision = "3a1f5e7c9b20"
down_revision = "5c1f0d2a9b7e"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sessions",
        sa.Column("id", ExactString(64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("created", UTCDateTime(), nullable=False),
        sa.Column("last_seen", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_sessions_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sessions")),
    )
    with op.batch_alter_table("sessions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_sessions_last_seen"), ["last_seen"], unique=False)
        batch_op.create_index(batch_op.f("ix_sessions_user_id"), ["user_id"], unique=False)
    op.create_table(
        "login_addresses",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("address", ExactString(64), nullable=False),
        sa.Column("last_success", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_login_addresses_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_login_addresses")),
        sa.UniqueConstraint("user_id", "address", name=op.f("uq_login_addresses_user_id")),
    )
    with op.batch_alter_table("login_addresses", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_login_addresses_last_success"), ["last_success"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_login_addresses_user_id"), ["user_id"], unique=False)


def downgrade() -> None:
    op.drop_table("login_addresses")
    op.drop_table("sessions")
