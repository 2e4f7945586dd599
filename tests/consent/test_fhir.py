"""FHIR R4 Consent: export is valid FHIR, and import of an export gives back the same consent."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sharewise.consent.fhir import from_fhir, read_json, to_fhir
from sharewise.domain.errors import InvalidDataError
from tests.consent.conftest import consent


def test_round_trip_is_lossless() -> None:
    original = consent(
        id="c-2026-abc",
        person={
            "given_name": "Ana",
            "family_name": "Núñez",
            "date_of_birth": "1990-04-02",
            "ssn_last4": "1234",
            "client_ids": {"snap": "S-1"},
        },
        recipients=[{"kind": "state_or_local_agency", "program": "child_welfare", "name": "Lakeview CW"}],
        expiration={"date": "2027-03-01", "event": "case closure"},
        form="universal-release-v1",
        agency="Lakeview",
        revocation={"revoked_on": "2026-05-01", "method": "written", "by": "Ana"},
    )
    resource = to_fhir(original)
    assert resource["status"] == "inactive"
    assert from_fhir(resource) == original


@settings(max_examples=30, deadline=None)
@given(
    purposes=st.lists(
        st.sampled_from(["care_coordination", "treatment", "research", "service_delivery"]),
        min_size=1,
        max_size=3,
        unique=True,
    ),
    statements=st.lists(st.sampled_from(["right_to_revoke", "voluntary", "informed", "part2_notice"]), unique=True),
    minor=st.booleans(),
)
def test_round_trip_holds_for_varied_consents(purposes: list[str], statements: list[str], minor: bool) -> None:
    original = consent(purposes=purposes, statements=statements, person_is_minor=minor)
    assert from_fhir(to_fhir(original)) == original


def test_a_resource_that_is_not_a_consent_is_rejected_with_locations() -> None:
    with pytest.raises(InvalidDataError) as info:
        from_fhir({"resourceType": "Consent", "status": "not-a-status"})
    assert info.value.problems


PERSONAL = ("Ana", "Example", "1990-04-02")


def _imported_elsewhere(**changes: Any) -> dict[str, Any]:
    """An export of a consent, without its sharewise id, as another system would send it."""
    resource = to_fhir(consent(**changes))
    resource.pop("id", None)
    resource.pop("identifier", None)
    return resource


def _refused(resource: dict[str, Any]) -> list[str]:
    with pytest.raises(InvalidDataError) as info:
        from_fhir(resource, "in.json")
    shown = [info.value.message, *(str(p) for p in info.value.problems)]
    assert not [s for s in shown for value in PERSONAL if value in s]  # no personal data in the error
    return [str(p) for p in info.value.problems]


def test_a_deny_provision_is_refused_not_imported_as_a_permission() -> None:
    resource = _imported_elsewhere()
    resource["provision"]["type"] = "deny"
    assert _refused(resource) == [
        "in.json: Consent.provision.type: a deny provision cannot be imported as a permission"
    ]


@pytest.mark.parametrize(
    ("status", "why"),
    [
        ("rejected", "the person refused"),
        ("entered-in-error", "entered in error"),
        ("draft", "has not been agreed to"),
        ("proposed", "has not been agreed to"),
        ("inactive", "only with the revocation"),
        ("no-such-status", "not an R4 Consent status"),
    ],
)
def test_a_consent_not_in_force_as_given_is_refused(status: str, why: str) -> None:
    resource = _imported_elsewhere()
    resource["status"] = status
    (problem,) = _refused(resource)
    assert problem.startswith("in.json: Consent.status: ") and why in problem


def test_an_active_consent_carrying_a_revocation_is_refused_as_contradictory() -> None:
    resource = _imported_elsewhere(revocation={"revoked_on": "2026-05-01", "method": "written", "by": "Ana"})
    resource["status"] = "active"
    assert "a revoked one is 'inactive'" in _refused(resource)[0]


def test_nested_provisions_and_restrictions_sharewise_cannot_hold_are_refused() -> None:
    resource = _imported_elsewhere()
    resource["provision"]["provision"] = [
        {"type": "deny", "purpose": [{"system": "urn:sharewise:purpose", "code": "care_coordination"}]}
    ]
    resource["provision"]["dataPeriod"] = {"start": "2026-01-01"}
    resource["modifierExtension"] = [{"url": "urn:example:flip", "valueBoolean": True}]
    problems = _refused(resource)
    assert [p.split(": ")[1] for p in problems] == [
        "Consent.modifierExtension",
        "Consent.provision.provision",
        "Consent.provision.dataPeriod",
    ]
    assert "nested provisions (exceptions to the consent) cannot be represented" in problems[1]


def test_an_explicit_permit_and_an_exported_revoked_consent_are_imported() -> None:
    resource = _imported_elsewhere()
    del resource["provision"]["type"]  # absent: FHIR's default reading is a permit
    assert from_fhir(resource).revocation is None
    revoked = consent(revocation={"revoked_on": "2026-05-01", "method": "written", "by": "Ana"})
    assert from_fhir(to_fhir(revoked)) == revoked


def test_several_given_names_are_joined_and_a_spaced_given_name_round_trips() -> None:
    resource = _imported_elsewhere()
    resource["contained"][0]["name"][0]["given"] = ["Mary", "Ann"]
    imported = from_fhir(resource)
    assert imported.person is not None and imported.person.given_name == "Mary Ann"
    assert from_fhir(to_fhir(imported)) == imported


def test_an_invalid_element_is_located_by_its_fhir_path_without_its_value() -> None:
    resource = _imported_elsewhere()
    resource["contained"][0]["birthDate"] = "1990-13-45"
    (problem,) = _refused(resource)
    assert problem.startswith("in.json: Consent.contained[0].birthDate: ") and "1990-13-45" not in problem
    resource["contained"][0] = {"resourceType": "Ana-Example", "id": "person"}
    assert _refused(resource) == ["in.json: Consent: an element is not of a known FHIR R4 type"]


def test_a_file_that_is_not_json_is_refused_with_line_and_column_only(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"resourceType": "Consent",\n "name": "Ana Example" "birthDate": "1990-04-02"}')
    with pytest.raises(InvalidDataError) as info:
        read_json(bad)
    assert [str(p) for p in info.value.problems] == [f"{bad}:2:24: not valid JSON: Expecting ',' delimiter"]
    bad.write_text('["Ana Example"]')
    with pytest.raises(InvalidDataError) as info:
        read_json(bad)
    assert [str(p) for p in info.value.problems] == [f"{bad}: a FHIR resource is a JSON object, not list"]
    bad.write_bytes(b'{"name": "\xff"}')
    with pytest.raises(InvalidDataError) as info:
        read_json(bad)
    assert [str(p) for p in info.value.problems] == [f"{bad}: not UTF-8 text (at byte 10)"]
    good = tmp_path / "good.json"
    good.write_text(json.dumps(_imported_elsewhere()))
    assert from_fhir(read_json(good)) == consent()
