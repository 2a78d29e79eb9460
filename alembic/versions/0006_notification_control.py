"""Notification control (revision 0006, after 0005; 2026-12-02): delivery state 'muted' (a
pending alert whose chat muted its rule or stock, or unwatched the stock, before it went out is
closed as muted, not deleted), and each chat's quiet hours."""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_OLD = "state IN ('pending', 'sent', 'blocked', 'failed', 'recovered')"
_NEW = "state IN ('pending', 'sent', 'blocked', 'failed', 'recovered', 'muted')"


def _state_check(condition: str) -> None:
    # SQLite cannot alter a constraint: batch mode copies the table there (recreate="always").
    # PostgreSQL alters it in place: a copy would restart the id sequence under existing rows.
    sqlite = op.get_bind().dialect.name == "sqlite"
    with op.batch_alter_table("deliveries", recreate="always" if sqlite else "auto") as batch_op:
        batch_op.drop_constraint(batch_op.f("ck_deliveries_state"), type_="check")
        batch_op.create_check_constraint(batch_op.f("ck_deliveries_state"), condition)


def upgrade() -> None:
    _state_check(_NEW)
    op.create_table(
        "chat_settings",
        sa.Column("chat_id", sa.BigInteger(), nullable=False),
        sa.Column("quiet", sa.String(length=11), nullable=True),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("chat_id", name=op.f("pk_chat_settings")),
    )


def downgrade() -> None:
    op.drop_table("chat_settings")
    # An older pgmbot knows no 'muted': those alerts were not sent, as 'failed' says best.
    op.execute("UPDATE deliveries SET state = 'failed' WHERE state = 'muted'")
    _state_check(_OLD)
