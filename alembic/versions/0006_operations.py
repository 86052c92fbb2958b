"""operations: webhook endpoints and deliveries, retention rules, download counts

Revision ID: 6d4a8b0f2e53
Revises: 4b2e6f8d0c31
Create Date: 2026-11-29 16:00:00.000000
"""

import sqlalchemy as sa

from alembic import op
from extrapypi.models.meta import UTCDateTime
from extrapypi.models.types import ExactString, LongText

revision = "6d4a8b0f2e53"
down_revision = "4b2e6f8d0c31"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "webhook_endpoints",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("url", sa.String(2048), nullable=False),
        sa.Column("secret", sa.String(128), nullable=False),
        sa.Column("package_name", ExactString(200), nullable=False),
        sa.Column("events", sa.String(512), nullable=False),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.Column("created", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_endpoints")),
    )
    with op.batch_alter_table("webhook_endpoints") as batch_op:
        batch_op.create_index(
            batch_op.f("ix_webhook_endpoints_package_name"), ["package_name"], unique=False
        )
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("endpoint_id", sa.Integer(), nullable=False),
        sa.Column("event", sa.String(50), nullable=False),
        sa.Column("payload", LongText(), nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("next_attempt", UTCDateTime(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("claim", sa.String(32), nullable=False),
        sa.Column("last_status", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.String(512), nullable=False),
        sa.Column("created", UTCDateTime(), nullable=False),
        sa.Column("finished", UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["endpoint_id"],
            ["webhook_endpoints.id"],
            name=op.f("fk_webhook_deliveries_endpoint_id_webhook_endpoints"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_deliveries")),
    )
    with op.batch_alter_table("webhook_deliveries") as batch_op:
        batch_op.create_index(
            batch_op.f("ix_webhook_deliveries_endpoint_id"), ["endpoint_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_webhook_deliveries_next_attempt"), ["next_attempt"], unique=False
        )
    op.create_table(
        "retention_rules",
        sa.Column("package_id", sa.Integer(), nullable=False),
        sa.Column("keep_last", sa.Integer(), nullable=True),
        sa.Column("prerelease_days", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["package_id"],
            ["packages.id"],
            name=op.f("fk_retention_rules_package_id_packages"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("package_id", name=op.f("pk_retention_rules")),
    )
    op.create_table(
        "download_counts",
        sa.Column("file_id", sa.Integer(), nullable=False),
        sa.Column("package_id", sa.Integer(), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["file_id"],
            ["files.id"],
            name=op.f("fk_download_counts_file_id_files"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["package_id"],
            ["packages.id"],
            name=op.f("fk_download_counts_package_id_packages"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("file_id", name=op.f("pk_download_counts")),
    )
    with op.batch_alter_table("download_counts") as batch_op:
        batch_op.create_index(
            batch_op.f("ix_download_counts_package_id"), ["package_id"], unique=False
        )


def downgrade() -> None:
    op.drop_table("download_counts")
    op.drop_table("retention_rules")
    op.drop_table("webhook_deliveries")
    op.drop_table("webhook_endpoints")
