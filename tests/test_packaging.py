"""The Dockerfile, compose.yaml and the systemd units: checked with the tools this machine has
(systemd-analyze, hadolint), and their command lines run for real (the unit's ExecStart, the
health checks), with /opt/pgmbot replaced by this interpreter's environment."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
UNITS = ("pgmbot.service", "pgmbot-health.service", "pgmbot-health.timer")


def instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of a Dockerfile, continuation lines joined, comments dropped."""
    joined: list[str] = []
    pending = ""
    for line in path.read_text(encoding="utf-8").splitlines():
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        joined.append(pending + stripped)
        pending = ""
    return [(text.split(None, 1)[0].upper(), text.split(None, 1)[1]) for text in joined]


def unit_value(name: str, key: str) -> str:
    for line in (DEPLOY / name).read_text(encoding="utf-8").splitlines():
        if line.startswith(f"{key}="):
            return line.split("=", 1)[1]
    raise AssertionError(f"{name} has no {key}=")


def here(command: str) -> list[str]:
    """A unit's command line with /opt/pgmbot (the install prefix) replaced by this venv."""
    return [word.replace("/opt/pgmbot", sys.prefix) for word in shlex.split(command)]


def healthcheck() -> list[str]:
    (args,) = [a for name, a in instructions(ROOT / "Dockerfile") if name == "HEALTHCHECK"]
    command = json.loads(args.split(" CMD ", 1)[1])
    assert command[0] == "python", "the image's python, no curl needed"
    return [sys.executable, *command[1:]]


def test_the_dockerfile_has_a_slim_base_a_user_volumes_and_a_health_check() -> None:
    steps = instructions(ROOT / "Dockerfile")
    bases = [args.split()[0] for name, args in steps if name == "FROM"]
    assert bases and all(base.startswith("python:") and base.endswith("-slim") for base in bases)
    users = [args for name, args in steps if name == "USER"]
    assert users and users[-1] not in ("root", "0")
    (volumes,) = [json.loads(args) for name, args in steps if name == "VOLUME"]
    assert volumes == ["/var/lib/pgmbot/db", "/var/lib/pgmbot/recordings", "/etc/pgmbot/rules"]
    assert healthcheck()[1:] == ["-m", "bot.health", "http://127.0.0.1:9464/healthz"]
    for name, args in steps:
        if name == "COPY" and not args.startswith("--from"):
            for source in args.split()[:-1]:
                assert (ROOT / source).exists(), f"COPY {source}: not in the repository"
    config = yaml.safe_load((DEPLOY / "config.container.yaml").read_text(encoding="utf-8"))
    assert config["metrics"]["listen"] == "127.0.0.1:9464"  # where the HEALTHCHECK asks
    assert config["record_dir"] == volumes[1] and volumes[0] in config["storage"]["url"]


@pytest.mark.skipif(shutil.which("hadolint") is None, reason="hadolint is not installed")
def test_hadolint_passes() -> None:
    done = subprocess.run(["hadolint", str(ROOT / "Dockerfile")], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_compose_runs_the_image_with_its_volumes_and_postgres_as_a_profile() -> None:
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text(encoding="utf-8"))
    bot, postgres = compose["services"]["pgmbot"], compose["services"]["postgres"]
    assert bot["build"] == "." and "profiles" not in bot
    assert postgres["profiles"] == ["postgres"]
    named = {volume.split(":")[0] for volume in bot["volumes"] + postgres["volumes"]}
    assert {"pgmbot-db", "pgmbot-recordings", "pgmbot-postgres"} <= named
    assert set(compose["volumes"]) == {"pgmbot-db", "pgmbot-recordings", "pgmbot-postgres"}
    mounts = {volume.split(":")[1] for volume in bot["volumes"]}
    assert {"/etc/pgmbot/config.yaml", "/etc/pgmbot/rules", "/var/lib/pgmbot/db"} <= mounts


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze here")
def test_the_units_pass_systemd_analyze_verify(tmp_path: Path) -> None:
    for name in UNITS:
        text = (DEPLOY / name).read_text(encoding="utf-8")
        (tmp_path / name).write_text(text.replace("/opt/pgmbot", sys.prefix), encoding="utf-8")
    done = subprocess.run(
        ["systemd-analyze", "verify", *(str(tmp_path / name) for name in UNITS)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0 and not done.stderr.strip(), done.stderr


def test_the_units_command_lines_run_the_bot_and_check_its_health(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = tmp_path / "config.yaml"
    config.write_text(
        f"rules: {{path: {ROOT / 'rules' / 'starter.yaml'}}}\n"
        f"storage: {{url: 'sqlite:///{tmp_path / 'pgmbot.db'}'}}\n"
        f"metrics: {{listen: '127.0.0.1:{port}'}}\n",
        encoding="utf-8",
    )
    start = here(unit_value("pgmbot.service", "ExecStart"))
    assert start[-2:] == ["--config", "/etc/pgmbot/config.yaml"]
    start[-1] = str(config)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PGMBOT_")}
    url = f"http://127.0.0.1:{port}/healthz"
    docker_check = [word.replace("http://127.0.0.1:9464/healthz", url) for word in healthcheck()]
    timer_check = here(unit_value("pgmbot-health.service", "ExecStart"))
    timer_check = [word.replace("http://127.0.0.1:9464/healthz", url) for word in timer_check]
    bot = subprocess.Popen(  # the demo: no credentials in this config
        start, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            done = subprocess.run(docker_check, capture_output=True, text=True, timeout=15)
            if done.stdout == "ok active\n" or time.monotonic() > deadline:
                break
            time.sleep(0.3)
        assert (done.returncode, done.stdout) == (0, "ok active\n"), done.stdout + done.stderr
        done = subprocess.run(timer_check, capture_output=True, text=True, timeout=15)
        assert (done.returncode, done.stdout) == (0, "ok active\n")
        bot.send_signal(signal.SIGTERM)  # systemd's KillSignal
        stop_timeout = float(unit_value("pgmbot.service", "TimeoutStopSec").rstrip("s"))
        assert bot.wait(timeout=stop_timeout) == 0
    finally:
        if bot.poll() is None:
            bot.kill()
            bot.wait()
        assert bot.stderr is not None
        bot.stderr.close()
    done = subprocess.run(docker_check, capture_output=True, text=True, timeout=15)
    assert done.returncode == 1 and done.stdout.startswith(f"no answer from {url}")
