"""log_format: json: one JSON object per record, secrets filtered out as in the text format."""

from __future__ import annotations

import io
import json
import logging

from bot.logs import JsonFormatter
from bot.notify.telegram_bot import redact_in_logs


def test_a_json_line_per_record_with_the_token_scrubbed_and_the_exception_kept() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("httpx")  # logs request URLs, the bot token in them
    logger.addHandler(handler)
    secret = "123456:JSON-SECRET-token"
    redact_in_logs(secret)
    try:
        logger.warning("POST https://api.telegram.org/bot%s/getMe status=%d", secret, 200)
        try:
            raise ValueError("bad\nvalue")
        except ValueError:
            logger.error("failed chat=%s", 5, exc_info=True)
    finally:
        logger.removeHandler(handler)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2  # a multi-line traceback stays on its line
    first, second = (json.loads(line) for line in lines)
    assert first["message"] == "POST https://api.telegram.org/bot***/getMe status=200"
    assert first["level"] == "WARNING" and first["logger"] == "httpx"
    assert first["time"].endswith("+00:00")
    assert second["message"] == "failed chat=5"
    assert "ValueError: bad" in second["exception"]
    assert "JSON-SECRET" not in stream.getvalue()
