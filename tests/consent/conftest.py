"""Consent fixtures: a control plane on the parametrized store, and a valid Part 2 consent."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from sharewise.audit.signing import CheckpointSigner
from sharewise.audit.sink import StoreAuditSink
from sharewise.audit.trail import AuditTrail
from sharewise.domain.consent import ConsentRecord
from sharewise.store.database import Store
from sharewise.wiring import Control, Settings

PART2: dict[str, Any] = {
    "person": {"given_name": "Ana", "family_name": "Example", "date_of_birth": "1990-04-02"},
    "disclosers": [{"program": "sud_treatment", "agency": "Lakeview Recovery Center"}],
    "recipients": [{"kind": "state_or_local_agency", "program": "child_welfare"}],
    "data": ["sud_treatment_information"],
    "information_description": "Attendance and treatment progress",
    "purposes": ["care_coordination"],
    "effective": "2026-03-01",
    "expiration": {"date": "2027-03-01"},
    "signatures": [{"signer": "person", "name": "Ana Example", "signed_on": "2026-03-01", "method": "wet_ink"}],
    "statements": ["right_to_revoke", "redisclosure_warning", "part2_notice", "conditioning"],
}


def consent(**changes: Any) -> ConsentRecord:
    return ConsentRecord.model_validate({**PART2, **changes})


@pytest.fixture
def control(store: Store, tmp_path: Path) -> Control:
    trail = AuditTrail(
        lambda: dt.datetime(2026, 5, 1, 9, 0, tzinfo=dt.UTC), CheckpointSigner(Ed25519PrivateKey.generate())
    )
    return Control(store, trail, StoreAuditSink(store, trail), Settings(key_dir=tmp_path / "keys"))
