"""Fixtures for agreement drafting: the clause library, the example parties and one request per type."""

from __future__ import annotations

import base64
import contextlib
import re
import zlib
from pathlib import Path
from typing import Any

import pytest

from sharewise.agreements.library import ClauseLibrary, load_library
from sharewise.agreements.parties import Parties
from sharewise.services.documents import read_parties

REPO = Path(__file__).resolve().parents[2]
EXAMPLE_PARTIES = REPO / "examples" / "parties" / "lakeview-snap-tanf.yaml"
SNAPSHOTS = Path(__file__).resolve().parent / "snapshots"

# One permitted request per agreement type (from the law pack's golden cases).
REQUESTS: dict[str, dict[str, Any]] = {
    "data_sharing_agreement": {
        "as_of": "2026-03-01",
        "source": {"program": "snap", "agency": "Lakeview County Department of Human Services"},
        "recipient": {"kind": "state_or_local_agency", "program": "tanf", "name": "Lakeview TANF unit"},
        "purpose": "eligibility_determination",
        "data": ["identity", "contact", "eligibility_and_benefits"],
    },
    "memorandum_of_understanding": {
        "as_of": "2026-03-01",
        "source": {"program": "medicaid"},
        "recipient": {"kind": "state_or_local_agency", "program": "snap"},
        "purpose": "eligibility_determination",
        "data": ["identity", "eligibility_and_benefits"],
        "facts": {"hipaa_public_benefit_sharing_authorized": True},
    },
    "uc_603_10": {
        "as_of": "2026-03-01",
        "source": {"program": "unemployment_insurance"},
        "recipient": {"kind": "state_or_local_agency", "program": "tanf"},
        "purpose": "eligibility_determination",
        "data": ["identity", "uc_wage_and_claim_information"],
        "facts": {"written_agreement": True},
    },
    "confidentiality_pledge": {
        "as_of": "2026-03-01",
        "source": {"program": "unemployment_insurance"},
        "recipient": {"kind": "state_or_local_agency", "program": "tanf"},
        "purpose": "eligibility_determination",
        "data": ["identity", "uc_wage_and_claim_information"],
        "facts": {"written_agreement": True},
    },
    "business_associate_agreement": {
        "as_of": "2026-03-01",
        "source": {"program": "medicaid"},
        "recipient": {"kind": "contractor", "roles": ["business_associate"]},
        "purpose": "payment",
        "data": ["identity", "health_information", "eligibility_and_benefits"],
        "facts": {"business_associate_agreement": True},
    },
    "qualified_service_organization_agreement": {
        "as_of": "2026-03-01",
        "source": {"program": "sud_treatment"},
        "recipient": {"kind": "contractor", "roles": ["qualified_service_organization"]},
        "purpose": "program_administration",
        "data": ["identity", "sud_treatment_information"],
        "facts": {"qsoa": True},
    },
    "data_use_agreement": {
        "as_of": "2026-03-01",
        "source": {"program": "health_care_provider"},
        "recipient": {"kind": "researcher"},
        "purpose": "research",
        "data": ["health_information", "demographics"],
        "form": "limited_data_set",
        "facts": {"written_agreement": True},
    },
    "ferpa_study_agreement": {
        "as_of": "2026-03-01",
        "source": {"program": "k12_education"},
        "recipient": {"kind": "researcher", "roles": ["organization_conducting_study"]},
        "purpose": "research",
        "data": ["education_record", "demographics"],
        "facts": {"on_behalf_of_school": True, "written_agreement": True},
    },
    "ferpa_audit_evaluation_agreement": {
        "as_of": "2026-03-01",
        "source": {"program": "k12_education"},
        "recipient": {"kind": "researcher", "roles": ["authorized_representative"]},
        "purpose": "program_evaluation",
        "data": ["education_record"],
        "facts": {"written_agreement": True, "ferpa_education_program_purpose": True, "on_behalf_of_school": False},
    },
    "computer_matching_agreement": {
        "as_of": "2026-03-01",
        "source": {"program": "federal_system_of_records"},
        "recipient": {"kind": "state_or_local_agency", "program": "snap"},
        "purpose": "eligibility_determination",
        "data": ["identity", "eligibility_and_benefits"],
        "facts": {"privacy_act_routine_use": True},
    },
    "information_exchange_agreement": {
        "as_of": "2026-03-01",
        "source": {"program": "snap"},
        "recipient": {"kind": "same_agency", "program": "snap"},
        "purpose": "eligibility_determination",
        "data": ["identity", "ssa_data"],
    },
}

# The document type each case drafts (the UC case drafts a data sharing agreement).
TYPE_OF = {case: ("data_sharing_agreement" if case == "uc_603_10" else case) for case in REQUESTS}

NOT_PERMITTED = {
    "as_of": "2026-03-01",
    "source": {"program": "sud_treatment"},
    "recipient": {"kind": "state_or_local_agency", "program": "child_welfare"},
    "purpose": "care_coordination",
    "data": ["sud_treatment_information"],
    "facts": {"valid_consent": False, "court_order": False},
}


@pytest.fixture(scope="session")
def library() -> ClauseLibrary:
    return load_library()


@pytest.fixture(scope="session")
def parties() -> Parties:
    return read_parties(EXAMPLE_PARTIES)


def pdf_text(data: bytes) -> str:
    """The text drawn by a reportlab PDF (inflating compressed streams), for assertions."""
    chunks: list[str] = []
    for match in re.finditer(rb"stream\r?\n(.*?)endstream", data, re.S):
        raw = match.group(1)
        try:
            raw = zlib.decompress(base64.a85decode(raw.strip().removesuffix(b"~>"), adobe=False))
        except (ValueError, zlib.error):
            with contextlib.suppress(zlib.error):
                raw = zlib.decompress(raw)
        for literal in re.findall(rb"\(((?:\\.|[^\\)])*)\)", raw):
            chunks.append(re.sub(rb"\\(.)", rb"\1", literal).decode("latin-1"))
    return " ".join(chunks)
