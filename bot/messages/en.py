"""English messages (``locale: en``). Keys and placeholders must match ko.py."""

MESSAGES: dict[str, str] = {
    "demo.tag": "[simulated data]",
}
