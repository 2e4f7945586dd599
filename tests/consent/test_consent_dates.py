"""Consent dates are plausible: none before 1900, in effect within 10 years of signing, ended within 100 years."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError
from sqlalchemy import func, select

from sharewise.consent.validate import validate_consent
from sharewise.domain.consent import STORED, ConsentRecord
from sharewise.domain.errors import InvalidDataError
from sharewise.policy.model import LawPack
from sharewise.services import consents as service
from sharewise.store.schema import consents
from sharewise.wiring import Control
from tests.consent.conftest import PART2, consent

TOO_EARLY = "before 1900-01-01: not a plausible date for a consent"


def signed(on: str) -> list[dict[str, Any]]:
    return [{**PART2["signatures"][0], "signed_on": on}]


@pytest.mark.parametrize(
    ("changes", "loc"),
    [
        ({"effective": "1899-12-31"}, ("effective",)),
        ({"signatures": signed("1850-03-01")}, ("signatures", 0, "signed_on")),
        ({"expiration": {"date": "1899-12-31"}}, ("expiration", "date")),
        ({"revocation": {"revoked_on": "1850-01-01", "method": "written", "by": "Ana"}}, ("revocation", "revoked_on")),
    ],
)
def test_a_consent_date_before_1900_is_refused_where_it_is(changes: dict[str, Any], loc: tuple[Any, ...]) -> None:
    with pytest.raises(ValidationError) as info:
        consent(**changes)
    assert (loc, TOO_EARLY) in [(e["loc"], e["msg"]) for e in info.value.errors()]


def test_1900_itself_is_a_plausible_date() -> None:
    assert consent(effective="1900-01-01", signatures=signed("1900-01-01")).effective == dt.date(1900, 1, 1)


def test_a_file_with_an_implausible_date_names_its_line_not_its_value(tmp_path: Path) -> None:
    path = tmp_path / "consent.yaml"
    path.write_text(yaml.safe_dump({**PART2, "effective": "1850-03-01"}, sort_keys=False))
    with pytest.raises(InvalidDataError) as info:
        service.read_consent(path)
    line = path.read_text().splitlines().index("effective: '1850-03-01'") + 1
    assert [(p.location, p.message) for p in info.value.problems] == [(f"{path}:{line}: effective", TOO_EARLY)]


def dated_defects(**changes: Any) -> list[tuple[str, str]]:
    return [(p.element, p.reason) for p in validate_consent(consent(**changes), []) if p.rule == "consent.dates"]


def test_a_consent_takes_effect_within_ten_years_of_the_last_signature() -> None:
    assert dated_defects(effective="2036-03-01", expiration={"date": "2037-03-01"}) == []
    assert dated_defects(effective="2036-03-02", expiration={"date": "2037-03-01"}) == [
        ("effective", "the consent takes effect more than 10 years after it was signed")
    ]


def test_the_horizon_counts_from_29_february_as_from_28_february_in_a_common_year() -> None:
    leap = {"signatures": signed("2024-02-29"), "expiration": {"date": "2035-01-01"}}
    assert dated_defects(effective="2034-02-28", **leap) == []
    assert [e for e, _ in dated_defects(effective="2034-03-01", **leap)] == ["effective"]


def test_a_consent_ends_within_a_hundred_years_of_taking_effect() -> None:
    assert dated_defects(expiration={"date": "2126-03-01"}) == []
    assert dated_defects(expiration={"date": "2999-12-31"}) == [
        ("expiration", "the consent expires more than 100 years after it takes effect")
    ]


def test_an_implausible_consent_is_refused_and_nothing_is_stored(control: Control, law: LawPack) -> None:
    with pytest.raises(InvalidDataError) as info:
        service.add(control, law, consent(expiration={"date": "2999-12-31"}), actor="alice")
    assert [p.location for p in info.value.problems] == ["consent: expiration"]
    with control.store.transaction() as conn:
        assert conn.execute(select(func.count()).select_from(consents)).scalar_one() == 0


def test_a_consent_stored_before_a_limit_existed_still_opens_and_can_be_revoked(control: Control) -> None:
    old = ConsentRecord.model_validate({**PART2, "signatures": signed("1850-03-01")}, context=STORED)
    with control.store.transaction() as conn:
        cid = service.registry(control).add(conn, old, control.trail.clock())
    assert service.show(control, cid, "alice").signatures[0].signed_on == dt.date(1850, 3, 1)
    assert [c.id for c in service.list_consents(control)] == [cid]
    revoked = service.revoke(control, cid, service.revocation(dt.date(2026, 4, 1), "written", "Ana"), "alice")
    assert revoked.revocation is not None


def test_a_typed_revocation_is_refused_by_field_and_rule_without_its_value() -> None:
    with pytest.raises(InvalidDataError) as info:
        service.revocation(dt.date(1850, 1, 1), "written", "Ana Example", {"revoked_on": "--on"})
    assert [(p.location, p.message) for p in info.value.problems] == [("--on", TOO_EARLY)]
