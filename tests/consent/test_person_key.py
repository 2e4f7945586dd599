"""The keyed person token: names in any script tell people apart; accents and case do not."""

from __future__ import annotations

import datetime as dt

import pytest
from pydantic import ValidationError

from sharewise.domain.consent import PersonIdentifiers, person_lookup_key
from sharewise.domain.request import Request
from sharewise.policy.model import LawPack
from sharewise.services import consents as service
from sharewise.wiring import Control
from tests.consent.conftest import consent

BORN = "1990-04-02"
REQUEST = {
    "source": {"program": "sud_treatment"},
    "recipient": {"kind": "state_or_local_agency", "program": "child_welfare"},
    "purpose": "care_coordination",
    "data": ["sud_treatment_information"],
}


def test_accents_case_and_punctuation_fold_to_one_key() -> None:
    assert person_lookup_key("José", "García-López", BORN) == person_lookup_key("JOSE", "garcia lopez", BORN)
    assert person_lookup_key("Zoë", "Müller", BORN) == "muller|zoe|1990-04-02"  # as before: ASCII names unchanged


@pytest.mark.parametrize(
    ("one", "other"),
    [(("明", "李"), ("芳", "王")), (("Øystein", "Berg"), ("Ystein", "Berg")), (("Łucja", "Nowak"), ("Ucja", "Nowak"))],
)
def test_letters_without_an_ascii_form_are_kept(one: tuple[str, str], other: tuple[str, str]) -> None:
    assert person_lookup_key(*one, BORN) != person_lookup_key(*other, BORN)
    assert person_lookup_key(*one, BORN).split("|")[0]  # never an empty name


def test_a_name_must_have_a_letter_or_digit() -> None:
    with pytest.raises(ValidationError) as info:
        PersonIdentifiers(given_name="--", family_name="李", date_of_birth=dt.date(1990, 4, 2))
    assert "at least one letter or digit" in str(info.value)


def test_a_consent_for_one_person_is_not_found_for_another_with_a_name_in_another_script(
    control: Control, law: LawPack
) -> None:
    li = {"given_name": "明", "family_name": "李", "date_of_birth": BORN}
    cid = service.add(control, law, consent(person=li), actor="alice")
    request = Request.model_validate(REQUEST)
    wang = PersonIdentifiers(given_name="芳", family_name="王", date_of_birth=dt.date(1990, 4, 2))
    assert not service.find(control, law, wang, request, dt.date(2026, 6, 1), "carol").covered
    li_again = PersonIdentifiers(given_name="明", family_name="李", date_of_birth=dt.date(1990, 4, 2))
    found = service.find(control, law, li_again, request, dt.date(2026, 6, 1), "carol")
    assert found.covered and found.consent_id == cid
