"""The accounting of disclosures for one person, with each law's exemptions applied."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import func, select

from sharewise.domain.consent import PersonIdentifiers
from sharewise.domain.events import AuditEvent
from sharewise.policy.model import LawPack
from sharewise.security.secrets import FileSecrets, keyed_token
from sharewise.services.authorization import ACCOUNTING_READERS, authorize
from sharewise.store.schema import disclosure_persons, disclosures
from sharewise.wiring import Control

REGIMES_FILE = Path(__file__).resolve().parents[1] / "law" / "accounting" / "regimes.yaml"
PERSON_INDEX_KEY = "person-index"


@lru_cache(maxsize=1)
def regimes() -> dict[str, dict[str, Any]]:
    """The accounting regimes (law/accounting/regimes.yaml)."""
    data = yaml.safe_load(REGIMES_FILE.read_text(encoding="utf-8"))
    return dict(data["regimes"])


@dataclass
class Entry:
    """One disclosure as the person is told about it."""

    at: dt.datetime
    recipient: str
    information: str
    purpose: str
    legal_basis: list[str]
    citations: list[str]
    required_by: list[str]
    share_id: str
    row_count: int


@dataclass
class Accounting:
    """The accounting for one person: entries required by some regime; exempt ones counted."""

    generated_at: dt.datetime
    since: dt.date
    entries: list[Entry] = field(default_factory=list)
    exempt: dict[str, int] = field(default_factory=dict)  # exemption citation -> count


def person_token(control: Control, person: PersonIdentifiers) -> str:
    """The keyed person-index token (the same one the consent registry and shares use)."""
    return keyed_token(FileSecrets(control.settings.keys).key(PERSON_INDEX_KEY), person.lookup_key())


def _regime_applies(regime: dict[str, Any], program: str | None, categories: list[str]) -> bool:
    return (program in regime.get("programs", [])) or bool(set(categories) & set(regime.get("data", [])))


def _exemption(regime: dict[str, Any], rule_ids: list[str], kinds: set[str], form: str, purpose: str) -> str | None:
    if regime.get("only_kinds") and not kinds & set(regime["only_kinds"]):
        return f"{regime['citations'][0]} (only disclosures of kind {', '.join(regime['only_kinds'])})"
    for ex in regime.get("exempt", []):
        if rule_ids and set(rule_ids) <= set(ex.get("rules", [])):
            return str(ex["citation"])
        if kinds and kinds <= set(ex.get("kinds", [])):
            return str(ex["citation"])
        if form in ex.get("forms", []) or purpose in ex.get("purposes", []):
            return str(ex["citation"])
    return None


def accounting_for(
    control: Control, law: LawPack, person: PersonIdentifiers, since: dt.date | None, actor: str
) -> Accounting:
    """Every disclosure of the person's records since a date that some governing law requires listing."""
    now = control.trail.clock()
    start = since or (now.date() - dt.timedelta(days=365 * 6 + 2))
    result = Accounting(generated_at=now, since=start)
    token = person_token(control, person)
    query = (
        select(disclosures)
        .join(disclosure_persons, disclosure_persons.c.disclosure_id == disclosures.c.id)
        .where(disclosure_persons.c.person_token == token)
        .order_by(disclosures.c.at)
    )
    with control.store.transaction() as conn:
        authorize(conn, actor, ACCOUNTING_READERS, "produce an accounting of disclosures")
        rows = conn.execute(query).all()
        for row in rows:
            at = row.at if row.at.tzinfo else row.at.replace(tzinfo=dt.UTC)
            if at.date() < start:
                continue
            categories = json.loads(row.data_categories)
            rule_ids = json.loads(row.legal_basis)
            kinds = {r.kind for r in (law.rule(i) for i in rule_ids) if r is not None}
            citations = [c.cite for i in rule_ids if (r := law.rule(i)) is not None for c in r.versions[-1].citations]
            required_by = []
            exemptions = []
            for name, regime in regimes().items():
                if not _regime_applies(regime, row.source_program, categories):
                    continue
                exemption = _exemption(regime, rule_ids, kinds, row.form, row.purpose)
                if exemption is None:
                    required_by.append(name)
                else:
                    exemptions.append(exemption)
            if required_by:
                result.entries.append(
                    Entry(
                        at=at,
                        recipient=row.recipient,
                        information=", ".join(law.vocabulary.data_categories.get(c, c) for c in categories),
                        purpose=law.vocabulary.purposes.get(row.purpose, row.purpose),
                        legal_basis=rule_ids,
                        citations=citations,
                        required_by=required_by,
                        share_id=row.share_id,
                        row_count=int(row.row_count),
                    )
                )
            else:
                for exemption in exemptions or ["no accounting regime governs these records"]:
                    result.exempt[exemption] = result.exempt.get(exemption, 0) + 1
        control.trail.append(
            conn,
            AuditEvent(
                action="accounting-produced",
                actor=actor,
                subject_type="person",
                subject_id=token[:16],
                details={"entries": len(result.entries), "exempt": sum(result.exempt.values())},
            ),
        )
    return result


