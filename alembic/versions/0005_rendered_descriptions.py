"""rendered descriptions: sanitized HTML rendered once per release, read by page views

Revision ID: 4b2e6f8d0c31
Revises: 5c3f7a9e1d42
Create Date: 2026-11-29 16:00:00.000000
"""

import sqlalchemy as sa

from alembic import op
from extrapypi.models.meta import UTCDateTime
from extrapypi.models.types import ExactString, LongText

revision = "4b2e6f8d0c31"
down_revision = "5c3f7a9e1d42"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Existing releases get their row on their first page view (rendered under the same limits).
    op.create_table(
        "rendered_descriptions",
        sa.Column("release_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("digest", ExactString(64), nullable=False),
        sa.Column("renderer", sa.String(length=255), nullable=False),
        sa.Column("html", LongText(), nullable=False),
        sa.Column("failure", sa.String(length=255), nullable=False),
        sa.Column("created", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["release_id"],
            ["releases.id"],
            name=op.f("fk_rendered_descriptions_release_id_releases"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("release_id", name=op.f("pk_rendered_descriptions")),
    )
    with op.batch_alter_table("rendered_descriptions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_rendered_descriptions_digest"), ["digest"], unique=False
        )


def downgrade() -> None:
    op.drop_table("rendered_descriptions")
