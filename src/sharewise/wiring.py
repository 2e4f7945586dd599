"""The composition root: builds the law pack and the clock from settings."""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Protocol

from sharewise.policy.cache import load_law_cached
from sharewise.policy.model import LawPack


class Clock(Protocol):
    """Where today's date comes from."""

    def today(self) -> dt.date: ...


class SystemClock:
    """Today's date from the system."""

    def today(self) -> dt.date:
        return dt.date.today()


@dataclass(frozen=True)
class FixedClock:
    """A clock stopped on one date (tests, reproducible runs)."""

    date: dt.date

    def today(self) -> dt.date:
        return self.date


@dataclass(frozen=True)
class Settings:
    """Configuration read from the environment (SHAREWISE_*)."""

    state_pack: Path | None = None
    cache_dir: Path | None = None  # compiled law-pack cache; None disables it

    @classmethod
    def from_env(cls) -> Settings:
        state = os.environ.get("SHAREWISE_STATE_PACK")
        return cls(state_pack=Path(state) if state else None, cache_dir=default_cache_dir())


def default_cache_dir() -> Path | None:
    """SHAREWISE_CACHE_DIR, or the user's cache directory; 'off' disables the cache."""
    configured = os.environ.get("SHAREWISE_CACHE_DIR")
    if configured:
        return None if configured.lower() == "off" else Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "sharewise"


@lru_cache(maxsize=8)
def _cached_law(state_pack: Path | None, cache_dir: Path | None) -> LawPack:
    return load_law_cached(state_pack, cache_dir)


def law_for(settings: Settings) -> LawPack:
    """The law pack the settings select (loaded once per process)."""
    return _cached_law(settings.state_pack, settings.cache_dir)
