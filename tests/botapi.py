"""A fake Telegram Bot API server on loopback, for tests.

python-telegram-bot talks to it over real HTTP through its ``base_url`` setting, nothing patched.
It speaks what the bot uses: ``getMe``, ``getUpdates`` (long poll, ``offset``), ``sendMessage``
(with Telegram's HTML check and 4096-character limit, and replies: ``reply_parameters`` or
``reply_to_message_id``, recorded as ``SentMessage.reply_to``; a reply to a message the chat does
not have is refused unless ``allow_sending_without_reply``, then sent as a plain message),
``sendPhoto`` (a multipart upload; the picture is kept in ``SentMessage.photo``, its caption in
``text``), ``setMyCommands``/``getMyCommands``, ``deleteWebhook``/``getWebhookInfo``, ``close``,
``logOut``. Failures can be injected::

    async with FakeBotApi() as api:
        bot = telegram.Bot(api.token, base_url=api.base_url)
        api.fail_next(1, status=429, retry_after=0.2)   # the next sendMessage: flood control
        api.block_chat(42)                               # 403 bot was blocked by the user
        api.outage(3.0)                                  # every call answers 502 for 3 s
        api.push_command(7, "/watch 005930")             # a user writes to the bot
        reply = await api.wait_for_message(lambda m: m.chat_id == 7)

Lasting failure modes, for delivery tests (each until undone or for a time)::

    api.refuse_text("000660", "Bad Request: x")  # 400 for any sendMessage whose text has it
    api.fail_chat(-5)                    # 500 for every sendMessage to chat -5 (heal_chat ends it)
    api.unauthorized(3.0)                # 401 Unauthorized for every call for 3 s (token refused)
    api.hang(60.0)                       # sendMessage answers only once 60 s have passed
    api.block_chat(42, seconds=2.0)      # 403 for 2 s; unblock_chat(42, command="/start") ends it
    api.migrate_chat(-5, -1005)          # 400 with migrate_to_chat_id, and the service messages
    api.delete_message(7, 12)            # a user deleted message 12: replies to it find nothing

Precedence, first match answers: wrong token (401), ``unauthorized``, ``outage``, ``hang`` (then
the rest, late), ``fail_next``; inside sendMessage: migrated chat, blocked chat, failing chat,
refused text, then Telegram's own checks.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import itertools
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from aiohttp import web

TOKEN = "123456789:TEST-fake-token-for-loopback-only"
BOT_USER: dict[str, Any] = {
    "id": 123456789,
    "is_bot": True,
    "first_name": "pgmbot test",
    "username": "pgmbot_test_bot",
    "can_join_groups": True,
    "can_read_all_group_messages": False,
    "supports_inline_queries": False,
}
MAX_TEXT = 4096  # Telegram's limit, in UTF-16 code units of the text after entity parsing
MAX_CAPTION = 1024  # a photo's caption, counted the same way
MAX_PHOTO = 10 << 20  # bytes of a photo upload

# Telegram's HTML parse mode: these tags (and entities) only, properly nested.
_TAGS = frozenset(
    {"b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "span", "tg-spoiler", "a"}
    | {"code", "pre", "blockquote", "tg-emoji"}
)
_TAG = re.compile(r"<(/?)([a-z-]+)(\s[^<>]*)?>")
_ENTITY = re.compile(r"&(lt|gt|amp|quot|#[0-9]+|#x[0-9a-fA-F]+);")
_INT_PARAMS = frozenset({"chat_id", "offset", "limit", "message_id", "reply_to_message_id"})
_JSON_PARAMS = frozenset(
    {"commands", "allowed_updates", "scope", "reply_markup", "link_preview_options", "entities"}
    | {"reply_parameters"}
)

Predicate = Callable[["SentMessage"], bool]


@dataclass(frozen=True, slots=True)
class SentMessage:
    """A message the bot sent successfully."""

    chat_id: int
    text: str  # as sent (HTML source when parse_mode is HTML)
    parse_mode: str | None
    message_id: int
    at: float  # time.monotonic() when received
    reply_to: int | None = None  # the message of the chat it replies to (None: not a reply)
    photo: bytes | None = None  # sendPhoto: the uploaded file (``text`` is its caption)
    reply_markup: dict[str, Any] | None = None  # an inline keyboard, as sent
    silent: bool = False  # sent with disable_notification

    @property
    def buttons(self) -> list[tuple[str, str]]:
        """``(text, callback_data)`` of each inline button, row after row."""
        rows = (self.reply_markup or {}).get("inline_keyboard", [])
        return [(b["text"], b.get("callback_data", "")) for row in rows for b in row]


@dataclass(frozen=True, slots=True)
class ApiCall:
    """Any request that reached the server with the right token, and the HTTP status answered."""

    method: str
    params: dict[str, Any]
    status: int
    at: float  # time.monotonic() when answered


@dataclass(slots=True)
class _Failure:
    remaining: int
    status: int
    retry_after: float | None
    description: str
    method: str | None  # None: any method


class ParseError(ValueError):
    """Text that Telegram's HTML parse mode would refuse."""


