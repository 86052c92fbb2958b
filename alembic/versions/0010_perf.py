"""the access serial: row 2 of index_state, moved by changes to users, tokens, teams, maintainers

Verified logins are cached per access serial, pages per index serial (row 1), so an upload no
longer empties every server's login cache.

Revision ID: b3e8f1a2c4d6
Revises: a1d7c4e9f3b2
Create Date: 2026-11-29 19:30:00.000000
"""

import sqlalchemy as sa

from alembic import op

revision = "b3e8f1a2c4d6"
down_revision = "a1d7c4e9f3b2"
branch_labels = None
depends_on = None

index_state = sa.table("index_state", sa.column("id"), sa.column("serial"))


def upgrade() -> None:
    op.bulk_insert(index_state, [{"id": 2, "serial": 0}])


def downgrade() -> None:
    op.execute(index_state.delete().where(index_state.c.id == 2))
