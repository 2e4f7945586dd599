"""OSCAL exports validate against compliance-trestle's OSCAL models and are reproducible."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from trestle.oscal.component import ComponentDefinition
from trestle.oscal.profile import Profile

from sharewise.policy.model import LawPack
from sharewise.services.security import export, specify
from tests.conftest import TODAY
from tests.security.conftest import make_request

GENERATED = dt.datetime(2026, 11, 25, 12, 0, tzinfo=dt.UTC)
REQUESTS = {
    "fti": {
        "data": ["identity", "federal_tax_information"],
        "source": {"program": "tanf"},
        "recipient": {"kind": "same_agency"},
    },
    "aggregate": {"data": ["demographics"], "form": "aggregate", "purpose": "statistics"},
    "sud": {"data": ["identity", "sud_treatment_information"], "source": {"program": "sud_treatment"}},
}


@pytest.mark.parametrize("name", sorted(REQUESTS))
def test_the_profile_export_is_a_valid_oscal_profile(law: LawPack, name: str) -> None:
    spec = specify(law, make_request(law, **REQUESTS[name]), TODAY)
    document = export(spec, "profile", GENERATED)
    profile = Profile.model_validate(document["profile"])
    assert len(profile.imports[0].include_controls[0].with_ids) == len(spec.safeguards)


@pytest.mark.parametrize("name", sorted(REQUESTS))
def test_the_component_definition_export_is_valid_oscal(law: LawPack, name: str) -> None:
    spec = specify(law, make_request(law, **REQUESTS[name]), TODAY)
    document = export(spec, "component-definition", GENERATED)
    definition = ComponentDefinition.model_validate(document["component-definition"])
    implemented = {
        r.control_id for ci in definition.components[0].control_implementations for r in ci.implemented_requirements
    }
    assert implemented == {s.control_id for s in spec.safeguards}


def test_overlay_parameters_become_oscal_set_parameters(law: LawPack) -> None:
    spec = specify(law, make_request(law, **REQUESTS["fti"]), TODAY)
    modify = export(spec, "profile", GENERATED)["profile"]["modify"]
    assert {"param-id": "au-11_odp", "values": ["7 years"]}.items() <= next(
        p for p in modify["set-parameters"] if p["param-id"] == "au-11_odp"
    ).items()


def test_the_same_specification_exports_identical_oscal(law: LawPack) -> None:
    spec = specify(law, make_request(law), TODAY)
    first = json.dumps(export(spec, "profile", GENERATED), sort_keys=True)
    assert first == json.dumps(export(spec, "profile", GENERATED), sort_keys=True)
