"""The typed Python API: sharewise.evaluate and sharewise.load_law."""

from __future__ import annotations

import datetime as dt

import pytest

import sharewise
from tests.conftest import TODAY

REQUEST = {
    "source": {"program": "snap"},
    "recipient": {"kind": "state_or_local_agency", "program": "tanf"},
    "purpose": "eligibility_determination",
    "data": ["identity"],
}


def test_evaluate_a_contract_dict() -> None:
    det = sharewise.evaluate(REQUEST, today=TODAY)
    assert det.outcome is sharewise.Outcome.PERMITTED
    assert det.as_of == TODAY


def test_as_of_overrides_the_request_date() -> None:
    det = sharewise.evaluate({**REQUEST, "as_of": "2020-01-01"}, as_of=dt.date(2021, 5, 1), today=TODAY)
    assert det.as_of == dt.date(2021, 5, 1)


def test_invalid_request_raises_with_every_problem() -> None:
    with pytest.raises(sharewise.InvalidRequestError) as info:
        sharewise.evaluate({**REQUEST, "purpose": "fun", "data": ["gossip"]}, today=TODAY)
    assert len(info.value.problems) == 2
    assert info.value.code == "invalid_request"


def test_load_law_is_the_federal_pack() -> None:
    law = sharewise.load_law()
    assert law.law_version.startswith("federal-")
    assert law.authority("hipaa") is not None
