"""한국어 메시지 (기본). Keys and placeholders must match en.py."""

MESSAGES: dict[str, str] = {
    "demo.tag": "[모의 데이터]",
    # -- resolved events (the ✅ message, and its line in /alerts) --
    "resolved.header": "✅ <b>{stock}</b> {when} · <code>{rule}</code> · 해제",
    "resolved.at": "✅ {when} 해제",
}
