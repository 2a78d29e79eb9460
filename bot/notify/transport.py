"""What the sender needs from a chat service: send one HTML message (maybe as a reply to an
earlier one), telling its message id, or say why not.

The sender knows nothing of Telegram; a transport turns its service's failures into these errors.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Protocol

log = logging.getLogger(__name__)


class DeliveryError(Exception):
    """A message that was not delivered; ``reason`` is short, loggable and free of secrets."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class RetryLater(DeliveryError):
    """Flood control: wait ``seconds`` before sending to this chat (to anyone, if ``everyone``)."""

    def __init__(self, seconds: float, *, everyone: bool = False) -> None:
        super().__init__(f"flood control: retry in {seconds:g} s")
        self.seconds = seconds
        self.everyone = everyone


class ChatBlocked(DeliveryError):
    """The chat cannot receive messages any more (bot blocked, chat not found, kicked)."""


class ChatMoved(ChatBlocked):
    """The group became a supergroup: this chat id is gone, ``new_chat_id`` receives instead.

    A ChatBlocked, so a sender that does not know it still stops sending to the old id; one
    that does resends the message to ``new_chat_id``.
    """

    def __init__(self, new_chat_id: int) -> None:
        super().__init__(f"chat migrated to {new_chat_id}")
        self.new_chat_id = new_chat_id


class Rejected(DeliveryError):
    """The service refused this message itself (not the chat): sending it again cannot help."""


class TransientError(DeliveryError):
    """A network error or server error: try again later."""


class Uncertain(TransientError):
    """No answer in time: the message may have been delivered, or not. Trying again may make a
    copy, so the sender bounds how often it does."""


@dataclass(frozen=True, slots=True)
class Button:
    """An inline button under a message: its label, and the callback data it sends back (at
    most 64 bytes: Telegram's limit; bot/notify/buttons.py makes and checks them)."""

    text: str
    data: str


@dataclass(frozen=True, slots=True)
class Extras:
    """How a message goes out besides its text: without sound (``silent``: Telegram's
    ``disable_notification``), with a row of ``buttons``. A transport without either ignores
    them (the console)."""

    silent: bool = False
    buttons: tuple[Button, ...] = ()


PLAIN_MESSAGE = Extras()


class Transport(Protocol):
    """Sends one message (HTML, at most 4096 characters) to one chat."""

    async def send(
        self,
        chat_id: int,
        html: str,
        *,
        reply_to: int | None = None,
        extras: Extras = PLAIN_MESSAGE,
    ) -> int | None:
        """Return only once the message was accepted, with its id in the chat (None: the
        service has none); raise a DeliveryError otherwise. ``reply_to``: the id of an earlier
        message of the chat this one answers (sent anyway, as a plain message, if that one is
        gone)."""
        ...

    async def alive(self) -> bool:
        """Whether the service answers at all now (a cheap call): tells a message that keeps
        failing from an outage."""
        ...


class Tee:
    """Sends through ``primary`` and, once it confirmed, echoes to the others (best effort).

    For the demo: alerts go to Telegram and are shown on the console as they are delivered.
    """

    def __init__(self, primary: Transport, *echoes: Transport) -> None:
        self._primary = primary
        self._echoes = echoes

    async def alive(self) -> bool:
        return await self._primary.alive()

    async def send(
        self,
        chat_id: int,
        html: str,
        *,
        reply_to: int | None = None,
        extras: Extras = PLAIN_MESSAGE,
    ) -> int | None:
        message_id = await self._primary.send(chat_id, html, reply_to=reply_to, extras=extras)
        for echo in self._echoes:
            try:
                await echo.send(chat_id, html, reply_to=reply_to)
            except Exception as exc:  # an echo never fails the delivery
                log.warning("echo failed chat=%s error=%r", chat_id, str(exc))
        return message_id
