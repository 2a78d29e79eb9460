"""The simulator's stock master files: KIS's two zips, in KIS's layout, of the stocks it knows.

Served at ``{rest_url}/common/master/kospi_code.mst.zip`` and ``kosdaq_code.mst.zip``, so the
bot's real download path runs against it (``market.master_url``). The codes and names below are
real large caps (facts); the flags and market caps are not market data: every stock is listed
as a plain, untroubled share with no market cap. Tests change ``MasterFiles.listings`` or
``fault`` to serve what they need.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from bot.market.master import LAYOUTS, write_master, zip_master
from bot.market.names import Listing

log = logging.getLogger(__name__)

MASTER_PATH = "/common/master"

_KOSPI = """
005930 삼성전자
000660 SK하이닉스
373220 LG에너지솔루션
207940 삼성바이오로직스
005380 현대차
035420 NAVER
035720 카카오
068270 셀트리온
005935 삼성전자우
000270 기아
105560 KB금융
055550 신한지주
012330 현대모비스
028260 삼성물산
051910 LG화학
006400 삼성SDI
005490 POSCO홀딩스
032830 삼성생명
086790 하나금융지주
015760 한국전력
034020 두산에너빌리티
012450 한화에어로스페이스
329180 HD현대중공업
009540 HD한국조선해양
010130 고려아연
003670 포스코퓨처엠
066570 LG전자
003550 LG
017670 SK텔레콤
030200 KT
034730 SK
096770 SK이노베이션
018260 삼성에스디에스
316140 우리금융지주
033780 KT&G
010950 S-Oil
011200 HMM
259960 크래프톤
000810 삼성화재
009150 삼성전기
138040 메리츠금융지주
024110 기업은행
042660 한화오션
402340 SK스퀘어
323410 카카오뱅크
377300 카카오페이
352820 하이브
090430 아모레퍼시픽
051900 LG생활건강
011170 롯데케미칼
097950 CJ제일제당
003490 대한항공
047050 포스코인터내셔널
086280 현대글로비스
267260 HD현대일렉트릭
064350 현대로템
0126Z0 삼성에피스홀딩스
"""

_KOSDAQ = """
247540 에코프로비엠
086520 에코프로
196170 알테오젠
028300 HLB
263750 펄어비스
293490 카카오게임즈
058470 리노공업
240810 원익IPS
145020 휴젤
214150 클래시스
277810 레인보우로보틱스
039030 이오테크닉스
035900 JYP Ent.
041510 에스엠
068760 셀트리온제약
357780 솔브레인
403870 HPSP
141080 리가켐바이오
"""

_ETFS = """
069500 KODEX 200
102110 TIGER 200
"""


def _listings(table: str, market: str, group: str = "ST") -> list[Listing]:
    rows = (line.split(" ", 1) for line in table.strip().splitlines())
    return [Listing(code, name, market, group=group) for code, name in rows]


def known_listings() -> list[Listing]:
    """Every stock the simulator lists (KOSPI, its ETFs, then KOSDAQ)."""
    return [
        *_listings(_KOSPI, "KOSPI"),
        *_listings(_ETFS, "KOSPI", "EF"),
        *_listings(_KOSDAQ, "KOSDAQ"),
    ]


class MasterFiles:
    """What ``/common/master/...`` serves; ``fault`` (an HTTP status) makes it refuse instead,
    ``truncate`` cuts each zip in half (a transfer that broke)."""

    def __init__(self) -> None:
        self.listings: list[Listing] = known_listings()
        self.fault: int | None = None
        self.truncate = False
        self.requests = 0

    def add_routes(self, app: web.Application) -> None:
        for layout in LAYOUTS:
            app.router.add_get(f"{MASTER_PATH}/{layout.zip_name}", self._handler(layout.market))

    def zip_for(self, market: str) -> bytes:
        layout = next(layout for layout in LAYOUTS if layout.market == market)
        mine = [listing for listing in self.listings if listing.market == market]
        return zip_master(write_master(mine, layout), layout)

    def _handler(self, market: str) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def serve(request: web.Request) -> web.StreamResponse:
            self.requests += 1
            if self.fault is not None:
                log.info("master file refused market=%s status=%d", market, self.fault)
                return web.Response(status=self.fault, text="simulated failure")
            body = self.zip_for(market)
            if self.truncate:
                body = body[: len(body) // 2]
            return web.Response(body=body, content_type="application/zip")

        return serve
