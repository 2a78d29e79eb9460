"""한국어 메시지 (기본). Keys and placeholders must match en.py."""

MESSAGES: dict[str, str] = {
    "demo.tag": "[모의 데이터]",
}
