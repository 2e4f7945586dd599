"""Shared fixtures: the federal law pack, loaded once, and a fixed date."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from sharewise.policy.load import load_law
from sharewise.policy.model import LawPack

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
TODAY = dt.date(2026, 11, 25)


@pytest.fixture(scope="session")
def law() -> LawPack:
    return load_law()


@pytest.fixture(scope="session")
def today() -> dt.date:
    return TODAY
