"""English messages (``locale: en``). Keys and placeholders must match ko.py."""

MESSAGES: dict[str, str] = {
    "demo.tag": "[simulated data]",
    # -- charts (/chart, /now, /top, the daily digest) --
    "charts.title": "{stock} program trading · {day}",
    "charts.no_data": "{stock}: no program trading recorded on {day}.",
    "charts.net": "net-buy value",
    "charts.buy": "buy value",
    "charts.sell": "sell value",
    "charts.axis_net": "net-buy value (100M KRW)",
    "charts.axis_trade": "buy / sell value (100M KRW)",
    "charts.axis_whole": "whole net bid remainder (shares)",
    "charts.session.pre": "pre-market",
    "charts.session.regular": "regular",
    "charts.session.after": "after-market",
}
