"""Consent use cases: validate, record, find, revoke, reveal, FHIR exchange; each one audited."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from sqlalchemy import Connection

from sharewise.consent import fhir
from sharewise.consent.match import coverage_failures
from sharewise.consent.registry import SqlConsentStore
from sharewise.consent.validate import ElementProblem, validate_consent
from sharewise.domain.consent import (
    ConsentRecord,
    ConsentRequirement,
    PersonIdentifiers,
    RequiredElement,
    Revocation,
    consent_errors,
)
from sharewise.domain.determination import ConsentCheck
from sharewise.domain.errors import AccessDeniedError, InvalidDataError, NotFoundError, Problem, StorageError
from sharewise.domain.events import AuditEvent
from sharewise.domain.request import Recipient, Request, Source
from sharewise.policy import condition as cond_mod
from sharewise.policy.model import LawPack
from sharewise.policy.request_parse import make_lookup
from sharewise.policy.suggest import did_you_mean
from sharewise.policy.yamlfile import Lines, YamlProblem, line_of, read_yaml
from sharewise.security.secrets import FileSecrets
from sharewise.services.authorization import CONSENT_READERS, CONSENT_WRITERS, IDENTIFIER_READERS, authorize
from sharewise.store.files import write_private
from sharewise.wiring import Control
from sharewise.workflow.access import User
from sharewise.workflow.store import SqlWorkflowStore


def registry(control: Control) -> SqlConsentStore:
    return SqlConsentStore(FileSecrets(control.settings.keys))


def requirements_for(law: LawPack, consent: ConsentRecord) -> list[ConsentRequirement]:
    """The consent rules (in force on the signing date) of every authority governing the consent's scope."""
    signed_on = min(s.signed_on for s in consent.signatures)
    found: dict[str, ConsentRequirement] = {}
    for discloser in consent.disclosers:
        for recipient in consent.recipients:
            for purpose in consent.purposes:
                request = Request(
                    source=Source(program=discloser.program),
                    recipient=Recipient(kind=recipient.kind, program=recipient.program),
                    purpose=purpose,
                    data=consent.data,
                )
                lookup = make_lookup(request)
                for authority in law.authorities:
                    if cond_mod.evaluate(authority.governs_when, lookup)[0] is False:
                        continue
                    for rule in authority.rules:
                        version = rule.version_on(signed_on)
                        if rule.kind != "consent" or version is None or rule.id in found:
                            continue
                        if cond_mod.evaluate(version.when, lookup)[0] is False:
                            continue
                        found[rule.id] = ConsentRequirement(
                            authority=rule.authority,
                            rule=rule.id,
                            elements=tuple(
                                RequiredElement(id=e.id, text=e.text, citations=e.citations)
                                for e in version.consent_elements
                            ),
                        )
    return list(found.values())


def titles_of(law: LawPack) -> dict[str, str]:
    """Each authority's title in the law pack, by id: consent messages name a law as people know it."""
    return {a.id: a.name for a in law.authorities}


def check_vocabulary(law: LawPack, consent: ConsentRecord, label: str) -> list[Problem]:
    """Unknown programs, kinds, purposes or categories, with suggestions."""
    v = law.vocabulary
    problems = []

    def check(value: str | None, ids: dict[str, str], where: str, what: str) -> None:
        if value is not None and value not in ids:
            problems.append(Problem(f"{label}: {where}", f"unknown {what} '{value}'{did_you_mean(value, ids)}"))

    for i, d in enumerate(consent.disclosers):
        check(d.program, v.programs, f"disclosers.{i}.program", "program")
    for i, r in enumerate(consent.recipients):
        check(r.kind, v.recipient_kinds, f"recipients.{i}.kind", "recipient kind")
        check(r.program, v.programs, f"recipients.{i}.program", "program")
    for i, p in enumerate(consent.purposes):
        check(p, v.purposes, f"purposes.{i}", "purpose")
    for i, c in enumerate(consent.data):
        check(c, v.data_categories, f"data.{i}", "data category")
    return problems


