"""Subscription reconciliation, control messages and reconnect backoff: the feed's pure parts."""

from __future__ import annotations

import json
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.backoff import Backoff
from bot.kis import control
from bot.kis.control import ControlError, Reply, parse_reply
from bot.kis.status import SubState
from bot.kis.subscriptions import Subscriptions, Unanswered

SUB, UNSUB = control.SUBSCRIBE, control.UNSUBSCRIBE


def reply(tr_key: str, msg_cd: str, msg1: str = "", rt_cd: str | None = None) -> Reply:
    ok = msg_cd in ("OPSP0000", "OPSP0001")
    return Reply("H0UNPGM0", tr_key, rt_cd or ("0" if ok else "1"), msg_cd, msg1, "", "")


class FakeKis:
    """KIS's registrations per account, answering requests as docs/KIS-PROTOCOL.md says."""

    def __init__(self, limits: list[int]) -> None:
        self.limits = limits
        self.registered: list[set[str]] = [set() for _ in limits]

    def answer(self, index: int, tr_type: str, ticker: str) -> Reply:
        held = self.registered[index]
        if tr_type == UNSUB:
            if ticker in held:
                held.discard(ticker)
                return reply(ticker, "OPSP0001", "UNSUBSCRIBE SUCCESS")
            return reply(ticker, "OPSP0003", "UNSUBSCRIBE ERROR(not found!)")
        if ticker in held:
            return reply(ticker, "OPSP0002", "ALREADY IN SUBSCRIBE")
        if len(held) >= self.limits[index]:
            return reply(ticker, "OPSP0008", "MAX SUBSCRIBE OVER")
        held.add(ticker)
        return reply(ticker, "OPSP0000", "SUBSCRIBE SUCCESS")

    def drop(self, index: int) -> None:
        self.registered[index].clear()  # a closed session loses its registrations


def drain(
    subs: Subscriptions, kis: FakeKis, *, connected: list[int] | None = None
) -> list[tuple[int, str, str]]:
    """Send every request and deliver every reply, in order; returns the requests sent."""
    sent = []
    indexes = range(len(kis.limits)) if connected is None else connected
    progress = True
    while progress:
        progress = False
        for index in indexes:
            request = subs.next_request(index)
            if request is not None:
                sent.append((index, *request))
                assert subs.on_reply(index, kis.answer(index, *request)) == request
                progress = True
    return sent


def states(subs: Subscriptions, tickers: list[str]) -> list[tuple[SubState, str | None]]:
    return [(subs.status(t).state, subs.status(t).account) for t in tickers]


def connected(labels: list[str], limit: int) -> Subscriptions:
    subs = Subscriptions(labels, limit)
    for index in range(len(labels)):
        subs.session_started(index)
    return subs


def test_tickers_fill_accounts_in_order_and_go_live() -> None:
    subs = connected(["a1", "a2"], 2)
    kis = FakeKis([2, 2])
    subs.set_wanted(["000001", "000002", "000003"])
    assert states(subs, ["000001", "000003"]) == [
        (SubState.PENDING, "a1"),
        (SubState.PENDING, "a2"),
    ]
    assert drain(subs, kis) == [(0, SUB, "000001"), (1, SUB, "000003"), (0, SUB, "000002")]
    assert states(subs, ["000001", "000002", "000003"]) == [
        (SubState.LIVE, "a1"),
        (SubState.LIVE, "a1"),
        (SubState.LIVE, "a2"),
    ]
    assert [subs.live(0), subs.live(1)] == [2, 1]


def test_assignments_stay_put_and_a_freed_slot_is_reused() -> None:
    subs = connected(["a1", "a2"], 2)
    kis = FakeKis([2, 2])
    subs.set_wanted(["000001", "000002", "000003"])
    drain(subs, kis)
    subs.set_wanted(["000002", "000003", "000004"])
    # The unsubscribe goes first; 000004 takes the slot it frees, nobody moves.
    assert drain(subs, kis) == [(0, UNSUB, "000001"), (0, SUB, "000004")]
    assert states(subs, ["000002", "000003", "000004"]) == [
        (SubState.LIVE, "a1"),
        (SubState.LIVE, "a2"),
        (SubState.LIVE, "a1"),
    ]
    assert subs.status("000001").state is SubState.NOT_WANTED


