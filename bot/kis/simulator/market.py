"""A seeded model of day-cumulative program-trading figures, for the simulator.

Per ticker: a price random walk at a plausible level, program buy/sell volumes that only grow
(values = volume x price), a slowly drifting buy/sell bias with occasional one-sided bursts (so net
buying crosses round amounts and surges now and then), and order-book remainders around a level
whose difference changes sign every half minute or so. Pure: no I/O, no clock of its own.
"""

from __future__ import annotations

import math
import random
import zlib
from dataclasses import dataclass
from datetime import date

#: Known large caps: (price in won, gross program flow per side in won per second).
PROFILES: dict[str, tuple[int, float]] = {
    "005930": (70_000, 2.0e8),  # Samsung Electronics
    "000660": (180_000, 1.5e8),  # SK hynix
    "373220": (390_000, 6.0e7),  # LG Energy Solution
    "207940": (800_000, 4.0e7),  # Samsung Biologics
    "005380": (210_000, 5.0e7),  # Hyundai Motor
    "035420": (190_000, 4.0e7),  # NAVER
    "035720": (45_000, 4.0e7),  # Kakao
    "068270": (180_000, 4.0e7),  # Celltrion
}
_DEFAULT_FLOW = 2.5e7  # won per second per side for codes not in PROFILES

_BIAS_TAU = 30.0  # seconds: how long a buy/sell bias lasts
_BIAS_SIGMA = 0.12
_BURST_EVERY = 45.0  # seconds between one-sided bursts, on average
_BOOK_TAU = 12.0  # seconds: how long an order-book imbalance lasts
_BOOK_LAG = 3.0  # seconds: how slowly the book follows the pressure


def tick_size(price: float) -> int:
    """KRX price tick for a price level."""
    for limit, size in ((2_000, 1), (5_000, 5), (20_000, 10), (50_000, 50), (200_000, 100)):
        if price < limit:
            return size
    return 500 if price < 500_000 else 1_000


def base_price(ticker: str) -> int:
    """A plausible price: the known level, else one derived from the code (3,000-150,000 won)."""
    if ticker in PROFILES:
        return PROFILES[ticker][0]
    fraction = zlib.crc32(ticker.encode()) / 0xFFFFFFFF
    price = 3_000 * math.pow(50, fraction)  # log-uniform between 3,000 and 150,000
    return round(price / tick_size(price)) * tick_size(price)


@dataclass(slots=True)
class _Ticker:
    day: date
    base: int
    flow: float  # won per second per side
    price: int
    sell_volume: int
    sell_value: int
    buy_volume: int
    buy_value: int
    bias: float  # > 0: programs buy more than they sell
    burst_side: int  # +1 buy burst, -1 sell burst, 0 none
    burst_left: float  # seconds
    burst_factor: float
    book_level: float  # shares
    book_pressure: float  # shares: where the imbalance is heading (a random walk)
    book_imbalance: float  # shares, SHNU_RSQN - SELN_RSQN before noise: pressure, smoothed


