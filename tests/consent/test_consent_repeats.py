"""A consent that repeats one in force is recorded, and the recorder is told which one it repeats."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import select

from sharewise.domain.consent import Revocation
from sharewise.policy.model import LawPack
from sharewise.services import consents as service
from sharewise.services import workflow
from sharewise.store.schema import audit_records
from sharewise.wiring import Control
from tests.consent.conftest import PART2, consent

SIGNATURE = PART2["signatures"][0]


def test_the_same_consent_recorded_again_is_kept_and_names_the_one_it_repeats(control: Control, law: LawPack) -> None:
    first = service.record(control, law, consent(), actor="alice")
    assert first.repeats == ()
    second = service.record(control, law, consent(), actor="alice")
    assert second.repeats == (first.id,) and second.id != first.id
    assert {c.id for c in service.list_consents(control)} == {first.id, second.id}
    with control.store.transaction() as conn:
        details = [r.details for r in conn.execute(select(audit_records.c.details).order_by(audit_records.c.seq))]
    assert "repeats" not in str(details[0]) and first.id in str(details[1])


def test_a_person_who_signs_again_in_other_words_and_order_gives_the_same_consent(
    control: Control, law: LawPack
) -> None:
    first = service.add(control, law, consent(), actor="alice")
    again = consent(
        person={**PART2["person"], "given_name": "ANA", "client_ids": {"sud_treatment": "LRC-1"}},
        signatures=[{**SIGNATURE, "name": "Ana M. Example", "signed_on": "2026-03-02", "method": "electronic"}],
        statements=list(reversed(PART2["statements"])),
        information_description="Another description",
    )
    assert service.record(control, law, again, actor="alice").repeats == (first,)


@pytest.mark.parametrize(
    "changes",
    [
        {"person": {**PART2["person"], "date_of_birth": "1990-04-03"}},
        {"recipients": [{"kind": "state_or_local_agency", "program": "child_welfare", "name": "Lakeview CPS"}]},
        {"purposes": ["care_coordination", "treatment"]},
        {"data": ["sud_treatment_information", "mental_health"]},
        {"effective": "2026-03-02"},
        {"expiration": {"date": "2027-03-02"}},
    ],
    ids=["person", "recipient", "purposes", "data", "effective", "expiration"],
)
def test_a_consent_that_differs_in_any_term_repeats_nothing(
    control: Control, law: LawPack, changes: dict[str, Any]
) -> None:
    service.add(control, law, consent(), actor="alice")
    assert service.record(control, law, consent(**changes), actor="alice").repeats == ()


def test_a_revoked_consent_is_not_repeated_by_a_new_one(control: Control, law: LawPack) -> None:
    first = service.add(control, law, consent(), actor="alice")
    service.revoke(control, first, Revocation(revoked_on=dt.date(2026, 4, 1), method="written", by="Ana"), "alice")
    assert service.record(control, law, consent(), actor="alice").repeats == ()


def test_only_the_recorders_agency_is_compared(control: Control, law: LawPack) -> None:
    workflow.add_agency(control, "dhs", "Lakeview DHS", None)
    workflow.add_agency(control, "otp", "Lakeview Recovery Center", None)
    workflow.add_user(control, "ada", "Ada", "dhs", {"administrator"}, None)
    workflow.add_user(control, "rita", "Rita", "dhs", {"requester"}, "ada")
    workflow.add_user(control, "carl", "Carl", "otp", {"requester"}, "ada")
    theirs = service.add(control, law, consent(), actor="carl")
    mine = service.record(control, law, consent(), actor="rita")
    assert mine.repeats == ()  # another agency's consent is not for rita to know of
    assert service.record(control, law, consent(), actor="carl").repeats == (theirs,)
    assert service.record(control, law, consent(), actor="rita").repeats == (mine.id,)
