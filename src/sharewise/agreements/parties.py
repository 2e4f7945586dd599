"""The parties file: who signs an agreement, their contacts, and the terms the law leaves to them."""

from __future__ import annotations

import calendar
import datetime as dt

from pydantic import BaseModel, ConfigDict, Field

from sharewise.agreements.library import DocumentType

TO_AGREE = "[to be agreed by the parties]"

ROLE_LABELS = {
    "data_custodian": "Data custodian",
    "data_steward": "Data steward",
    "contract_manager": "Contract manager",
    "privacy_officer": "Privacy officer",
    "security_officer": "Information security officer",
    "principal_investigator": "Principal investigator",
    "program_contact": "Program contact",
}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Contact(_Strict):
    """A person to contact at a party."""

    role: str
    name: str = Field(min_length=1)
    title: str | None = None
    email: str | None = None
    phone: str | None = None

    @property
    def role_label(self) -> str:
        return ROLE_LABELS.get(self.role, self.role.replace("_", " ").capitalize())


class Signatory(_Strict):
    """The official who signs for a party."""

    name: str = Field(min_length=1)
    title: str = Field(min_length=1)


class PartyDetails(_Strict):
    """One party to the agreement."""

    legal_name: str = Field(min_length=1)
    short_name: str | None = None
    address: str | None = None
    contacts: tuple[Contact, ...] = Field(min_length=1)
    signatory: Signatory


class AgreementTerms(_Strict):
    """Reference, dates and governing law."""

    reference: str | None = None
    effective_date: dt.date
    term_months: int | None = Field(default=None, gt=0)
    renewals: int | None = Field(default=None, ge=0)
    governing_law: str = "the laws of the State in which the disclosing party is located"


class DataDetails(_Strict):
    """What the categories of the request mean in practice."""

    population: str = TO_AGREE
    time_period: str = TO_AGREE
    frequency: str = TO_AGREE
    record_count: str | None = None
    elements: tuple[str, ...] = ()


class Transfer(_Strict):
    """How and when the information moves."""

    method: str = TO_AGREE
    format: str = TO_AGREE
    schedule: str = TO_AGREE


class Custody(_Strict):
    """Where the information is kept, and by whom."""

    location: str = TO_AGREE
    custodian: str = TO_AGREE


class Security(_Strict):
    """Security requirements beyond the standard clause."""

    framework: str = "NIST SP 800-53 (moderate baseline) or an equivalent the parties agree in writing"
    encryption: str = "in transit (TLS 1.2 or later) and at rest (AES-256 or stronger)"
    log_retention: str = "six years"
    measures: tuple[str, ...] = ()


class Breach(_Strict):
    """Incident notification terms."""

    notify_within_hours: int = Field(default=24, gt=0)
    contact_role: str | None = None


class Retention(_Strict):
    """Destruction terms."""

    destroy_within_days: int = Field(default=30, gt=0)
    method: str = "secure deletion or destruction meeting NIST SP 800-88"
    keep: str | None = None


class Publication(_Strict):
    """Disclosure-avoidance thresholds for published results."""

    min_cell: int = Field(default=11, gt=0)
    review_days: int = Field(default=30, ge=0)


class AuthorizedUser(_Strict):
    """A named person or a role that may use the information."""

    role: str = Field(min_length=1)
    name: str | None = None
    organization: str | None = None


class Matching(_Strict):
    """Computer matching details (5 U.S.C. 552a(o))."""

    justification: str = TO_AGREE
    accuracy: str = TO_AGREE


class Parties(_Strict):
    """Everything an agreement needs that the request and the law do not say."""

    agreement: AgreementTerms
    discloser: PartyDetails
    recipient: PartyDetails
    purpose_description: str | None = None
    data: DataDetails = DataDetails()
    transfer: Transfer = Transfer()
    custody: Custody = Custody()
    security: Security = Security()
    breach: Breach = Breach()
    retention: Retention = Retention()
    publication: Publication = Publication()
    authorized_users: tuple[AuthorizedUser, ...] = ()
    matching: Matching = Matching()
    costs: str = "Each party bears its own costs under this Agreement unless the law provides otherwise."


def add_months(start: dt.date, months: int) -> dt.date:
    """The same day `months` later (clamped to the month's end)."""
    month0 = start.month - 1 + months
    year, month = start.year + month0 // 12, month0 % 12 + 1
    return dt.date(year, month, min(start.day, calendar.monthrange(year, month)[1]))


def term_problems(parties: Parties, doc_type: DocumentType) -> list[tuple[tuple[str, ...], str]]:
    """Where the parties' term breaks the limits the law sets for the document type (path, message)."""
    found: list[tuple[tuple[str, ...], str]] = []
    rules = doc_type.term
    months = parties.agreement.term_months
    if months is not None and rules.max_months is not None and months > rules.max_months:
        found.append(
            (
                ("agreement", "term_months"),
                f"{months} months is longer than a {doc_type.title} may last ({rules.max_months} months)",
            )
        )
    renewals = parties.agreement.renewals
    if renewals is not None and renewals > (rules.max_renewals if rules.max_renewals is not None else renewals):
        found.append(
            (
                ("agreement", "renewals"),
                f"a {doc_type.title} may be renewed at most {rules.max_renewals} time(s)",
            )
        )
    return found
