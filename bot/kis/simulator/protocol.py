"""The simulator's side of KIS's WebSocket protocol: requests in, control messages and frames out.

Pure functions: no sockets, no state. Message shapes follow KIS (docs/KIS-PROTOCOL.md §3-4):
errors that cannot name the request say ``"tr_id": "(null)"`` with an empty ``tr_key``, and every
control message has ``header.tr_id/tr_key/encrypt`` and ``body.rt_cd/msg_cd/msg1``, which KIS's
sample client reads without checking.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any, NamedTuple

from bot.kis.crypto import encrypt_payload
from bot.ticks import TR_IDS, FrameError, split_frame

TICKER = re.compile(r"[0-9A-Z]{6}")
JSON_ERROR = "JSON PARSING ERROR : "
NO_REQUEST = ("(null)", "")  # what KIS echoes when it could not read the request

Echo = tuple[str, str]  # (tr_id, tr_key) as echoed in a reply's header


class Request(NamedTuple):
    """A well-formed subscribe ("1") or unsubscribe ("2") request."""

    approval_key: str
    tr_type: str
    tr_id: str
    tr_key: str

    @property
    def echo(self) -> Echo:
        return (self.tr_id, self.tr_key)


class Refusal(Exception):
    """A request KIS would answer with an error code."""

    def __init__(self, msg_cd: str, msg1: str, echo: Echo = NO_REQUEST) -> None:
        super().__init__(f"{msg_cd} {msg1}")
        self.msg_cd = msg_cd
        self.msg1 = msg1
        self.echo = echo


def is_pingpong(message: Any) -> bool:
    """True for a parsed ``{"header": {"tr_id": "PINGPONG", ...}}`` (a client's echo)."""
    header = message.get("header") if isinstance(message, dict) else None
    return isinstance(header, dict) and header.get("tr_id") == "PINGPONG"


def parse_request(message: Any) -> Request:
    """Check a parsed client message's shape. Raises Refusal (OPSP9999, OPSP8993-8995).

    tr_id and tr_key are checked later (check_target), after the approval key, as KIS does.
    """
    header = message.get("header") if isinstance(message, dict) else None
    body = message.get("body") if isinstance(message, dict) else None
    fields = body.get("input") if isinstance(body, dict) else None
    if not isinstance(header, dict) or not isinstance(fields, dict):
        raise Refusal("OPSP9999", f"{JSON_ERROR}invalid json format")
    tr_id, tr_key = fields.get("tr_id"), fields.get("tr_key")
    echo = (
        tr_id if isinstance(tr_id, str) else NO_REQUEST[0],
        tr_key if isinstance(tr_key, str) else NO_REQUEST[1],
    )
    approval_key, tr_type = header.get("approval_key"), header.get("tr_type")
    if not isinstance(approval_key, str) or not approval_key:
        raise Refusal("OPSP8993", f"{JSON_ERROR}approval_key not found", echo)
    if tr_type not in ("1", "2"):
        raise Refusal("OPSP8994", f"{JSON_ERROR}invalid tr_type", echo)
    if header.get("custtype", "P") not in ("P", "B"):
        raise Refusal("OPSP8995", f"{JSON_ERROR}invalid custtype", echo)
    return Request(approval_key, tr_type, *echo)


def check_target(request: Request) -> None:
    """Raises Refusal for an unknown tr_id (OPSP8991) or a malformed tr_key (OPSP8992)."""
    if request.tr_id not in TR_IDS:
        raise Refusal("OPSP8991", "invalid tr_id", request.echo)
    if not TICKER.fullmatch(request.tr_key):
        raise Refusal("OPSP8992", "invalid tr_key", request.echo)


def control_message(
    echo: Echo,
    msg_cd: str,
    msg1: str,
    *,
    encrypt: bool = False,
    output: dict[str, str] | None = None,
) -> str:
    """An acknowledgement or error, as KIS sends it."""
    body: dict[str, Any] = {
        "rt_cd": "0" if msg_cd in ("OPSP0000", "OPSP0001") else "1",
        "msg_cd": msg_cd,
        "msg1": msg1,
    }
    if output is not None:
        body["output"] = output
    header = {"tr_id": echo[0], "tr_key": echo[1], "encrypt": "Y" if encrypt else "N"}
    return json.dumps({"header": header, "body": body})


def pingpong_message(now: datetime) -> str:
    return json.dumps({"header": {"tr_id": "PINGPONG", "datetime": now.strftime("%Y%m%d%H%M%S")}})


def data_frame(tr_id: str, records: list[str], cipher: tuple[str, str] | None = None) -> str:
    """``flag|tr_id|count|payload``; with ``cipher`` (iv, key) the payload is encrypted."""
    payload = "^".join(records)
    if cipher is None:
        return f"0|{tr_id}|{len(records):03d}|{payload}"
    iv, key = cipher
    return f"1|{tr_id}|{len(records):03d}|{encrypt_payload(payload, key, iv)}"


def split_records(frame: str) -> tuple[str, list[list[str]]]:
    """A plain data frame -> (tr_id, each record's fields). Raises FrameError.

    Unlike bot.ticks, records are kept as text, whatever their width: replay passes them on.
    """
    envelope = split_frame(frame)
    if envelope.encrypted:
        raise FrameError("encrypted", "encrypted frame in a recording")
    fields = envelope.payload.split("^")
    stride, rest = divmod(len(fields), envelope.records)
    if rest or stride < 1:
        raise FrameError("fields", f"{len(fields)} fields do not make {envelope.records} records")
    return envelope.tr_id, [fields[i : i + stride] for i in range(0, len(fields), stride)]


def garbage_frames(tr_id: str, ticker: str) -> list[str]:
    """Malformed frames a robust client must log and skip, one of each kind."""
    good = f"{ticker}^090000^1^2^3^4^2^2^5^6^1"
    return [
        f"0|{tr_id}|001|{ticker}^090000^1^2^3",  # too few fields
        f"0|{tr_id}|002|{good}",  # count says 2, one record
        f"0|{tr_id}|001|{ticker}^090000^abc^2^3^4^1^2^5^6^1",  # non-numeric value
        f"0|{tr_id}|001|{ticker}^256199^1^2^3^4^2^2^5^6^1",  # impossible time
        f"0|{tr_id}|xyz|{good}",  # bad count
        f"0|{tr_id}",  # bad envelope
        "2|nonsense",  # unknown flag
        "{not json",  # broken control message
        f"1|{tr_id}|001|not-base64!",  # encrypted, but not even base64
    ]