class Market:
    """Generates the next record of each ticker; one instance per simulator (seeded)."""

    def __init__(self, seed: int | None = None) -> None:
        self._rng = random.Random(seed)
        self._tickers: dict[tuple[str, str], _Ticker] = {}

    def record(self, tr_id: str, ticker: str, day: date, hhmmss: str, dt: float) -> str:
        """The next 11-field record (``^``-joined) of ``ticker`` under ``tr_id``.

        ``dt`` is the time in seconds since the ticker's previous record; a new ``day`` starts
        the day-cumulative figures afresh.
        """
        state = self._tickers.get((tr_id, ticker))
        if state is None or state.day != day:
            state = self._tickers[(tr_id, ticker)] = self._open(ticker, day)
        self._step(state, dt)
        rng = self._rng
        # Both sides share most of their noise, so the sign of their difference stays steady.
        level = state.book_level * (1 + rng.gauss(0, 0.03))
        half, noise = state.book_imbalance / 2, state.book_level * 0.003
        seln_rsqn = max(0, round(level - half + rng.gauss(0, noise)))
        shnu_rsqn = max(0, round(level + half + rng.gauss(0, noise)))
        fields = (
            ticker,
            hhmmss,
            state.sell_volume,
            state.sell_value,
            state.buy_volume,
            state.buy_value,
            state.buy_volume - state.sell_volume,
            state.buy_value - state.sell_value,
            seln_rsqn,
            shnu_rsqn,
            shnu_rsqn - seln_rsqn,
        )
        return "^".join(map(str, fields))

    def _open(self, ticker: str, day: date) -> _Ticker:
        """A ticker's state as if programs had been trading for a while already today."""
        rng = self._rng
        price = base_price(ticker)
        flow = PROFILES[ticker][1] if ticker in PROFILES else _DEFAULT_FLOW
        elapsed = rng.uniform(600, 3_600)
        lean = rng.uniform(-0.25, 0.25)
        buy_volume = round(flow * elapsed * (1 + lean) / price)
        sell_volume = round(flow * elapsed * (1 - lean) / price)
        level = flow * 30 / price
        return _Ticker(
            day=day,
            base=price,
            flow=flow,
            price=price,
            sell_volume=sell_volume,
            sell_value=sell_volume * price,
            buy_volume=buy_volume,
            buy_value=buy_volume * price,
            bias=rng.uniform(-0.3, 0.3),
            burst_side=0,
            burst_left=0.0,
            burst_factor=1.0,
            book_level=level,
            book_pressure=(pressure := rng.gauss(0, level / 2)),
            book_imbalance=pressure,
        )

    def _step(self, s: _Ticker, dt: float) -> None:
        rng = self._rng
        dt = min(max(dt, 0.0), 5.0)
        root = math.sqrt(dt)
        # Price: a small random walk in ticks, held within the daily +-30% limits.
        drift = rng.gauss(0, 0.0004 * root) * s.price
        step = tick_size(s.price)
        price = round((s.price + drift) / step) * step
        s.price = min(max(price, s.base * 7 // 10), s.base * 13 // 10)
        # Buy/sell bias: mean-reverting, so net buying trends for a while then turns.
        s.bias += -s.bias * dt / _BIAS_TAU + rng.gauss(0, _BIAS_SIGMA * root)
        s.bias = min(max(s.bias, -0.8), 0.8)
        if s.burst_left > 0:
            s.burst_left -= dt
        elif rng.random() < dt / _BURST_EVERY:
            s.burst_side = rng.choice((-1, 1))
            s.burst_left = rng.uniform(3, 8)
            s.burst_factor = rng.uniform(4, 10)
        burst = s.burst_factor if s.burst_left > 0 else 1.0
        per_side = s.flow * dt / s.price
        buy = per_side * (1 + s.bias) * (burst if s.burst_side > 0 else 1.0)
        sell = per_side * (1 - s.bias) * (burst if s.burst_side < 0 else 1.0)
        buy_volume = round(buy * rng.gammavariate(2, 0.5))
        sell_volume = round(sell * rng.gammavariate(2, 0.5))
        s.buy_volume += buy_volume
        s.buy_value += buy_volume * s.price
        s.sell_volume += sell_volume
        s.sell_value += sell_volume * s.price
        # Order-book remainders: the imbalance wanders across zero (WHOL_NTBY_QTY flips sign).
        sigma = s.book_level * 0.5 * math.sqrt(2 / _BOOK_TAU)
        s.book_pressure += -s.book_pressure * dt / _BOOK_TAU + rng.gauss(0, sigma * root)
        # Smoothing keeps the sign from chattering at every zero crossing of the pressure.
        s.book_imbalance += (s.book_pressure - s.book_imbalance) * min(1.0, dt / _BOOK_LAG)
