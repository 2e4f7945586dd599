"""HL7 FHIR R4 Consent import and export, lossless for everything a consent record holds."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fhir.resources.R4B.consent import Consent
from pydantic import ValidationError

from sharewise.domain.consent import CONSENT_ID_RULE, ConsentRecord, consent_errors, is_consent_id
from sharewise.domain.errors import InvalidDataError, Problem

EXT = "urn:sharewise:fhir:consent:"
PURPOSE_SYSTEM = "urn:sharewise:purpose"
CATEGORY_SYSTEM = "urn:sharewise:data-category"
PROGRAM_SYSTEM = "urn:sharewise:program"
RECIPIENT_SYSTEM = "urn:sharewise:recipient-kind"
# What each R4 Consent status means for an import: only "active", and "inactive" with the revocation
# our own export records for it, are permissions sharewise can hold.
STATUS_REFUSED = {
    "draft": "a draft consent has not been agreed to",
    "proposed": "a proposed consent has not been agreed to",
    "rejected": "a rejected consent records that the person refused",
    "entered-in-error": "a consent entered in error is not a consent",
}
# Provision elements that narrow a permit in ways a sharewise consent cannot hold: importing the permit
# without them would allow more than the person agreed to.
NARROWING = {
    "action": "action",
    "class_fhir": "class",
    "data": "data",
    "dataPeriod": "dataPeriod",
    "securityLabel": "securityLabel",
}
MODIFIER = "a modifier extension changes the consent's meaning in a way sharewise cannot know"
SCOPE = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}]}
CATEGORY = {"coding": [{"system": "http://loinc.org", "code": "59284-0", "display": "Patient Consent"}]}


def _ext(name: str, value: Any) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"url": EXT + name, "valueBoolean": value}
    return {"url": EXT + name, "valueString": value if isinstance(value, str) else json.dumps(value, sort_keys=True)}


def _fhir_path(loc: tuple[int | str, ...]) -> str:
    """A pydantic error location as a FHIR path, e.g. `Consent.contained[0].birthDate`."""
    path = "Consent"
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            name = part.removesuffix("_fhir")
            path += "." + (f"_{name.removesuffix('__ext')}" if name.endswith("__ext") else name)
    return path


def read_json(path: Path) -> dict[str, Any]:
    """A FHIR resource from a JSON file; what is wrong is said by line and column, never by echoing the text."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        problem = Problem(str(path), f"not UTF-8 text (at byte {exc.start})")
        raise InvalidDataError(f"cannot read FHIR JSON from {path}", [problem]) from exc
    except OSError as exc:
        problem = Problem(str(path), exc.strerror or type(exc).__name__)
        raise InvalidDataError(f"cannot read FHIR JSON from {path}", [problem]) from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:  # exc.msg names the syntax error only, not the document's text
        problem = Problem(f"{path}:{exc.lineno}:{exc.colno}", f"not valid JSON: {exc.msg}")
        raise InvalidDataError(f"cannot read FHIR JSON from {path}", [problem]) from exc
    if not isinstance(data, dict):
        problem = Problem(str(path), f"a FHIR resource is a JSON object, not {type(data).__name__}")
        raise InvalidDataError(f"cannot read FHIR JSON from {path}", [problem])
    return data


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


