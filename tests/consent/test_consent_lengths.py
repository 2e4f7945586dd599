"""Free text on a consent has a longest length; a text too long is refused by field and limit, never quoted."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from sharewise.consent.fhir import to_fhir
from sharewise.domain.consent import STORED, ConsentRecord, consent_errors
from sharewise.domain.errors import InvalidDataError
from sharewise.policy.model import LawPack
from sharewise.services import consents as service
from sharewise.wiring import Control
from tests.consent.conftest import PART2, consent

SIGNATURE = PART2["signatures"][0]
REVOCATION = {"revoked_on": "2026-04-01", "method": "written", "by": "Ana"}


def with_text(field: str, text: str) -> dict[str, Any]:
    """The consent's changes that put `text` in one free-text field."""
    return {
        "signature name": {"signatures": [{**SIGNATURE, "name": text}]},
        "representative authority": {
            "signatures": [{**SIGNATURE, "signer": "representative", "relationship": "other", "authority": text}]
        },
        "revoked by": {"revocation": {**REVOCATION, "by": text}},
        "recipient name": {"recipients": [{**PART2["recipients"][0], "name": text}]},
        "discloser agency": {"disclosers": [{**PART2["disclosers"][0], "agency": text}]},
        "agency": {"agency": text},
        "form": {"form": text},
        "information description": {"information_description": text},
        "purpose description": {"purpose_description": text},
        "expiration event": {"expiration": {"event": text}},
        "expiration condition": {"expiration": {"condition": text}},
        "language": {"language": text},
        "client id": {"person": {**PART2["person"], "client_ids": {"sud_treatment": text}}},
        "given name": {"person": {**PART2["person"], "given_name": text}},
    }[field]


LIMITS = [
    ("signature name", 200, ("signatures", 0, "name")),
    ("representative authority", 500, ("signatures", 0, "authority")),
    ("revoked by", 200, ("revocation", "by")),
    ("recipient name", 200, ("recipients", 0, "name")),
    ("discloser agency", 200, ("disclosers", 0, "agency")),
    ("agency", 200, ("agency",)),
    ("form", 200, ("form",)),
    ("information description", 2000, ("information_description",)),
    ("purpose description", 2000, ("purpose_description",)),
    ("expiration event", 500, ("expiration", "event")),
    ("expiration condition", 500, ("expiration", "condition")),
    ("language", 35, ("language",)),
    ("client id", 100, ("person", "client_ids", "sud_treatment")),
    ("given name", 100, ("person", "given_name")),  # a limit the person's identifiers already had
]


@pytest.mark.parametrize(("field", "limit", "loc"), LIMITS)
def test_a_text_at_its_limit_is_taken_and_one_longer_is_refused_by_field_and_limit(
    field: str, limit: int, loc: tuple[Any, ...]
) -> None:
    consent(**with_text(field, "Ñ" * limit))
    with pytest.raises(ValidationError) as info:
        consent(**with_text(field, "Ñ" * (limit + 1)))
    (error,) = [e for e in info.value.errors(include_input=False) if e["loc"] == loc]
    assert error["msg"].endswith(f"at most {limit} characters")
    assert "Ñ" not in error["msg"]


def test_ids_of_the_vocabulary_are_bounded_too_and_the_item_not_the_list_is_blamed() -> None:
    with pytest.raises(ValidationError) as info:
        consent(purposes=["p" * 81])
    assert ("purposes",) in [e["loc"] for e in info.value.errors()]  # pydantic: "at least 1 item", as if empty
    assert [(e["loc"], e["msg"]) for e in consent_errors(info.value)] == [(("purposes", 0), "at most 80 characters")]


def test_a_consent_file_with_a_name_too_long_is_refused_by_line_without_the_name(tmp_path: Path) -> None:
    path = tmp_path / "consent.yaml"
    name = "Ana Example " * 20
    path.write_text(yaml.safe_dump({**PART2, "signatures": [{**SIGNATURE, "name": name}]}, sort_keys=False))
    with pytest.raises(InvalidDataError) as info:
        service.read_consent(path)
    ((location, message),) = [(p.location, p.message) for p in info.value.problems]
    assert location.startswith(f"{path}:") and location.endswith(": signatures.0.name")
    assert message == "at most 200 characters" and "Ana" not in location + message


def test_a_fhir_consent_with_a_recipient_name_too_long_is_refused_and_nothing_is_stored(
    control: Control, law: LawPack, tmp_path: Path
) -> None:
    resource = to_fhir(consent())
    resource["provision"]["actor"][0]["reference"]["display"] = "Lakeview " * 30
    path = tmp_path / "consent.json"
    path.write_text(json.dumps(resource))
    with pytest.raises(InvalidDataError) as info:
        service.import_fhir(control, law, path, "alice")
    assert [(p.location, p.message) for p in info.value.problems] == [
        (f"{path}: recipients.0.name", "at most 200 characters")
    ]
    assert service.list_consents(control) == []


def test_a_consent_stored_before_the_limits_still_opens(control: Control, monkeypatch: pytest.MonkeyPatch) -> None:
    from sharewise.consent import registry

    long_ago = {**PART2, "id": "c_2026_old", "agency": "A" * 150, "purpose_description": "why " * 600}
    old = ConsentRecord.model_validate(long_ago, context=STORED)
    monkeypatch.setattr(registry, "is_consent_id", lambda _: True)  # recorded before the id rule, say
    with control.store.transaction() as conn:
        service.registry(control).add(conn, old, control.trail.clock())
    assert service.show(control, "c_2026_old", "alice", reveal=True) == old


def test_a_revocation_by_a_name_too_long_is_refused_by_option_without_the_name() -> None:
    with pytest.raises(InvalidDataError) as info:
        service.revocation(dt.date(2026, 4, 1), "written", "Ana Example" * 20, {"by": "--by"})
    assert [(p.location, p.message) for p in info.value.problems] == [("--by", "at most 200 characters")]
