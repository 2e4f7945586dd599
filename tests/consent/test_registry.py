"""The registry stores consents with sealed identifiers, finds them by keyed token, audits everything."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from sqlalchemy import func, select

from sharewise.consent.fhir import to_fhir
from sharewise.domain.consent import PersonIdentifiers, Revocation
from sharewise.domain.errors import InvalidDataError, InvalidStateError
from sharewise.domain.request import Request
from sharewise.policy.model import LawPack
from sharewise.services import consents as service
from sharewise.services.determinations import determine
from sharewise.store.schema import audit_records, consents
from sharewise.wiring import Control
from tests.conftest import TODAY
from tests.consent.conftest import consent

REQUEST = {
    "source": {"program": "sud_treatment"},
    "recipient": {"kind": "state_or_local_agency", "program": "child_welfare"},
    "purpose": "care_coordination",
    "data": ["sud_treatment_information"],
}
ANA = PersonIdentifiers(given_name="ANA", family_name="example", date_of_birth=dt.date(1990, 4, 2))


def test_identifiers_are_stored_sealed_and_revealed_only_on_request(control: Control, law: LawPack) -> None:
    cid = service.add(control, law, consent(), actor="alice")
    with control.store.transaction() as conn:
        row = conn.execute(select(consents)).one()
    assert b"Example" not in row.sealed and "Example" not in row.scope and "Ana" not in row.scope
    assert service.show(control, cid, "alice").person is None
    assert service.show(control, cid, "alice", reveal=True).person == consent().person
    with control.store.transaction() as conn:
        actions = [r.action for r in conn.execute(select(audit_records.c.action))]
    assert actions == ["consent-recorded", "consent-identifiers-revealed"]


def test_an_invalid_consent_is_refused_and_nothing_is_stored(control: Control, law: LawPack) -> None:
    with pytest.raises(InvalidDataError) as info:
        service.add(control, law, consent(statements=[]), actor="alice")
    assert any("2.31" in p.message for p in info.value.problems)
    title = "Confidentiality of substance use disorder patient records (42 CFR Part 2)"
    assert all(p.message.startswith(f"{title} requires '") for p in info.value.problems)
    with control.store.transaction() as conn:
        assert conn.execute(select(consents)).first() is None
        assert conn.execute(select(audit_records)).first() is None


def test_unknown_ids_in_a_consent_are_reported_with_suggestions(control: Control, law: LawPack) -> None:
    with pytest.raises(InvalidDataError) as info:
        service.add(control, law, consent(data=["sud_treatment_info"]), actor="alice")
    assert "did you mean 'sud_treatment_information'" in info.value.problems[0].message


def test_find_answers_for_one_person_without_exposing_other_consents(control: Control, law: LawPack) -> None:
    cid = service.add(control, law, consent(), actor="alice")
    other = consent(person={"given_name": "Bo", "family_name": "Other", "date_of_birth": "1985-01-01"})
    service.add(control, law, other, actor="alice")
    request = Request.model_validate(REQUEST)
    found = service.find(control, law, ANA, request, dt.date(2026, 6, 1), "carol")
    assert found.covered and found.consent_id == cid
    stranger = PersonIdentifiers(given_name="Cy", family_name="Nobody", date_of_birth=dt.date(2000, 1, 1))
    assert not service.find(control, law, stranger, request, dt.date(2026, 6, 1), "carol").covered
    wider = Request.model_validate({**REQUEST, "data": ["sud_treatment_information", "mental_health"]})
    assert not service.find(control, law, ANA, wider, dt.date(2026, 6, 1), "carol").covered


def test_a_cited_consent_makes_the_determination_permitted_until_revoked(control: Control, law: LawPack) -> None:
    cid = service.add(control, law, consent(), actor="alice")

    def checker(r: Request, on: dt.date) -> list:  # type: ignore[type-arg]
        return service.check_cited(control, law, r, on)

    request = Request.model_validate({**REQUEST, "consents": [cid], "as_of": "2026-04-01"})
    det = determine(law, request, TODAY, consent_checker=checker)
    assert det.outcome.value == "permitted"
    assert det.consent_checks[0].ok
    service.revoke(  # the control's clock reads 2026-05-01
        control, cid, Revocation(revoked_on=dt.date(2026, 4, 15), method="written", by="Ana Example"), "alice"
    )
    assert determine(law, request, TODAY, consent_checker=checker).outcome.value == "permitted"  # before it
    later = determine(law, request.model_copy(update={"as_of": dt.date(2026, 5, 1)}), TODAY, consent_checker=checker)
    assert later.outcome.value == "consent_required"
    assert later.consent_checks[0].failures == ["revoked on 2026-04-15"]
    with pytest.raises(InvalidStateError):
        service.revoke(control, cid, Revocation(revoked_on=dt.date(2026, 4, 20), method="written", by="x"), "alice")


def test_a_revocation_dated_after_today_is_refused(control: Control, law: LawPack) -> None:
    cid = service.add(control, law, consent(), actor="alice")
    with pytest.raises(InvalidDataError) as info:
        service.revoke(control, cid, Revocation(revoked_on=dt.date(2099, 12, 31), method="written", by="x"), "alice")
    assert "after today (2026-05-01)" in info.value.problems[0].message
    assert service.show(control, cid, "alice").revocation is None


def test_a_consent_that_does_not_cover_the_recipient_says_so(control: Control, law: LawPack) -> None:
    cid = service.add(control, law, consent(), actor="alice")
    request = Request.model_validate(
        {
            **REQUEST,
            "recipient": {"kind": "law_enforcement"},
            "purpose": "law_enforcement",
            "consents": [cid, "c-missing"],
            "as_of": "2026-06-01",
        }
    )
    checks = service.check_cited(control, law, request, dt.date(2026, 6, 1))
    assert any("does not name this recipient" in f for f in checks[0].failures)
    assert any("does not cover the purpose" in f for f in checks[0].failures)
    assert checks[1].failures == ["no such consent in the registry"]


def test_a_cited_consent_missing_an_element_names_the_law_by_its_title(control: Control, law: LawPack) -> None:
    incomplete = consent(statements=["redisclosure_warning", "part2_notice", "conditioning"])
    with control.store.transaction() as conn:  # stored before the law asked for the element, say
        cid = service.registry(control).add(conn, incomplete, control.trail.clock())
    request = Request.model_validate({**REQUEST, "consents": [cid], "as_of": "2026-06-01"})
    (check,) = service.check_cited(control, law, request, dt.date(2026, 6, 1))
    title = "Confidentiality of substance use disorder patient records (42 CFR Part 2)"
    (missing,) = [f for f in check.failures if "requires" in f]
    assert not check.ok and missing.startswith(f"{title} requires 'A statement of the patient's right to revoke")


def _counts(control: Control) -> tuple[int, int]:
    with control.store.transaction() as conn:
        return (
            conn.execute(select(func.count()).select_from(consents)).scalar_one(),
            conn.execute(select(func.count()).select_from(audit_records)).scalar_one(),
        )


def test_a_consent_whose_id_is_already_recorded_is_refused_and_nothing_is_stored(
    control: Control, law: LawPack
) -> None:
    cid = service.add(control, law, consent(id="c-2026-given"), actor="alice")
    assert cid == "c-2026-given"
    other = consent(id=cid, person={"given_name": "Bo", "family_name": "Other", "date_of_birth": "1985-01-01"})
    with pytest.raises(InvalidStateError) as info:
        service.add(control, law, other, actor="alice")
    assert info.value.message == "consent 'c-2026-given' is already in the registry; nothing was stored"
    assert info.value.exit_code == 7
    assert _counts(control) == (1, 1)
    assert service.show(control, cid, "alice", reveal=True).person == consent().person  # not replaced


def test_re_importing_an_export_says_the_consent_exists(control: Control, law: LawPack, tmp_path: Path) -> None:
    cid = service.add(control, law, consent(), actor="alice")
    export = tmp_path / "consent.json"
    export.write_text(json.dumps(to_fhir(service.show(control, cid, "alice", reveal=True))))
    before = _counts(control)
    with pytest.raises(InvalidStateError, match=f"consent '{cid}' is already in the registry"):
        service.import_fhir(control, law, export, "alice")
    assert _counts(control) == before


def test_a_fhir_deny_is_refused_and_nothing_is_stored(control: Control, law: LawPack, tmp_path: Path) -> None:
    resource = to_fhir(consent())
    resource["provision"]["type"] = "deny"
    path = tmp_path / "deny.json"
    path.write_text(json.dumps(resource))
    with pytest.raises(InvalidDataError) as info:
        service.import_fhir(control, law, path, "alice")
    assert [p.location for p in info.value.problems] == [f"{path}: Consent.provision.type"]
    assert _counts(control) == (0, 0)


def test_an_imported_revoked_consent_is_stored_revoked(control: Control, law: LawPack, tmp_path: Path) -> None:
    revoked = consent(id="c-2026-revoked", revocation={"revoked_on": "2026-04-01", "method": "written", "by": "Ana"})
    path = tmp_path / "revoked.json"
    path.write_text(json.dumps(to_fhir(revoked)))
    cid = service.import_fhir(control, law, path, "alice").id
    assert service.show(control, cid, "alice", reveal=True) == revoked
    with control.store.transaction() as conn:
        assert conn.execute(select(consents.c.revoked_on)).scalar_one() == dt.date(2026, 4, 1)
