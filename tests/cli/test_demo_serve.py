"""`sharewise demo --serve`: the chain's workspace opens in the web application with accounts for its people."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from sharewise.cli.main import app
from sharewise.cli.serve import DEMO_PASSWORD
from sharewise.services import accounts, demo_chain
from sharewise.wiring import control_for

runner = CliRunner()


def test_demo_serve_opens_the_chain_workspace_with_an_account_for_everyone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import uvicorn

    served: dict[str, Any] = {}
    monkeypatch.setattr(uvicorn, "run", lambda application, **options: served.update(app=application, **options))
    result = runner.invoke(app, ["demo", "--workdir", str(tmp_path), "--people", "50", "--serve", "--port", "8765"])
    assert result.exit_code == 0, result.output
    assert served["port"] == 8765 and "every password is" in result.output
    assert "tara" in result.output and "TOTP secret" in result.output  # privileged people enrol in MFA
    control = control_for(demo_chain.workspace_settings(tmp_path))
    user = accounts.authenticate(control, "tara", DEMO_PASSWORD, None)
    assert user.agency_id == "tanf"
    client = TestClient(served["app"], base_url="https://testserver")
    assert client.get("/sign-in").status_code == 200
    assert client.get("/api/v1/openapi.json").status_code == 200


def test_demo_serve_needs_the_chain() -> None:
    result = runner.invoke(app, ["demo", "--no-chain", "--serve"])
    assert result.exit_code == 2 and "needs the chain" in result.output


def test_serve_with_workers_hands_its_settings_and_one_session_secret_to_every_worker(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    import uvicorn

    saved = dict(os.environ)
    served: dict[str, Any] = {}
    monkeypatch.setattr(uvicorn, "run", lambda application, **options: served.update(app=application, **options))
    monkeypatch.setenv("SHAREWISE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("SHAREWISE_KEY_DIR", str(tmp_path / "keys"))
    try:
        result = runner.invoke(app, ["serve", "--workers", "2", "--port", "8766"])
        assert result.exit_code == 0, result.output
        assert served["app"] == "sharewise.api.app:create_app" and served["factory"] and served["workers"] == 2
        assert os.environ["SHAREWISE_DATA_DIR"] == str(tmp_path / "data")
        assert len(os.environ["SHAREWISE_SESSION_SECRET"]) >= 32  # the same secret in every worker
    finally:
        os.environ.clear()
        os.environ.update(saved)


@pytest.mark.parametrize(
    ("name", "value"), [("SHAREWISE_SHARE_WORKERS", "0"), ("SHAREWISE_SHARE_JOB_RETENTION_DAYS", "a week")]
)
def test_serve_refuses_a_bad_share_runner_setting_before_it_listens(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    import uvicorn

    served: dict[str, Any] = {}
    monkeypatch.setattr(uvicorn, "run", lambda application, **options: served.update(app=application, **options))
    monkeypatch.setenv("SHAREWISE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("SHAREWISE_KEY_DIR", str(tmp_path / "keys"))
    monkeypatch.setenv(name, value)
    result = runner.invoke(app, ["serve", "--port", "8767"])
    assert result.exit_code != 0 and not served
    assert name in result.output
