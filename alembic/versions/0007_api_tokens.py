"""api tokens: scoped credentials for machines, stored as keyed hashes; token name on files

Revision ID: 8b4d2f6a0c19
Revises: 6d4a8b0f2e53
Create Date: 2026-11-29 17:00:00.000000
"""

import sqlalchemy as sa

from alembic import op
from extrapypi.models.meta import UTCDateTime
from extrapypi.models.types import ExactString

revision = "8b4d2f6a0c19"
down_revision = "6d4a8b0f2e53"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "api_tokens",
        sa.Column("id", ExactString(16), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("scope", sa.String(length=10), nullable=False),
        sa.Column("projects", sa.String(length=1024), nullable=False),
        sa.Column("secret_hash", ExactString(64), nullable=False),
        sa.Column("created", UTCDateTime(), nullable=False),
        sa.Column("expires", UTCDateTime(), nullable=True),
        sa.Column("last_used", UTCDateTime(), nullable=True),
        sa.Column("last_used_from", sa.String(length=64), nullable=False),
        sa.Column("revoked", UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_api_tokens_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_tokens")),
    )
    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_api_tokens_user_id"), ["user_id"], unique=False)
    with op.batch_alter_table("files", schema=None) as batch_op:
        batch_op.add_column(sa.Column("upload_token", sa.String(length=100), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("files", schema=None) as batch_op:
        batch_op.drop_column("upload_token")
    op.drop_table("api_tokens")
