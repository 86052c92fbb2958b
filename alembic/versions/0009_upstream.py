"""upstream proxy: cached upstream pages and files, admins' block and cooldown-exempt rules

Revision ID: a1d7c4e9f3b2
Revises: 9c5e3a7b1d20
Create Date: 2026-11-29 19:10:00.000000
"""

import sqlalchemy as sa

from alembic import op
from extrapypi.models.meta import UTCDateTime
from extrapypi.models.types import ExactString, LongText

revision = "a1d7c4e9f3b2"
down_revision = "9c5e3a7b1d20"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "upstream_pages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("normalized_name", ExactString(200), nullable=False),
        sa.Column("data", LongText(), nullable=False),
        sa.Column("etag", sa.String(length=255), nullable=False),
        sa.Column("last_modified", sa.String(length=64), nullable=False),
        sa.Column("checked", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_upstream_pages")),
        sa.UniqueConstraint("normalized_name", name=op.f("uq_upstream_pages_normalized_name")),
    )
    op.create_table(
        "upstream_files",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("normalized_name", ExactString(200), nullable=False),
        sa.Column("filename", ExactString(255), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("key", sa.String(length=512), nullable=False),
        sa.Column("stored", UTCDateTime(), nullable=False),
        sa.Column("last_used", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_upstream_files")),
        sa.UniqueConstraint(
            "normalized_name", "filename", name=op.f("uq_upstream_files_normalized_name")
        ),
    )
    with op.batch_alter_table("upstream_files", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_upstream_files_normalized_name"), ["normalized_name"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_upstream_files_last_used"), ["last_used"], unique=False
        )
    op.create_table(
        "upstream_rules",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("normalized_name", ExactString(200), nullable=False),
        sa.Column("version", sa.String(length=100), nullable=False),
        sa.Column("reason", sa.String(length=255), nullable=False),
        sa.Column("created", UTCDateTime(), nullable=False),
        sa.Column("username", sa.String(length=100), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_upstream_rules")),
        sa.UniqueConstraint(
            "kind", "normalized_name", "version", name=op.f("uq_upstream_rules_kind")
        ),
    )
    with op.batch_alter_table("upstream_rules", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_upstream_rules_normalized_name"), ["normalized_name"], unique=False
        )


def downgrade() -> None:
    op.drop_table("upstream_rules")
    with op.batch_alter_table("upstream_files", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_upstream_files_last_used"))
        batch_op.drop_index(batch_op.f("ix_upstream_files_normalized_name"))
    op.drop_table("upstream_files")
    op.drop_table("upstream_pages")