def test_subscribe_waits_while_kis_still_holds_the_slot() -> None:
    subs = connected(["a1"], 1)
    kis = FakeKis([1])
    subs.set_wanted(["000001"])
    drain(subs, kis)
    subs.set_wanted(["000002"])
    assert subs.status("000002").state is SubState.PENDING  # not NO_CAPACITY: a slot frees
    assert subs.next_request(0) == (UNSUB, "000001")
    assert subs.next_request(0) is None  # KIS holds 000001 until it answers
    subs.on_reply(0, kis.answer(0, UNSUB, "000001"))
    assert subs.next_request(0) == (SUB, "000002")


def test_wanted_again_while_unsubscribing_stays_on_its_account() -> None:
    subs = connected(["a1", "a2"], 2)
    kis = FakeKis([2, 2])
    subs.set_wanted(["000001"])
    drain(subs, kis)
    subs.set_wanted([])
    assert subs.next_request(0) == (UNSUB, "000001")
    subs.set_wanted(["000001"])
    assert subs.status("000001").account == "a1"
    subs.on_reply(0, kis.answer(0, UNSUB, "000001"))
    assert drain(subs, kis) == [(0, SUB, "000001")]
    assert subs.status("000001").state is SubState.LIVE


def test_no_capacity_names_the_slots() -> None:
    subs = connected(["a1", "a2"], 1)
    subs.set_wanted(["000001", "000002", "000003"])
    status = subs.status("000003")
    assert (status.state, status.account) == (SubState.NO_CAPACITY, None)
    assert status.msg == "all 2 slots of 2 account(s) in use"


def test_max_subscribe_over_lowers_the_limit_and_moves_the_rest() -> None:
    tickers = ["000001", "000002", "000003", "000004", "000005", "000006"]
    subs = connected(["a1", "a2"], 4)
    kis = FakeKis([2, 3])  # KIS holds fewer than configured
    subs.set_wanted(tickers)
    sent = drain(subs, kis)
    assert (0, SUB, "000003") in sent and (1, SUB, "000003") in sent
    assert (0, SUB, "000004") not in sent  # moved before being tried on a full account
    assert states(subs, tickers[:2]) == [(SubState.LIVE, "a1")] * 2
    moved = [subs.status(t) for t in tickers[2:]]
    assert sorted((s.state, s.account or "") for s in moved) == [
        (SubState.LIVE, "a2"),
        (SubState.LIVE, "a2"),
        (SubState.LIVE, "a2"),
        (SubState.NO_CAPACITY, ""),
    ]
    assert [subs.limit(0), subs.limit(1)] == [2, 3]
    # A new session starts from the configured limit again: the waiting ticker gets a slot.
    subs.session_ended(0)
    kis.drop(0)
    assert subs.limit(0) == 4
    assert all(subs.status(t).state is not SubState.NO_CAPACITY for t in tickers)


def test_bad_target_is_rejected_for_good_and_frees_its_slot() -> None:
    subs = connected(["a1"], 1)
    subs.set_wanted(["000001", "000002"])
    assert subs.next_request(0) == (SUB, "000001")
    subs.on_reply(0, reply("000001", "OPSP8992", "invalid tr_key"))
    status = subs.status("000001")
    assert (status.state, status.account, status.msg_cd, status.msg) == (
        SubState.REJECTED,
        "a1",
        "OPSP8992",
        "invalid tr_key",
    )
    assert subs.next_request(0) == (SUB, "000002")
    subs.session_ended(0)
    subs.session_started(0)
    assert subs.status("000001").state is SubState.REJECTED  # not retried
    subs.set_wanted(["000002"])
    subs.set_wanted(["000001", "000002"])  # asked for anew: tried anew
    assert subs.status("000001").state is not SubState.REJECTED