def _read_yaml_or_json(path: Path, what: str) -> tuple[Any, Lines]:
    """A file's data and the line of each value: YAML, or JSON (a JSON syntax error named as JSON's)."""
    try:
        return read_yaml(path)
    except YamlProblem as exc:
        raise InvalidDataError(f"malformed {what} file", exc.problems) from exc


def read_consent(path: Path) -> ConsentRecord:
    """A consent from a YAML or JSON file; every problem reported with its line."""
    data, lines = _read_yaml_or_json(path, "consent")
    try:
        return ConsentRecord.model_validate(data)
    except ValidationError as exc:
        problems = []
        for e in consent_errors(exc):
            loc = tuple(e["loc"])
            line = line_of(lines, loc)
            msg = "required field is missing" if e["type"] == "missing" else e["msg"]
            problems.append(Problem(f"{path}:{line}: {'.'.join(map(str, loc))}" if line else str(path), msg))
        raise InvalidDataError("invalid consent", problems) from exc


def read_person(path: Path) -> PersonIdentifiers:
    """A person's identifiers from a YAML or JSON file (never echoed in errors: only field names)."""
    data, _ = _read_yaml_or_json(path, "person")
    try:
        return PersonIdentifiers.model_validate(data)
    except ValidationError as exc:
        raise InvalidDataError(
            "invalid person file",
            [
                Problem(
                    f"{path}: {'.'.join(map(str, e['loc']))}", "missing" if e["type"] == "missing" else "invalid value"
                )
                for e in exc.errors()
            ],
        ) from exc


def validate(
    law: LawPack, consent: ConsentRecord, label: str = "consent", today: dt.date | None = None
) -> list[ElementProblem]:
    """Vocabulary problems raise; element problems are returned (empty: valid). today: refuse future signatures."""
    problems = check_vocabulary(law, consent, label)
    if problems:
        raise InvalidDataError("the consent uses unknown ids", problems)
    return validate_consent(consent, requirements_for(law, consent), titles=titles_of(law), today=today)


def _element_error(problems: list[ElementProblem], label: str) -> InvalidDataError:
    return InvalidDataError(
        "the consent lacks required elements; nothing was stored",
        [Problem(f"{label}: {p.element}", str(p)) for p in problems],
    )


@dataclass(frozen=True)
class Recorded:
    """A consent just recorded, and the consents in force it repeats (same person, scope and dates)."""

    id: str
    repeats: tuple[str, ...] = ()


def record(control: Control, law: LawPack, consent: ConsentRecord, actor: str, label: str = "consent") -> Recorded:
    """Validate and store a consent with its audit record, in one transaction.

    A consent that repeats one in force (the same person, programs, recipients, data, purposes and
    dates) is recorded all the same, since a person may sign again, and the repeated ids are returned
    (and audited) for the recorder to be warned: two records of one signature should become one.
    """
    now = control.trail.clock()
    problems = validate(law, consent, label, today=now.date())
    if problems:
        raise _element_error(problems, label)
    store = registry(control)
    with control.store.transaction() as conn:
        user = authorize(conn, actor, CONSENT_WRITERS, "record consents")
        if user is not None:  # recorded for the recorder's agency, as the API and web pages record it
            consent = consent.model_copy(update={"agency": user.agency_id})
        repeats = tuple(store.alike_in_force(conn, consent, now.date(), user.agency_id if user else None))
        consent_id = store.add(conn, consent, now)
        details: dict[str, Any] = {"programs": len(consent.disclosers), "categories": len(consent.data)}
        if repeats:
            details["repeats"] = ",".join(repeats)  # ids, as the audit trail keeps plain values
        _audit(control, conn, "consent-recorded", actor, consent_id, details, consent.agency)
    return Recorded(consent_id, repeats)


def add(control: Control, law: LawPack, consent: ConsentRecord, actor: str, label: str = "consent") -> str:
    """Validate and store a consent (see `record`); its id."""
    return record(control, law, consent, actor, label).id


def _in_scope(user: User | None, record: ConsentRecord, action: str, auditors_too: bool = True) -> None:
    """A consent recorded by an agency is for that agency's people (and auditors, to read); single-user mode: all."""
    if user is None or record.agency in (None, user.agency_id) or (auditors_too and user.has("auditor")):
        return
    raise AccessDeniedError(f"{user.id} may not {action} consents of another agency")


