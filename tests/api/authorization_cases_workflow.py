"""How to call the workflow routes in the authorization matrix (merged into CASES by test_authorization)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tests.api.conftest import World
from tests.api.test_routes_workflow import WORKFLOW_CASES

Call = tuple[str, dict[str, Any] | None]

CASES: dict[tuple[str, str], Callable[[World, str], Call]] = dict(WORKFLOW_CASES)