def parse_html(text: str) -> str:
    """The plain text Telegram would show for ``text`` in HTML mode; ParseError if it would refuse.

    Checks what matters for escaping bugs: only supported tags, properly nested, and every ``&``
    starting an entity. Attributes are not checked.
    """
    plain: list[str] = []
    stack: list[str] = []
    pos = 0
    while pos < len(text):
        char = text[pos]
        if char == "<":
            match = _TAG.match(text, pos)
            if not match or match.group(2) not in _TAGS:
                raise ParseError(f"can't parse entities: unsupported tag at offset {pos}")
            closing, name = match.group(1), match.group(2)
            if closing:
                if not stack or stack.pop() != name:
                    raise ParseError(f"can't parse entities: unmatched end tag at offset {pos}")
            else:
                stack.append(name)
            pos = match.end()
        elif char == "&":
            match = _ENTITY.match(text, pos)
            if not match:
                raise ParseError(f"can't parse entities: unsupported entity at offset {pos}")
            plain.append(html.unescape(match.group(0)))
            pos = match.end()
        elif char == ">":
            raise ParseError(f"can't parse entities: unexpected '>' at offset {pos}")
        else:
            plain.append(char)
            pos += 1
    if stack:
        raise ParseError(f"can't parse entities: can't find end tag for <{stack[-1]}>")
    return "".join(plain)


def utf16_len(text: str) -> int:
    """Length as Telegram counts it (UTF-16 code units)."""
    return len(text.encode("utf-16-le")) // 2


