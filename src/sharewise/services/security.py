"""Security use cases: categorize a share, specify its safeguards, export them, assess the recipient, Five Safes."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from sharewise.domain.errors import InvalidDataError, Problem
from sharewise.domain.events import AuditEvent, AuditSink
from sharewise.domain.request import Request
from sharewise.policy.model import LawPack
from sharewise.policy.request_parse import make_lookup, parse_request
from sharewise.policy.yamlfile import YamlProblem, read_yaml
from sharewise.security import assess as assess_mod
from sharewise.security import categorize as cat_mod
from sharewise.security import overlays as overlay_mod
from sharewise.security.catalog import Catalog, load_catalog
from sharewise.security.five_safes import FiveSafes, five_safes
from sharewise.security.keys import KeyProvider
from sharewise.security.oscal_export import spec_digest, to_component_definition, to_profile
from sharewise.security.safeguards import Duties, SafeguardsSpec, build_spec, load_duties
from sharewise.services.authorization import authorize
from sharewise.services.determinations import determine
from sharewise.wiring import Control

LAW_DIR = Path(__file__).resolve().parents[1] / "law" / "security"
EXPORT_KINDS = ("profile", "component-definition")


@dataclass(frozen=True)
class SecurityLaw:
    """The security law data checked against the law pack's vocabulary and the control catalog."""

    rules: cat_mod.CategorizationRules
    overlays: overlay_mod.OverlaySet
    duties: Duties
    catalog: Catalog


_loaded: dict[tuple[str, Path], SecurityLaw] = {}


def security_law(law: LawPack, directory: Path = LAW_DIR) -> SecurityLaw:
    """Load (once per law pack and folder) the information types, overlays and duties."""
    key = (law.content_hash, directory)
    if key not in _loaded:
        catalog = load_catalog()
        vocab = law.vocabulary
        _loaded[key] = SecurityLaw(
            rules=cat_mod.load_rules(directory / "information-types.yaml", vocab.data_categories, vocab.purposes),
            overlays=overlay_mod.load_overlays(directory, vocab, catalog.controls),
            duties=load_duties(directory / "duties.yaml", catalog),
            catalog=catalog,
        )
    return _loaded[key]


def parse_facts(pairs: Iterable[str], overlays: overlay_mod.OverlaySet) -> dict[str, bool]:
    """Security facts from NAME=true|false pairs; unknown names and values are errors."""
    facts: dict[str, bool] = {}
    problems: list[Problem] = []
    for pair in pairs:
        name, _, value = pair.partition("=")
        name = name.strip()
        if name not in overlays.facts:
            problems.append(
                Problem(f"--fact {name}", f"unknown security fact{cat_mod.did_you_mean(name, overlays.facts)}")
            )
        elif value.strip().lower() not in ("true", "false"):
            problems.append(Problem(f"--fact {name}", "give true or false, as NAME=true"))
        else:
            facts[name] = value.strip().lower() == "true"
    if problems:
        raise InvalidDataError("invalid security facts", problems)
    return facts


def parse_changes(pairs: Iterable[str]) -> list[tuple[str, str]]:
    """Reviewer changes from OBJECTIVE=LEVEL pairs."""
    changes = []
    for pair in pairs:
        objective, sep, level = pair.partition("=")
        if not sep:
            raise InvalidDataError(
                "invalid categorization change",
                [Problem(f"--set {pair}", "use OBJECTIVE=LEVEL, e.g. confidentiality=high")],
            )
        changes.append((objective.strip(), level.strip()))
    return changes


def specify(
    law: LawPack,
    request: Request,
    as_of: dt.date,
    records: int | None = None,
    facts: Mapping[str, bool] | None = None,
    changes: Sequence[tuple[str, str]] = (),
    justification: str | None = None,
    reviewer: str = "",
    sink: AuditSink | None = None,
    directory: Path = LAW_DIR,
) -> SafeguardsSpec:
    """Categorize the share, apply the overlays it triggers and any reviewer changes, and build its specification.

    Each reviewer change is reported to the audit sink before it takes effect; a failed audit
    write fails the whole call.
    """
    sec = security_law(law, directory)
    when = request.as_of or as_of
    categorization = cat_mod.categorize(sec.rules, request.data, request.form, request.purpose, records)
    lookup = overlay_mod.overlay_lookup(make_lookup(request), facts or {})
    statuses = overlay_mod.select(sec.overlays, lookup, when)
    categorization = cat_mod.apply_floors(categorization, overlay_mod.floors_of(sec.overlays, statuses))
    if changes and sink is None:
        raise ValueError("reviewer changes to a categorization must be reported to an audit sink")
    for objective, level in changes:
        before = categorization.level(objective) if objective in cat_mod.OBJECTIVES else None
        categorization = cat_mod.adjust(categorization, objective, level, justification, reviewer or "reviewer")
        assert sink is not None
        sink.record(
            AuditEvent(
                action="categorization-lowered"
                if before and cat_mod.rank(level) < cat_mod.rank(before)
                else "categorization-raised",
                actor=reviewer or "reviewer",
                subject_type="security-categorization",
                subject_id=f"{request.source.program}-{request.recipient.kind}-{request.purpose}",
                details={"objective": objective, "from": before, "to": level, "justified": True},
            )
        )
    parameters = overlay_mod.resolve_parameters(sec.overlays, statuses)
    return build_spec(
        sec.catalog, sec.duties, sec.overlays, categorization, statuses, parameters, when, sec.rules.references
    )


def export(spec: SafeguardsSpec, kind: str, generated: dt.datetime) -> dict[str, Any]:
    """The specification as an OSCAL profile or component definition."""
    if kind == "profile":
        return to_profile(spec, generated)
    if kind == "component-definition":
        return to_component_definition(spec, generated)
    raise InvalidDataError("unknown export kind", [Problem("--kind", f"use one of {', '.join(EXPORT_KINDS)}")])


