"""Notifiers: alerts from the store's outbox to chats, and the chat commands.

format.py (alert HTML, 4096 packing), replies.py (command replies), transport.py (the Transport
protocol and its errors), sender.py (the delivery loop), telegram_bot.py (python-telegram-bot
Application and TelegramTransport), commands.py (handlers), console.py (terminal output),
voice.py (how all of them speak: the catalogue of bot/messages, stock names, KST dates, the
session, the demo's tag).
"""
