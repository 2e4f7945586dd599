"""sharewise: decide, agree, share and account for human-services record sharing."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from sharewise.domain.determination import Determination
from sharewise.domain.errors import (
    InvalidLawPackError,
    InvalidRequestError,
    NotFoundError,
    SharewiseError,
)
from sharewise.domain.outcome import Outcome
from sharewise.domain.request import Request
from sharewise.policy.model import LawPack

__all__ = [
    "Determination",
    "InvalidLawPackError",
    "InvalidRequestError",
    "LawPack",
    "NotFoundError",
    "Outcome",
    "Request",
    "SharewiseError",
    "evaluate",
    "load_law",
]


def load_law(state_pack: Path | str | None = None) -> LawPack:
    """Load the federal law pack, layered with a state pack directory if given."""
    from sharewise.wiring import Settings, default_cache_dir, law_for

    return law_for(Settings(state_pack=Path(state_pack) if state_pack else None, cache_dir=default_cache_dir()))


def evaluate(
    request: Request | dict[str, Any],
    *,
    as_of: dt.date | None = None,
    law: LawPack | None = None,
    today: dt.date | None = None,
) -> Determination:
    """Determine a sharing request (a Request or a contract dict) on the federal pack by default."""
    from sharewise.services.determinations import determine

    return determine(law or load_law(), request, today or dt.date.today(), as_of=as_of)
