"""Delivery state 'recovered' (revision 0003, after 0002; 2026-12-01): an alert a restart found
missing and too old to send is stored with its deliveries closed as recovered."""

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_OLD = "state IN ('pending', 'sent', 'blocked', 'failed')"
_NEW = "state IN ('pending', 'sent', 'blocked', 'failed', 'recovered')"


def _state_check(condition: str) -> None:
    # SQLite cannot alter a constraint: batch mode copies the table (recreate="always").
    with op.batch_alter_table("deliveries", recreate="always") as batch_op:
        batch_op.drop_constraint(batch_op.f("ck_deliveries_state"), type_="check")
        batch_op.create_check_constraint(batch_op.f("ck_deliveries_state"), condition)


def upgrade() -> None:
    _state_check(_NEW)


def downgrade() -> None:
    op.execute("UPDATE deliveries SET state = 'sent' WHERE state = 'recovered'")
    _state_check(_OLD)
