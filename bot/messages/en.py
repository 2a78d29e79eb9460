"""English messages (``locale: en``). Keys and placeholders must match ko.py."""

MESSAGES: dict[str, str] = {
    "demo.tag": "[simulated data]",
    # -- resolved events (the ✅ message, and its line in /alerts) --
    "resolved.header": "✅ <b>{ticker}</b> {time} KST · <code>{rule}</code> · resolved",
    "resolved.at": "✅ resolved at {time} KST",
}
