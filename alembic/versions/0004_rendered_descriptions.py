"""rendered descriptions: sanitized HTML rendered once, read by page views

Revision ID: 4b2e6f8d0c31
Revises: 5c1f0d2a9b7e
Create Date: 2026-11-29 16:00:00.000000
"""

import sqlalchemy as sa

from alembic import op
from extrapypi.models.meta import UTCDateTime
from extrapypi.models.types import ExactString, LongText

revision = "4b2e6f8d0c31"
down_revision = "5c1f0d2a9b7e"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Existing releases get their row on their first page view (rendered under the same limits).
    op.create_table(
        "rendered_descriptions",
        sa.Column("digest", ExactString(64), nullable=False),
        sa.Column("html", LongText(), nullable=False),
        sa.Column("failure", sa.String(length=255), nullable=False),
        sa.Column("created", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("digest", name=op.f("pk_rendered_descriptions")),
    )


def downgrade() -> None:
    op.drop_table("rendered_descriptions")
