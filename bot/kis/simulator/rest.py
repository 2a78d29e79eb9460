"""The simulator's REST side: approval keys (``POST /oauth2/Approval``) on aiohttp.

``POST /oauth2/tokenP`` is served too, because KIS's sample client asks for an access token
before its approval key. Errors are KIS's OAuth shape: ``{"error_code", "error_description"}``.
Logs name appkeys only by a label (app1, app2, ...), never by value.
"""

from __future__ import annotations

import json
import logging
import secrets
import uuid
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from aiohttp import web

from bot.ticks import KST

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RestRequest:
    """A request as received, for tests (it holds the secret: never log it)."""

    path: str
    headers: dict[str, str]  # lower-case names
    body: Any  # parsed JSON, or the raw text when it was not JSON


class Approvals:
    """Issues approval keys and knows which appkey each belongs to."""

    def __init__(self, accepted_appkeys: Collection[str] | None = None) -> None:
        self.accepted_appkeys = set(accepted_appkeys) if accepted_appkeys is not None else None
        self.requests: list[RestRequest] = []
        self._keys: dict[str, str] = {}  # approval key -> appkey
        self._labels: dict[str, str] = {}  # appkey -> "app1"

    @property
    def keys(self) -> dict[str, str]:
        return dict(self._keys)

    def appkey(self, approval_key: str) -> str | None:
        return self._keys.get(approval_key)

    def label(self, appkey: str) -> str:
        """A name for logs: appkeys are secrets."""
        return self._labels.setdefault(appkey, f"app{len(self._labels) + 1}")

    def invalidate(self) -> None:
        self._keys.clear()

    def application(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/oauth2/Approval", self._approval)
        app.router.add_post("/oauth2/tokenP", self._token)
        return app

    async def _approval(self, request: web.Request) -> web.Response:
        checked = self._check(await self._record(request), "secretkey")
        if isinstance(checked, web.Response):
            log.warning("approval refused status=%s", checked.status)
            return checked
        approval_key = str(uuid.uuid4())
        self._keys[approval_key] = checked
        log.info("approval issued account=%s", self.label(checked))
        return web.json_response({"approval_key": approval_key})

    async def _token(self, request: web.Request) -> web.Response:
        checked = self._check(await self._record(request), "appsecret")
        if isinstance(checked, web.Response):
            return checked
        expires = datetime.now(KST).replace(microsecond=0) + timedelta(days=1)
        return web.json_response(
            {
                "access_token": secrets.token_urlsafe(48),
                "access_token_token_expired": expires.strftime("%Y-%m-%d %H:%M:%S"),
                "token_type": "Bearer",
                "expires_in": 86400,
            }
        )

    async def _record(self, request: web.Request) -> Any:
        text = await request.text()
        try:
            body = json.loads(text)
        except ValueError:
            body = text
        headers = {name.lower(): value for name, value in request.headers.items()}
        self.requests.append(RestRequest(request.path, headers, body))
        return body

    def _check(self, body: Any, secret_field: str) -> web.Response | str:
        """The appkey when the body is a valid credentials request, else the error response."""
        if not isinstance(body, dict):
            return _error(400, "EGW00001", "요청 본문이 JSON 객체가 아닙니다 (invalid JSON body)")
        missing = [
            name
            for name in ("grant_type", "appkey", secret_field)
            if not isinstance(body.get(name), str) or not body[name]
        ]
        if missing:
            return _error(400, "EGW00002", f"필수 항목이 없습니다: {', '.join(missing)}")
        if body["grant_type"] != "client_credentials":
            return _error(400, "EGW00004", "grant_type은 client_credentials여야 합니다")
        if self.accepted_appkeys is not None and body["appkey"] not in self.accepted_appkeys:
            return _error(403, "EGW00103", "유효하지 않은 AppKey입니다.")
        return str(body["appkey"])


def _error(status: int, code: str, description: str) -> web.Response:
    return web.json_response({"error_code": code, "error_description": description}, status=status)
