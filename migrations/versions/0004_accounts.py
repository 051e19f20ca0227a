"""accounts: one-time login tickets, and an audit trail the database itself keeps append-only

Revision ID: 0004
Revises: 0003
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_SQLITE_TRIGGERS = [
    """CREATE TRIGGER auditevent_no_update BEFORE UPDATE ON auditevent
       BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END""",
    """CREATE TRIGGER auditevent_no_delete BEFORE DELETE ON auditevent
       BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END""",
]
_PG_FUNCTION = """CREATE OR REPLACE FUNCTION auditevent_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'the audit trail is append-only';
END;
$$ LANGUAGE plpgsql"""
_PG_TRIGGERS = [
    """CREATE TRIGGER auditevent_no_update BEFORE UPDATE OR DELETE ON auditevent
       FOR EACH ROW EXECUTE FUNCTION auditevent_append_only()""",
    # TRUNCATE skips row triggers; refuse it with a statement trigger.
    """CREATE TRIGGER auditevent_no_truncate BEFORE TRUNCATE ON auditevent
       FOR EACH STATEMENT EXECUTE FUNCTION auditevent_append_only()""",
]


def upgrade() -> None:
    with op.batch_alter_table("authsession", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("cookie_issued_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True)
        )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_PG_FUNCTION)
        for statement in _PG_TRIGGERS:
            op.execute(statement)
    else:
        for statement in _SQLITE_TRIGGERS:
            op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS auditevent_no_truncate ON auditevent")
        op.execute("DROP TRIGGER IF EXISTS auditevent_no_update ON auditevent")
        op.execute("DROP FUNCTION IF EXISTS auditevent_append_only()")
    else:
        op.execute("DROP TRIGGER IF EXISTS auditevent_no_delete")
        op.execute("DROP TRIGGER IF EXISTS auditevent_no_update")
    with op.batch_alter_table("authsession", schema=None) as batch_op:
        batch_op.drop_column("cookie_issued_at")
