"""Consent records: who agreed that whose records may go where, for what, until when."""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator
from pydantic_core import ErrorDetails, PydanticCustomError

STATEMENTS = {
    "right_to_revoke": "The person may revoke the consent (in writing) at any time, except for what was already done in reliance on it, and how.",
    "conditioning": "Whether treatment, payment, enrollment or eligibility may be conditioned on signing.",
    "no_conditioning_of_services": "Services do not depend on signing.",
    "redisclosure_warning": "Information disclosed may be redisclosed by the recipient and no longer be protected.",
    "part2_notice": "The 42 CFR 2.32 notice: the records are protected by federal law and may not be redisclosed without consent.",
    "voluntary": "Consent is voluntary.",
    "state_files_accessed": "State government files will be accessed to obtain the information.",
    "use_only_for_purpose": "The information will be used only for the stated purpose(s).",
    "informed": "The person was told what will be released, to whom, why, and the risks.",
    "abuser_not_signer": "The signer is not the abuser of the victim (or of the minor or ward, or of the other parent).",
    "copy_to_person": "The person receives a copy of the signed consent.",
}

# A consent id is a FHIR resource id (FHIR R4, datatype `id`), so that an import keeps it and an export
# carries it unchanged; the registry's id column holds the longest one.
CONSENT_ID_MAX = 64
_CONSENT_ID = re.compile(rf"[A-Za-z0-9\-.]{{1,{CONSENT_ID_MAX}}}")
CONSENT_ID_RULE = (
    f"a consent id is 1 to {CONSENT_ID_MAX} letters (A-Z, a-z), digits, '-' or '.' (the FHIR resource id rule)"
)


def is_consent_id(value: str) -> bool:
    """Whether a text is a well-formed consent id (the FHIR id rule): the check before any look-up or store."""
    return _CONSENT_ID.fullmatch(value) is not None


# The registry opens what it holds under this validation context: a limit on new input (a date range, a
# length) must never make a consent already recorded unreadable, or impossible to revoke.
STORED = {"stored": True}


def _new_input(info: ValidationInfo) -> bool:
    return not (isinstance(info.context, dict) and info.context.get("stored") is True)


# No consent date (signature, effective, expiration, revocation) is earlier than this: an 1850 is a typo.
# How far dates may lie ahead is a matter between dates (consent/validate.py), not of one date alone.
EARLIEST_DATE = dt.date(1900, 1, 1)


def _plausible(value: dt.date, info: ValidationInfo) -> dt.date:
    if value < EARLIEST_DATE and _new_input(info):
        raise PydanticCustomError(
            "date_too_early",
            "before {earliest}: not a plausible date for a consent",
            {"earliest": EARLIEST_DATE.isoformat()},
        )
    return value


ConsentDate = Annotated[dt.date, AfterValidator(_plausible)]

# Longest texts a consent takes. Names are personal data: a text too long is refused by its field and
# limit, never quoted. Longer than any real entry, short enough that no one pastes a document in.
VOCABULARY_ID_MAX = 80  # a program, recipient kind, data category, purpose or statement id
NAME_MAX = 200  # a person's or an organization's name, an agency, the form's title
NOTE_MAX = 500  # an expiration event or condition, a representative's authority
DESCRIPTION_MAX = 2000  # the information or the purpose, as the person described it
CLIENT_ID_MAX = 100  # a client id in an agency's system
LANGUAGE_MAX = 35  # a BCP 47 language tag


def _at_most(limit: int) -> AfterValidator:
    def check(value: str, info: ValidationInfo) -> str:
        if len(value) > limit and _new_input(info):
            raise PydanticCustomError("string_too_long", "at most {max_length} characters", {"max_length": limit})
        return value

    return AfterValidator(check)


VocabularyId = Annotated[str, Field(json_schema_extra={"maxLength": VOCABULARY_ID_MAX}), _at_most(VOCABULARY_ID_MAX)]
Name = Annotated[str, Field(json_schema_extra={"maxLength": NAME_MAX}), _at_most(NAME_MAX)]
Note = Annotated[str, Field(json_schema_extra={"maxLength": NOTE_MAX}), _at_most(NOTE_MAX)]
Description = Annotated[str, Field(json_schema_extra={"maxLength": DESCRIPTION_MAX}), _at_most(DESCRIPTION_MAX)]
ClientId = Annotated[str, Field(json_schema_extra={"maxLength": CLIENT_ID_MAX}), _at_most(CLIENT_ID_MAX)]
Language = Annotated[str, Field(json_schema_extra={"maxLength": LANGUAGE_MAX}), _at_most(LANGUAGE_MAX)]


def _fold(text: str) -> str:
    """Letters and digits of any script, case-folded, accents dropped: "José" and "JOSE" fold alike.

    Only combining marks are removed after compatibility decomposition; letters without an ASCII
    form (李, Ø, Ł, ß) are kept, so names in any script give distinct tokens.
    """
    decomposed = unicodedata.normalize("NFKD", text)
    kept = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return "".join(ch for ch in kept.casefold() if ch.isalnum())


