"""JSON control messages: the requests we send and the replies KIS sends (protocol §3-4). Pure.

Replies are read defensively: KIS has sent them without ``header``, without ``msg1``, with
``"tr_id": "(null)"`` and an empty ``tr_key``; none of that may raise.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

SUBSCRIBE = "1"
UNSUBSCRIBE = "2"  # with the tr_id of the subscription ("0" in some KIS docstrings is wrong)

SUBSCRIBED = frozenset({"OPSP0000", "OPSP0002"})  # SUBSCRIBE SUCCESS, ALREADY IN SUBSCRIBE
UNSUBSCRIBED = frozenset({"OPSP0001", "OPSP0003"})  # UNSUBSCRIBE SUCCESS, ... ERROR(not found!)
MAX_SUBSCRIBE_OVER = "OPSP0008"
IN_USE = "OPSP8996"  # ALREADY IN USE appkey: another connection holds it
INVALID_APPROVAL = frozenset({"OPSP0010", "OPSP0011"})  # invalid appkey / approval key
BAD_TARGET = frozenset({"OPSP8991", "OPSP8992"})  # invalid tr_id / tr_key: retrying won't help
TRANSIENT = frozenset({"OPSP0007", "OPSP0009"})  # SUBSCRIBE INTERNAL ERROR, mci send failed
KNOWN = (
    SUBSCRIBED
    | UNSUBSCRIBED
    | INVALID_APPROVAL
    | BAD_TARGET
    | TRANSIENT
    | {MAX_SUBSCRIBE_OVER, IN_USE}
)


def is_json_error(msg_cd: str) -> bool:
    """OPSP8993-OPSP9999 JSON PARSING ERROR (but 8996 is IN USE): our request was malformed."""
    return (
        msg_cd.startswith("OPSP")
        and msg_cd[4:].isdigit()
        and 8993 <= int(msg_cd[4:]) <= 9999
        and msg_cd != IN_USE
    )


def request(approval_key: str, custtype: str, tr_type: str, tr_id: str, tr_key: str) -> str:
    """A subscribe (``tr_type`` "1") or unsubscribe ("2") request."""
    return json.dumps(
        {
            "header": {
                "approval_key": approval_key,
                "custtype": custtype,
                "tr_type": tr_type,
                "content-type": "utf-8",
            },
            "body": {"input": {"tr_id": tr_id, "tr_key": tr_key}},
        }
    )


@dataclass(frozen=True, slots=True)
class Reply:
    """A control message from the server, every field optional on the wire ('' when absent)."""

    tr_id: str
    tr_key: str
    rt_cd: str
    msg_cd: str
    msg1: str
    iv: str
    key: str

    @property
    def is_pingpong(self) -> bool:
        return self.tr_id == "PINGPONG"

    @property
    def ok(self) -> bool:
        return self.rt_cd == "0"


class ControlError(ValueError):
    """A message starting with ``{`` that is not a JSON object."""


def parse_reply(text: str) -> Reply:
    """Read a control message. Raises ControlError only when it is not a JSON object."""
    try:
        message = json.loads(text)
    except ValueError as exc:
        raise ControlError(f"control message is not JSON: {exc}") from None
    if not isinstance(message, dict):
        raise ControlError("control message is not a JSON object")
    header, body = _mapping(message.get("header")), _mapping(message.get("body"))
    output = _mapping(body.get("output"))
    tr_id = _text(header.get("tr_id"))
    return Reply(
        tr_id="" if tr_id == "(null)" else tr_id,
        tr_key=_text(header.get("tr_key")),
        rt_cd=_text(body.get("rt_cd")),
        msg_cd=_text(body.get("msg_cd")),
        msg1=_text(body.get("msg1")),
        iv=_text(output.get("iv")),
        key=_text(output.get("key")),
    )


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else "" if value is None else str(value)