def test_transient_refusal_is_retried_by_the_next_session() -> None:
    subs = connected(["a1"], 2)
    subs.set_wanted(["000001"])
    assert subs.next_request(0) == (SUB, "000001")
    subs.on_reply(0, reply("000001", "OPSP0009", "SUBSCRIBE ERROR : mci send failed"))
    assert subs.status("000001").state is SubState.REJECTED
    assert subs.status("000001").msg_cd == "OPSP0009"
    assert subs.next_request(0) is None
    subs.session_ended(0)
    assert subs.status("000001").state is SubState.PENDING
    subs.session_started(0)
    assert subs.next_request(0) == (SUB, "000001")


def test_replies_without_tr_key_answer_the_oldest_request() -> None:
    subs = connected(["a1"], 5)
    subs.set_wanted(["000001", "000002"])
    assert subs.next_request(0) == (SUB, "000001")
    assert subs.next_request(0) == (SUB, "000002")
    # A JSON PARSING ERROR with "(null)" and no tr_key, then a reply with no header at all.
    bad = parse_reply(
        '{"header": {"tr_id": "(null)", "tr_key": ""}, "body": {"rt_cd": "1", '
        '"msg_cd": "OPSP9999", "msg1": "JSON PARSING ERROR : invalid json"}}'
    )
    assert subs.on_reply(0, bad) == (SUB, "000001")
    headless = parse_reply('{"body": {"rt_cd": "0", "msg_cd": "OPSP0000"}}')
    assert subs.on_reply(0, headless) == (SUB, "000002")
    assert subs.status("000001").state is SubState.REJECTED
    assert subs.status("000002").state is SubState.LIVE
    assert subs.on_reply(0, headless) is None  # nothing left to answer
    assert subs.on_reply(0, reply("000009", "OPSP0000")) is None  # not ours


def test_a_session_end_makes_everything_pending_and_resubscribes_in_order() -> None:
    subs = connected(["a1"], 5)
    kis = FakeKis([5])
    subs.set_wanted(["000003", "000001", "000002"])
    drain(subs, kis)
    subs.session_ended(0)
    kis.drop(0)
    assert {subs.status(t).state for t in subs.wanted} == {SubState.PENDING}
    assert subs.next_request(0) is None  # no session, nothing to send
    subs.session_started(0)
    assert [r[2] for r in drain(subs, kis)] == ["000003", "000001", "000002"]


def test_needed_once_something_is_assigned() -> None:
    subs = Subscriptions(["a1", "a2"], 1)
    assert not subs.needed(0)
    subs.set_wanted(["000001"])
    assert subs.needed(0) and not subs.needed(1)


# -- requests KIS does not answer ----------------------------------------------------------


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def with_clock(
    limit: int = 5, timeouts: tuple[float, ...] = (1.0, 2.0)
) -> tuple[Subscriptions, Clock]:
    clock = Clock()
    subs = Subscriptions(["a1"], limit, ack_timeouts=timeouts, clock=clock)
    subs.session_started(0)
    return subs, clock


def test_an_unanswered_subscribe_is_sent_again_then_failed_until_the_next_session() -> None:
    subs, clock = with_clock()
    subs.set_wanted(["000001"])
    assert subs.next_request(0) == (SUB, "000001")
    assert subs.next_request(0) is None and subs.next_due_in(0) == 1.0
    clock.now += 0.9
    assert subs.expire(0) == [] and subs.next_due_in(0) == pytest.approx(0.1)
    clock.now += 0.1
    assert subs.expire(0) == [Unanswered((SUB, "000001"), 1, final=False)]
    assert subs.next_due_in(0) is None  # nothing awaited until it is sent again
    assert subs.next_request(0) == (SUB, "000001")
    assert subs.status("000001").state is SubState.PENDING
    assert subs.next_due_in(0) == 2.0  # the second wait is longer
    clock.now += 2.0
    assert subs.expire(0) == [Unanswered((SUB, "000001"), 2, final=True)]
    status = subs.status("000001")
    assert (status.state, status.account, status.msg_cd, status.msg) == (
        SubState.FAILED,
        "a1",
        None,
        "no answer from KIS to 2 subscribe requests",
    )
    assert subs.next_request(0) is None and subs.next_due_in(0) is None
    assert subs.expire(0) == []
    subs.session_ended(0)
    subs.session_started(0)
    assert subs.next_request(0) == (SUB, "000001")  # the next session tries again