def person_lookup_key(given_name: str, family_name: str, date_of_birth_iso: str) -> str:
    """The one normalization behind every keyed person token (consents, shares, accounting)."""
    return f"{_fold(family_name)}|{_fold(given_name)}|{date_of_birth_iso}"


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PersonIdentifiers(_Frozen):
    """The person's identifiers: stored sealed, found by keyed lookup, never logged."""

    given_name: str = Field(min_length=1, max_length=100)
    family_name: str = Field(min_length=1, max_length=100)
    date_of_birth: dt.date
    ssn_last4: str | None = Field(default=None, pattern=r"^\d{4}$")
    client_ids: dict[VocabularyId, ClientId] = Field(default_factory=dict)

    @field_validator("given_name", "family_name")
    @classmethod
    def _has_a_letter(cls, name: str) -> str:
        if not _fold(name):  # a name of punctuation alone would leave only the birth date to tell people apart
            raise ValueError("must contain at least one letter or digit")
        return name

    def lookup_key(self) -> str:
        """The normalized string the keyed person token is computed from."""
        return person_lookup_key(self.given_name, self.family_name, self.date_of_birth.isoformat())

    def __repr__(self) -> str:  # never print identifiers by accident
        return "PersonIdentifiers(<sealed>)"

    __str__ = __repr__


class Discloser(_Frozen):
    """A program (and agency) permitted to disclose."""

    program: VocabularyId
    agency: Name | None = None


class RecipientSpec(_Frozen):
    """A recipient named, or a class of recipients (kind, optionally program)."""

    kind: VocabularyId
    program: VocabularyId | None = None
    name: Name | None = None


class Expiration(_Frozen):
    """When the consent ends: a date, an event, or a condition."""

    date: ConsentDate | None = None
    event: Note | None = None
    condition: Note | None = None


class Signature(_Frozen):
    """Who signed, when, how, and with what authority if not the person."""

    signer: Literal["person", "representative"]
    name: Name = Field(min_length=1)
    signed_on: ConsentDate
    method: Literal["wet_ink", "electronic", "verbal_documented"]
    relationship: Literal["parent", "guardian", "personal_representative", "other"] | None = None
    authority: Note | None = None  # description of the representative's authority


class Revocation(_Frozen):
    """When, how and by whom the consent was revoked."""

    revoked_on: ConsentDate
    method: Literal["written", "electronic", "verbal"]
    by: Name = Field(min_length=1)


class ConsentRecord(_Frozen):
    """A consent as captured: the scope, the signatures and the statements given."""

    id: str | None = None
    person: PersonIdentifiers | None = None  # None when read back without revealing identifiers
    person_is_minor: bool = False
    disclosers: tuple[Discloser, ...] = Field(min_length=1)
    recipients: tuple[RecipientSpec, ...] = Field(min_length=1)
    data: tuple[VocabularyId, ...] = Field(min_length=1)
    information_description: Description | None = None
    purposes: tuple[VocabularyId, ...] = Field(min_length=1)
    purpose_description: Description | None = None
    effective: ConsentDate
    expiration: Expiration = Expiration()
    signatures: tuple[Signature, ...] = Field(min_length=1)
    statements: tuple[VocabularyId, ...] = ()
    language: Language = "en"
    form: Name | None = None
    agency: Name | None = None  # the registry's column holds NAME_MAX
    revocation: Revocation | None = None

    @field_validator("id")
    @classmethod
    def _fhir_id(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None and not is_consent_id(value) and _new_input(info):  # the rule is named, not the id
            raise PydanticCustomError("consent_id", CONSENT_ID_RULE)
        return value

    @field_validator("statements")
    @classmethod
    def _known_statements(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [s for s in value if s not in STATEMENTS]
        if unknown:
            raise ValueError(f"unknown statement(s) {unknown}; known: {sorted(STATEMENTS)}")
        return value

    def in_force(self, on: dt.date) -> bool:
        """Signed and effective, not expired by date, not revoked on that date."""
        if on < self.effective or any(s.signed_on > on for s in self.signatures):
            return False
        if self.expiration.date is not None and on > self.expiration.date:
            return False
        return not (self.revocation is not None and self.revocation.revoked_on <= on)


class RequiredElement(_Frozen):
    """One element a law requires of a consent (from the law pack)."""

    id: str
    text: str
    citations: tuple[str, ...]


class ConsentRequirement(_Frozen):
    """What one authority's consent rule requires, as in force on the signing date."""

    authority: str
    rule: str
    elements: tuple[RequiredElement, ...]


def consent_errors(exc: ValidationError) -> list[ErrorDetails]:
    """What is wrong with a consent, without the values given.

    A list that must not be empty also reports "at least 1 item" when one of its items was refused;
    that error is left out beside the item's own, which says what is wrong.
    """
    errors = exc.errors(include_input=False)
    return [
        e
        for e in errors
        if not (
            e["type"] == "too_short"
            and any(len(o["loc"]) > len(e["loc"]) and o["loc"][: len(e["loc"])] == e["loc"] for o in errors)
        )
    ]