def disclosures_by_month(control: Control, actor: str | None, since: dt.date) -> dict[str, int]:
    """How many disclosures (share runs) were recorded each month since a date: {"YYYY-MM": count}.

    For data stewards and auditors, who read the accounting; counts only, no person is involved.
    """
    start = dt.datetime.combine(since, dt.time(), tzinfo=dt.UTC)
    year = func.extract("year", disclosures.c.at)
    month = func.extract("month", disclosures.c.at)
    query = (
        select(year.label("y"), month.label("m"), func.count().label("n"))
        .where(disclosures.c.at >= start)
        .group_by(year, month)
    )
    with control.store.transaction() as conn:
        authorize(conn, actor, ACCOUNTING_READERS, "see disclosure counts")
        return {f"{int(r.y):04d}-{int(r.m):02d}": int(r.n) for r in conn.execute(query)}


def to_csv(acc: Accounting) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["date", "recipient", "information", "purpose", "legal_basis", "citations", "required_by"])
    for e in acc.entries:
        writer.writerow(
            [
                e.at.date().isoformat(),
                _safe(e.recipient),
                e.information,
                e.purpose,
                "; ".join(e.legal_basis),
                "; ".join(e.citations),
                "; ".join(e.required_by),
            ]
        )
    return buffer.getvalue()


def _safe(cell: str) -> str:
    # Spreadsheet formula injection: a cell must not start with = + - @ or a control character.
    return "'" + cell if cell[:1] in ("=", "+", "-", "@", "\t", "\r") else cell


def to_fhir_audit_events(acc: Accounting, person_reference: str) -> list[dict[str, Any]]:
    """One FHIR R4 AuditEvent per entry, in the manner of IHE BALP's privacy disclosure pattern."""
    from fhir.resources.R4B.auditevent import AuditEvent as FhirAuditEvent

    events = []
    for e in acc.entries:
        resource = {
            "resourceType": "AuditEvent",
            "type": {"system": "http://dicom.nema.org/resources/ontology/DCM", "code": "110106", "display": "Export"},
            "subtype": [{"system": "urn:sharewise:audit", "code": "disclosure", "display": "Privacy disclosure"}],
            "action": "R",
            "recorded": e.at.isoformat(),
            "outcome": "0",
            "purposeOfEvent": [{"coding": [{"system": "urn:sharewise:purpose", "code": e.purpose}]}],
            "agent": [
                {
                    "type": {
                        "coding": [
                            {"system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "code": "IRCP"}
                        ]
                    },
                    "who": {"display": e.recipient},
                    "requestor": False,
                }
            ],
            "source": {"observer": {"display": "sharewise"}},
            "entity": [
                {
                    "what": {"reference": person_reference},
                    "type": {"system": "http://terminology.hl7.org/CodeSystem/audit-entity-type", "code": "1"},
                },
                {
                    "what": {"identifier": {"system": "urn:sharewise:share", "value": e.share_id}},
                    "description": e.information,
                    "detail": [{"type": "legal-basis", "valueString": "; ".join(e.citations)}],
                },
            ],
        }
        FhirAuditEvent.model_validate(resource)
        events.append(resource)
    return events


def to_pdf(acc: Accounting, person_label: str, out: Path) -> None:
    """A printable accounting (PDF) for the person."""
    from xml.sax.saxutils import escape  # reportlab reads Paragraph text as markup

    from reportlab.lib.pagesizes import letter
    from reportlab.lib.styles import getSampleStyleSheet
    from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table

    styles = getSampleStyleSheet()
    story: list[Any] = [
        Paragraph("Accounting of disclosures", styles["Title"]),
        Paragraph(
            f"For: {escape(person_label)}. Period: {acc.since.isoformat()} to {acc.generated_at.date().isoformat()}.",
            styles["Normal"],
        ),
        Spacer(1, 12),
    ]
    rows = [["Date", "Recipient", "Information", "Purpose", "Legal basis"]]
    rows += [
        [
            e.at.date().isoformat(),
            Paragraph(escape(e.recipient), styles["BodyText"]),
            Paragraph(escape(e.information), styles["BodyText"]),
            Paragraph(escape(e.purpose), styles["BodyText"]),
            Paragraph(escape("; ".join(e.citations)), styles["BodyText"]),
        ]
        for e in acc.entries
    ]
    story.append(Table(rows, repeatRows=1, colWidths=[60, 110, 140, 100, 130]))
    if acc.exempt:
        story += [
            Spacer(1, 12),
            Paragraph(
                escape(
                    f"{sum(acc.exempt.values())} disclosure(s) are exempt from accounting ({'; '.join(acc.exempt)})."
                ),
                styles["Normal"],
            ),
        ]
    tmp = out.with_name(out.name + ".tmp")
    SimpleDocTemplate(str(tmp), pagesize=letter).build(story)
    tmp.replace(out)
