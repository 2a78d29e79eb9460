"""English messages (``locale: en``). Keys and placeholders must match ko.py."""

MESSAGES: dict[str, str] = {
    "demo.tag": "[simulated data]",
    # -- market: names, sessions, the calendar (helper `market`) --
    "market.weekdays": "Mon Tue Wed Thu Fri Sat Sun",
    "market.moment": "{date} ({weekday}) {time}",
    "market.session.pre": "pre-market",
    "market.session.regular": "regular session",
    "market.session.after": "after-market",
    "market.open": "{session} under way",
    "market.closed": "market closed · next open {next}",
    "market.closed_unknown": "market closed",
    "market.real": "Real market: {state} (the trades flowing now are simulated)",
    "market.unlisted": "{code} is not a listed stock.",
    "market.ambiguous": (
        "'{word}' fits several stocks: {candidates}. Send the code or the full name."
    ),
    "market.unknown": "No stock fits '{word}'. Try /find.",
    "market.not_a_code": "'{word}' is not a stock code (e.g. 005930).",
    "market.tag.pre": "[pre]",
    "market.tag.after": "[after]",
    "market.tag.other": "[{session}]",
    "market.halted": "trading halted",
    "market.find.args": "NAME",
    "market.find.summary": "find stocks by name",
    "market.find.empty": "Give a name to look for, e.g. /find 삼성",
    "market.find.none": "No stock fits '{text}'.",
    "market.find.header": "{count} stock(s) for '{text}':",
    "market.find.no_names": (
        "No stock master file is loaded, so names cannot be searched; send codes."
    ),
    "market.notice.no_names": (
        "The stock master files could not be downloaded and no saved copy "
        "exists: running on codes alone, without names."
    ),
    "market.notice.silent": "No trade data since {since} · connections: {connections}",
    "market.notice.flowing": "Trade data flows again (it stopped at {since} for {minutes} min).",
    "market.notice.demo_closed": "Demo: running on simulated data. The real market: {state}",
    "market.connected": "{account} connected",
    "market.disconnected": "{account} disconnected",
}
