"""Sharing-request workflow use cases: every step authorized, recorded, and audited atomically."""

from __future__ import annotations

import json
import secrets
from typing import Any

from sqlalchemy import Connection, func, select

from sharewise.agreements.registry import SqlAgreementStore
from sharewise.domain.errors import AccessDeniedError, InvalidDataError, InvalidStateError, Problem
from sharewise.domain.events import AuditEvent
from sharewise.domain.outcome import Outcome
from sharewise.policy.evaluate import evaluate
from sharewise.policy.model import LawPack
from sharewise.policy.request_parse import parse_request
from sharewise.store.schema import initiatives, users
from sharewise.wiring import Control
from sharewise.workflow import process
from sharewise.workflow.access import User, require_agency, require_any_role, require_not_requester, require_role
from sharewise.workflow.store import SharingRequestRecord, SqlWorkflowStore, Step

STORE = SqlWorkflowStore()


def _audit(
    control: Control,
    conn: Connection,
    action: str,
    actor: User | None,
    subject: str,
    details: dict[str, Any] | None = None,
    outcome: str = "success",
) -> None:
    control.trail.append(
        conn,
        AuditEvent(
            action=action,
            actor=actor.id if actor else "system",
            agency=actor.agency_id if actor else None,
            subject_type="sharing_request" if subject.startswith("r-") else "directory",
            subject_id=subject,
            outcome=outcome,
            details=details or {},
        ),
    )


def _bootstrapping(conn: Connection) -> bool:
    return int(conn.execute(select(func.count()).select_from(users)).scalar_one()) == 0


def add_agency(control: Control, agency_id: str, name: str, actor_id: str | None) -> None:
    """Register an agency (administrators; or anyone while no user exists yet, to bootstrap)."""
    with control.store.transaction() as conn:
        actor = None if _bootstrapping(conn) else STORE.user(conn, actor_id or "")
        if actor is not None:
            require_role(actor, "administrator", "add agencies")
        if STORE.agency_exists(conn, agency_id):
            raise InvalidStateError(f"agency '{agency_id}' already exists")
        STORE.add_agency(conn, agency_id, name)
        _audit(control, conn, "agency-added", actor, agency_id)


def add_user(control: Control, user_id: str, name: str, agency_id: str, roles: set[str], actor_id: str | None) -> User:
    """Register a person with roles in an agency (administrators; the first user bootstraps)."""
    unknown = sorted(roles - set(process.ROLES))
    if unknown or not roles:
        raise InvalidDataError(
            "invalid roles", [Problem("--roles", f"unknown role(s) {unknown}; use {', '.join(process.ROLES)}")]
        )
    with control.store.transaction() as conn:
        first = _bootstrapping(conn)
        actor = None if first else STORE.user(conn, actor_id or "")
        if actor is not None:
            require_role(actor, "administrator", "add users")
        if not STORE.agency_exists(conn, agency_id):
            raise InvalidDataError(f"no agency '{agency_id}'")
        user = User(user_id, name, agency_id, frozenset(roles))
        STORE.add_user(conn, user)
        _audit(control, conn, "user-added", actor, user_id, {"roles": ",".join(sorted(roles)), "agency": agency_id})
    return user


def create_request(
    control: Control,
    law: LawPack,
    actor_id: str,
    title: str,
    use_case: str,
    request: dict[str, Any],
    vision: str | None = None,
    recipient_agency: str | None = None,
    initiative_id: str | None = None,
) -> str:
    """Draft a sharing request: the use case, the vision, and the disclosure in the contract's terms."""
    parse_request(request, law.vocabulary, label="request")  # every problem at once, before anything is stored
    if not use_case.strip():
        raise InvalidDataError("invalid sharing request", [Problem("use_case", "describe the use case")])
    now = control.trail.clock()
    with control.store.transaction() as conn:
        actor = STORE.user(conn, actor_id)
        require_role(actor, "requester", "create sharing requests")
        if recipient_agency is not None and not STORE.agency_exists(conn, recipient_agency):
            raise InvalidDataError(f"no agency '{recipient_agency}'")
        if initiative_id is not None:
            row = conn.execute(select(initiatives.c.agencies).where(initiatives.c.id == initiative_id)).first()
            if row is None:
                raise InvalidDataError(f"no initiative '{initiative_id}'")
            if actor.agency_id not in json.loads(row.agencies):
                raise AccessDeniedError(f"{actor.agency_id} does not take part in initiative '{initiative_id}'")
        request_id = f"r-{now.year}-{secrets.token_hex(4)}"
        STORE.create(
            conn,
            SharingRequestRecord(
                id=request_id,
                agency_id=actor.agency_id,
                recipient_agency_id=recipient_agency,
                title=title,
                use_case=use_case,
                vision=vision,
                request=request,
                state="draft",
                created_by=actor.id,
                created_at=now,
                determination=None,
                agreement_id=None,
                version=1,
                steps=(),
                initiative_id=initiative_id,
            ),
        )
        _audit(control, conn, "request-created", actor, request_id)
    return request_id


