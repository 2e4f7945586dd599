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
