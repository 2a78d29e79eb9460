"""Initial schema: alerts, deliveries (the outbox), watches, mutes, blocked chats.

Revision ID: 0001
Revises:
Create Date: 2026-11-23 23:01:50.276892
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "alerts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("rule", sa.String(length=100), nullable=False),
        sa.Column("ticker", sa.String(length=12), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("hhmmss", sa.String(length=6), nullable=False),
        sa.Column("seconds", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("seln_cnqn", sa.BigInteger(), nullable=False),
        sa.Column("seln_tr_pbmn", sa.BigInteger(), nullable=False),
        sa.Column("shnu_cnqn", sa.BigInteger(), nullable=False),
        sa.Column("shnu_tr_pbmn", sa.BigInteger(), nullable=False),
        sa.Column("ntby_cnqn", sa.BigInteger(), nullable=False),
        sa.Column("ntby_tr_pbmn", sa.BigInteger(), nullable=False),
        sa.Column("seln_rsqn", sa.BigInteger(), nullable=False),
        sa.Column("shnu_rsqn", sa.BigInteger(), nullable=False),
        sa.Column("whol_ntby_qty", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alerts")),
        sa.UniqueConstraint(
            "rule",
            "ticker",
            "day",
            "seconds",
            "seq",
            name=op.f("uq_alerts_rule_ticker_day_seconds_seq"),
        ),
    )
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_alerts_ticker_id"), ["ticker", "id"], unique=False)

    op.create_table(
        "blocked_chats",
        sa.Column("chat_id", sa.BigInteger(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("blocked_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("chat_id", name=op.f("pk_blocked_chats")),
    )
    op.create_table(
        "mutes",
        sa.Column("chat_id", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("target", sa.String(length=100), nullable=False),
        sa.Column("until", sa.DateTime(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.CheckConstraint("kind IN ('rule', 'ticker')", name=op.f("ck_mutes_kind")),
        sa.PrimaryKeyConstraint("chat_id", "kind", "target", name=op.f("pk_mutes")),
    )
    op.create_table(
        "watches",
        sa.Column("chat_id", sa.BigInteger(), nullable=False),
        sa.Column("ticker", sa.String(length=12), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("chat_id", "ticker", name=op.f("pk_watches")),
    )
    with op.batch_alter_table("watches", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_watches_ticker"), ["ticker"], unique=False)

    op.create_table(
        "deliveries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("alert_id", sa.Integer(), nullable=False),
        sa.Column("chat_id", sa.BigInteger(), nullable=False),
        sa.Column("state", sa.String(length=10), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("next_attempt_at", sa.DateTime(), nullable=False),
        sa.Column("sent_at", sa.DateTime(), nullable=True),
        sa.CheckConstraint(
            "state IN ('pending', 'sent', 'blocked', 'failed')", name=op.f("ck_deliveries_state")
        ),
        sa.ForeignKeyConstraint(
            ["alert_id"],
            ["alerts.id"],
            name=op.f("fk_deliveries_alert_id_alerts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deliveries")),
        sa.UniqueConstraint("chat_id", "alert_id", name=op.f("uq_deliveries_chat_id_alert_id")),
    )
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_deliveries_state_chat_id_alert_id"),
            ["state", "chat_id", "alert_id"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_deliveries_state_chat_id_alert_id"))

    op.drop_table("deliveries")
    with op.batch_alter_table("watches", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_watches_ticker"))

    op.drop_table("watches")
    op.drop_table("mutes")
    op.drop_table("blocked_chats")
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_alerts_ticker_id"))

    op.drop_table("alerts")
