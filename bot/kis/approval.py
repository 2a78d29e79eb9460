"""WebSocket approval keys: ``POST {rest_url}/oauth2/Approval``, cached per appkey.

KIS checks the key only when a session opens, so a cached key is reused for reconnects until it is
older than ``max_age`` (KIS: valid 24 h) or a server says it is invalid (OPSP0010/0011).

Error answers are quoted in ApprovalError, with every form of the appkey and appsecret a server
might echo (as sent, JSON-escaped, URL-encoded) replaced by ``***`` before the quote is cut.
"""

from __future__ import annotations

import json
import logging
import time
import urllib.parse
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import httpx

from bot.config import Account

log = logging.getLogger(__name__)

_DETAIL_CHARS = 200  # of an error response quoted in ApprovalError


class ApprovalError(Exception):
    """No approval key could be had; the message names the account, never a secret.

    ``refused`` when KIS answered with a client error (HTTP 4xx: the credentials or the request,
    which retrying will not fix by itself); ``kis_message`` is its error code and description
    when the answer had them (else its start), one line, without secrets.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        refused: bool = False,
        kis_message: str = "",
    ) -> None:
        super().__init__(message)
        self.status = status  # HTTP status of the answer; None: no answer
        self.refused = refused
        self.kis_message = kis_message


@dataclass(frozen=True, slots=True)
class _Cached:
    key: str
    issued: float  # clock() at issue


class ApprovalKeys:
    """Issues and caches one approval key per appkey.

    ``clock`` is a monotonic clock in seconds (injectable for tests).
    """

    def __init__(
        self,
        rest_url: str,
        *,
        max_age: float = 23 * 3600,
        timeout: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.url = f"{rest_url.rstrip('/')}/oauth2/Approval"
        self.max_age = max_age
        self.timeout = timeout
        self.clock = clock
        self._cache: dict[str, _Cached] = {}  # appkey -> key

    async def get(self, account: Account, label: str) -> str:
        """The account's approval key: the cached one while young enough, else a new one.

        Raises ApprovalError (HTTP error, no answer, bad JSON, no key in the answer).
        """
        appkey = account.appkey.get_secret_value()
        cached = self._cache.get(appkey)
        if cached is not None and self.clock() - cached.issued < self.max_age:
            return cached.key
        key = await self._request(account, label)
        self._cache[appkey] = _Cached(key, self.clock())
        log.info("approval key issued account=%s", label)
        return key

    def invalidate(self, account: Account) -> None:
        """Forget the account's key (the server called it invalid): the next get() asks anew."""
        self._cache.pop(account.appkey.get_secret_value(), None)

    async def _request(self, account: Account, label: str) -> str:
        appkey = account.appkey.get_secret_value()
        secret = account.appsecret.get_secret_value()
        body = {"grant_type": "client_credentials", "appkey": appkey, "secretkey": secret}
        try:
            async with httpx.AsyncClient(timeout=self.timeout) as http:
                response = await http.post(self.url, json=body)
        except httpx.HTTPError as exc:
            # httpx messages may quote the URL but never the request body.
            raise ApprovalError(
                f"approval request failed account={label} url={self.url} "
                f"error={type(exc).__name__}: {exc}"
            ) from None
        if response.status_code != 200:
            raise _refused(response, label, "HTTP error", appkey, secret)
        try:
            answer = response.json()
        except ValueError:
            raise _refused(response, label, "answer is not JSON", appkey, secret) from None
        key = answer.get("approval_key") if isinstance(answer, dict) else None
        if not isinstance(key, str) or not key:
            raise _refused(response, label, "no approval_key in the answer", appkey, secret)
        return key


def _refused(response: httpx.Response, label: str, reason: str, *secrets: str) -> ApprovalError:
    """The error for an unusable answer, quoting its start, secrets scrubbed before the cut."""
    text = scrub(response.text, secrets)
    return ApprovalError(
        f"approval refused account={label} url={response.request.url} "
        f"status={response.status_code} {reason}: {text[:_DETAIL_CHARS]!r}",
        status=response.status_code,
        refused=400 <= response.status_code < 500,
        kis_message=scrub(_kis_message(text), secrets),  # JSON escapes decoded: scrub again
    )


_MIN_SHOWN_PREFIX = 4  # a secret's start this long, cut off at the end of a text, is scrubbed too


def scrub(text: str, secrets: Iterable[str]) -> str:
    """``text`` with each secret replaced by ``***``: as is, JSON-escaped and URL-encoded, and
    its start (4 characters or more) when the text ends in one (a server that cut its echo)."""
    for secret in secrets:
        if not secret:
            continue
        escaped = json.dumps(secret)[1:-1]
        forms = {secret, escaped, escaped.replace("/", "\\/")}  # JSON may escape "/" too
        forms |= {urllib.parse.quote(secret, safe=""), urllib.parse.quote_plus(secret)}
        for form in sorted(forms, key=len, reverse=True):
            text = text.replace(form, "***")
            for length in range(len(form) - 1, _MIN_SHOWN_PREFIX - 1, -1):
                if text.endswith(form[:length]):
                    text = text[:-length] + "***"
                    break
    return text


def _kis_message(text: str) -> str:
    """KIS's own words in an error answer: ``error_code error_description`` (OAuth endpoints) or
    ``msg_cd msg1``, else the start of the text; one line, at most _DETAIL_CHARS characters."""
    try:
        answer: Any = json.loads(text)
    except ValueError:
        answer = None
    words = text
    if isinstance(answer, dict):
        for code, description in (("error_code", "error_description"), ("msg_cd", "msg1")):
            found = [str(answer[key]) for key in (code, description) if answer.get(key)]
            if found:
                words = " ".join(found)
                break
    return " ".join(words.split())[:_DETAIL_CHARS]
