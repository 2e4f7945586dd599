"""Check a consent against the required elements of every authority that governs its scope."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from sharewise.domain.consent import ConsentRecord, ConsentRequirement

ELEMENTS_FILE = Path(__file__).resolve().parent / "elements.yaml"


# How far ahead a consent's dates may plausibly lie (a year 2999 is a typo, not a plan): it takes effect
# within EFFECTIVE_WITHIN_YEARS of the last signature, and ends within LONGEST_TERM_YEARS of taking effect.
EFFECTIVE_WITHIN_YEARS = 10
LONGEST_TERM_YEARS = 100

CONSENT_ITSELF = "consent"  # the "authority" of the checks every consent must pass, whatever law governs it
TITLE_OF_CONSENT_ITSELF = "Every consent"


@dataclass(frozen=True)
class ElementProblem:
    """A missing or defective element, with the authority and citation that require it.

    authority is the authority's id, for programs (the API's JSON, tests); title is what people read in the
    message: the law pack's own name of the authority (privacy officers and caseworkers know the law by its
    title, not by sharewise's id for it).
    """

    authority: str
    rule: str
    element: str
    text: str
    citations: tuple[str, ...]
    reason: str
    title: str = ""  # the authority's title; the id stands in when the title is not known

    def __str__(self) -> str:
        cited = f" ({'; '.join(self.citations)})" if self.citations else ""
        return f"{self.title or self.authority} requires '{self.text}'{cited}: {self.reason}"


@lru_cache(maxsize=1)
def element_checks() -> dict[str, list[dict[str, Any]]]:
    """The element-id → checks table (consent/elements.yaml)."""
    data = yaml.safe_load(ELEMENTS_FILE.read_text(encoding="utf-8"))
    return {str(k): list(v) for k, v in data.items()}


def _run_check(check: dict[str, Any], consent: ConsentRecord, person_on_file: bool) -> str | None:
    """None when the check passes, else the reason it fails."""
    ((name, arg),) = check.items()
    if name == "present" and arg == "person" and person_on_file:
        return None
    if name == "present":
        value = getattr(consent, arg)
        return None if value else f"the consent has no {arg.replace('_', ' ')}"
    if name == "statement":
        return None if arg in consent.statements else f"the statement '{arg}' is not given"
    if name == "written":
        ok = any(s.method in ("wet_ink", "electronic") for s in consent.signatures)
        return None if ok else "no written (wet ink or electronic) signature"
    if name == "person_signed":
        return None if any(s.signer == "person" for s in consent.signatures) else "the person did not sign"
    if name == "representative_for_minor":
        if not consent.person_is_minor:
            return None
        ok = any(s.signer == "representative" and s.relationship in ("parent", "guardian") for s in consent.signatures)
        return None if ok else "the person is a minor and no parent or guardian signed"
    if name == "representative_authority":
        bad = [s for s in consent.signatures if s.signer == "representative" and not (s.authority or s.relationship)]
        return None if not bad else "a representative signed without a description of their authority"
    if name == "dated_expiration":
        return (
            None if consent.expiration.date is not None else "no expiration date (it must be reasonably time-limited)"
        )
    if name == "expiration":
        e = consent.expiration
        return None if (e.date or e.event or e.condition) else "no expiration date, event or condition"
    raise ValueError(f"unknown consent check '{name}'")


def validate_consent(
    consent: ConsentRecord,
    requirements: list[ConsentRequirement],
    person_on_file: bool = False,
    titles: Mapping[str, str] | None = None,
    today: dt.date | None = None,
) -> list[ElementProblem]:
    """Every element missing or defective, for the requirements of each governing authority.

    person_on_file: the consent was read from the registry, where the person is stored sealed.
    titles: authority id -> its title in the law pack, for the messages (an authority without one is named by id).
    today: when given, a signature dated after it is a defect (a consent is recorded once signed).
    """
    titles = titles or {}
    problems: list[ElementProblem] = []
    checks = element_checks()
    for rule in requirements:
        for element in rule.elements:
            for check in checks.get(element.id, [{"unmapped": element.id}]):
                if "unmapped" in check:
                    reason = "sharewise cannot check this element yet (no check mapped); review it by hand"
                else:
                    failure = _run_check(check, consent, person_on_file)
                    if failure is None:
                        continue
                    reason = failure
                problems.append(
                    ElementProblem(
                        rule.authority,
                        rule.rule,
                        element.id,
                        element.text,
                        element.citations,
                        reason,
                        titles.get(rule.authority, rule.authority),
                    )
                )
                break
    problems += [
        ElementProblem(CONSENT_ITSELF, "consent.dates", element, text, (), reason, TITLE_OF_CONSENT_ITSELF)
        for element, text, reason in _date_defects(consent, today)
    ]
    return problems


def _years_after(day: dt.date, years: int) -> dt.date:
    """The same day so many years later (29 February becomes 28 February in a common year)."""
    try:
        return day.replace(year=day.year + years)
    except ValueError:
        return day.replace(year=day.year + years, day=28)


def _date_defects(consent: ConsentRecord, today: dt.date | None) -> list[tuple[str, str, str]]:
    """(element, requirement, reason) for dates that mean the consent could never be in force as written,
    or that lie implausibly far ahead."""
    defects: list[tuple[str, str, str]] = []
    last_signed = max(s.signed_on for s in consent.signatures)
    if consent.effective > _years_after(last_signed, EFFECTIVE_WITHIN_YEARS):
        defects.append(
            (
                "effective",
                f"An effective date at most {EFFECTIVE_WITHIN_YEARS} years after signing",
                f"the consent takes effect more than {EFFECTIVE_WITHIN_YEARS} years after it was signed",
            )
        )
    ends = consent.expiration.date
    if ends is not None and ends > _years_after(consent.effective, LONGEST_TERM_YEARS):
        defects.append(
            (
                "expiration",
                f"An expiration at most {LONGEST_TERM_YEARS} years after the effective date",
                f"the consent expires more than {LONGEST_TERM_YEARS} years after it takes effect",
            )
        )
    if ends is not None and ends < consent.effective:
        defects.append(
            ("expiration", "An expiration after the effective date", "the consent expires before it takes effect")
        )
    if ends is not None:
        late = sorted({s.signer for s in consent.signatures if s.signed_on > ends})
        if late:
            who = " and ".join(f"the {signer}'s" for signer in late)
            defects.append(
                ("expiration", "An expiration after signing", f"{who} signature is dated after the consent expires")
            )
    if today is not None:
        future = sorted({s.signer for s in consent.signatures if s.signed_on > today})
        if future:
            who = " and ".join(f"the {signer}'s" for signer in future)
            defects.append(
                (
                    "signature",
                    "Signatures dated on or before the day the consent is recorded",
                    f"{who} signature is dated in the future",
                )
            )
    return defects
