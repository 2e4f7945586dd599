"""How to call the data routes in the authorization matrix (merged into CASES by test_authorization)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tests.api.conftest import World

Call = tuple[str, dict[str, Any] | None]

CASES: dict[tuple[str, str], Callable[[World, str], Call]] = {}
