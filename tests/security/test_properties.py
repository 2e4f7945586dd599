"""Properties of categorization and specification (hypothesis)."""

from __future__ import annotations

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from sharewise.policy.model import LawPack
from sharewise.security.categorize import LEVELS, OBJECTIVES, rank
from sharewise.services.security import specify
from tests.conftest import TODAY
from tests.security.conftest import FakeSink, make_request

CATEGORIES = [
    "identity",
    "contact",
    "demographics",
    "case_records",
    "mental_health",
    "federal_tax_information",
    "uc_wage_and_claim_information",
    "directory_information",
    "education_record",
    "ssa_data",
]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    data=st.lists(st.sampled_from(CATEGORIES), min_size=1, max_size=4, unique=True),
    form=st.sampled_from(["identified", "limited_data_set", "deidentified"]),
    objective=st.sampled_from(OBJECTIVES),
    records=st.one_of(st.none(), st.integers(0, 50_000)),
)
def test_raising_a_categorization_never_removes_a_control(
    law: LawPack, data: list[str], form: str, objective: str, records: int | None
) -> None:
    assume(form != "deidentified" or not {"identity", "contact"} & set(data))  # the request contract forbids it
    request = make_request(law, data=data, form=form, source={"program": "unemployment_insurance"})
    before = specify(law, request, TODAY, records=records)
    current = before.categorization.level(objective)
    for higher in (lv for lv in LEVELS if rank(lv) > rank(current)):
        after = specify(
            law, request, TODAY, records=records, changes=[(objective, higher)], justification="raise", sink=FakeSink()
        )
        assert {s.control_id for s in before.safeguards} <= {s.control_id for s in after.safeguards}
        assert {d.id for d in before.overlay_duties} <= {d.id for d in after.overlay_duties}
