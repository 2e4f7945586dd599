"""HL7 FHIR R4 Consent import and export, lossless for everything a consent record holds."""

from __future__ import annotations

import json
from typing import Any

from fhir.resources.R4B.consent import Consent
from pydantic import ValidationError

from sharewise.domain.consent import ConsentRecord
from sharewise.domain.errors import InvalidDataError, Problem

EXT = "urn:sharewise:fhir:consent:"
PURPOSE_SYSTEM = "urn:sharewise:purpose"
CATEGORY_SYSTEM = "urn:sharewise:data-category"
PROGRAM_SYSTEM = "urn:sharewise:program"
RECIPIENT_SYSTEM = "urn:sharewise:recipient-kind"
SCOPE = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}]}
CATEGORY = {"coding": [{"system": "http://loinc.org", "code": "59284-0", "display": "Patient Consent"}]}


def _ext(name: str, value: Any) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"url": EXT + name, "valueBoolean": value}
    return {"url": EXT + name, "valueString": value if isinstance(value, str) else json.dumps(value, sort_keys=True)}


def to_fhir(consent: ConsentRecord) -> dict[str, Any]:
    """A FHIR R4 Consent resource (as JSON data) for a consent record."""
    first_signed = min(s.signed_on for s in consent.signatures)
    resource: dict[str, Any] = {
        "resourceType": "Consent",
        "status": "inactive" if consent.revocation is not None else "active",
        "scope": SCOPE,
        "category": [CATEGORY],
        "dateTime": f"{first_signed.isoformat()}T00:00:00Z",
        "language": consent.language,
        "organization": [
            {"display": d.agency or d.program, "identifier": {"system": PROGRAM_SYSTEM, "value": d.program}}
            for d in consent.disclosers
        ],
        "policyRule": {"text": "See the sharewise determination for the governing authorities."},
        "provision": {
            "type": "permit",
            "period": {
                "start": consent.effective.isoformat(),
                **({"end": consent.expiration.date.isoformat()} if consent.expiration.date else {}),
            },
            "actor": [
                {
                    "role": {
                        "coding": [
                            {"system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "code": "IRCP"}
                        ]
                    },
                    "reference": {
                        "display": r.name or r.kind,
                        "identifier": {
                            "system": RECIPIENT_SYSTEM,
                            "value": r.kind + (f"|{r.program}" if r.program else ""),
                        },
                    },
                }
                for r in consent.recipients
            ],
            "purpose": [{"system": PURPOSE_SYSTEM, "code": p} for p in consent.purposes],
            "code": [{"coding": [{"system": CATEGORY_SYSTEM, "code": c}]} for c in consent.data],
        },
    }
    if consent.id:
        resource["id"] = consent.id
        resource["identifier"] = [{"system": "urn:sharewise:consent", "value": consent.id}]
    if consent.person is not None:
        p = consent.person
        patient: dict[str, Any] = {
            "resourceType": "Patient",
            "id": "person",
            "name": [{"family": p.family_name, "given": [p.given_name]}],
            "birthDate": p.date_of_birth.isoformat(),
        }
        identifiers = [{"system": f"urn:sharewise:client-id:{k}", "value": v} for k, v in sorted(p.client_ids.items())]
        if p.ssn_last4:
            identifiers.append({"system": "urn:sharewise:ssn-last4", "value": p.ssn_last4})
        if identifiers:
            patient["identifier"] = identifiers
        resource["contained"] = [patient]
        resource["patient"] = {"reference": "#person"}
    if consent.form:
        resource["sourceAttachment"] = {"title": consent.form}
    extensions = [
        _ext("signatures", [s.model_dump(mode="json") for s in consent.signatures]),
        _ext("statements", list(consent.statements)),
        _ext("person-is-minor", consent.person_is_minor),
    ]
    for name, value in (
        ("information-description", consent.information_description),
        ("purpose-description", consent.purpose_description),
        ("expiration-event", consent.expiration.event),
        ("expiration-condition", consent.expiration.condition),
        ("agency", consent.agency),
    ):
        if value:
            extensions.append(_ext(name, value))
    if consent.revocation is not None:
        extensions.append(_ext("revocation", consent.revocation.model_dump(mode="json")))
    resource["extension"] = extensions
    Consent.model_validate(resource)  # what we emit must be valid FHIR R4
    return resource


def from_fhir(data: dict[str, Any], label: str = "consent.json") -> ConsentRecord:
    """A consent record from a FHIR R4 Consent resource; every problem reported at once."""
    try:
        resource = Consent.model_validate(data)
    except ValidationError as exc:
        raise InvalidDataError(
            "not a valid FHIR R4 Consent",
            [Problem(f"{label}: {'.'.join(str(p) for p in e['loc'])}", e["msg"]) for e in exc.errors()],
        ) from exc
    problems: list[Problem] = []
    ext = {e.url[len(EXT) :]: e for e in (resource.extension or []) if e.url and e.url.startswith(EXT)}

    def ext_json(name: str, default: Any) -> Any:
        item = ext.get(name)
        if item is None or item.valueString is None:
            return default
        try:
            return json.loads(item.valueString)
        except ValueError:
            problems.append(Problem(f"{label}: extension {name}", "not valid JSON"))
            return default

    def ext_text(name: str) -> str | None:
        item = ext.get(name)
        return item.valueString if item is not None else None

    provision = resource.provision
    person = None
    for contained in resource.contained or []:
        if contained.get_resource_type() == "Patient":
            pd = contained.model_dump(mode="json")
            ids = {i["system"]: i["value"] for i in pd.get("identifier", [])}
            person = {
                "given_name": (pd.get("name") or [{}])[0].get("given", [""])[0],
                "family_name": (pd.get("name") or [{}])[0].get("family", ""),
                "date_of_birth": pd.get("birthDate"),
                "ssn_last4": ids.get("urn:sharewise:ssn-last4"),
                "client_ids": {
                    k.split(":", 3)[3]: v for k, v in ids.items() if k.startswith("urn:sharewise:client-id:")
                },
            }
    recipients = []
    for actor in (provision.actor if provision else None) or []:
        value = actor.reference.identifier.value if actor.reference.identifier else None
        kind, _, program = (value or "").partition("|")
        display = actor.reference.display
        recipients.append(
            {
                "kind": kind or "community_organization",
                "program": program or None,
                "name": display if display and display != kind else None,
            }
        )
    period = provision.period if provision else None
    raw: dict[str, Any] = {
        "id": resource.id,
        "person": person,
        "person_is_minor": bool(ext["person-is-minor"].valueBoolean) if "person-is-minor" in ext else False,
        "disclosers": [
            {
                "program": o.identifier.value if o.identifier else None,
                "agency": o.display if o.display and (not o.identifier or o.display != o.identifier.value) else None,
            }
            for o in (resource.organization or [])
        ],
        "recipients": recipients,
        "data": [c.coding[0].code for c in ((provision.code if provision else None) or []) if c.coding],
        "information_description": ext_text("information-description"),
        "purposes": [p.code for p in ((provision.purpose if provision else None) or [])],
        "purpose_description": ext_text("purpose-description"),
        "effective": str(period.start)[:10]
        if period and period.start
        else (str(resource.dateTime)[:10] if resource.dateTime else None),
        "expiration": {
            "date": str(period.end)[:10] if period and period.end else None,
            "event": ext_text("expiration-event"),
            "condition": ext_text("expiration-condition"),
        },
        "signatures": ext_json("signatures", []),
        "statements": ext_json("statements", []),
        "language": resource.language or "en",
        "form": resource.sourceAttachment.title if resource.sourceAttachment else None,
        "agency": ext_text("agency"),
        "revocation": ext_json("revocation", None),
    }
    if not raw["signatures"] and resource.dateTime:
        problems.append(
            Problem(f"{label}: extension signatures", "no signature recorded; sharewise needs who signed, how and when")
        )
    if problems:
        raise InvalidDataError("cannot import the FHIR Consent", problems)
    try:
        return ConsentRecord.model_validate(raw)
    except ValidationError as exc:
        raise InvalidDataError(
            "the FHIR Consent lacks what a sharewise consent needs",
            [Problem(f"{label}: {'.'.join(str(p) for p in e['loc'])}", e["msg"]) for e in exc.errors()],
        ) from exc
