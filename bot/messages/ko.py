"""한국어 메시지 (기본). Keys and placeholders must match en.py."""

MESSAGES: dict[str, str] = {
    "demo.tag": "[모의 데이터]",
    # -- charts (/chart, /now, /top, the daily digest) --
    "charts.title": "{stock} 프로그램 매매 · {day}",
    "charts.no_data": "{stock}: {day}의 프로그램 매매 기록이 없습니다.",
    "charts.net": "순매수 대금",
    "charts.buy": "매수 대금",
    "charts.sell": "매도 대금",
    "charts.axis_net": "순매수 대금 (억)",
    "charts.axis_trade": "매수·매도 대금 (억)",
    "charts.axis_whole": "전체순매수호가잔량 (주)",
    "charts.session.pre": "프리마켓",
    "charts.session.regular": "정규장",
    "charts.session.after": "애프터마켓",
}