def test_answers_to_a_request_sent_twice_both_count() -> None:
    subs, clock = with_clock()
    subs.set_wanted(["000001"])
    subs.next_request(0)
    clock.now += 1.0
    subs.expire(0)
    assert subs.next_request(0) == (SUB, "000001")
    # KIS was only slow: it answers the first request, then the copy.
    assert subs.on_reply(0, reply("000001", "OPSP0000", "SUBSCRIBE SUCCESS")) == (SUB, "000001")
    assert subs.on_reply(0, reply("000001", "OPSP0002", "ALREADY IN SUBSCRIBE")) == (
        SUB,
        "000001",
    )
    assert subs.status("000001").state is SubState.LIVE
    assert subs.next_due_in(0) is None


def test_a_late_ack_of_a_given_up_subscribe_makes_it_live() -> None:
    subs, clock = with_clock(timeouts=(1.0,))
    subs.set_wanted(["000001"])
    subs.next_request(0)
    clock.now += 1.0
    assert subs.expire(0) == [Unanswered((SUB, "000001"), 1, final=True)]
    assert subs.status("000001").state is SubState.FAILED
    assert subs.on_reply(0, reply("000001", "OPSP0000")) == (SUB, "000001")
    assert subs.status("000001").state is SubState.LIVE
    assert subs.live(0) == 1


def test_a_late_ack_of_a_ticker_no_longer_wanted_is_unsubscribed() -> None:
    subs, clock = with_clock(timeouts=(1.0,))
    subs.set_wanted(["000001"])
    subs.next_request(0)
    clock.now += 1.0
    subs.expire(0)
    subs.set_wanted([])
    subs.on_reply(0, reply("000001", "OPSP0000"))
    assert subs.next_request(0) == (UNSUB, "000001")  # KIS holds it: let it go


def test_an_unanswered_unsubscribe_frees_its_slot_in_the_end() -> None:
    subs, clock = with_clock(limit=1)
    kis = FakeKis([1])
    subs.set_wanted(["000001"])
    drain(subs, kis)
    subs.set_wanted(["000002"])
    assert subs.next_request(0) == (UNSUB, "000001")
    assert subs.next_request(0) is None  # KIS holds the slot until it answers
    clock.now += 1.0
    subs.expire(0)
    assert subs.next_request(0) == (UNSUB, "000001")  # sent again first
    clock.now += 2.0
    assert subs.expire(0) == [Unanswered((UNSUB, "000001"), 2, final=True)]
    assert subs.next_request(0) == (SUB, "000002")


def test_replies_in_order_after_a_request_sent_again() -> None:
    """A copy goes to the back of the line, so headless replies still answer the right one."""
    subs, clock = with_clock()
    subs.set_wanted(["000001", "000002"])
    subs.next_request(0)
    clock.now += 0.5
    subs.next_request(0)
    clock.now += 0.5
    assert [late.request for late in subs.expire(0)] == [(SUB, "000001")]
    assert subs.next_request(0) == (SUB, "000001")
    headless = parse_reply('{"body": {"rt_cd": "0", "msg_cd": "OPSP0000"}}')
    assert subs.on_reply(0, headless) == (SUB, "000002")
    assert subs.on_reply(0, headless) == (SUB, "000001")


