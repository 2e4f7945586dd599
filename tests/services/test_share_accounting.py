"""A share's disclosure reaches each person's accounting through the keyed person index."""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from sharewise.audit.signing import CheckpointSigner
from sharewise.audit.sink import StoreAuditSink
from sharewise.audit.trail import AuditTrail
from sharewise.domain.consent import PersonIdentifiers
from sharewise.pipeline.duckdb_backend import DuckDBBackend
from sharewise.pipeline.synth import generate
from sharewise.policy.model import LawPack
from sharewise.security.keys import FileKeyProvider
from sharewise.security.secrets import FileSecrets
from sharewise.services import accounting, shares
from sharewise.store.database import Store
from sharewise.wiring import Control, Settings
from tests.pipeline.certs import make_recipient

NOW = dt.datetime(2026, 11, 25, 12, tzinfo=dt.UTC)


def test_a_person_in_a_share_finds_it_in_their_accounting(store: Store, law: LawPack, tmp_path: Path) -> None:
    generate(tmp_path / "syn", people=60, programs=("medicaid",), seed=7, today=NOW.date())
    first = next(csv.DictReader((tmp_path / "syn" / "medicaid.csv").open()))
    person = PersonIdentifiers(
        given_name=first["first_name"],
        family_name=first["last_name"],
        date_of_birth=dt.date.fromisoformat(first["birth_date"]),
    )
    cert, _key = make_recipient(tmp_path)
    keys_dir = tmp_path / "keys"
    keys = FileKeyProvider(keys_dir)
    trail = AuditTrail(lambda: NOW, CheckpointSigner(Ed25519PrivateKey.generate()))
    control = Control(store, trail, StoreAuditSink(store, trail), Settings(key_dir=keys_dir))
    share = {
        "share_id": "s-med",
        "agreement": "agr-med",
        "request": {
            "source": {"program": "medicaid"},
            "recipient": {"kind": "contractor", "name": "Claims processor", "roles": ["business_associate"]},
            "purpose": "payment",
            "data": ["identity", "eligibility_and_benefits"],
            "facts": {"business_associate_agreement": True},
        },
        "dictionary": str(tmp_path / "syn" / "dictionary-medicaid.yaml"),
        "source": {"csv": str(tmp_path / "syn" / "medicaid.csv")},
        "needs": ["record_id", "first_name", "last_name", "birth_date", "eligibility_group"],
        "recipient_certificate": str(cert),
    }
    definition = shares.parse_share(share, law, tmp_path)
    backend = DuckDBBackend(threads=2)
    try:
        result = shares.run(
            control,
            definition,
            law,
            NOW.date(),
            backend,
            keys,
            tmp_path / "out",
            "steward",
            person_index_key=FileSecrets(keys_dir).key("person-index"),
        )
    finally:
        backend.close()
    assert result.extract.rows > 0
    acc = accounting.accounting_for(control, law, person, dt.date(2026, 1, 1), "auditor")
    # A business associate processing payments is payment: HIPAA exempts it from the accounting,
    # and the accounting says so instead of silently omitting it.
    assert acc.entries == [] and acc.exempt == {"45 CFR 164.528(a)(1)(i)": 1}
    stranger = PersonIdentifiers(given_name="Nobody", family_name="Atall", date_of_birth=dt.date(1950, 1, 1))
    assert accounting.accounting_for(control, law, stranger, None, "auditor").exempt == {}
