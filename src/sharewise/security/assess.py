"""The recipient's security assessment: questionnaire, evidence by reference, gaps, plan of action, signed result."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from pydantic import BaseModel, ConfigDict

from sharewise.domain.errors import IntegrityError, InvalidDataError, Problem, StorageError
from sharewise.security.categorize import did_you_mean
from sharewise.security.oscal_export import spec_digest
from sharewise.security.safeguards import SafeguardsSpec
from sharewise.store.files import write_exclusive

FORMAT = "sharewise-security-questionnaire/1"
STATUSES = ("implemented", "partially_implemented", "planned", "not_implemented", "not_applicable")
GAP_STATUSES = ("partially_implemented", "planned", "not_implemented")
DECISIONS = ("accepted", "accepted_with_plan", "rejected")
# Days to close a gap by default, by the share's overall impact (overlay requirements: the shortest).
DUE_DAYS = {"high": 30, "moderate": 90, "low": 180}
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class Evidence(BaseModel):
    """Evidence by reference: where it is (a URL or document id), optionally its SHA-256, and what it shows."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    ref: str
    sha256: str | None = None
    description: str | None = None


class Answer(BaseModel):
    """The recipient's answer for one control or overlay requirement."""

    model_config = ConfigDict(frozen=True)

    item: str
    status: str
    evidence: tuple[Evidence, ...] = ()
    notes: str | None = None
    plan_action: str | None = None
    plan_due: dt.date | None = None


class Gap(BaseModel):
    """Where the recipient does not (yet) meet the specification."""

    model_config = ConfigDict(frozen=True)

    item: str
    title: str
    kind: str  # not_met | evidence_missing
    status: str
    detail: str


class PlanItem(BaseModel):
    """A plan of action and milestones entry for one gap."""

    model_config = ConfigDict(frozen=True)

    id: str
    item: str
    weakness: str
    action: str
    due: dt.date
    proposed_by: str  # recipient | sharewise (a default the reviewer should confirm)


class AssessmentResult(BaseModel):
    """The assessment of one recipient against one specification."""

    model_config = ConfigDict(frozen=True)

    specification_sha256: str
    as_of: dt.date
    recipient: str
    answered: int
    implemented: int
    not_applicable: int
    gaps: tuple[Gap, ...]
    plan: tuple[PlanItem, ...]
    answers: tuple[Answer, ...]

    @property
    def meets_specification(self) -> bool:
        return not self.gaps


class SignedAssessment(BaseModel):
    """An assessment result with the security reviewer's decision and Ed25519 signature."""

    model_config = ConfigDict(frozen=True)

    result: AssessmentResult
    reviewer: str
    decision: str
    signed_at: dt.datetime
    key_id: str
    public_key_pem: str
    signature: str  # base64 Ed25519 over signed_payload()

    def signed_payload(self) -> bytes:
        return canonical({k: v for k, v in self.model_dump(mode="json").items() if k != "signature"})


