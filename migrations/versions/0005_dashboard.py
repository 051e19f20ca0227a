"""dashboard: covering indexes for the pipeline dashboard's queries (crm.metrics)

Revision ID: 0005
Revises: 0004
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# A period's cohort (inquiries by created_at) with every column the figures read, so the
# headline, funnel, reasons and team queries never visit the table.
COHORT = [
    "created_at", "stage", "service_area_id", "service_id", "source", "owner_id", "urgent",
    "first_response_at", "first_response_due_at", "reached_contacted_at",
    "reached_consult_scheduled_at", "reached_consult_completed_at", "reached_screening_at",
    "reached_cleared_at", "reached_infusion_scheduled_at", "reached_infusion_completed_at",
    "closed_reason",
]
# The weekly trend: inquiries and first infusions per service area and week, each count one
# index range (area, then time), with the columns the filters read.
AREA_WEEK = ["service_area_id", "created_at", "stage", "service_id", "source", "owner_id"]
AREA_FIRST_INFUSION = [
    "service_area_id", "reached_infusion_completed_at", "stage", "service_id", "source", "owner_id",
]


def upgrade() -> None:
    op.create_index("ix_lead_cohort", "lead", COHORT)
    op.create_index("ix_lead_area_week", "lead", AREA_WEEK)
    op.create_index("ix_lead_area_first_infusion", "lead", AREA_FIRST_INFUSION)
    op.create_index(
        "ix_stagechange_lead_stay", "stagechange", ["lead_id", "from_stage", "seconds_in_previous"]
    )


def downgrade() -> None:
    op.drop_index("ix_stagechange_lead_stay", table_name="stagechange")
    op.drop_index("ix_lead_area_first_infusion", table_name="lead")
    op.drop_index("ix_lead_area_week", table_name="lead")
    op.drop_index("ix_lead_cohort", table_name="lead")