def _permission_problems(resource: Consent, has_revocation: bool, label: str) -> list[Problem]:
    """Why the Consent is not a permission sharewise can hold: empty when it is an agreed, plain permit.

    sharewise records permissions: a consent the person gave (status `active`, or `inactive` with the
    revocation our export records), whose single provision permits (`type` absent or `permit`) and has
    no nested provisions, restrictions or modifier extensions a sharewise consent could not carry.
    Codes are named only when they are the standard's own; values from the file are never echoed.
    """
    problems: list[Problem] = []
    status = resource.status
    if status in STATUS_REFUSED:
        problems.append(
            Problem(f"{label}: Consent.status", f"{STATUS_REFUSED[status]}; only an 'active' consent can be imported")
        )
    elif status == "inactive" and not has_revocation:
        problems.append(
            Problem(
                f"{label}: Consent.status",
                "an inactive consent is no longer in force, and can be imported only with the revocation "
                f"that ended it (extension {EXT}revocation)",
            )
        )
    elif status == "active" and has_revocation:
        problems.append(
            Problem(
                f"{label}: Consent.status", "an active consent cannot carry a revocation; a revoked one is 'inactive'"
            )
        )
    elif status not in ("active", "inactive"):
        problems.append(Problem(f"{label}: Consent.status", "not an R4 Consent status"))
    if resource.modifierExtension:
        problems.append(Problem(f"{label}: Consent.modifierExtension", MODIFIER))
    provision = resource.provision
    if provision is None:
        return problems
    where = f"{label}: Consent.provision"
    if provision.type == "deny":
        problems.append(Problem(f"{where}.type", "a deny provision cannot be imported as a permission"))
    elif provision.type not in (None, "permit"):
        problems.append(Problem(f"{where}.type", "not 'permit' or 'deny'"))
    if provision.provision:
        problems.append(
            Problem(
                f"{where}.provision",
                "nested provisions (exceptions to the consent) cannot be represented; "
                "importing without them would permit more than the person agreed to",
            )
        )
    for attribute, name in NARROWING.items():
        if getattr(provision, attribute):
            problems.append(
                Problem(
                    f"{where}.{name}",
                    "this restriction cannot be represented; importing without it would permit more than the person agreed to",
                )
            )
    if provision.modifierExtension:
        problems.append(Problem(f"{where}.modifierExtension", MODIFIER))
    return problems


def from_fhir(data: dict[str, Any], label: str = "consent.json") -> ConsentRecord:
    """A consent record from a FHIR R4 Consent resource; every problem reported at once.

    Only a permission sharewise can represent is imported (see `_permission_problems`): a deny, a
    draft, a refused consent or one with exceptions is refused rather than recorded as a permit.
    """
    # The id is kept, so it must be one the registry can hold: FHIR's own check knows no length limit.
    given_id = data.get("id")
    id_problems = (
        [Problem(f"{label}: Consent.id", CONSENT_ID_RULE)]
        if isinstance(given_id, str) and not is_consent_id(given_id)
        else []
    )
    try:
        resource = Consent.model_validate(data)
    except ValidationError as exc:
        raise InvalidDataError(
            "not a valid FHIR R4 Consent",
            id_problems
            + [
                Problem(f"{label}: {_fhir_path(tuple(e['loc']))}", e["msg"])
                for e in exc.errors()
                if not (id_problems and tuple(e["loc"]) == ("id",))
            ],
        ) from exc
    except (KeyError, TypeError, AttributeError) as exc:  # e.g. a contained resource of an unknown type
        raise InvalidDataError(
            "not a valid FHIR R4 Consent",
            [Problem(f"{label}: Consent", "an element is not of a known FHIR R4 type")],
        ) from exc
    ext = {e.url[len(EXT) :]: e for e in (resource.extension or []) if e.url and e.url.startswith(EXT)}
    has_revocation = "revocation" in ext and ext["revocation"].valueString is not None
    problems = id_problems + _permission_problems(resource, has_revocation, label)

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
            ids = {i.get("system"): i.get("value") for i in pd.get("identifier", [])}
            name = (pd.get("name") or [{}])[0]
            person = {
                "given_name": " ".join(name.get("given") or []),  # "Mary", "Ann": given name "Mary Ann"
                "family_name": name.get("family", ""),
                "date_of_birth": pd.get("birthDate"),
                "ssn_last4": ids.get("urn:sharewise:ssn-last4"),
                "client_ids": {
                    k.split(":", 3)[3]: v for k, v in ids.items() if k and k.startswith("urn:sharewise:client-id:")
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
            [Problem(f"{label}: {'.'.join(str(p) for p in e['loc'])}", e["msg"]) for e in consent_errors(exc)],
        ) from exc
