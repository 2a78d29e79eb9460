"""Resolved events (revision 0004, after 0003; 2026-12-02).

An alert has a ``kind`` ("fired", what every stored row was before, or "resolved") and, for a
resolved event, ``resolves_id``: the fired alert it ends. The unique key covers ``kind``, since a
fired alert and a resolved event may share rule, ticker, second and seq. A delivery records the
Telegram ``message_id`` it went out in, so the resolved event can reply to that message.

SQLite cannot alter a constraint, so ``alerts`` is copied (batch mode). The copy drops the old
table, and with foreign keys on (which a transaction cannot turn off) that would delete every
delivery by cascade: the deliveries are kept in a temporary table meanwhile and put back.

Downgrade works, losing what the old schema cannot hold: resolved events (and their deliveries)
are deleted, and the message ids forgotten.

Revision ID: 0004
Revises: 0003
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_OLD_KEY = ["rule", "ticker", "day", "seconds", "seq"]
_NEW_KEY = [*_OLD_KEY, "kind"]
_DELIVERY_COLUMNS = (
    "id, alert_id, chat_id, state, attempts, last_error, next_attempt_at, sent_at, message_id"
)
_KEEP = "_deliveries_0004"
_OLD_UNIQUE = "uq_alerts_rule_ticker_day_seconds_seq"
_NEW_UNIQUE = "uq_alerts_rule_ticker_day_seconds_seq_kind"


def _sqlite() -> bool:
    return op.get_bind().dialect.name == "sqlite"


def _keep_deliveries(columns: str) -> None:
    if _sqlite():
        op.execute(f"CREATE TEMP TABLE {_KEEP} AS SELECT {columns} FROM deliveries")


def _restore_deliveries(columns: str) -> None:
    if _sqlite():
        op.execute("DELETE FROM deliveries")  # what the cascade left, if anything
        op.execute(f"INSERT INTO deliveries ({columns}) SELECT {columns} FROM {_KEEP}")
        op.execute(f"DROP TABLE {_KEEP}")


def upgrade() -> None:
    with op.batch_alter_table("deliveries") as batch_op:
        batch_op.add_column(sa.Column("message_id", sa.BigInteger(), nullable=True))
    _keep_deliveries(_DELIVERY_COLUMNS)
    with op.batch_alter_table("alerts", recreate="auto") as batch_op:
        batch_op.add_column(
            sa.Column("kind", sa.String(length=10), server_default="fired", nullable=False)
        )
        batch_op.add_column(sa.Column("resolves_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_alerts_resolves_id_alerts"),
            "alerts",
            ["resolves_id"],
            ["id"],
            ondelete="CASCADE",
        )
        batch_op.create_check_constraint(
            batch_op.f("ck_alerts_kind"), "kind IN ('fired', 'resolved')"
        )
        batch_op.drop_constraint(batch_op.f(_OLD_UNIQUE), "unique")
        batch_op.create_unique_constraint(batch_op.f(_NEW_UNIQUE), _NEW_KEY)
        batch_op.create_index(batch_op.f("ix_alerts_resolves_id"), ["resolves_id"], unique=False)
    _restore_deliveries(_DELIVERY_COLUMNS)


def downgrade() -> None:
    resolved = "SELECT id FROM alerts WHERE kind = 'resolved'"
    op.execute(f"DELETE FROM deliveries WHERE alert_id IN ({resolved})")
    op.execute("DELETE FROM alerts WHERE kind = 'resolved'")
    with op.batch_alter_table("deliveries") as batch_op:
        batch_op.drop_column("message_id")
    old_columns = _DELIVERY_COLUMNS.removesuffix(", message_id")
    _keep_deliveries(old_columns)
    with op.batch_alter_table("alerts", recreate="auto") as batch_op:
        batch_op.drop_index(batch_op.f("ix_alerts_resolves_id"))
        batch_op.drop_constraint(batch_op.f(_NEW_UNIQUE), "unique")
        batch_op.create_unique_constraint(batch_op.f(_OLD_UNIQUE), _OLD_KEY)
        batch_op.drop_constraint(batch_op.f("ck_alerts_kind"), "check")
        batch_op.drop_constraint(batch_op.f("fk_alerts_resolves_id_alerts"), "foreignkey")
        batch_op.drop_column("resolves_id")
        batch_op.drop_column("kind")
    _restore_deliveries(old_columns)