def canonical(data: Mapping[str, Any]) -> bytes:
    """Canonical JSON for signing: sorted keys, no extra whitespace, UTF-8."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def questionnaire(spec: SafeguardsSpec, recipient: str) -> dict[str, Any]:
    """A blank questionnaire for the recipient: one entry per control and overlay requirement."""
    items: dict[str, Any] = {}
    for s in spec.safeguards:
        items[s.control_id] = {
            "title": f"{s.label} {s.title}",
            "duty": s.duty,
            "evidence_expected": list(s.evidence[:8]),
            "status": None,
            "evidence": [],
        }
    for d in spec.overlay_duties:
        items[d.id] = {
            "title": d.title,
            "duty": d.duty,
            "evidence_expected": list(d.evidence),
            "status": None,
            "evidence": [],
        }
    return {
        "format": FORMAT,
        "specification_sha256": spec_digest(spec),
        "recipient": recipient,
        "statuses": list(STATUSES),
        "answers": items,
    }


def parse_answers(data: Any, spec: SafeguardsSpec, label: str = "answers") -> tuple[str, list[Answer]]:
    """Validate a completed questionnaire against the specification; report every missing or bad answer."""
    if not isinstance(data, dict) or not isinstance(data.get("answers"), dict):
        raise InvalidDataError("invalid questionnaire", [Problem(label, "expected a mapping with 'answers'")])
    problems: list[Problem] = []
    if data.get("format") != FORMAT:
        problems.append(Problem(f"{label}: format", f"expected '{FORMAT}'"))
    if data.get("specification_sha256") not in (None, spec_digest(spec)):
        problems.append(
            Problem(
                f"{label}: specification_sha256",
                "the answers are for a different specification; generate the questionnaire again",
            )
        )
    recipient = str(data.get("recipient") or "")
    if not recipient:
        problems.append(Problem(f"{label}: recipient", "name the recipient who answered"))
    raw: dict[str, Any] = data["answers"]
    expected = spec.item_ids()
    for item in raw:
        if item not in expected:
            problems.append(
                Problem(f"{label}: answers.{item}", f"not in the specification{did_you_mean(str(item), expected)}")
            )
    answers: list[Answer] = []
    for item in expected:
        where = f"{label}: answers.{item}"
        entry = raw.get(item)
        if not isinstance(entry, dict) or entry.get("status") in (None, ""):
            problems.append(Problem(where, "not answered (status is missing)"))
            continue
        status = entry["status"]
        if status not in STATUSES:
            problems.append(Problem(f"{where}.status", f"must be one of {', '.join(STATUSES)}, got {status!r}"))
            continue
        if status == "not_applicable" and not entry.get("notes"):
            problems.append(Problem(f"{where}.notes", "explain why the control does not apply"))
        evidence: list[Evidence] = []
        for i, given in enumerate(entry.get("evidence") or []):
            ev = {"ref": given} if isinstance(given, str) else given
            if not isinstance(ev, dict) or not ev.get("ref"):
                problems.append(Problem(f"{where}.evidence[{i}]", "evidence is a reference: {ref: URL or document id}"))
                continue
            if ev.get("sha256") is not None and not _SHA256.match(str(ev["sha256"])):
                problems.append(Problem(f"{where}.evidence[{i}].sha256", "must be 64 lowercase hex digits"))
                continue
            try:
                evidence.append(Evidence(**ev))
            except ValueError:
                problems.append(Problem(f"{where}.evidence[{i}]", "only ref, sha256 and description are allowed"))
        plan = entry.get("plan") or {}
        due = plan.get("due") if isinstance(plan, dict) else None
        if due is not None and not isinstance(due, dt.date):
            problems.append(Problem(f"{where}.plan.due", "must be a date (YYYY-MM-DD)"))
            due = None
        answers.append(
            Answer(
                item=item,
                status=status,
                evidence=tuple(evidence),
                notes=str(entry["notes"]) if entry.get("notes") else None,
                plan_action=str(plan.get("action")) if isinstance(plan, dict) and plan.get("action") else None,
                plan_due=due,
            )
        )
    if problems:
        raise InvalidDataError("the questionnaire is incomplete or invalid", problems)
    return recipient, answers


def assess(spec: SafeguardsSpec, recipient: str, answers: list[Answer], as_of: dt.date) -> AssessmentResult:
    """Compute the gaps against the specification and a plan of action for each."""
    titles = {s.control_id: f"{s.label} {s.title}" for s in spec.safeguards}
    titles |= {d.id: d.title for d in spec.overlay_duties}
    overlay_items = {d.id for d in spec.overlay_duties}
    gaps: list[Gap] = []
    plan: list[PlanItem] = []
    for answer in answers:
        if answer.status in GAP_STATUSES:
            gap = Gap(
                item=answer.item,
                title=titles[answer.item],
                kind="not_met",
                status=answer.status,
                detail=f"{answer.status.replace('_', ' ')}",
            )
        elif answer.status == "implemented" and not answer.evidence:
            gap = Gap(
                item=answer.item,
                title=titles[answer.item],
                kind="evidence_missing",
                status=answer.status,
                detail="implemented, but no evidence was referenced",
            )
        else:
            continue
        gaps.append(gap)
        days = min(DUE_DAYS.values()) if answer.item in overlay_items else DUE_DAYS[spec.categorization.overall]
        plan.append(
            PlanItem(
                id=f"poam-{len(plan) + 1:03d}",
                item=answer.item,
                weakness=f"{gap.title}: {gap.detail}",
                action=answer.plan_action
                or (
                    "Attach evidence that the control is in place."
                    if gap.kind == "evidence_missing"
                    else "Implement the control as the specification describes."
                ),
                due=answer.plan_due or as_of + dt.timedelta(days=days),
                proposed_by="recipient" if answer.plan_action else "sharewise",
            )
        )
    return AssessmentResult(
        specification_sha256=spec_digest(spec),
        as_of=as_of,
        recipient=recipient,
        answered=len(answers),
        implemented=sum(1 for a in answers if a.status == "implemented"),
        not_applicable=sum(1 for a in answers if a.status == "not_applicable"),
        gaps=tuple(gaps),
        plan=tuple(plan),
        answers=tuple(answers),
    )


def key_id_of(public_key: Ed25519PublicKey) -> str:
    """A short id of a reviewer's public key: SHA-256 of its raw bytes."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def create_reviewer_key(path: Path) -> Ed25519PublicKey:
    """Create a reviewer's Ed25519 signing key (PEM, PKCS#8, mode 600); never overwrite one."""
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        created = write_exclusive(path, pem)
    except OSError as exc:
        raise StorageError(f"cannot create the reviewer key at {path}: {exc.strerror}") from exc
    if not created:
        raise StorageError(f"{path} already exists; a signing key is never overwritten")
    return key.public_key()


