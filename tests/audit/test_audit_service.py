"""Who may sign checkpoints and read the trail through the audit service."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from sharewise.audit.signing import CheckpointSigner
from sharewise.audit.sink import StoreAuditSink
from sharewise.audit.trail import AuditTrail
from sharewise.domain.errors import AccessDeniedError
from sharewise.services import audit, workflow
from sharewise.store.database import Store
from sharewise.wiring import Control, Settings


@pytest.fixture
def control(store: Store, tmp_path: Path) -> Control:
    trail = AuditTrail(lambda: dt.datetime(2026, 11, 25, tzinfo=dt.UTC), CheckpointSigner(Ed25519PrivateKey.generate()))
    return Control(store, trail, StoreAuditSink(store, trail), Settings(key_dir=tmp_path / "keys"))


def test_checkpoints_are_signed_by_auditors_security_officers_and_administrators(
    control: Control, tmp_path: Path
) -> None:
    workflow.add_agency(control, "dhs", "DHS", None)
    workflow.add_user(control, "ada", "Ada", "dhs", {"administrator"}, None)
    workflow.add_user(control, "rita", "Rita", "dhs", {"requester"}, "ada")
    workflow.add_user(control, "aud", "Aud", "dhs", {"auditor"}, "ada")
    with pytest.raises(AccessDeniedError, match="sign audit checkpoints"):
        audit.checkpoint(control, None, "rita")
    with pytest.raises(AccessDeniedError, match="who is acting"):
        audit.checkpoint(control, None, None)
    kept = tmp_path / "checkpoints.jsonl"
    cp = audit.checkpoint(control, kept, "aud")
    assert cp is not None and json.loads(kept.read_text().splitlines()[-1])["seq"] == cp.seq
    signed = [r for r in audit.log(control, "aud") if r["action"] == "checkpoint-signed"]
    assert signed[0]["actor"] == "aud"  # who signed it, not "system"
    assert audit.verify(control, [kept]).ok
    assert audit.verify(control, actor="aud").ok
    verified = [r for r in audit.log(control, "aud") if r["action"] == "audit-verified"]
    assert [r["actor"] for r in verified][:2] == ["aud", "system"]  # newest first: who asked, when someone did
