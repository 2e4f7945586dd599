"""The determination of the contract: the engine's explained answer to a request."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel, ConfigDict

from sharewise.domain.outcome import Outcome

COUNSEL_NOTICE = (
    "sharewise informs legal counsel; it does not replace legal advice. State law, agency "
    "policy and facts not given here may change this answer."
)


class Citation(BaseModel):
    """A citation with its source address."""

    model_config = ConfigDict(frozen=True)

    cite: str
    url: str | None = None


class Alternative(BaseModel):
    """Another pathway that also works, or would with other facts."""

    model_config = ConfigDict(frozen=True)

    pathway: str
    title: str
    status: str  # applies | needs_facts | would_apply_with_facts | needs_consent
    citations: list[str]
    facts: list[str] = []


class AuthorityResult(BaseModel):
    """One governing authority's answer."""

    model_config = ConfigDict(frozen=True)

    authority: str
    name: str
    outcome: Outcome
    pathway: str | None
    decided_by: str | None
    citations: list[str]
    explanation: str
    alternatives: list[Alternative] = []
    flags: list[str] = []
    error: str | None = None


class Obligation(BaseModel):
    """Something that must be done for the disclosure to stay lawful."""

    model_config = ConfigDict(frozen=True)

    id: str
    text: str
    citations: list[str]
    source_authority: str
    rule: str


class Question(BaseModel):
    """An unknown fact that would change the outcome, with where each answer leads."""

    model_config = ConfigDict(frozen=True)

    fact: str
    ask: str
    if_true: Outcome | None = None
    if_false: Outcome | None = None


class Remedy(BaseModel):
    """A change that would make the disclosure lawful, least change first."""

    model_config = ConfigDict(frozen=True)

    kind: str  # facts | consent | form | data
    description: str
    changes: dict[str, Any]
    outcome: Outcome
    citations: list[str] = []
    consent_elements: list[dict[str, Any]] = []


class TraceEntry(BaseModel):
    """One rule considered, and what became of it."""

    model_config = ConfigDict(frozen=True)

    rule: str
    authority: str
    kind: str
    result: str  # holds | does_not_hold | unknown | not_in_force
    reason: str
    version: str | None = None
    unknown_facts: list[str] = []


class ConsentCheck(BaseModel):
    """Whether one consent cited by the request is valid for it, and each reason it is not."""

    model_config = ConfigDict(frozen=True)

    consent_id: str
    ok: bool
    failures: list[str] = []


class Determination(BaseModel):
    """The explained answer to a sharing request."""

    model_config = ConfigDict(frozen=True)

    outcome: Outcome
    law_version: str
    law_hash: str
    as_of: dt.date
    authorities: list[AuthorityResult]
    obligations: list[Obligation]
    documents: list[str]
    questions: list[Question]
    remedies: list[Remedy]
    trace: list[TraceEntry]
    notices: list[str]
    consent_checks: list[ConsentCheck] = []

    def all_citations(self) -> list[str]:
        """Every citation the determination relies on, authorities and obligations."""
        cites = [c for a in self.authorities for c in a.citations]
        cites += [c for o in self.obligations for c in o.citations]
        return cites

    def to_contract(self) -> dict[str, Any]:
        """The determination as the JSON of the contract."""
        return self.model_dump(mode="json")
