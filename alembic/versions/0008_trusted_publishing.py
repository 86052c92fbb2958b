"""trusted publishing: publishers (and pending ones), used JWT ids, minted-token and file markers

Revision ID: 9c5e3a7b1d20
Revises: 8b4d2f6a0c19
Create Date: 2026-11-29 19:30:00.000000
"""

import sqlalchemy as sa

from alembic import op
from extrapypi.models.meta import UTCDateTime
from extrapypi.models.types import ExactString

revision = "9c5e3a7b1d20"
down_revision = "8b4d2f6a0c19"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "trusted_publishers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("package_id", sa.Integer(), nullable=True),
        sa.Column("pending_name", sa.String(length=200), nullable=True),
        sa.Column("issuer", ExactString(255), nullable=False),
        sa.Column("claims", sa.JSON(), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("created", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["package_id"],
            ["packages.id"],
            name=op.f("fk_trusted_publishers_package_id_packages"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["created_by_id"],
            ["users.id"],
            name=op.f("fk_trusted_publishers_created_by_id_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_trusted_publishers")),
    )
    with op.batch_alter_table("trusted_publishers", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_trusted_publishers_package_id"), ["package_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_trusted_publishers_pending_name"), ["pending_name"], unique=False
        )
    op.create_table(
        "used_jwts",
        sa.Column("key", ExactString(64), nullable=False),
        sa.Column("expires", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_used_jwts")),
    )
    with op.batch_alter_table("used_jwts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_used_jwts_expires"), ["expires"], unique=False)
    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("publisher", sa.String(length=255), nullable=False, server_default="")
        )
        batch_op.add_column(
            sa.Column("publisher_ids", sa.String(length=255), nullable=False, server_default="")
        )
    with op.batch_alter_table("files", schema=None) as batch_op:
        batch_op.add_column(sa.Column("upload_publisher", sa.String(length=255), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("files", schema=None) as batch_op:
        batch_op.drop_column("upload_publisher")
    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.drop_column("publisher_ids")
        batch_op.drop_column("publisher")
    op.drop_table("used_jwts")
    op.drop_table("trusted_publishers")
