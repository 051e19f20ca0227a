"""workspace: the triage queue's covering index

Revision ID: 0003
Revises: 0002

The queue sorts open leads by urgent first, then due soonest with no due date last, and
filters on stage, owner, area, service and source. One index in exactly that order, holding
every filtered column, lets SQLite and PostgreSQL read a page (and count a filtered queue)
from the index alone: a first page is a few index entries, and the worst filter (one that
matches almost nothing) is one pass over the open leads' index entries, never the table.
`(due_at IS NULL)` is spelled out because SQLite sorts NULLs first and an index can't say
NULLS LAST. Plain op.*_index (no batch): index changes need no table rebuild on SQLite.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

QUEUE_COLUMNS = [
    "is_open",
    sa.text("urgent DESC"),
    sa.text("(due_at IS NULL)"),
    "due_at",
    "id",
    "stage",
    "owner_id",
    "service_area_id",
    "out_of_area",
    "service_id",
    "source",
    "contact_id",
]


def upgrade() -> None:
    op.drop_index("ix_lead_queue", table_name="lead")
    op.create_index("ix_lead_queue", "lead", QUEUE_COLUMNS, unique=False)


def downgrade() -> None:
    op.drop_index("ix_lead_queue", table_name="lead")
    op.create_index("ix_lead_queue", "lead", ["is_open", "urgent", "due_at"], unique=False)