def show(control: Control, consent_id: str, actor: str, reveal: bool = False) -> ConsentRecord:
    with control.store.transaction() as conn:
        user = authorize(conn, actor, IDENTIFIER_READERS if reveal else CONSENT_READERS, "see consents")
        record = registry(control).get(conn, consent_id, reveal=reveal)
        _in_scope(user, record, "see")
        if reveal:
            _audit(control, conn, "consent-identifiers-revealed", actor, consent_id, {}, record.agency)
    return record


def list_consents(control: Control, agency: str | None = None, actor: str | None = None) -> list[ConsentRecord]:
    """Recent consents, without identifiers; with an actor, only for someone who may see consents.

    An agency asked for must be one sharewise knows: registered, or named on a consent (a consent file
    recorded before any user was registered names its own). An unknown one is an error, not an empty list.
    A user who is not an auditor sees what `show` would show them: their agency's consents and those
    recorded for no agency; asking for another agency's is refused.
    """
    with control.store.transaction() as conn:
        user = authorize(conn, actor, CONSENT_READERS, "see consents") if actor is not None else None
        store = registry(control)
        if agency is not None and not (
            SqlWorkflowStore().agency_exists(conn, agency) or store.names_agency(conn, agency)
        ):
            raise InvalidDataError(
                "unknown agency", [Problem("agency", f"no agency '{agency}' is registered, and no consent names it")]
            )
        if user is None or user.has("auditor"):
            return store.recent(conn, agency)
        if agency not in (None, user.agency_id):
            raise AccessDeniedError(f"{user.id} may not see consents of another agency")
        return store.recent(conn, user.agency_id, unassigned_too=agency is None)


def revocation(revoked_on: dt.date, method: str, by: str, fields: Mapping[str, str] | None = None) -> Revocation:
    """A revocation from what someone typed; each problem named by its field (or the option given for it
    in `fields`) and the rule, never by the value (who revoked is a person's name)."""
    try:
        return Revocation.model_validate({"revoked_on": revoked_on, "method": method, "by": by})
    except ValidationError as exc:
        names = fields or {}
        problems = [
            Problem(names.get(str(e["loc"][0]), ".".join(map(str, e["loc"]))), e["msg"])
            for e in exc.errors(include_input=False)
        ]
        raise InvalidDataError("invalid revocation", problems) from None


def revoke(control: Control, consent_id: str, revocation: Revocation, actor: str) -> ConsentRecord:
    """Record a revocation the person has made: dated on or before today (a future date is refused)."""
    today = control.trail.clock().date()
    if revocation.revoked_on > today:
        raise InvalidDataError(
            "a revocation is recorded once it is made",
            [Problem("revoked_on", f"{revocation.revoked_on} is after today ({today})")],
        )
    with control.store.transaction() as conn:
        user = authorize(conn, actor, CONSENT_WRITERS, "revoke consents")
        _in_scope(user, registry(control).get(conn, consent_id), "revoke", auditors_too=False)
        updated = registry(control).revoke(conn, consent_id, revocation)
        _audit(control, conn, "consent-revoked", actor, consent_id, {"method": revocation.method}, updated.agency)
    return updated


@dataclass(frozen=True)
class FindResult:
    """The answer to a caseworker's look-up: covered or not, and by which consent only."""

    covered: bool
    consent_id: str | None
    reasons: list[str]


def find(
    control: Control, law: LawPack, person: PersonIdentifiers, request: Request, on: dt.date, actor: str
) -> FindResult:
    """Does a consent in force cover this person, recipient, purpose and data? Reveals no other consent."""
    with control.store.transaction() as conn:
        authorize(conn, actor, CONSENT_WRITERS, "look up consents")
        candidates = registry(control).for_person(conn, person)
        result = FindResult(False, None, ["no consent in force covers this disclosure"])
        for consent in sorted(candidates, key=lambda c: c.effective, reverse=True):
            failures = coverage_failures(consent, request, on)
            if not failures and not validate_consent(consent, requirements_for(law, consent), person_on_file=True):
                result = FindResult(True, consent.id, [])
                break
        _audit(
            control, conn, "consent-looked-up", actor, result.consent_id or "none", {"covered": result.covered}, None
        )
    return result