def read_answers(path: Path, spec: SafeguardsSpec) -> tuple[str, list[assess_mod.Answer]]:
    """Read a completed questionnaire (YAML or JSON) and validate it against the specification."""
    try:
        data, _ = read_yaml(path, str(path))
    except YamlProblem as exc:
        raise InvalidDataError("malformed questionnaire", exc.problems) from exc
    return assess_mod.parse_answers(data, spec, str(path))


def assess(spec: SafeguardsSpec, answers_path: Path, as_of: dt.date) -> assess_mod.AssessmentResult:
    """Gaps and a plan of action for the recipient's answers."""
    recipient, answers = read_answers(answers_path, spec)
    return assess_mod.assess(spec, recipient, answers, as_of)


def sign_assessment(
    result: assess_mod.AssessmentResult,
    key_path: Path,
    reviewer: str,
    decision: str,
    signed_at: dt.datetime,
    sink: AuditSink,
) -> assess_mod.SignedAssessment:
    """The security reviewer signs the result with a key file; the signature counts only once the audit trail has it."""
    return _signed(result, assess_mod.load_reviewer_key(key_path), reviewer, decision, signed_at, sink)


def _signed(
    result: assess_mod.AssessmentResult,
    key: Ed25519PrivateKey,
    reviewer: str,
    decision: str,
    signed_at: dt.datetime,
    sink: AuditSink,
) -> assess_mod.SignedAssessment:
    signed = assess_mod.sign(result, key, reviewer, decision, signed_at)
    sink.record(
        AuditEvent(
            action="assessment-signed",
            actor=reviewer,
            subject_type="security-assessment",
            subject_id=result.specification_sha256[:16],
            details={"decision": decision, "gaps": len(result.gaps), "key_id": signed.key_id},
        )
    )
    return signed


REVIEWERS = ("security_officer",)


def sign_assessment_as(
    control: Control,
    keys: KeyProvider,
    actor_id: str | None,
    result: assess_mod.AssessmentResult,
    decision: str,
) -> assess_mod.SignedAssessment:
    """A security officer signs the result with their key from the key provider (created on first use).

    Once users are registered only security officers sign; the signature counts only once the
    audit trail has it.
    """
    with control.store.transaction() as conn:
        user = authorize(conn, actor_id, REVIEWERS, "sign security assessments")
    reviewer = user.id if user else (actor_id or "single-user")
    return _signed(result, keys.reviewer_key(reviewer), reviewer, decision, control.trail.clock(), control.sink)


def reviewer_public_key(keys: KeyProvider, reviewer_id: str, rotate: bool = False) -> bytes:
    """The reviewer's current public key (PEM) to give to those who verify their signatures; optionally a new one."""
    key = keys.rotate_reviewer_key(reviewer_id) if rotate else keys.reviewer_key(reviewer_id)
    return key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def five_safes_view(
    law: LawPack,
    request: Request,
    spec: SafeguardsSpec,
    today: dt.date,
    assessment: assess_mod.AssessmentResult | None = None,
    authorized_users: tuple[str, ...] = (),
) -> FiveSafes:
    """The Five Safes summary, from a fresh determination of the request and its specification."""
    determination = determine(law, request, today)
    return five_safes(request, determination, spec, assessment, authorized_users)


def specification_for_request(
    control: Control, law: LawPack, actor_id: str, request_id: str, today: dt.date
) -> SafeguardsSpec:
    """The safeguards specification of a stored sharing request, for the people who may see the request."""
    from sharewise.services import workflow as workflow_service

    record = workflow_service.show(control, actor_id, request_id)
    request = parse_request(record.request, law.vocabulary, label=f"request {request_id}")
    return specify(law, request, request.as_of or today)


def five_safes_for_request(control: Control, law: LawPack, actor_id: str, request_id: str, today: dt.date) -> FiveSafes:
    """The Five Safes view of a stored sharing request, for the people who may see the request.

    Built from a fresh determination on today's law, the request's security specification, the
    authorized users of its agreements, and its security reviews.
    """
    from sharewise.services import agreement_registry
    from sharewise.services import workflow as workflow_service

    record = workflow_service.show(control, actor_id, request_id)
    request = parse_request(record.request, law.vocabulary, label=f"request {request_id}")
    determination = determine(law, request, today)
    spec = specify(law, request, request.as_of or today)
    users = [_user_line(u) for u in agreement_registry.authorized_users_of_request(control, actor_id, request_id)]
    reviews = tuple(
        (
            s.decision,
            f"Security review: {s.decision} by {s.actor} on {s.at:%Y-%m-%d}"
            + (f": {s.comments}" if s.comments else ""),
        )
        for s in record.steps
        if s.step == "security"
    )
    return five_safes(request, determination, spec, None, tuple(dict.fromkeys(users)), reviews)


def _user_line(user: Mapping[str, Any]) -> str:
    parts = [str(user.get("role") or "user")]
    if user.get("name"):
        parts.append(str(user["name"]))
    line = " ".join(parts)
    return f"{line} ({user['organization']})" if user.get("organization") else line


__all__ = [
    "EXPORT_KINDS",
    "LAW_DIR",
    "SecurityLaw",
    "assess",
    "export",
    "five_safes_for_request",
    "five_safes_view",
    "parse_changes",
    "parse_facts",
    "read_answers",
    "reviewer_public_key",
    "security_law",
    "sign_assessment",
    "sign_assessment_as",
    "spec_digest",
    "specification_for_request",
    "specify",
]
