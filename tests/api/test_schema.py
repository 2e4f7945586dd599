"""Schemathesis against the published OpenAPI schema: generated calls never cause a server error."""

from __future__ import annotations

from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from sharewise.api.app import create_app
from sharewise.policy.load import load_law
from sharewise.services import accounts, workflow
from sharewise.wiring import Settings, control_for
from tests.api.conftest import ROLES
from tests.conftest import TODAY


def _app_and_token(tmp: Path) -> tuple[object, str]:
    s = Settings(data_dir=tmp / "data", key_dir=tmp / "keys", cache_dir=None)
    control = control_for(s)
    workflow.add_agency(control, "agency-a", "Agency A", None)
    workflow.add_user(control, "everyone", "Every Role", "agency-a", set(ROLES), None)
    token = accounts.issue_token(control, "everyone", set(ROLES), "schemathesis").secret
    return create_app(s, control, load_law(), today=lambda: TODAY, session_secret="s"), token


import tempfile  # noqa: E402

APP, TOKEN = _app_and_token(Path(tempfile.mkdtemp(prefix="sharewise-schemathesis-")))
schema = schemathesis.openapi.from_asgi("/api/v1/openapi.json", APP)


@schema.parametrize()
@settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_generated_call_causes_a_server_error(case: schemathesis.Case) -> None:
    case.headers = {**(case.headers or {}), "Authorization": f"Bearer {TOKEN}"}
    response = case.call()
    case.validate_response(response, checks=(not_a_server_error,))


@pytest.fixture(autouse=True)
def _cheap_hashing(cheap_hashing: None) -> None:
    return None
