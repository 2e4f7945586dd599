"""Every consent element the law pack names has a check that passes on a complete consent and fails without it."""

from __future__ import annotations

from typing import Any

import pytest

from sharewise.consent.validate import _run_check, element_checks
from sharewise.domain.consent import STATEMENTS, ConsentRecord
from tests.consent.conftest import PART2

REPRESENTATIVE = {
    "signer": "representative",
    "name": "Pat Parent",
    "signed_on": "2026-03-01",
    "method": "wet_ink",
    "relationship": "parent",
    "authority": "parent of the minor",
}
COMPLETE: dict[str, Any] = {
    **PART2,
    "person_is_minor": True,
    "signatures": [*PART2["signatures"], REPRESENTATIVE],
    "statements": sorted(STATEMENTS),
}


def _breaking(check: dict[str, Any]) -> dict[str, Any]:
    """The smallest change to the complete consent that this check must reject."""
    ((name, arg),) = check.items()
    if name == "present":
        return {arg: None if arg in ("person", "information_description") else []}
    if name == "statement":
        return {"statements": [s for s in COMPLETE["statements"] if s != arg]}
    if name == "written":
        return {"signatures": [{**s, "method": "verbal_documented"} for s in COMPLETE["signatures"]]}
    if name == "person_signed":
        return {"signatures": [REPRESENTATIVE]}
    if name == "representative_for_minor":
        return {"signatures": PART2["signatures"]}
    if name == "representative_authority":
        return {"signatures": [*PART2["signatures"], {**REPRESENTATIVE, "relationship": None, "authority": None}]}
    if name == "dated_expiration":
        return {"expiration": {"event": "end of services"}}
    if name == "expiration":
        return {"expiration": {}}
    raise AssertionError(f"no breaking change known for check {name}")


CASES = [(element, i, check) for element, checks in sorted(element_checks().items()) for i, check in enumerate(checks)]


@pytest.mark.parametrize(("element", "index", "check"), CASES, ids=[f"{e}-{i}" for e, i, _ in CASES])
def test_each_element_check_passes_when_met_and_fails_when_not(element: str, index: int, check: dict[str, Any]) -> None:
    complete = ConsentRecord.model_validate(COMPLETE)
    assert _run_check(check, complete, person_on_file=False) is None
    broken = ConsentRecord.model_construct(**{**complete.__dict__, **_model(_breaking(check))})
    assert _run_check(check, broken, person_on_file=False) is not None


def _model(changes: dict[str, Any]) -> dict[str, Any]:
    # Build the changed fields through the model so that nested values have their proper types.
    full = ConsentRecord.model_validate(
        {
            **COMPLETE,
            **{k: v for k, v in changes.items() if k not in ("person", "disclosers", "recipients", "data", "purposes")},
        }
    )
    out = {k: getattr(full, k) for k in changes if k not in ("person", "disclosers", "recipients", "data", "purposes")}
    for key in ("person", "disclosers", "recipients", "data", "purposes"):
        if key in changes:
            out[key] = None if key == "person" else ()
    if "information_description" in changes:
        out["information_description"] = None
    return out
