"""login failures: shared state for login throttling

Revision ID: 5c1f0d2a9b7e
Revises: e952d5d84fa3
Create Date: 2026-11-25 20:15:58.103647
"""

import sqlalchemy as sa

from alembic import op
from extrapypi.models.meta import UTCDateTime
from extrapypi.models.types import ExactString

revision = "5c1f0d2a9b7e"
down_revision = "e952d5d84fa3"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "login_failures",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", ExactString(255), nullable=False),
        sa.Column("attempted", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_login_failures")),
    )
    with op.batch_alter_table("login_failures", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_login_failures_attempted"), ["attempted"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_login_failures_key"), ["key"], unique=False)


def downgrade() -> None:
    op.drop_table("login_failures")
