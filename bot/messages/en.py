"""English messages (``locale: en``). Keys and placeholders must match ko.py."""

MESSAGES: dict[str, str] = {
    "demo.tag": "[simulated data]",
    # -- resolved events (the ✅ message, and its line in /alerts) --
    "resolved.header": "✅ <b>{stock}</b> {when} · <code>{rule}</code> · resolved",
    "resolved.at": "✅ resolved {when}",
}