@pytest.mark.parametrize("timeouts", [(), (1.0, 0.0), (-1.0,)])
def test_ack_timeouts_must_be_positive(timeouts: tuple[float, ...]) -> None:
    with pytest.raises(ValueError, match="ack_timeouts"):
        Subscriptions(["a1"], 1, ack_timeouts=timeouts)


operations = st.lists(
    st.one_of(
        st.tuples(st.just("want"), st.lists(st.sampled_from([f"{n:06d}" for n in range(9)]))),
        st.tuples(st.just("drop"), st.integers(0, 2)),
        st.tuples(st.just("step"), st.integers(0, 2)),
        st.tuples(st.just("lose"), st.integers(0, 2)),  # a subscribe that never reaches KIS
        st.tuples(st.just("wait"), st.integers(0, 2)),  # an answer's time is up
    ),
    max_size=30,
)


@settings(max_examples=150, deadline=None)
@given(
    limits=st.lists(st.integers(0, 4), min_size=1, max_size=3),
    configured=st.integers(1, 4),
    ops=operations,
)
def test_reconciliation_converges_to_what_is_wanted(
    limits: list[int], configured: int, ops: list[tuple[str, object]]
) -> None:
    """Whatever happens on the way (lost requests too), once every session is up and every reply
    is in or given up, KIS holds exactly the LIVE tickers, every one wanted, within its limits,
    as many as fit."""
    labels = [f"a{i + 1}" for i in range(len(limits))]
    clock = Clock()
    subs = Subscriptions(labels, configured, ack_timeouts=(1.0, 2.0), clock=clock)
    for index in range(len(labels)):
        subs.session_started(index)
    kis = FakeKis(limits)
    for op, arg in ops:
        if op == "want":
            subs.set_wanted(arg)  # type: ignore[arg-type]
        elif op == "drop" and isinstance(arg, int) and arg < len(limits):
            subs.session_ended(arg)
            kis.drop(arg)
            subs.session_started(arg)
        elif op == "step" and isinstance(arg, int) and arg < len(limits):
            request = subs.next_request(arg)
            if request is not None:
                subs.on_reply(arg, kis.answer(arg, *request))
        elif op == "lose" and isinstance(arg, int) and arg < len(limits):
            request = subs.next_request(arg)
            if request is not None and request[0] == UNSUB:
                subs.on_reply(arg, kis.answer(arg, *request))  # only subscribes get lost
        elif op == "wait" and isinstance(arg, int) and arg < len(limits):
            clock.now += 1.0
            for index in range(len(limits)):
                subs.expire(index)
        for index, held in enumerate(kis.registered):
            assert len(held) <= limits[index]
    for _ in range(3):  # every lost request is overdue: sent again (and answered) or given up
        drain(subs, kis)
        clock.now += 2.0
        for index in range(len(limits)):
            subs.expire(index)
    drain(subs, kis)
    wanted = list(subs.wanted)
    statuses = {t: subs.status(t) for t in wanted}
    for index, label in enumerate(labels):
        live = {t for t, s in statuses.items() if s.state is SubState.LIVE and s.account == label}
        assert kis.registered[index] == live
        assert subs.live(index) == len(live)
        assert subs.next_due_in(index) is None  # nothing left unanswered
    states = {s.state for s in statuses.values()}
    assert states <= {SubState.LIVE, SubState.NO_CAPACITY, SubState.FAILED}
    if SubState.FAILED not in states:
        capacity = sum(min(limit, configured) for limit in limits)
        assert sum(len(held) for held in kis.registered) == min(len(wanted), capacity)


# -- control messages ----------------------------------------------------------------------


def test_request_shape() -> None:
    message = json.loads(control.request("KEY", "P", "2", "H0UNPGM0", "005930"))
    assert message == {
        "header": {
            "approval_key": "KEY",
            "custtype": "P",
            "tr_type": "2",
            "content-type": "utf-8",
        },
        "body": {"input": {"tr_id": "H0UNPGM0", "tr_key": "005930"}},
    }