def revise(
    control: Control,
    law: LawPack,
    actor_id: str,
    request_id: str,
    request: dict[str, Any] | None = None,
    use_case: str | None = None,
) -> None:
    """Change a draft (for example after it was returned); its history stays."""
    if request is not None:
        parse_request(request, law.vocabulary, label="request")
    with control.store.transaction() as conn:
        actor = STORE.user(conn, actor_id)
        record = STORE.get(conn, request_id, for_update=True)
        require_role(actor, "requester", "revise sharing requests")
        require_agency(actor, {record.agency_id}, "revise this request")
        if record.state != "draft":
            raise InvalidStateError(f"only drafts can be revised; request '{request_id}' is in {record.state}")
        values: dict[str, Any] = {}
        if request is not None:
            values["request"] = request
        if use_case is not None:
            values["use_case"] = use_case
        STORE.move(conn, record, "draft", **values)
        STORE.add_step(
            conn, request_id, Step("revision", "revised", actor.id, actor.agency_id, None, control.trail.clock())
        )
        _audit(control, conn, "request-revised", actor, request_id)


def submit(control: Control, actor_id: str, request_id: str) -> None:
    """Send a draft to program review."""
    with control.store.transaction() as conn:
        actor = STORE.user(conn, actor_id)
        record = STORE.get(conn, request_id, for_update=True)
        require_role(actor, "requester", "submit sharing requests")
        require_agency(actor, {record.agency_id}, "submit this request")
        if record.state != "draft":
            raise InvalidStateError(f"request '{request_id}' is in {record.state}, not draft")
        STORE.move(conn, record, "program_review")
        STORE.add_step(
            conn, request_id, Step("submission", "submitted", actor.id, actor.agency_id, None, control.trail.clock())
        )
        _audit(control, conn, "request-submitted", actor, request_id)


def review(control: Control, law: LawPack, actor_id: str, request_id: str, decision: str, comments: str | None) -> str:
    """Record a program, legal or security review; return the new state.

    The legal review records the engine's determination: it may approve a permitted disclosure,
    or one needing legal review only with comments stating the judgment; never anything else.
    """
    if decision not in process.DECISIONS:
        raise InvalidDataError("invalid decision", [Problem("--decision", f"use {', '.join(process.DECISIONS)}")])
    if decision in ("return", "deny") and not (comments or "").strip():
        raise InvalidDataError("comments needed", [Problem("--comments", f"say why you {decision} the request")])
    now = control.trail.clock()
    with control.store.transaction() as conn:
        actor = STORE.user(conn, actor_id)
        record = STORE.get(conn, request_id, for_update=True)
        if record.state not in process.REVIEW_STAGES:
            raise InvalidStateError(f"request '{request_id}' is in {record.state}; no review is due")
        step, role, _ = process.REVIEW_STAGES[record.state]
        require_role(actor, role, f"record the {step} review")
        require_agency(actor, record.agencies, f"review request '{request_id}'")
        require_not_requester(actor, record.created_by, "review")
        values: dict[str, Any] = {}
        if step == "legal":
            request = parse_request(record.request, law.vocabulary)
            det = evaluate(law, request, now.date())
            values["determination"] = det.to_contract()
            _audit(
                control,
                conn,
                "decision-recorded",
                actor,
                request_id,
                {"outcome": det.outcome.value, "law_version": det.law_version, "law_hash": det.law_hash},
            )
            if decision == "approve":
                allowed = det.outcome is Outcome.PERMITTED or (
                    det.outcome is Outcome.NEEDS_LEGAL_REVIEW and (comments or "").strip()
                )
                if not allowed:
                    raise InvalidStateError(
                        f"the determination is {det.outcome.value}; legal approval needs a permitted determination "
                        "(or, for needs_legal_review, comments recording counsel's judgment)"
                    )
        review_details: dict[str, Any] = {"step": step, "decision": decision}
        if step == "security":
            # The safeguards the share needs, so the security reviewer decides on the specification.
            from sharewise.services.security import specify

            spec = specify(law, parse_request(record.request, law.vocabulary), now.date())
            review_details |= {
                "categorization": str(spec.categorization.overall),
                "baselines": "+".join(spec.baselines),
                "overlays": ",".join(o.overlay for o in spec.overlays if o.status == "applies"),
                "controls": len(spec.safeguards),
            }
        transition = process.after_review(record.state, decision)
        STORE.move(conn, record, transition.to, **values)
        STORE.add_step(conn, request_id, Step(transition.step, decision, actor.id, actor.agency_id, comments, now))
        _audit(
            control,
            conn,
            "review-recorded",
            actor,
            request_id,
            {"step": step, "decision": decision, "state": transition.to},
        )
    return transition.to


