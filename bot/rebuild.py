"""A restart resumes mid-day: today's recording replayed through the engine.

The recording is the engine's write-ahead log (bot.kis.recording), so the replay fires exactly
the alerts the stopped bot fired, under the same keys: those already stored are skipped by the
store's unique key. It starts from the newest checkpoint when one fits the recording and the
rules (bot.checkpoint: a busy day's restart takes a second instead of minutes), else from the
start of the day.

Alerts the replay finds missing (fired, never committed, or a database that was lost) are
delivered only when their frame arrived within ``recent`` of now; older ones are stored as
"recovered", not sent: a restart never sends a trader alerts from hours ago. Resolved events are
replayed like alerts, under the same keys: the store finds the alert each one ends by that
alert's key (the replay's copy is an equal Alert, not the stored row), so a missing event is
stored once, and goes out as a reply to the alert's message sent before the restart.

The replay stops at ``end``, the recording's size when the bot started: the frames the new feed
records meanwhile are held by the pipeline and follow once the rebuild caught up.
"""

from __future__ import annotations

import logging
from concurrent.futures import Executor
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

from bot.alerts import Alert
from bot.checkpoint import resume
from bot.engine.evaluate import Engine
from bot.store.facade import on_writes
from bot.store.repo import Store

log = logging.getLogger(__name__)

RECENT = timedelta(seconds=60)
CHECKPOINT_NAME = "checkpoint"  # in the recording directory (housekeeping leaves it alone)


@dataclass(frozen=True, slots=True)
class Rebuilt:
    ticks: int  # replayed
    delivered: int  # missing alerts stored and sent
    recovered: int  # missing alerts stored as recovered, not sent
    start: int = 0  # the recording offset the replay started from (a checkpoint's, or 0)


def store_missing(
    store: Store, fired: list[tuple[Alert, datetime]], now: datetime, recent: timedelta = RECENT
) -> tuple[int, int]:
    """Store the alerts and resolved events not stored yet: recent ones to be sent, older ones
    as recovered (the older first, so a recent event finds its recovered alert and, like it,
    goes to nobody). Returns (delivered, recovered)."""
    old = [alert for alert, when in fired if when < now - recent]
    new = [alert for alert, when in fired if when >= now - recent]
    recovered = store.recover_alerts(old, now)
    delivered = store.insert_alerts(new, now)
    return len(delivered), len(recovered)


def rebuild(
    engine: Engine,
    store: Store,
    path: Path,
    day: date,
    *,
    end: int,
    now: datetime,
    rules_key: str = "",
    writes: Executor | None = None,
) -> Rebuilt:
    """Replay ``path`` up to ``end`` (from its checkpoint when one fits) and store what is
    missing, on ``writes`` when given (the store's one write thread: the bot's writes keep their
    order). In a worker thread: the engine belongs to it meanwhile."""
    checkpoint = path.parent / CHECKPOINT_NAME
    resumed = resume(
        engine, recording=path, checkpoint=checkpoint, rules_key=rules_key, end=end, day=day
    )
    delivered, recovered = on_writes(writes, store_missing, store, resumed.fired, now)
    if delivered or recovered:
        log.info("rebuild stored missing delivered=%d recovered=%d", delivered, recovered)
    return Rebuilt(resumed.ticks, delivered, recovered, resumed.start_offset)