def load_reviewer_key(path: Path) -> Ed25519PrivateKey:
    """Read a reviewer's Ed25519 private key; it must be readable by its owner only."""
    try:
        mode = path.stat().st_mode & 0o777
    except OSError as exc:
        raise InvalidDataError("cannot read the signing key", [Problem(str(path), "no such file")]) from exc
    if mode & 0o077:
        raise IntegrityError(f"the signing key {path} is accessible to others (mode {mode:o}); chmod 600 it")
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise InvalidDataError(
            "cannot read the signing key", [Problem(str(path), "not an unencrypted PEM private key")]
        ) from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise InvalidDataError("cannot read the signing key", [Problem(str(path), "not an Ed25519 private key")])
    return key


def sign(
    result: AssessmentResult, key: Ed25519PrivateKey, reviewer: str, decision: str, signed_at: dt.datetime
) -> SignedAssessment:
    """The reviewer's decision on the result, signed with Ed25519 (FIPS 186-5)."""
    problems = []
    if decision not in DECISIONS:
        problems.append(Problem("decision", f"must be one of {', '.join(DECISIONS)}"))
    if decision == "accepted" and result.gaps:
        problems.append(Problem("decision", f"{len(result.gaps)} gaps remain; use accepted_with_plan or rejected"))
    if not reviewer.strip():
        problems.append(Problem("reviewer", "name the security reviewer"))
    if problems:
        raise InvalidDataError("cannot sign the assessment", problems)
    public = key.public_key()
    unsigned = SignedAssessment(
        result=result,
        reviewer=reviewer,
        decision=decision,
        signed_at=signed_at,
        key_id=key_id_of(public),
        public_key_pem=public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode(),
        signature="",
    )
    signature = base64.b64encode(key.sign(unsigned.signed_payload())).decode()
    return unsigned.model_copy(update={"signature": signature})


def verify(signed: SignedAssessment, trusted: Ed25519PublicKey | None = None) -> str:
    """Check the signature (against a trusted key when given); return the key id or raise IntegrityError."""
    public: Any = trusted or serialization.load_pem_public_key(signed.public_key_pem.encode())
    if not isinstance(public, Ed25519PublicKey):
        raise IntegrityError("the assessment's signer key is not an Ed25519 key")
    if key_id_of(public) != signed.key_id:
        raise IntegrityError("the assessment was signed by another key than the one trusted")
    try:
        public.verify(base64.b64decode(signed.signature), signed.signed_payload())
    except (InvalidSignature, ValueError) as exc:
        raise IntegrityError("the assessment signature does not verify: the result was altered") from exc
    return signed.key_id
