"""The demo tour: realistic requests from one county's family-services integration."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sharewise.domain.determination import Determination
from sharewise.policy.evaluate import evaluate
from sharewise.policy.model import LawPack
from sharewise.policy.request_parse import parse_request


@dataclass(frozen=True)
class DemoStep:
    """One request of the tour, the story behind it, and its determination."""

    title: str
    story: str
    request: dict[str, Any]
    determination: Determination


AGENCY = "Lakeview County Department of Human Services"

STEPS: list[tuple[str, str, dict[str, Any]]] = [
    (
        "SNAP eligibility data for the TANF unit",
        "The county's TANF unit wants SNAP household data to determine TANF eligibility without "
        "asking families for the same papers twice.",
        {
            "source": {"agency": AGENCY, "program": "snap"},
            "recipient": {
                "name": "Lakeview TANF unit",
                "kind": "state_or_local_agency",
                "program": "tanf",
            },
            "purpose": "eligibility_determination",
            "data": ["identity", "contact", "eligibility_and_benefits"],
            "form": "identified",
        },
    ),
    (
        "Treatment records for a child welfare caseworker",
        "A caseworker planning a family's reunification asks the county's opioid treatment program "
        "for the mother's treatment progress. No consent has been signed yet.",
        {
            "source": {"agency": "Lakeview Recovery Center", "program": "sud_treatment"},
            "recipient": {
                "name": "Lakeview child welfare",
                "kind": "state_or_local_agency",
                "program": "child_welfare",
            },
            "purpose": "care_coordination",
            "data": ["sud_treatment_information"],
            "form": "identified",
            "facts": {"valid_consent": False, "court_order": False},
        },
    ),
    (
        "School records for a child welfare caseworker",
        "A foster child's caseworker asks the school district for attendance and grades.",
        {
            "source": {"agency": "Lakeview Unified School District", "program": "k12_education"},
            "recipient": {
                "kind": "state_or_local_agency",
                "program": "child_welfare",
                "roles": ["child_welfare_caseworker_with_case_plan_access"],
            },
            "purpose": "service_delivery",
            "data": ["education_record"],
            "form": "identified",
        },
    ),
    (
        "A court asks the school district for records",
        "A juvenile court asks for a student's records; nobody has said yet whether there is an order.",
        {
            "source": {"program": "k12_education"},
            "recipient": {"kind": "court"},
            "purpose": "judicial_proceeding",
            "data": ["education_record"],
            "form": "identified",
        },
    ),
    (
        "Shelter data for the federal grant report",
        "The domestic violence shelter is asked for client-level records for a federal grant report.",
        {
            "source": {"agency": "Harbor House", "program": "domestic_violence_services"},
            "recipient": {"kind": "state_or_local_agency"},
            "purpose": "federal_reporting",
            "data": ["victim_identifying_information"],
            "form": "identified",
        },
    ),
    (
        "TANF referral list for a community food bank",
        "TANF staff want to send a list of families to a community food bank for referrals.",
        {
            "source": {"agency": AGENCY, "program": "tanf"},
            "recipient": {"kind": "community_organization"},
            "purpose": "service_delivery",
            "data": ["identity", "contact", "eligibility_and_benefits"],
            "form": "identified",
        },
    ),
]


def run(law: LawPack, today: dt.date) -> list[DemoStep]:
    """Evaluate every request of the tour."""
    steps = []
    for title, story, raw in STEPS:
        request = parse_request(raw, law.vocabulary, label=f"demo: {title}")
        steps.append(DemoStep(title, story, raw, evaluate(law, request, today)))
    return steps
