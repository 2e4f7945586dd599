"""A sharewise app on a fresh SQLite store: two agencies, one user per role in each, a token per user."""

from __future__ import annotations

import contextlib
import itertools
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from argon2 import PasswordHasher
from fastapi.testclient import TestClient

from sharewise.api.app import create_app
from sharewise.policy.model import LawPack
from sharewise.services import accounts, workflow
from sharewise.wiring import Control, Settings, control_for
from tests.conftest import REPO, TODAY, postgres_database

ROLES = (
    "requester",
    "program_reviewer",
    "legal_reviewer",
    "security_officer",
    "approver",
    "data_steward",
    "auditor",
    "administrator",
)
AGENCIES = ("agency-a", "agency-b")
PERMITTED = {
    "source": {"program": "snap"},
    "recipient": {"kind": "state_or_local_agency", "program": "tanf"},
    "purpose": "eligibility_determination",
    "data": ["identity", "contact", "eligibility_and_benefits"],
    "form": "identified",
}


def _example(path: str) -> Any:
    # YAML dates become ISO strings, as a JSON client sends them.
    return json.loads(json.dumps(yaml.safe_load((REPO / path).read_text(encoding="utf-8")), default=str))


CONSENT = _example("examples/consents/part2-universal-release.yaml")
PARTIES = _example("examples/parties/lakeview-snap-tanf.yaml")
COUNTER = itertools.count()


@pytest.fixture(scope="session", autouse=True)
def cheap_hashing() -> None:
    # argon2id still, with parameters cheap enough for a test suite.
    accounts.use_hasher(PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))


def user_id(role: str, agency: str) -> str:
    return f"{role}-{agency[-1]}"


@dataclass
class World:
    """The app, its control plane and a bearer header per (role, agency)."""

    client: TestClient
    control: Control
    law: LawPack
    headers: dict[tuple[str, str], dict[str, str]] = field(default_factory=dict)

    def h(self, role: str, agency: str = "agency-a") -> dict[str, str]:
        return self.headers[(role, agency)]

    def new_request(
        self, agency: str = "agency-a", request: dict[str, Any] | None = None, recipient_agency: str | None = None
    ) -> str:
        body: dict[str, Any] = {
            "title": f"Request {next(COUNTER)}",
            "use_case": "eligibility",
            "request": request or PERMITTED,
        }
        if recipient_agency:
            body["recipient_agency"] = recipient_agency
        r = self.client.post("/api/v1/requests", headers=self.h("requester", agency), json=body)
        assert r.status_code == 201, r.text
        return str(r.json()["id"])

    def request_in(self, state: str, agency: str = "agency-a") -> str:
        """A fresh request moved through the workflow to a state."""
        request_id = self.new_request(agency)
        order = ["draft", "program_review", "legal_review", "security_review", "approval"]
        for step in order[1 : order.index(state) + 1]:
            if step == "program_review":
                workflow.submit(self.control, user_id("requester", agency), request_id)
            else:
                role = {
                    "legal_review": "program_reviewer",
                    "security_review": "legal_reviewer",
                    "approval": "security_officer",
                }[step]
                workflow.review(self.control, self.law, user_id(role, agency), request_id, "approve", "ok")
        return request_id

    def new_consent(self, agency: str = "agency-a") -> str:
        r = self.client.post("/api/v1/consents", headers=self.h("requester", agency), json=CONSENT)
        assert r.status_code == 201, r.text
        return str(r.json()["id"])

    def new_agreement(
        self, agency: str = "agency-a", submitted: bool = False, recipient_agency: str | None = None
    ) -> str:
        request_id = self.new_request(agency, recipient_agency=recipient_agency)
        r = self.client.post(
            "/api/v1/agreements",
            headers=self.h("requester", agency),
            json={"request_id": request_id, "parties": PARTIES, "format": "md"},
        )
        assert r.status_code == 201, r.text
        agreement_id = str(r.json()["id"])
        if submitted:
            from sharewise.services import agreement_registry

            agreement_registry.submit_for_review(self.control, user_id("requester", agency), agreement_id)
        return agreement_id


def build_world(tmp: Path, law: LawPack, database_url: str | None = None) -> World:
    settings = Settings(data_dir=tmp / "data", key_dir=tmp / "keys", cache_dir=None, database_url=database_url)
    control = control_for(settings)
    workflow.add_agency(control, "agency-a", "Agency A", None)
    workflow.add_user(control, "administrator-a", "Admin A", "agency-a", {"administrator"}, None)
    workflow.add_agency(control, "agency-b", "Agency B", "administrator-a")
    app = create_app(settings, control, law, today=lambda: TODAY, session_secret="test-secret")
    world = World(TestClient(app, base_url="https://testserver"), control, law)
    for agency in AGENCIES:
        for role in ROLES:
            uid = user_id(role, agency)
            if uid != "administrator-a":
                workflow.add_user(control, uid, uid.title(), agency, {role}, "administrator-a")
            token = accounts.issue_token(control, uid, {role}, "tests")
            world.headers[(role, agency)] = {"Authorization": f"Bearer {token.secret}"}
    return world


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def world(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, law: LawPack) -> Iterator[World]:
    """The API on the embedded SQLite store, and on PostgreSQL as multi-agency deployments run it."""
    with contextlib.ExitStack() as stack:
        url = stack.enter_context(postgres_database()) if request.param == "postgresql" else None
        w = build_world(tmp_path_factory.mktemp("api"), law, url)
        yield w
        w.control.store.dispose()