def test_parse_ack_with_cipher() -> None:
    text = json.dumps(
        {
            "header": {"tr_id": "H0UNPGM0", "tr_key": "005930", "encrypt": "N"},
            "body": {
                "rt_cd": "0",
                "msg_cd": "OPSP0000",
                "msg1": "SUBSCRIBE SUCCESS",
                "output": {"iv": "0123456789abcdef", "key": "k" * 32},
            },
        }
    )
    assert parse_reply(text) == Reply(
        "H0UNPGM0", "005930", "0", "OPSP0000", "SUBSCRIBE SUCCESS", "0123456789abcdef", "k" * 32
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"header": {"tr_id": "PINGPONG", "datetime": "20250314093015"}}', ("PINGPONG", "")),
        (
            '{"header": {"tr_id": "(null)", "tr_key": ""}, "body": {"msg_cd": "OPSP9999"}}',
            ("", ""),
        ),
        ('{"body": {"rt_cd": 1, "msg_cd": "OPSP0008"}}', ("", "")),
        ('{"header": null, "body": "text", "output": 3}', ("", "")),
        ("{}", ("", "")),
    ],
)
def test_parse_reply_is_defensive(text: str, expected: tuple[str, str]) -> None:
    parsed = parse_reply(text)
    assert (parsed.tr_id, parsed.tr_key) == expected
    assert parsed.is_pingpong == (expected[0] == "PINGPONG")


def test_parse_reply_numbers_and_missing_msg1() -> None:
    parsed = parse_reply('{"body": {"rt_cd": 1, "msg_cd": "OPSP0008"}}')
    assert (parsed.rt_cd, parsed.msg_cd, parsed.msg1, parsed.ok) == ("1", "OPSP0008", "", False)


@pytest.mark.parametrize("text", ["{not json", "[1, 2]", '"text"', '{"a": 1'])
def test_parse_reply_refuses_what_is_not_an_object(text: str) -> None:
    with pytest.raises(ControlError):
        parse_reply(text)


@settings(max_examples=50)
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(),
        lambda c: st.lists(c) | st.dictionaries(st.text(), c),
    )
)
def test_parse_reply_never_raises_on_a_json_object(body: object) -> None:
    reply_ = parse_reply(json.dumps({"header": body, "body": body}))
    assert isinstance(reply_.msg_cd, str) and isinstance(reply_.tr_key, str)


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("OPSP8993", True),
        ("OPSP9999", True),
        ("OPSP9001", True),
        ("OPSP8996", False),  # ALREADY IN USE
        ("OPSP8992", False),
        ("OPSP0008", False),
        ("OPSPABCD", False),
        ("", False),
    ],
)
def test_json_error_codes(code: str, expected: bool) -> None:
    assert control.is_json_error(code) is expected


# -- backoff -------------------------------------------------------------------------------


def test_backoff_doubles_to_its_cap_with_jitter_and_resets() -> None:
    backoff = Backoff(2.0, 60.0, random.Random(1))
    delays = [backoff.next() for _ in range(10)]
    for attempt, delay in enumerate(delays):
        base = 2.0 * 2**attempt
        assert min(base, 60.0) <= delay <= min(base * 1.25, 60.0) or delay == 60.0
    assert delays[-1] == 60.0
    backoff.reset()
    assert 2.0 <= backoff.next() <= 2.5


@given(st.floats(0.01, 10), st.floats(0.01, 100), st.integers(0, 2**32))
def test_backoff_stays_within_bounds(minimum: float, maximum: float, seed: int) -> None:
    backoff = Backoff(minimum, maximum, random.Random(seed))
    delays = [backoff.next() for _ in range(40)]
    assert all(minimum <= d <= max(minimum, maximum) for d in delays)
    assert delays == sorted(delays)  # jitter never makes a later delay shorter
    assert delays[-1] == max(minimum, maximum)