def check_cited(control: Control, law: LawPack, request: Request, on: dt.date) -> list[ConsentCheck]:
    """For each consent id a request cites: is it valid for this disclosure on this date, and why not."""
    checks = []
    titles = titles_of(law)
    with control.store.transaction() as conn:
        store = registry(control)
        for consent_id in request.consents:
            consent: ConsentRecord
            try:
                consent = store.get(conn, consent_id)
            except NotFoundError:
                checks.append(
                    ConsentCheck(consent_id=consent_id, ok=False, failures=["no such consent in the registry"])
                )
                continue
            failures = coverage_failures(consent, request, on)
            problems = validate_consent(consent, requirements_for(law, consent), person_on_file=True, titles=titles)
            failures += [str(p) for p in problems]
            checks.append(ConsentCheck(consent_id=consent_id, ok=not failures, failures=failures))
    return checks


def read_fhir(path: Path) -> ConsentRecord:
    """A consent from an HL7 FHIR R4 Consent file, which must contain the Patient whose consent it is."""
    consent = fhir.from_fhir(fhir.read_json(path), str(path))
    if consent.person is None:
        raise InvalidDataError("the FHIR Consent has no contained Patient: sharewise needs to know whose consent it is")
    return consent


def import_fhir(control: Control, law: LawPack, path: Path, actor: str) -> Recorded:
    """Record a FHIR R4 Consent file (see `record`): its id, and the consents in force it repeats."""
    return record(control, law, read_fhir(path), actor, str(path))


def export_fhir(control: Control, consent_id: str, actor: str) -> dict[str, Any]:
    with control.store.transaction() as conn:
        authorize(conn, actor, IDENTIFIER_READERS, "export consents with identifiers")
        record = registry(control).get(conn, consent_id, reveal=True)
        _audit(control, conn, "consent-exported", actor, consent_id, {"format": "fhir-r4"}, record.agency)
    return fhir.to_fhir(record)


def export_fhir_file(control: Control, consent_id: str, actor: str, out: Path) -> None:
    """Write a consent as a FHIR R4 Consent (JSON, with identifiers) to a file of mode 600, whole or not at all.

    `consent-exported` is recorded once the file is in place (and the file removed if that record
    cannot be written); a failed write is recorded as `consent-export-failed` and leaves no file.
    """
    if out.is_dir():
        raise InvalidDataError("invalid option", [Problem("--out", f"{out} is a folder: name the file to write")])
    if not out.parent.is_dir():
        raise InvalidDataError("invalid option", [Problem("--out", f"the folder of {out} does not exist")])
    with control.store.transaction() as conn:
        authorize(conn, actor, IDENTIFIER_READERS, "export consents with identifiers")
        record = registry(control).get(conn, consent_id, reveal=True)
    details: dict[str, Any] = {"format": "fhir-r4"}
    try:
        write_private(out, json.dumps(fhir.to_fhir(record), indent=2).encode("utf-8"))
    except OSError as exc:
        with contextlib.suppress(Exception), control.store.transaction() as conn:
            _audit(
                control,
                conn,
                "consent-export-failed",
                actor,
                consent_id,
                {**details, "error": StorageError.code},
                record.agency,
                outcome="failure",
            )
        raise StorageError(
            "cannot write the export; nothing was written", [Problem(str(out), exc.strerror or type(exc).__name__)]
        ) from exc
    try:
        with control.store.transaction() as conn:
            _audit(control, conn, "consent-exported", actor, consent_id, details, record.agency)
    except BaseException:
        out.unlink(missing_ok=True)  # no record, no export
        raise


def _audit(
    control: Control,
    conn: Connection,
    action: str,
    actor: str,
    subject: str,
    details: dict[str, Any],
    agency: str | None,
    outcome: str = "success",
) -> None:
    control.trail.append(
        conn,
        AuditEvent(
            action=action,
            actor=actor,
            subject_type="consent",
            subject_id=subject,
            agency=agency,
            details=details,
            outcome=outcome,
        ),
    )
