"""The composition root: builds the law pack and the clock from settings."""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from sharewise.policy.cache import load_law_cached
from sharewise.policy.model import LawPack

if TYPE_CHECKING:
    from sharewise.audit.sink import StoreAuditSink
    from sharewise.audit.trail import AuditTrail
    from sharewise.store.database import Store


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


class UtcClock:
    """The current time in UTC, for audit records."""

    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC)


def _xdg(variable: str, fallback: str) -> Path:
    return Path(os.environ.get(variable) or str(Path.home() / fallback))


@dataclass(frozen=True)
class Settings:
    """Configuration read from the environment (SHAREWISE_*)."""

    state_pack: Path | None = None
    cache_dir: Path | None = None  # compiled law-pack cache; None disables it
    database_url: str | None = None  # None: SQLite in data_dir
    data_dir: Path | None = None
    key_dir: Path | None = None  # keys live apart from the data they protect

    @classmethod
    def from_env(cls) -> Settings:
        state = os.environ.get("SHAREWISE_STATE_PACK")
        data_dir = Path(os.environ.get("SHAREWISE_DATA_DIR") or _xdg("XDG_DATA_HOME", ".local/share") / "sharewise")
        key_dir = Path(os.environ.get("SHAREWISE_KEY_DIR") or _xdg("XDG_CONFIG_HOME", ".config") / "sharewise" / "keys")
        return cls(
            state_pack=Path(state) if state else None,
            cache_dir=default_cache_dir(),
            database_url=os.environ.get("SHAREWISE_DATABASE_URL") or None,
            data_dir=data_dir,
            key_dir=key_dir,
        )

    @property
    def store_url(self) -> str:
        if self.database_url:
            return self.database_url
        base = self.data_dir or Path.home() / ".local" / "share" / "sharewise"
        return f"sqlite:///{base / 'sharewise.db'}"

    @property
    def keys(self) -> Path:
        return self.key_dir or Path.home() / ".config" / "sharewise" / "keys"


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


@dataclass
class Control:
    """The control plane's infrastructure: the store, the audit trail, its sink and the clock."""

    store: Store
    trail: AuditTrail
    sink: StoreAuditSink
    settings: Settings


def control_for(settings: Settings, clock: UtcClock | None = None) -> Control:
    """Open the store (migrated to the newest schema) and the audit trail with its signing key."""
    from sharewise.audit.signing import load_or_create_signer
    from sharewise.audit.sink import StoreAuditSink
    from sharewise.audit.trail import AuditTrail
    from sharewise.store.database import open_store

    store = open_store(settings.store_url)
    signer = load_or_create_signer(settings.keys / "audit-ed25519.pem")
    trail = AuditTrail((clock or UtcClock()).now, signer)
    return Control(store, trail, StoreAuditSink(store, trail), settings)
