"""Coverage of a disclosure by a consent: the reasons given when it does not cover it."""

from __future__ import annotations

import datetime as dt

from sharewise.consent.match import coverage_failures
from sharewise.domain.request import Request
from tests.consent.conftest import consent

REQUEST = {
    "source": {"program": "sud_treatment"},
    "recipient": {"kind": "state_or_local_agency", "program": "child_welfare", "name": "Lakeview child welfare"},
    "purpose": "care_coordination",
    "data": ["sud_treatment_information"],
}
ON = dt.date(2026, 6, 1)


def test_a_named_recipient_must_match_by_name_and_the_reason_names_both() -> None:
    named = consent(
        recipients=[
            {"kind": "state_or_local_agency", "program": "child_welfare", "name": "Lakeview County child welfare"}
        ]
    )
    failures = coverage_failures(named, Request.model_validate(REQUEST), ON)
    assert failures == [
        "names the recipient 'Lakeview County child welfare', not 'Lakeview child welfare' "
        "(state_or_local_agency (child_welfare))"
    ]
    same = consent(
        recipients=[{"kind": "state_or_local_agency", "program": "child_welfare", "name": "LAKEVIEW child welfare "}]
    )
    assert coverage_failures(same, Request.model_validate(REQUEST), ON) == []


def test_another_kind_of_recipient_is_not_named() -> None:
    court = Request.model_validate({**REQUEST, "recipient": {"kind": "court"}})
    assert coverage_failures(consent(), court, ON) == ["does not name this recipient (court)"]
