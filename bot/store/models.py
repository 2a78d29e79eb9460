"""The store's tables, as SQLAlchemy 2 typed declarative models.

The schema itself is made only by the Alembic migrations in ``alembic/versions``; these models must
agree with them (tests/test_migrations.py compares the two). Change both together: edit a model,
then add a migration (``docs/STORE.md`` says how).

Times are stored as naive UTC and read back as aware UTC (``UTCDateTime``), so SQLite and
PostgreSQL behave the same. A tick's time is its trading day plus seconds since midnight KST, as
the feed reports it.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Date,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# Stable constraint names, so later migrations can alter them on every backend.
NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

DELIVERY_STATES = ("pending", "sent", "blocked", "failed", "recovered", "muted")
ALERT_KINDS = ("fired", "resolved")
MUTE_KINDS = ("rule", "ticker")


class UTCDateTime(TypeDecorator[datetime]):
    """An aware datetime, stored as naive UTC (SQLite has no time zones), read back as UTC."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: the store needs timezone-aware times")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class AlertRow(Base):
    """One event of a rule on one tick: a fired alert, or the resolved event of one
    (``resolves_id``); ``(rule, ticker, day, seconds, seq, kind)`` identifies it."""

    __tablename__ = "alerts"
    __table_args__ = (
        UniqueConstraint("rule", "ticker", "day", "seconds", "seq", "kind"),
        CheckConstraint(f"kind IN {ALERT_KINDS!r}", name="kind"),
        Index(None, "ticker", "id"),
        Index(None, "day"),  # retention prunes by trading day
        Index(None, "resolves_id"),  # an alert's resolved event: /alerts, and retention
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    rule: Mapped[str] = mapped_column(String(100))
    ticker: Mapped[str] = mapped_column(String(12))
    day: Mapped[date] = mapped_column(Date)  # trading date, KST
    hhmmss: Mapped[str] = mapped_column(String(6))  # STCK_CNTG_HOUR as received
    seconds: Mapped[int] = mapped_column(Integer)  # since midnight KST of `day`
    seq: Mapped[int] = mapped_column(Integer)
    value: Mapped[int] = mapped_column(BigInteger)
    message: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(10), server_default="fired")
    # A resolved event's fired alert (NULL for a fired alert, or when that alert is not stored:
    # recovered without it, or pruned). Deleting an alert deletes its resolved event with it.
    resolves_id: Mapped[int | None] = mapped_column(ForeignKey("alerts.id", ondelete="CASCADE"))
    # The tick's nine numeric columns (KIS names, lower-cased); KRW values exceed 32 bits.
    seln_cnqn: Mapped[int] = mapped_column(BigInteger)
    seln_tr_pbmn: Mapped[int] = mapped_column(BigInteger)
    shnu_cnqn: Mapped[int] = mapped_column(BigInteger)
    shnu_tr_pbmn: Mapped[int] = mapped_column(BigInteger)
    ntby_cnqn: Mapped[int] = mapped_column(BigInteger)
    ntby_tr_pbmn: Mapped[int] = mapped_column(BigInteger)
    seln_rsqn: Mapped[int] = mapped_column(BigInteger)
    shnu_rsqn: Mapped[int] = mapped_column(BigInteger)
    whol_ntby_qty: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class DeliveryRow(Base):
    """One alert for one chat: the outbox row the sender works through."""

    __tablename__ = "deliveries"
    __table_args__ = (
        UniqueConstraint("chat_id", "alert_id"),  # also serves a chat's recent alerts
        CheckConstraint(f"state IN {DELIVERY_STATES!r}", name="state"),
        Index(None, "state", "chat_id", "alert_id"),
        Index(None, "alert_id"),  # an alert's deliveries: retention, and the cascade
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id", ondelete="CASCADE"))
    chat_id: Mapped[int] = mapped_column(BigInteger)
    state: Mapped[str] = mapped_column(String(10))
    attempts: Mapped[int] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The Telegram message a sent row went out in (several rows may share one): what the
    # alert's resolved event replies to. NULL before revision 0004, or on the console.
    message_id: Mapped[int | None] = mapped_column(BigInteger)


class WatchRow(Base):
    """A chat watches a ticker: the ticker's alerts go to that chat."""

    __tablename__ = "watches"
    __table_args__ = (Index(None, "ticker"),)

    chat_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    ticker: Mapped[str] = mapped_column(String(12), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class MuteRow(Base):
    """A chat silenced a rule or a ticker until a wall-clock time."""

    __tablename__ = "mutes"
    __table_args__ = (CheckConstraint(f"kind IN {MUTE_KINDS!r}", name="kind"),)

    chat_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    kind: Mapped[str] = mapped_column(String(10), primary_key=True)
    target: Mapped[str] = mapped_column(String(100), primary_key=True)
    until: Mapped[datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class BlockedChatRow(Base):
    """A chat that blocked the bot (Telegram said so): nothing is queued for it."""

    __tablename__ = "blocked_chats"

    chat_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    error: Mapped[str | None] = mapped_column(Text)
    blocked_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ChatSettingsRow(Base):
    """A chat's own settings: its quiet hours ("22:00-07:00", KST; NULL: none)."""

    __tablename__ = "chat_settings"

    chat_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    quiet: Mapped[str | None] = mapped_column(String(11))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


# -- the daily digest (bot.charts.digest) ---------------------------------------------------------

DIGEST_STATES = ("pending", "sent", "failed")


class DigestRow(Base):
    """One chat's digest of one trading day and slot ("close", "after"): stored once, before it
    is sent, so a restart neither loses nor repeats it."""

    __tablename__ = "digests"
    __table_args__ = (
        UniqueConstraint("chat_id", "day", "slot"),
        CheckConstraint(f"state IN {DIGEST_STATES!r}", name="state"),
        Index(None, "state", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    chat_id: Mapped[int] = mapped_column(BigInteger)
    day: Mapped[date] = mapped_column(Date)
    slot: Mapped[str] = mapped_column(String(10))
    text: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(10))
    attempts: Mapped[int] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class DigestOffRow(Base):
    """A chat that turned the daily digest off (/digest off)."""

    __tablename__ = "digest_off"

    chat_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
