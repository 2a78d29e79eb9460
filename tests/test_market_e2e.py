"""End to end with the simulator serving the master files: names through the real download path.

The App runs in-process, live against the KIS simulator (``market.master_url`` at its REST
base), with the loopback Bot API; a chat sends ``/watch 삼성전자`` and the feed subscribes 005930.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from botapi import FakeBotApi

from bot.app import App
from bot.config import load_settings
from bot.kis.simulator import Simulator

CHAT, ADMIN = 501, 502
APPKEY = "MARKET-E2E-APPKEY"
RULES = "rules:\n  - {id: any-buy, type: threshold, field: SHNU_CNQN, above: 0}\n"


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[tuple[Simulator, FakeBotApi, Path]]:
    async with Simulator(rate=10, seed=3) as sim, FakeBotApi() as api:
        yield sim, api, tmp_path


def write_config(tmp_path: Path, sim: Simulator, api: FakeBotApi, appkey: str = APPKEY) -> Path:
    (tmp_path / "rules.yaml").write_text(RULES, encoding="utf-8")
    config = tmp_path / "config.yaml"
    config.write_text(
        f"""\
kis:
  rest_url: {sim.rest_url}
  ws_url: {sim.ws_url}
  accounts: [{{name: main, appkey: {appkey}, appsecret: SECRET}}]
  subscribe_interval: 0.01
  reconnect_min: 0.2
  reconnect_max: 1
market:
  master_url: {sim.master_url}
telegram:
  token: "{api.token}"
  base_url: {api.base_url}
  allowed_chat_ids: [{CHAT}]
  admin_chat_ids: [{ADMIN}]
  group_window: 0.2
storage:
  url: sqlite:///{tmp_path / "bot.db"}
rules:
  path: {tmp_path / "rules.yaml"}
record_dir: {tmp_path / "recordings"}
watch: ["005930"]
""",
        encoding="utf-8",
    )
    return config


async def test_watch_by_name_subscribes_the_code_and_the_master_is_cached(
    world: tuple[Simulator, FakeBotApi, Path],
) -> None:
    sim, api, tmp_path = world
    app = App(load_settings(write_config(tmp_path, sim, api), env={}))
    await app.start()
    try:
        await asyncio.wait_for(app.master.loaded.wait(), 10)
        assert app.master.directory.label("005930") == "삼성전자(005930)"
        api.push_command(CHAT, "/watch 삼성전자")
        reply = await api.wait_for_message(lambda m: m.chat_id == CHAT, timeout=15)
        assert "005930" in reply.text
        assert any(key == "005930" for subs in sim.subscriptions.values() for _, key in subs)
        api.push_command(CHAT, "/watch SK하이닉스")  # not in the config: first ticks from now on
        alert = await api.wait_for_message(
            lambda m: m.chat_id == CHAT and "any-buy" in m.text and "000660" in m.text, timeout=15
        )
        # The header and the rule's default message (the engine's {stock}) both name it.
        assert alert.text.count("SK하이닉스(000660)") >= 2, alert.text
        api.push_command(CHAT, "/find 삼성")
        found = await api.wait_for_message(
            lambda m: m.chat_id == CHAT and "검색 결과" in m.text, timeout=10
        )
        assert "삼성전자(005930)" in found.text and "삼성바이오로직스(207940)" in found.text
        api.push_command(CHAT, "/watch 999999")
        refused = await api.wait_for_message(
            lambda m: m.chat_id == CHAT and "999999" in m.text, timeout=10
        )
        assert "상장 종목이 아닙니다" in refused.text
        api.push_command(CHAT, "/status")
        status = await api.wait_for_message(
            lambda m: m.chat_id == CHAT and "pgmbot 상태" in m.text, timeout=10
        )
        assert ("진행 중" in status.text) or ("장 마감" in status.text)
    finally:
        await app.stop()
    assert (tmp_path / "recordings" / "master" / "kospi_code.mst.zip").is_file()


async def test_a_refused_appkey_is_told_to_the_admins_once_with_kis_s_message(
    world: tuple[Simulator, FakeBotApi, Path],
) -> None:
    sim, api, tmp_path = world
    sim.accepted_appkeys = {"SOME-OTHER-APPKEY"}
    app = App(load_settings(write_config(tmp_path, sim, api), env={}))
    await app.start()
    try:
        told = await api.wait_for_message(
            lambda m: m.chat_id == ADMIN and "승인키" in m.text, timeout=15
        )
        assert "유효하지 않은 AppKey입니다." in told.text and APPKEY not in told.text
        await api.wait_until(lambda: len(sim.rest_requests) >= 3, timeout=15)
        assert sum("승인키" in text for text in api.texts_for(ADMIN)) == 1
    finally:
        await app.stop()