def approve(control: Control, actor_id: str, request_id: str, decision: str, comments: str | None) -> str:
    """Leadership approval: every agency involved must approve before the agreement is executed."""
    if decision not in process.DECISIONS:
        raise InvalidDataError("invalid decision", [Problem("--decision", f"use {', '.join(process.DECISIONS)}")])
    now = control.trail.clock()
    with control.store.transaction() as conn:
        actor = STORE.user(conn, actor_id)
        record = STORE.get(conn, request_id, for_update=True)
        if record.state != "approval":
            raise InvalidStateError(f"request '{request_id}' is in {record.state}, not awaiting approval")
        require_role(actor, "approver", "approve sharing requests")
        require_agency(actor, record.agencies, f"approve request '{request_id}'")
        require_not_requester(actor, record.created_by, "approve")
        since = max((i for i, s in enumerate(record.steps) if s.step == "security"), default=-1)
        approved = {s.agency_id for s in record.steps[since + 1 :] if s.step == "approval" and s.decision == "approve"}
        if decision == "approve" and actor.agency_id in approved:
            raise InvalidStateError(f"agency '{actor.agency_id}' has already approved this request")
        if decision == "approve":
            approved.add(actor.agency_id)
            to = "agreement_pending" if record.agencies <= approved else "approval"
        else:
            to = "draft" if decision == "return" else "denied"
        STORE.move(conn, record, to)
        STORE.add_step(conn, request_id, Step("approval", decision, actor.id, actor.agency_id, comments, now))
        action = {"approve": "request-approved", "return": "request-returned", "deny": "request-denied"}[decision]
        _audit(control, conn, action, actor, request_id, {"state": to})
    return to


def execute_agreement(control: Control, actor_id: str, request_id: str, agreement_id: str) -> None:
    """Record that the agreement was signed; the request becomes active."""
    with control.store.transaction() as conn:
        actor = STORE.user(conn, actor_id)
        record = STORE.get(conn, request_id, for_update=True)
        if record.state != "agreement_pending":
            raise InvalidStateError(f"request '{request_id}' is in {record.state}, not awaiting its agreement")
        require_any_role(actor, ("approver", "administrator"), "record agreements")
        require_agency(actor, record.agencies, f"record the agreement of '{request_id}'")
        agreement = SqlAgreementStore().get(conn, agreement_id)  # NotFoundError for an unknown id
        if agreement.request_id != request_id:
            raise InvalidDataError(
                "not this request's agreement",
                [Problem("agreement_id", f"agreement '{agreement_id}' was drafted for another request or none")],
            )
        state = agreement.state_on(control.trail.clock().date())  # an active agreement past its term has expired
        if state not in ("signed", "active"):
            raise InvalidStateError(f"agreement '{agreement_id}' is {state}; both parties must sign it first")
        STORE.move(conn, record, "active", agreement_id=agreement_id)
        STORE.add_step(
            conn,
            request_id,
            Step("agreement", "executed", actor.id, actor.agency_id, agreement_id, control.trail.clock()),
        )
        _audit(control, conn, "agreement-executed", actor, request_id, {"agreement_id": agreement_id})


def end(control: Control, actor_id: str, request_id: str, how: str, comments: str) -> None:
    """Terminate or expire an active request."""
    if how not in ("terminated", "expired"):
        raise InvalidDataError("use terminated or expired")
    with control.store.transaction() as conn:
        actor = STORE.user(conn, actor_id)
        record = STORE.get(conn, request_id, for_update=True)
        if record.state != "active":
            raise InvalidStateError(f"request '{request_id}' is in {record.state}, not active")
        require_any_role(actor, ("approver", "administrator"), "end requests")
        require_agency(actor, record.agencies, f"end request '{request_id}'")
        STORE.move(conn, record, how)
        STORE.add_step(conn, request_id, Step("end", how, actor.id, actor.agency_id, comments, control.trail.clock()))
        _audit(control, conn, f"request-{how}", actor, request_id)


def show(control: Control, actor_id: str, request_id: str) -> SharingRequestRecord:
    """A request with its history, for people of the agencies involved and auditors."""
    with control.store.transaction() as conn:
        actor = STORE.user(conn, actor_id)
        record = STORE.get(conn, request_id)
        if not actor.has("auditor"):
            require_agency(actor, record.agencies, f"see request '{request_id}'")
        return record


def queue(control: Control, actor_id: str, limit: int | None = None, offset: int = 0) -> list[SharingRequestRecord]:
    """The requests waiting for something this person may do, in their agency (a page of them with limit)."""
    with control.store.transaction() as conn:
        actor = STORE.user(conn, actor_id)
        states = [s for r in actor.roles if (s := process.stage_for_role(r))]
        if actor.has("approver"):
            states += ["approval", "agreement_pending"]
        if actor.has("requester"):
            states.append("draft")
        return STORE.list(conn, tuple(states), {actor.agency_id}, limit, offset) if states else []


def all_requests(
    control: Control, actor_id: str, limit: int | None = None, offset: int = 0
) -> list[SharingRequestRecord]:
    """Every request of the person's agency (auditors: all); a page of them with limit."""
    with control.store.transaction() as conn:
        actor = STORE.user(conn, actor_id)
        return STORE.list(conn, None, None if actor.has("auditor") else {actor.agency_id}, limit, offset)
