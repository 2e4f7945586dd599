"""FHIR R4 Consent: export is valid FHIR, and import of an export gives back the same consent."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sharewise.consent.fhir import from_fhir, to_fhir
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
