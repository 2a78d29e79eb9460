"""``digest:`` in config.yaml: when the daily digest goes out (light: bot.config imports it)."""

from __future__ import annotations

from datetime import time as TimeOfDay  # the settings have a field named time

from pydantic import BaseModel, ConfigDict, field_validator


def _hhmm(text: str) -> str:
    try:
        return TimeOfDay.fromisoformat(text.strip()).strftime("%H:%M")
    except ValueError:
        raise ValueError(f"{text!r} is not a time of day like 15:45") from None


class DigestSettings(BaseModel):
    """``digest:`` in config.yaml."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    time: str = "15:45"  # KST, trading days: after the regular session's close
    after: str | None = None  # KST, e.g. "20:05": a second digest after the NXT after-market
    picture: bool = True  # with one picture of the top stocks' net-buy curves

    @field_validator("time", "after")
    @classmethod
    def _time_of_day(cls, value: str | None) -> str | None:
        return None if value is None else _hhmm(value)

    def slots(self) -> list[tuple[str, TimeOfDay]]:
        found = [("close", TimeOfDay.fromisoformat(self.time))]
        if self.after is not None:
            found.append(("after", TimeOfDay.fromisoformat(self.after)))
        return found
