"""What the consent API refuses before anything is stored: each problem names the field and the rule, not the value."""

from __future__ import annotations

from sharewise.domain.consent import CONSENT_ID_RULE
from tests.api.conftest import CONSENT, World


def test_a_consent_whose_id_breaks_the_fhir_rule_is_refused_naming_the_rule(world: World) -> None:
    h = world.h("requester")
    r = world.client.post("/api/v1/consents", headers=h, json={**CONSENT, "id": "c-" + "9" * 63})
    assert r.status_code == 422, r.text
    assert [(p["location"], p["message"]) for p in r.json()["problems"]] == [("body.id", CONSENT_ID_RULE)]
    fine = world.client.post("/api/v1/consents", headers=h, json={**CONSENT, "id": "c-" + "9" * 62})
    assert fine.status_code == 201, fine.text  # the API gives its own id all the same
    assert fine.json()["id"] != "c-" + "9" * 62


def test_an_implausible_date_is_refused_where_it_is(world: World) -> None:
    h = world.h("requester")
    early = world.client.post("/api/v1/consents", headers=h, json={**CONSENT, "effective": "1850-03-01"})
    assert early.status_code == 422, early.text
    assert ("body.effective", "before 1900-01-01: not a plausible date for a consent") in [
        (p["location"], p["message"]) for p in early.json()["problems"]
    ]
    late = world.client.post("/api/v1/consents", headers=h, json={**CONSENT, "expiration": {"date": "2999-12-31"}})
    assert late.status_code == 422, late.text
    assert [p["location"] for p in late.json()["problems"]] == ["consent: expiration"]
    revoked = world.client.post(
        f"/api/v1/consents/{world.new_consent()}/revocation",
        headers=h,
        json={"revoked_on": "1850-01-01", "method": "written", "by": "Ana"},
    )
    assert revoked.status_code == 422 and "Ana" not in revoked.text


def test_a_text_too_long_is_refused_by_field_and_limit_without_the_text(world: World) -> None:
    long_name = {**CONSENT["signatures"][0], "name": "Ana Example " * 20}
    r = world.client.post("/api/v1/consents", headers=world.h("requester"), json={**CONSENT, "signatures": [long_name]})
    assert r.status_code == 422, r.text
    assert ("body.signatures.0.name", "at most 200 characters") in [
        (p["location"], p["message"]) for p in r.json()["problems"]
    ]
    assert "Ana Example Ana" not in r.text
    schema = world.client.get("/api/v1/openapi.json").json()["components"]["schemas"]
    assert schema["Signature"]["properties"]["name"]["maxLength"] == 200


def test_a_consent_recorded_again_names_the_consent_it_repeats(world: World) -> None:
    h = world.h("requester", "agency-b")
    person = {**CONSENT["person"], "given_name": "Repeat"}  # a person no other test records
    first = world.client.post("/api/v1/consents", headers=h, json={**CONSENT, "person": person}).json()
    assert first["repeats"] == []
    again = world.client.post("/api/v1/consents", headers=h, json={**CONSENT, "person": person})
    assert again.status_code == 201, again.text
    assert again.json()["repeats"] == [first["id"]] and again.json()["id"] != first["id"]


def test_a_fhir_import_names_the_consent_it_repeats(world: World) -> None:
    consent_id = world.new_consent()
    h = world.h("data_steward")
    resource = world.client.get(f"/api/v1/consents/{consent_id}/fhir", headers=h).json()
    imported = world.client.post("/api/v1/consents/fhir", headers=h, json=resource)
    assert imported.status_code == 201, imported.text
    assert consent_id in imported.json()["repeats"] and imported.json()["id"] != consent_id
