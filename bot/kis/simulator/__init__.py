"""A KIS-compatible exchange on loopback: approval REST + real-time WebSocket (`pgmbot simulate`).

It speaks KIS's protocol closely enough that the bot's feed and KIS's own sample client run
against it unchanged: approval keys, subscribe/unsubscribe acks with ``output.iv``/``key``, the
error codes the feed handles, PINGPONG when idle, and program-trading data frames, generated
(``market``) or replayed from a recording, plus faults on demand for tests. See docs/SIMULATOR.md.

  server.py    Simulator: sessions, subscriptions, data loops, fault injection, introspection
  protocol.py  request checks, control messages and frames (pure)
  rest.py      approval keys over HTTP (aiohttp)
  market.py    the seeded model behind generated figures (pure)
  replay.py    recorded frames, paced
  command.py   `pgmbot simulate`

The modules import each other by their full names, never this package: importing the package
runs this file, which imports them.
"""

from bot.kis.simulator.command import simulate_command
from bot.kis.simulator.rest import RestRequest
from bot.kis.simulator.server import Client, Received, Simulator

__all__ = ["Client", "Received", "RestRequest", "Simulator", "simulate_command"]