class FakeBotApi:
    """The server. Use ``async with FakeBotApi() as api`` (or ``await start()`` / ``stop()``).

    Args:
        token: the only token accepted in ``/bot<TOKEN>/<method>``; others get 401.
        max_poll: cap on a ``getUpdates`` long poll, seconds (keeps shutdowns quick).
        clock: what the timed failure modes (outage, unauthorized, hang, block) are measured
            with; a test may pass its own and end a spell by moving it on.
    """

    def __init__(
        self,
        token: str = TOKEN,
        *,
        max_poll: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.token = token
        self.max_poll = max_poll
        self.clock = clock
        self.sent: list[SentMessage] = []
        self.calls: list[ApiCall] = []
        self.my_commands: list[dict[str, Any]] = []
        self.callback_answers: list[dict[str, Any]] = []  # answerCallbackQuery calls, in order
        self._callback_ids = itertools.count(1)
        self._updates: list[dict[str, Any]] = []
        self._update_ids = itertools.count(1)
        self._message_ids = itertools.count(1)
        self._failures: list[_Failure] = []
        self._blocked: dict[int, tuple[str, float]] = {}  # chat -> 403 description, until when
        self._failing_chats: dict[int, tuple[int, str]] = {}  # chat -> status, description
        self._refused_texts: dict[str, tuple[int, str]] = {}  # substring -> status, description
        self._migrated: dict[int, int] = {}  # old chat id -> new chat id
        self._deleted: set[tuple[int, int]] = set()  # (chat, message id) deleted by a user
        # Messages users wrote (push_command), by (chat, message id): a reply may quote them,
        # as python-telegram-bot's reply_html does in groups.
        self._received: dict[tuple[int, int], SentMessage] = {}
        self._hangs: dict[str | None, float] = {}  # method (None: any) -> hanging until when
        self._unauthorized_until = 0.0  # clock() until which every call answers 401
        self._down_until = 0.0  # clock() until which every call fails
        self._down_mode: Literal["502", "close"] = "502"
        self._changed = asyncio.Event()  # set on every new update or sent message
        self._runner: web.AppRunner | None = None
        self._port = 0
        self.polls_waiting = 0  # getUpdates calls currently long-polling
        self.hanging = 0  # calls currently held by a hang

    # -- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> FakeBotApi:
        app = web.Application()
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        app.router.add_route("*", "/file/bot{token}/{path:.*}", self._no_files)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None and server.sockets  # type: ignore[attr-defined]
        self._port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeBotApi:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def port(self) -> int:
        return self._port

    @property
    def base_url(self) -> str:
        """For ``telegram.base_url`` / ``Bot(base_url=...)``: the token is appended to it."""
        return f"http://127.0.0.1:{self._port}/bot"

    @property
    def base_file_url(self) -> str:
        return f"http://127.0.0.1:{self._port}/file/bot"

    # -- what users write to the bot ------------------------------------------------------------

    def push_command(
        self,
        chat_id: int,
        text: str,
        *,
        user_id: int | None = None,
        chat_type: str = "private",
        first_name: str = "Tester",
    ) -> int:
        """Queue a text message from a user (a private chat by default); returns its update_id.

        A leading ``/word`` (optionally ``/word@bot``) is marked as a bot_command entity, as
        Telegram does, so python-telegram-bot's CommandHandler sees it.
        """
        user = {"id": user_id if user_id is not None else chat_id, "is_bot": False}
        user["first_name"] = first_name  # type: ignore[assignment]
        chat: dict[str, Any] = {"id": chat_id, "type": chat_type}
        if chat_type == "private":
            chat["first_name"] = first_name
        else:
            chat["title"] = f"group {chat_id}"
        message_id = next(self._message_ids)
        self._received[(chat_id, message_id)] = SentMessage(
            chat_id, text, None, message_id, time.monotonic()
        )
        message: dict[str, Any] = {
            "message_id": message_id,
            "date": int(time.time()),
            "chat": chat,
            "from": user,
            "text": text,
        }
        command = re.match(r"/[A-Za-z0-9_]+(@[A-Za-z0-9_]+)?", text)
        if command:
            length = utf16_len(command.group(0))
            message["entities"] = [{"type": "bot_command", "offset": 0, "length": length}]
        return self.push_update({"message": message})

    def push_callback(
        self,
        chat_id: int,
        data: str,
        *,
        message_id: int | None = None,
        user_id: int | None = None,
    ) -> str:
        """Queue a button press (a ``callback_query``) on a message of this chat (by default
        the bot's last message there); returns the query's id, which ``callback_answers``
        name as ``callback_query_id``."""
        if message_id is None:
            mine = self.messages_for(chat_id)
            message_id = mine[-1].message_id if mine else next(self._message_ids)
        user = {"id": user_id if user_id is not None else chat_id, "is_bot": False}
        user["first_name"] = "Tester"  # type: ignore[assignment]
        chat: dict[str, Any] = {"id": chat_id, "type": "private" if chat_id > 0 else "group"}
        message = {"message_id": message_id, "date": int(time.time()), "chat": chat,
                   "from": BOT_USER, "text": "…"}  # fmt: skip
        query_id = f"cq{next(self._callback_ids)}"
        query = {"id": query_id, "from": user, "message": message, "chat_instance": "1"}
        self.push_update({"callback_query": {**query, "data": data}})
        return query_id

    def answer_to(self, query_id: str) -> dict[str, Any] | None:
        """The answerCallbackQuery call for that press, if it came."""
        return next(
            (a for a in self.callback_answers if a.get("callback_query_id") == query_id), None
        )

    def push_update(self, update: dict[str, Any]) -> int:
        """Queue any update (``update_id`` is assigned); returns its update_id."""
        update_id: int = next(self._update_ids)
        self._updates.append({**update, "update_id": update_id})
        self._notify()
        return update_id

    @property
    def pending_updates(self) -> int:
        """Updates not yet confirmed by a later ``getUpdates`` offset."""
        return len(self._updates)

    # -- what the bot sent ----------------------------------------------------------------------

    def messages_for(self, chat_id: int) -> list[SentMessage]:
        return [m for m in self.sent if m.chat_id == chat_id]

    def texts_for(self, chat_id: int) -> list[str]:
        return [m.text for m in self.sent if m.chat_id == chat_id]

    def calls_to(self, method: str) -> list[ApiCall]:
        return [c for c in self.calls if c.method == method]

    async def wait_for_message(
        self,
        predicate: Predicate | None = None,
        timeout: float = 5.0,  # noqa: ASYNC109 (the tests' vocabulary)
        *,
        start: int = 0,
    ) -> SentMessage:
        """The first message in ``sent[start:]`` matching ``predicate``, waiting for it to arrive.

        Raises TimeoutError (listing what was sent) when none comes within ``timeout`` seconds.
        """
        found = await self.wait_for_count(1, predicate, timeout, start=start)
        return found[0]

    async def wait_for_count(
        self,
        count: int,
        predicate: Predicate | None = None,
        timeout: float = 5.0,  # noqa: ASYNC109
        *,
        start: int = 0,
    ) -> list[SentMessage]:
        """Wait until ``sent[start:]`` holds ``count`` messages matching ``predicate``."""

        def matching() -> list[SentMessage]:
            return [m for m in self.sent[start:] if predicate is None or predicate(m)]

        try:
            await self.wait_until(lambda: len(matching()) >= count, timeout)
        except TimeoutError:
            texts = [(m.chat_id, m.text[:80]) for m in self.sent[start:]]
            got = len(matching())
            raise TimeoutError(f"{got}/{count} matching messages; sent: {texts}") from None
        return matching()[:count]

    async def wait_until(
        self,
        condition: Callable[[], bool],
        timeout: float | None = 5.0,  # noqa: ASYNC109
    ) -> None:
        """Wait until ``condition()`` is true (for ever with ``timeout=None``).

        It is checked after every update or sent message, and every 20 ms (for conditions on
        other state, such as a database the bot writes after Telegram answered).
        """
        async with asyncio.timeout(timeout):
            while not condition():
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(0.02):
                        await self._changed.wait()

    # -- failure injection ----------------------------------------------------------------------

    def fail_next(
        self,
        n: int = 1,
        status: int = 429,
        retry_after: float | None = 1,
        *,
        method: str | None = "sendMessage",
        description: str | None = None,
    ) -> None:
        """Answer the next ``n`` calls of ``method`` (None: any) with an error.

        429 carries ``parameters.retry_after`` (a float is accepted, unlike real Telegram, so tests
        stay fast); other statuses ignore ``retry_after``.
        """
        if description is None:
            description = {
                429: f"Too Many Requests: retry after {retry_after}",
                400: "Bad Request: chat not found",
                403: "Forbidden: bot was blocked by the user",
            }.get(status, "Internal Server Error")
        self._failures.append(
            _Failure(n, status, retry_after if status == 429 else None, description, method)
        )

    def outage(self, seconds: float, *, mode: Literal["502", "close"] = "502") -> None:
        """Fail every call for ``seconds`` from now: 502 Bad Gateway, or connections closed."""
        self._down_mode = mode
        self._down_until = self.clock() + seconds

    def set_down(self, down: bool, *, mode: Literal["502", "close"] = "502") -> None:
        """Start (until ``set_down(False)``) or end an outage."""
        self._down_mode = mode
        self._down_until = float("inf") if down else 0.0

    @property
    def down(self) -> bool:
        return self.clock() < self._down_until

    def block_chat(
        self, chat_id: int, description: str | None = None, *, seconds: float | None = None
    ) -> None:
        """``sendMessage`` to this chat answers 403 ("bot was blocked by the user" by default).

        Until ``unblock_chat``, or for ``seconds`` from now when given.
        """
        until = float("inf") if seconds is None else self.clock() + seconds
        self._blocked[chat_id] = (description or "Forbidden: bot was blocked by the user", until)

    def unblock_chat(self, chat_id: int, *, command: str | None = None) -> None:
        """Serve the chat again; with ``command``, its user then writes it.

        (Unblocking a bot in Telegram's app shows a Restart button, which sends ``/start``.)
        """
        self._blocked.pop(chat_id, None)
        if command is not None:
            self.push_command(chat_id, command)

    def blocked(self, chat_id: int) -> bool:
        entry = self._blocked.get(chat_id)
        return entry is not None and self.clock() < entry[1]

    def fail_chat(self, chat_id: int, status: int = 500, description: str | None = None) -> None:
        """Every ``sendMessage`` to this chat answers ``status`` (500 by default) until
        ``heal_chat``: a message that can never go out, while other chats are served.
        """
        self._failing_chats[chat_id] = (status, description or "Internal Server Error")

    def heal_chat(self, chat_id: int) -> None:
        self._failing_chats.pop(chat_id, None)

    def refuse_text(
        self,
        needle: str,
        description: str = "Bad Request: message is too long",
        *,
        status: int = 400,
    ) -> None:
        """Every ``sendMessage`` whose text contains ``needle`` answers ``status`` (400) with
        ``description`` (until ``accept_text``): Telegram refusing one alert of a grouped
        message, say, or (500) a message that fails every time while others go through.
        """
        self._refused_texts[needle] = (status, description)

    def accept_text(self, needle: str) -> None:
        self._refused_texts.pop(needle, None)

    def unauthorized(self, seconds: float) -> None:
        """Every call (getUpdates, sendMessage, getMe …) answers 401 Unauthorized for ``seconds``
        from now, as Telegram does for a token it refuses; python-telegram-bot raises
        InvalidToken.
        """
        self._unauthorized_until = self.clock() + seconds

    def hang(self, seconds: float, *, method: str | None = "sendMessage") -> None:
        """Calls of ``method`` (None: any) arriving in the next ``seconds`` are answered only when
        the hang ends. They are carried out then, whether or not the client still waits: as with
        Telegram, a request received is done even if its answer never reaches the client (so a
        client that times out and resends makes a copy).
        """
        self._hangs[method] = self.clock() + seconds

    def migrate_chat(self, old_id: int, new_id: int, *, announce: bool = True) -> None:
        """The group ``old_id`` became the supergroup ``new_id``.

        From now on ``sendMessage`` to ``old_id`` answers 400 "group chat was upgraded to a
        supergroup chat" with ``parameters.migrate_to_chat_id`` (PTB raises ChatMigrated). With
        ``announce``, the two service messages Telegram sends are queued as updates: one in the
        old group with ``migrate_to_chat_id``, one in the supergroup with
        ``migrate_from_chat_id``.
        """
        self._migrated[old_id] = new_id
        if not announce:
            return
        user = {"id": 777, "is_bot": False, "first_name": "Admin"}
        old_chat = {"id": old_id, "type": "group", "title": f"group {old_id}"}
        new_chat = {"id": new_id, "type": "supergroup", "title": f"group {old_id}"}
        for chat, field, other in (
            (old_chat, "migrate_to_chat_id", new_id),
            (new_chat, "migrate_from_chat_id", old_id),
        ):
            message = {
                "message_id": next(self._message_ids),
                "date": int(time.time()),
                "chat": chat,
                "from": user,
                field: other,
            }
            self.push_update({"message": message})

    # -- the HTTP side --------------------------------------------------------------------------

    def delete_message(self, chat_id: int, message_id: int) -> None:
        """A user deleted this message: a reply to it finds nothing (it stays in ``sent``)."""
        self._deleted.add((chat_id, message_id))

    def _replied(self, chat_id: int, params: dict[str, Any]) -> SentMessage | str | None:
        """The message a sendMessage replies to, None when none, or the error description."""
        if "reply_parameters" in params:
            wanted = params["reply_parameters"]
            if not isinstance(wanted, dict):
                return "Bad Request: can't parse reply parameters JSON object"
        elif "reply_to_message_id" in params:
            wanted = {
                "message_id": params["reply_to_message_id"],
                "allow_sending_without_reply": params.get("allow_sending_without_reply"),
            }
        else:
            return None
        key = (chat_id, wanted.get("message_id"))
        found = next((m for m in self.sent if (m.chat_id, m.message_id) == key), None)
        if found is None and isinstance(key[1], int):
            found = self._received.get((chat_id, key[1]))
        if found is None or key in self._deleted:
            if wanted.get("allow_sending_without_reply") in (True, "true"):
                return None
            return "Bad Request: message to be replied not found"
        return found

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def _no_files(self, request: web.Request) -> web.Response:
        return _error(404, "Not Found")

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        if request.match_info["token"] != self.token:
            return _error(401, "Unauthorized")
        method = request.match_info["method"]
        params = await _params(request)
        if self.clock() < self._unauthorized_until:
            return self._record(method, params, _error(401, "Unauthorized"))
        if self.down:
            if self._down_mode == "close":
                assert request.transport is not None
                request.transport.close()
                raise asyncio.CancelledError  # aiohttp drops the request without answering
            return self._record(method, params, _error(502, "Bad Gateway"))
        await self._hang_over(method)
        failure = next(
            (f for f in self._failures if f.method in (None, method) and f.remaining > 0), None
        )
        if failure is not None:
            failure.remaining -= 1
            answer = _error(failure.status, failure.description, failure.retry_after)
            return self._record(method, params, answer)
        handler = getattr(self, f"_api_{method.lower()}", None)
        if handler is None:
            return self._record(method, params, _error(404, "Not Found: method not found"))
        return self._record(method, params, await handler(params))

    async def _hang_over(self, method: str) -> None:
        """Return once no hang holds ``method`` (looked at every 20 ms: a test's clock moves)."""

        def held() -> bool:
            return self.clock() < max(self._hangs.get(method, 0.0), self._hangs.get(None, 0.0))

        if not held():
            return
        self.hanging += 1
        try:
            await self.wait_until(lambda: not held(), timeout=None)
        finally:
            self.hanging -= 1

    def _record(self, method: str, params: dict[str, Any], answer: web.Response) -> web.Response:
        self.calls.append(ApiCall(method, params, answer.status, time.monotonic()))
        return answer

    async def _api_getme(self, params: dict[str, Any]) -> web.Response:
        return _ok(BOT_USER)

    async def _api_getupdates(self, params: dict[str, Any]) -> web.Response:
        offset = int(params.get("offset") or 0)
        if offset:
            self._updates = [u for u in self._updates if u["update_id"] >= offset]
        limit = int(params.get("limit") or 100)
        wait = min(float(params.get("timeout") or 0), self.max_poll)
        if not self._updates and wait > 0:
            self.polls_waiting += 1
            self._notify()
            try:
                async with asyncio.timeout(wait):
                    while not self._updates:
                        await self._changed.wait()
            except TimeoutError:
                pass
            finally:
                self.polls_waiting -= 1
        return _ok(self._updates[:limit])

    async def _api_sendmessage(self, params: dict[str, Any]) -> web.Response:
        chat_id, text = params.get("chat_id"), params.get("text")
        if not isinstance(chat_id, int):
            return _error(400, "Bad Request: chat_id is empty")
        if chat_id in self._migrated:
            upgraded = "Bad Request: group chat was upgraded to a supergroup chat"
            return _error(400, upgraded, migrate_to=self._migrated[chat_id])
        if self.blocked(chat_id):
            return _error(403, self._blocked[chat_id][0])
        if chat_id in self._failing_chats:
            return _error(*self._failing_chats[chat_id])
        if not text:
            return _error(400, "Bad Request: message text is empty")
        refused = next((r for n, r in self._refused_texts.items() if n in str(text)), None)
        if refused is not None:
            return _error(*refused)
        parse_mode = params.get("parse_mode")
        plain = text
        if isinstance(parse_mode, str) and parse_mode.upper() == "HTML":
            try:
                plain = parse_html(text)
            except ParseError as exc:
                return _error(400, f"Bad Request: {exc}")
        if utf16_len(plain) > MAX_TEXT:
            return _error(400, "Bad Request: message is too long")
        replied = self._replied(chat_id, params)
        if isinstance(replied, str):
            return _error(400, replied)
        reply_to = replied.message_id if replied is not None else None
        message_id = next(self._message_ids)
        markup = params.get("reply_markup")
        message = SentMessage(
            chat_id,
            text,
            parse_mode,
            message_id,
            time.monotonic(),
            reply_to,
            reply_markup=markup if isinstance(markup, dict) else None,
            silent=_true(params.get("disable_notification")),
        )
        self.sent.append(message)
        self._notify()
        answer = _message_json(message, plain)
        if replied is not None:
            answer["reply_to_message"] = _message_json(replied, replied.text)
        return _ok(answer)

    async def _api_sendphoto(self, params: dict[str, Any]) -> web.Response:
        chat_id, photo = params.get("chat_id"), params.get("photo")
        caption = str(params.get("caption") or "")
        if not isinstance(chat_id, int):
            return _error(400, "Bad Request: chat_id is empty")
        if self.blocked(chat_id):
            return _error(403, self._blocked[chat_id][0])
        if chat_id in self._failing_chats:
            return _error(*self._failing_chats[chat_id])
        if not isinstance(photo, bytes) or not photo:
            return _error(400, "Bad Request: there is no photo in the request")
        if len(photo) > MAX_PHOTO:
            return _error(400, "Bad Request: file is too big")
        if not photo.startswith((b"\x89PNG\r\n\x1a\n", b"\xff\xd8")):
            return _error(400, "Bad Request: IMAGE_PROCESS_FAILED")
        parse_mode = params.get("parse_mode")
        plain = caption
        if caption and isinstance(parse_mode, str) and parse_mode.upper() == "HTML":
            try:
                plain = parse_html(caption)
            except ParseError as exc:
                return _error(400, f"Bad Request: {exc}")
        if utf16_len(plain) > MAX_CAPTION:
            return _error(400, "Bad Request: message caption is too long")
        message = SentMessage(
            chat_id, caption, parse_mode, next(self._message_ids), time.monotonic(), photo=photo
        )
        self.sent.append(message)
        self._notify()
        size = {"file_id": f"photo-{message.message_id}", "file_unique_id": "u", "width": 1,
                "height": 1}  # fmt: skip
        chat = {"id": chat_id, "type": "private" if chat_id > 0 else "group"}
        result = {"message_id": message.message_id, "date": int(time.time()), "chat": chat,
                  "from": BOT_USER, "photo": [size], "caption": plain}  # fmt: skip
        return _ok(result)

    async def _api_answercallbackquery(self, params: dict[str, Any]) -> web.Response:
        query_id = params.get("callback_query_id")
        if not isinstance(query_id, str) or not query_id:
            return _error(400, "Bad Request: query is too old and response timeout expired")
        text = params.get("text")
        if text is not None and utf16_len(str(text)) > 200:
            return _error(400, "Bad Request: MESSAGE_TOO_LONG")
        self.callback_answers.append(params)
        self._notify()
        return _ok(True)

    async def _api_setmycommands(self, params: dict[str, Any]) -> web.Response:
        commands = params.get("commands")
        if not isinstance(commands, list):
            return _error(400, "Bad Request: commands must be an array")
        self.my_commands = commands
        return _ok(True)

    async def _api_getmycommands(self, params: dict[str, Any]) -> web.Response:
        return _ok(self.my_commands)

    async def _api_deletewebhook(self, params: dict[str, Any]) -> web.Response:
        return _ok(True)

    async def _api_getwebhookinfo(self, params: dict[str, Any]) -> web.Response:
        return _ok({"url": "", "has_custom_certificate": False, "pending_update_count": 0})

    async def _api_close(self, params: dict[str, Any]) -> web.Response:
        return _ok(True)

    async def _api_logout(self, params: dict[str, Any]) -> web.Response:
        return _ok(True)


def _true(value: object) -> bool:
    """A boolean parameter, sent as JSON true or as the form text "true"."""
    return value is True or (isinstance(value, str) and value.lower() == "true")


def _message_json(message: SentMessage, text: str) -> dict[str, Any]:
    chat: dict[str, Any] = {"id": message.chat_id}
    chat["type"] = "private" if message.chat_id > 0 else "group"
    if message.chat_id < 0:
        chat["title"] = f"group {message.chat_id}"
    return {
        "message_id": message.message_id,
        "date": int(time.time()),
        "chat": chat,
        "from": BOT_USER,
        "text": text,
    }


async def _params(request: web.Request) -> dict[str, Any]:
    """Parameters from the query string and a form, multipart or JSON body, typed like Telegram."""
    raw: dict[str, Any] = dict(request.query)
    files: dict[str, bytes] = {}  # multipart uploads (sendPhoto)
    if request.content_type == "application/json":
        body = await request.json()
        if isinstance(body, dict):
            return {**raw, **body}
    elif request.can_read_body:
        form = await request.post()
        raw.update({k: v for k, v in form.items() if isinstance(v, str)})
        files = {k: v.file.read() for k, v in form.items() if isinstance(v, web.FileField)}
    params: dict[str, Any] = {}
    for key, value in raw.items():
        if key in _INT_PARAMS:
            with contextlib.suppress(ValueError):  # e.g. chat_id "@channel": left as text
                value = int(value)
        elif key in _JSON_PARAMS:
            with contextlib.suppress(ValueError):
                value = json.loads(value)
        params[key] = value
    return {**params, **files}  # an uploaded file's bytes under its field's name


def _ok(result: Any) -> web.Response:
    return web.json_response({"ok": True, "result": result})


def _error(
    status: int,
    description: str,
    retry_after: float | None = None,
    *,
    migrate_to: int | None = None,
) -> web.Response:
    body: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
    parameters: dict[str, Any] = {}
    if retry_after is not None:
        parameters["retry_after"] = retry_after
    if migrate_to is not None:
        parameters["migrate_to_chat_id"] = migrate_to
    if parameters:
        body["parameters"] = parameters
    return web.json_response(body, status=status)


__all__ = [
    "BOT_USER",
    "MAX_TEXT",
    "TOKEN",
    "ApiCall",
    "FakeBotApi",
    "ParseError",
    "SentMessage",
    "parse_html",
    "utf16_len",
]
