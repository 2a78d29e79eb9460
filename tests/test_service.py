"""BotService on a real Store (SQLite file) and the real Feed against the KIS simulator.

Each test has its own simulator on loopback; what "KIS" answers is set with its knobs
(``reject``: refused with KIS's error ack, ``unanswered``: never answered, so PENDING).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from kis_helpers import (
    TIMEOUT,
    Ticks,
    eventually,
    feed_on,
    registered,
    requests,
    tr_keys,
    wanted,
)

from bot.alerts import Alert
from bot.kis.feed import Feed
from bot.kis.simulator import Simulator
from bot.kis.status import SubState
from bot.messages import ENGLISH
from bot.notify.replies import problem
from bot.notify.voice import Voice
from bot.service import BotService, CommandError, mute_length
from bot.store import Store
from bot.store.facade import AsyncStore
from bot.ticks import Tick

CHAT, OTHER, ADMIN, STRANGER = 11, 12, 13, 99
NOW = datetime(2024, 6, 3, 0, 30, tzinfo=UTC)
STATIC = "373220"  # the config's watch list
CAPACITY = 3  # subscriptions of the one account
SETTLE = 3.0  # the service's wait for KIS's answers; a settled code returns at once
SHORT_SETTLE = 0.2  # for tests of codes KIS leaves unanswered: the wait runs out


@dataclass
class Rules:
    lines: list[str] = field(default_factory=lambda: ["net-buy: NTBY_TR_PBMN crosses 10억"])
    ids: set[str] = field(default_factory=lambda: {"net-buy", "flip", "000660"})
    last_error: str | None = None

    def summary_lines(self) -> list[str]:
        return self.lines


def english(error: CommandError) -> str:
    """A CommandError as an English-speaking user reads it (``locale: en``)."""
    return problem(Voice(say=ENGLISH), error)


@pytest.fixture
def store(url: str) -> Iterator[Store]:
    store = Store(url, allowed_chat_ids=[CHAT, OTHER, ADMIN])
    yield store
    store.close()


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with Simulator(rate=20, seed=5) as simulator:
        yield simulator


@pytest.fixture
def ticks() -> Ticks:
    return Ticks()


@pytest.fixture
async def feed(sim: Simulator, ticks: Ticks) -> AsyncIterator[Feed]:
    async with feed_on(sim, ticks, max_subscriptions=CAPACITY) as running_feed:
        yield running_feed


@pytest.fixture
def rules() -> Rules:
    return Rules()


def make_service(
    store: Store, feed: Feed, rules: Rules, settle_timeout: float = SETTLE
) -> BotService:
    return BotService(
        AsyncStore(store),
        feed,
        rules,
        allowed_chat_ids=[CHAT, OTHER],
        admin_chat_ids=[ADMIN],
        static_watch=[STATIC],
        settle_timeout=settle_timeout,
        clock=lambda: NOW,
    )


@pytest.fixture
def service(store: Store, feed: Feed, rules: Rules) -> BotService:
    return make_service(store, feed, rules)


def alert(ticker: str, second: int, rule: str = "net-buy") -> Alert:
    tick = Tick(ticker, date(2024, 6, 3), "092200", 33720 + second, 1, 2, 3, 4, 5, 6, 7, 8, 9)
    return Alert(rule, ticker, tick, 6, f"{rule} {ticker} {second}")


# -- /watch ----------------------------------------------------------------------------------


async def test_watch_reports_live_and_already_watched(
    service: BotService, feed: Feed, sim: Simulator, store: Store
) -> None:
    (first,) = await service.watch(CHAT, ["005930"])  # waits for KIS's answer
    assert (first.ticker, first.status.state, first.added, first.kept) == (
        "005930",
        SubState.LIVE,
        True,
        True,
    )
    assert first.status.account == "account1"
    (again,) = await service.watch(CHAT, [" 005930 "])
    assert (again.added, again.kept, again.status.state) == (False, True, SubState.LIVE)
    assert store.watches(CHAT) == ["005930"]
    assert feed.status(STATIC).state is not SubState.NOT_WANTED  # the config's code too
    # The code just asked for is placed last; watched again, it is not subscribed again.
    assert tr_keys(requests(sim, "1")) == [STATIC, "005930"]


async def test_watch_explains_an_invalid_code(service: BotService, store: Store) -> None:
    results = await service.watch(CHAT, ["5930", "0059300", "삼성전자", "00088k"])
    errors = [english(r.error) for r in results if r.error is not None]
    assert errors == [
        "'5930' is not a 6-character stock code such as 005930.",
        "'0059300' is not a 6-character stock code such as 005930.",
        "'삼성전자' is not a 6-character stock code such as 005930.",
    ]
    assert results[0].status.state is SubState.NOT_WANTED and not results[0].kept
    assert (results[3].ticker, results[3].error, results[3].kept) == ("00088K", None, True)
    assert store.watches(CHAT) == ["00088K"]


async def test_a_code_kis_rejects_is_not_kept(
    service: BotService, feed: Feed, sim: Simulator, store: Store
) -> None:
    sim.reject = {"999999"}
    results = await service.watch(CHAT, ["005930", "999999"])
    assert results[0].status.state is SubState.LIVE
    rejected = results[1]
    assert (rejected.status.state, rejected.added, rejected.kept) == (
        SubState.REJECTED,
        False,
        False,
    )
    assert rejected.status.msg_cd == "OPSP8992"
    assert rejected.status.msg == "invalid tr_key"  # KIS's words; the reply adds "not kept"
    assert store.watches(CHAT) == ["005930"]
    assert wanted(feed, "005930", "999999") == {"005930"}


async def test_no_capacity_says_how_full_and_is_not_kept(
    service: BotService, feed: Feed, store: Store
) -> None:
    await service.watch(OTHER, ["999999"])  # with the config's code: 2 of 3 slots used
    results = await service.watch(CHAT, ["005930", "000660"])  # the first named gets the slot
    assert [r.status.state for r in results] == [SubState.LIVE, SubState.NO_CAPACITY]
    assert results[1].status.msg == f"all {CAPACITY} slots of 1 account(s) in use"
    assert not results[1].kept
    assert store.watches(CHAT) == ["005930"]
    everything = ("005930", "000660", "999999", STATIC)
    assert wanted(feed, *everything) == {"005930", STATIC, "999999"}


async def test_a_pending_code_is_kept(
    store: Store, feed: Feed, rules: Rules, sim: Simulator
) -> None:
    sim.unanswered = {"005930"}  # PENDING until KIS's answer is given up on (35 s)
    service = make_service(store, feed, rules, settle_timeout=SHORT_SETTLE)
    async with asyncio.timeout(TIMEOUT / 2):  # the service's wait, not the feed's default
        (result,) = await service.watch(CHAT, ["005930"])
    assert (result.status.state, result.added, result.kept) == (SubState.PENDING, True, True)
    assert store.watches(CHAT) == ["005930"]
    # The service's wait ran out first; the request itself may reach KIS a moment later.
    await eventually(lambda: "005930" in tr_keys(requests(sim, "1")))


async def test_a_rejected_code_another_chat_keeps_stays_wanted(
    service: BotService, feed: Feed, sim: Simulator, store: Store
) -> None:
    (first,) = await service.watch(OTHER, ["005930"])
    assert first.status.state is SubState.LIVE
    sim.reject = {"005930"}  # KIS refuses it from its next session on
    sim.drop_connections()
    await eventually(lambda: feed.status("005930").state is SubState.REJECTED)
    (result,) = await service.watch(CHAT, ["005930"])
    assert (result.status.state, result.kept) == (SubState.REJECTED, False)
    assert store.watches(CHAT) == []
    assert store.watches(OTHER) == ["005930"]
    assert wanted(feed, "005930") == {"005930"}


async def test_watch_needs_codes_and_limits_them(service: BotService) -> None:
    with pytest.raises(CommandError, match=r"error\.no_codes"):
        await service.watch(CHAT, ["  "])
    with pytest.raises(CommandError, match=r"error\.too_many_codes") as error:
        await service.watch(CHAT, [f"{n:06d}" for n in range(51)])
    assert english(error.value) == "Give at most 50 codes at once."


async def test_strangers_are_refused(service: BotService, store: Store) -> None:
    with pytest.raises(PermissionError):
        await service.watch(STRANGER, ["005930"])
    with pytest.raises(PermissionError):
        await service.watch_list(STRANGER)
    assert store.watches(STRANGER) == []


# -- /unwatch, /list -------------------------------------------------------------------------


async def test_unwatch(service: BotService, feed: Feed, sim: Simulator, store: Store) -> None:
    await service.watch(CHAT, ["005930", "000660"])
    await service.watch(OTHER, ["000660"])
    removed = await service.unwatch(CHAT, ["005930", "000660", "111111", "bad"])
    assert removed == ["005930", "000660"]
    assert store.watches(CHAT) == []
    assert wanted(feed, "005930", "000660", STATIC) == {"000660", STATIC}  # OTHER keeps 000660
    await eventually(lambda: registered(sim) == {"000660", STATIC})  # unsubscribed on "KIS"
    assert await service.unwatch(CHAT, [STATIC]) == []
    assert wanted(feed, STATIC) == {STATIC}  # the config's codes are never dropped


async def test_list_shows_each_code_with_its_state(
    store: Store, feed: Feed, rules: Rules, sim: Simulator
) -> None:
    service = make_service(store, feed, rules, settle_timeout=SHORT_SETTLE)
    assert await service.watch_list(CHAT) == []
    sim.unanswered = {"000660"}
    await service.watch(CHAT, ["005930", "000660"])
    await eventually(lambda: feed.status("005930").state is SubState.LIVE)
    assert [(s.ticker, s.state) for s in await service.watch_list(CHAT)] == [
        ("000660", SubState.PENDING),
        ("005930", SubState.LIVE),
    ]


# -- /alerts ---------------------------------------------------------------------------------


async def test_alerts_are_this_chats(service: BotService, store: Store) -> None:
    await service.watch(CHAT, ["005930"])
    await service.watch(OTHER, ["000660"])
    store.add_alerts([alert("005930", s) for s in range(4)], NOW)
    store.add_alerts([alert("000660", s) for s in range(4)], NOW)
    mine = await service.alerts(CHAT, None, 3)
    assert [a.message for a in mine] == [f"net-buy 005930 {s}" for s in (1, 2, 3)]
    assert await service.alerts(CHAT, "000660", 10) == []
    assert len(await service.alerts(OTHER, "000660", 10)) == 4


async def test_alerts_check_their_arguments(service: BotService) -> None:
    for n in (0, 51):
        with pytest.raises(CommandError) as error:
            await service.alerts(CHAT, None, n)
        assert "between 1 and 50" in english(error.value)
    with pytest.raises(CommandError) as error:
        await service.alerts(CHAT, "59300", 5)
    assert "6-character" in english(error.value)


# -- /rules, /mute, /unmute ------------------------------------------------------------------


async def test_rules(service: BotService, rules: Rules) -> None:
    assert (await service.rules(CHAT)) == (["net-buy: NTBY_TR_PBMN crosses 10억"], None)
    rules.last_error = "rules/a.yaml:3:5: unknown key 'feild'"
    assert (await service.rules(CHAT))[1] == "rules/a.yaml:3:5: unknown key 'feild'"


async def test_mute_a_rule_or_a_code(service: BotService, store: Store) -> None:
    rule = await service.mute(CHAT, "net-buy", "1h30m")
    assert (rule.kind, rule.target, rule.until) == ("rule", "net-buy", NOW + timedelta(hours=1.5))
    code = await service.mute(CHAT, "5930".zfill(6), "30m")
    assert (code.kind, code.target) == ("ticker", "005930")
    lower = await service.mute(CHAT, "00088k", "2h")
    assert (lower.kind, lower.target) == ("ticker", "00088K")
    both = await service.mute(CHAT, "000660", "1d")  # a rule id that looks like a code
    assert both.kind == "rule"
    assert len(await service.mutes(CHAT)) == 4


async def test_a_muted_rule_sends_nothing_to_that_chat(service: BotService, store: Store) -> None:
    await service.watch(CHAT, ["005930"])
    await service.watch(OTHER, ["005930"])
    await service.mute(CHAT, "net-buy", "30m")
    store.add_alerts([alert("005930", 0), alert("005930", 1, rule="flip")], NOW)
    got = {(d.chat_id, d.rule) for d in store.pending_deliveries(now=NOW)}
    assert got == {(CHAT, "flip"), (OTHER, "net-buy"), (OTHER, "flip")}


@pytest.mark.parametrize(
    ("target", "duration", "message"),
    [
        ("net-buy", "30", "Give '30' a unit: 30m, 30h or 30d."),
        ("net-buy", "soon", "'soon' is not a duration. Write 30m, 2h, 1d, 30분, 2시간 or today."),
        ("net-buy", "1h1h", "'1h1h': give each unit once, from days to seconds (1h30m)."),
        ("net-buy", "0m", "The duration must be more than zero."),
        ("net-buy", "31d", "Mute for at most 30 days."),
        ("net-buy", "30d1s", "Mute for at most 30 days."),
        ("net-buy", "400d", "Mute for at most 30 days."),
        ("net-buy", "9999999999d", "'9999999999d' is not a duration"),
        ("net-buy", "99999999d", "Mute for at most 30 days."),
        ("x" * 4080, "1h", "'" + "x" * 39 + "…' is neither a loaded rule nor a stock"),
        ("no-such-rule", "1h", "'no-such-rule' is neither a loaded rule nor a stock"),
    ],
)
async def test_mute_explains_bad_arguments(
    service: BotService, store: Store, target: str, duration: str, message: str
) -> None:
    with pytest.raises(CommandError) as error:
        await service.mute(CHAT, target, duration)
    assert english(error.value).startswith(message)
    assert store.mutes(CHAT, NOW) == []


async def test_unmute(service: BotService) -> None:
    await service.mute(CHAT, "net-buy", "1h")
    await service.mute(CHAT, "005930", "1h")
    await service.mute(CHAT, "flip", "1h")
    assert await service.unmute(CHAT, "net-buy") == 1
    assert await service.unmute(CHAT, "net-buy") == 0
    assert await service.unmute(CHAT, "005930 ") == 1
    assert await service.unmute(CHAT, None) == 1
    assert await service.mutes(CHAT) == []


@given(d=st.integers(0, 29), h=st.integers(0, 23), m=st.integers(0, 59), s=st.integers(0, 59))
def test_durations_add_up(d: int, h: int, m: int, s: int) -> None:
    parts = [(d, "d"), (h, "h"), (m, "m"), (s, "s")]
    text = "".join(f"{n}{unit}" for n, unit in parts if n)
    expected = timedelta(days=d, hours=h, minutes=m, seconds=s)
    if not text:
        return
    assert mute_length(text) == expected
    assert mute_length(text.upper()) == expected


# -- /status, blocked chats ------------------------------------------------------------------


async def test_status(
    service: BotService, feed: Feed, ticks: Ticks, store: Store, rules: Rules
) -> None:
    await service.watch(CHAT, ["005930"])
    await eventually(lambda: feed.stats().used == 2 and ticks.tickers() == {"005930", STATIC})
    store.add_alerts([alert("005930", 0)], NOW)
    store.mark_blocked(OTHER, "Forbidden: bot was blocked by the user")
    rules.last_error = "bad"
    report = await service.status(CHAT)
    assert (report.pending, report.rules_loaded, report.rules_error) == (1, 1, "bad")
    assert (report.wanted, report.blocked_chats) == (2, 1)
    assert (report.feed.used, report.feed.capacity) == (2, CAPACITY)
    assert [(c.account, c.connected, c.subscribed) for c in report.feed.connections] == [
        ("account1", True, 2)
    ]
    assert 2 <= report.feed.ticks <= len(ticks.all)  # every tick passed on is counted
    assert report.feed.last_tick_at is not None and report.feed.bad_frames == 0


async def test_a_chat_that_writes_again_is_unblocked(service: BotService, store: Store) -> None:
    store.mark_blocked(CHAT, "Forbidden: bot was blocked by the user")
    await service.heard_from(STRANGER)  # not allowed: nothing changes
    assert store.blocked_chats() == {CHAT}
    await service.heard_from(CHAT)
    assert store.blocked_chats() == set()


async def test_admins_are_always_allowed(service: BotService, store: Store) -> None:
    (result,) = await service.watch(ADMIN, ["005930"])
    assert (result.kept, result.status.state) == (True, SubState.LIVE)
    assert store.watches(ADMIN) == ["005930"]


def test_mute_lengths_share_the_rules_grammar_with_korean_units() -> None:
    assert mute_length("2시간30분") == timedelta(hours=2, minutes=30)
    assert mute_length("1일") == mute_length("1d") == timedelta(days=1)
    assert mute_length("90s") == timedelta(seconds=90)
