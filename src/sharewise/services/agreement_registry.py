"""Agreement registry use cases: record a draft, review, sign, activate, amend, renew, terminate, list."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter, ValidationError

from sharewise.agreements.library import load_library
from sharewise.agreements.parties import AuthorizedUser, add_months
from sharewise.agreements.registry import PARTIES, AgreementRecord, SqlAgreementStore, renewal_end
from sharewise.domain.determination import ConsentCheck
from sharewise.domain.errors import AccessDeniedError, InvalidDataError, InvalidStateError, Problem
from sharewise.domain.events import AuditEvent
from sharewise.domain.request import Request
from sharewise.policy.model import LawPack
from sharewise.policy.yamlfile import YamlProblem, line_of, read_yaml
from sharewise.services import documents
from sharewise.services.authorization import AGREEMENT_READERS, authorize
from sharewise.services.determinations import ConsentChecker, determine, read_request
from sharewise.wiring import Control
from sharewise.workflow.access import User, require_any_role
from sharewise.workflow.store import SqlWorkflowStore

STORE = SqlAgreementStore()
MAX_TERM = dt.timedelta(days=50 * 366)  # no agreement runs longer; keeps renewals within the calendar
USERS = SqlWorkflowStore()
MAX_EXPIRY_WINDOW_DAYS = 3650  # `agreement list --expiring`, as the API allows


def _audit(
    control: Control, conn: Any, action: str, actor: User, agreement_id: str, details: dict[str, Any] | None = None
) -> None:
    control.trail.append(
        conn,
        AuditEvent(
            action=action,
            actor=actor.id,
            agency=actor.agency_id,
            subject_type="agreement",
            subject_id=agreement_id,
            details=details or {},
        ),
    )


def _user(conn: Any, actor_id: str, *roles: str) -> User:
    user = USERS.user(conn, actor_id)
    if roles:
        require_any_role(user, roles, "do this")
    return user


def consent_checker(control: Control, law: LawPack) -> ConsentChecker:
    """Checks the consents a request cites against the registry, as `sharewise check` does."""
    from sharewise.services import consents

    def check(request: Request, on: dt.date) -> list[ConsentCheck]:
        return consents.check_cited(control, law, request, on)

    return check


def record_draft(
    control: Control,
    law: LawPack,
    actor_id: str,
    request_path: Path,
    parties_path: Path,
    document: Path,
    doc_type: str | None = None,
    request_id: str | None = None,
    consent_ids: list[str] | None = None,
) -> str:
    """Draft the agreement document (see `documents`) and register it as a draft."""
    now = control.trail.clock()
    request = read_request(request_path, law)
    parties = documents.read_parties(parties_path)
    library = load_library()
    checker = consent_checker(control, law)
    draft = documents.draft(law, request, parties, now.date(), doc_type, library, consent_checker=checker)
    chosen = library.types[draft.doc_type]
    months = parties.agreement.term_months or chosen.term.default_months
    effective = parties.agreement.effective_date
    det = determine(law, request, now.date(), consent_checker=checker)
    with control.store.transaction() as conn:
        actor = _user(conn, actor_id, "requester", "legal_reviewer", "approver", "administrator")
        if request_id is not None and actor.agency_id not in USERS.get(conn, request_id).agencies:
            raise AccessDeniedError(
                f"{actor.id} may not draft an agreement for request '{request_id}': not their agency's"
            )
        agreement_id = f"a-{now.year}-{secrets.token_hex(4)}"
        record = AgreementRecord(
            id=agreement_id,
            doc_type=draft.doc_type,
            title=draft.title,
            reference=draft.reference,
            request_id=request_id,
            discloser=parties.discloser.legal_name,
            recipient=parties.recipient.legal_name,
            law_version=det.law_version,
            law_hash=det.law_hash,
            state="draft",
            effective=effective,
            term_end=add_months(effective, months),
            renewals_used=0,
            max_renewals=chosen.term.max_renewals,
            renewal_months=chosen.term.renewal_months,
            authorized_users=[u.model_dump() for u in parties.authorized_users],
            consent_ids=list(consent_ids or []),
            document_sha256=hashlib.sha256(document.read_bytes()).hexdigest() if document.is_file() else None,
            version=1,
            events=(),
        )
        STORE.add(conn, record, actor.id, now)
        _audit(
            control,
            conn,
            "agreement-drafted",
            actor,
            agreement_id,
            {"doc_type": draft.doc_type, "law_hash": det.law_hash},
        )
    return agreement_id


def submit_for_review(control: Control, actor_id: str, agreement_id: str) -> None:
    with control.store.transaction() as conn:
        actor = _user(conn, actor_id, "requester", "legal_reviewer", "administrator")
        record = STORE.get(conn, agreement_id, for_update=True)
        _require_party(conn, actor, record, "submit")
        if record.state != "draft":
            raise InvalidStateError(f"agreement '{agreement_id}' is {record.state}, not a draft")
        STORE.change(conn, record, state="in_review")
        STORE.event(conn, agreement_id, "submitted_for_review", actor.id, None, control.trail.clock(), {})
        _audit(control, conn, "agreement-submitted", actor, agreement_id)


def sign(control: Control, actor_id: str, agreement_id: str, party: str) -> str:
    """An approver signs for one party; signed once both parties have."""
    if party not in PARTIES:
        raise InvalidDataError("invalid party", [Problem("--party", f"use {' or '.join(PARTIES)}")])
    with control.store.transaction() as conn:
        actor = _user(conn, actor_id, "approver")
        record = STORE.get(conn, agreement_id, for_update=True)
        _require_party(conn, actor, record, "sign")
        if record.state not in ("in_review", "signed"):
            raise InvalidStateError(
                f"agreement '{agreement_id}' is {record.state}; only an agreement in review can be signed"
            )
        if party in record.signed_by:
            raise InvalidStateError(f"the {party} has already signed agreement '{agreement_id}'")
        if not _one_agency_per_party(conn, actor, record):
            raise AccessDeniedError(
                f"{actor.id} may not sign for the {party} of agreement '{agreement_id}': {actor.agency_id} has signed "
                "for the other party, and each agency signs for its own"
            )
        if any(e.event == "signed" and e.actor == actor.id for e in record.events):
            raise AccessDeniedError(f"{actor.id} has already signed for the other party (separation of duties)")
        to = "signed" if record.signed_by | {party} >= set(PARTIES) else record.state
        STORE.change(conn, record, state=to)
        STORE.event(conn, agreement_id, "signed", actor.id, party, control.trail.clock(), {})
        _audit(control, conn, "agreement-signed", actor, agreement_id, {"party": party, "state": to})
    return to


def activate(control: Control, actor_id: str, agreement_id: str) -> None:
    with control.store.transaction() as conn:
        actor = _user(conn, actor_id, "approver", "administrator")
        record = STORE.get(conn, agreement_id, for_update=True)
        _require_party(conn, actor, record, "activate")
        if record.state != "signed":
            raise InvalidStateError(f"agreement '{agreement_id}' is {record.state}; both parties must sign first")
        STORE.change(conn, record, state="active")
        STORE.event(conn, agreement_id, "activated", actor.id, None, control.trail.clock(), {})
        _audit(control, conn, "agreement-activated", actor, agreement_id)


MAX_AUTHORIZED_USERS = 500  # as the API allows
_AUTHORIZED_USERS = TypeAdapter(list[AuthorizedUser])


def read_authorized_users(path: Path) -> list[dict[str, Any]]:
    """A YAML list of authorized users ({role, name, organization}, as in a parties file), each problem located.

    Problems name the line and the field, never the values.
    """
    label = str(path)
    try:
        data, lines = read_yaml(path, label)
    except YamlProblem as exc:
        raise InvalidDataError("invalid authorized users", exc.problems) from exc
    if not isinstance(data, list):
        raise InvalidDataError(
            "invalid authorized users",
            [Problem(label, "must be a list of authorized users ({role, name, organization}; [] for none)")],
        )
    if len(data) > MAX_AUTHORIZED_USERS:
        raise InvalidDataError(
            "invalid authorized users", [Problem(label, f"at most {MAX_AUTHORIZED_USERS} authorized users")]
        )
    try:
        users = _AUTHORIZED_USERS.validate_python(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = tuple(err["loc"])
            line = line_of(lines, loc)
            dotted = ".".join(str(p) for p in loc)
            if err["type"] == "missing":
                msg = "required field is missing"
            elif err["type"] in ("model_type", "dict_type"):
                msg = "must be a mapping of role, name and organization"
            else:
                msg = err["msg"]
            problems.append(Problem(f"{label}:{line}: {dotted}" if line else f"{label}: {dotted}", msg))
        raise InvalidDataError("invalid authorized users", problems) from exc
    return [u.model_dump() for u in users]


def amend(
    control: Control,
    actor_id: str,
    agreement_id: str,
    authorized_users: list[dict[str, Any]] | None = None,
    term_end: dt.date | None = None,
    reason: str = "",
) -> None:
    """Amend the authorized users or the end of term, keeping the before and after in the history."""
    if not reason.strip():
        raise InvalidDataError("reason needed", [Problem("--reason", "say why the agreement is amended")])
    with control.store.transaction() as conn:
        actor = _user(conn, actor_id, "approver", "administrator")
        record = STORE.get(conn, agreement_id, for_update=True)
        _require_party(conn, actor, record, "amend")
        if record.state in ("expired", "terminated"):
            raise InvalidStateError(f"agreement '{agreement_id}' is {record.state} and cannot be amended")
        values: dict[str, Any] = {}
        details: dict[str, Any] = {"reason": reason}
        if authorized_users is not None:
            values["authorized_users"] = authorized_users
            details["authorized_users"] = {"before": len(record.authorized_users), "after": len(authorized_users)}
        if term_end is not None:
            if term_end <= record.effective or term_end > record.effective + MAX_TERM:
                raise InvalidDataError(
                    "invalid end of term",
                    [Problem("term_end", f"must fall after {record.effective} and within 50 years of it")],
                )
            limit = _latest_allowed_end(record)
            if term_end > limit:
                raise InvalidStateError(
                    f"the term cannot end after {limit}: the law limits a {record.doc_type.replace('_', ' ')}"
                )
            values["term_end"] = term_end
            details["term_end"] = {"before": record.term_end.isoformat(), "after": term_end.isoformat()}
        if not values:
            raise InvalidDataError("nothing to amend")
        STORE.change(conn, record, **values)
        STORE.event(conn, agreement_id, "amended", actor.id, None, control.trail.clock(), details)
        _audit(control, conn, "agreement-amended", actor, agreement_id)


def _latest_allowed_end(record: AgreementRecord) -> dt.date:
    from sharewise.agreements.library import load_library

    rules = load_library().types[record.doc_type].term
    if rules.max_months is None:
        return dt.date.max
    return add_months(record.effective, rules.max_months + (rules.renewal_months or 0) * max(record.renewals_used, 0))


def renew(control: Control, actor_id: str, agreement_id: str) -> dt.date:
    with control.store.transaction() as conn:
        actor = _user(conn, actor_id, "approver")
        record = STORE.get(conn, agreement_id, for_update=True)
        _require_party(conn, actor, record, "renew")
        if record.state_on(control.trail.clock().date()) not in ("active", "expired") or record.state != "active":
            raise InvalidStateError(f"agreement '{agreement_id}' is {record.state}; only active agreements are renewed")
        end = renewal_end(record)
        STORE.change(conn, record, term_end=end, renewals_used=record.renewals_used + 1)
        STORE.event(conn, agreement_id, "renewed", actor.id, None, control.trail.clock(), {"term_end": end.isoformat()})
        _audit(control, conn, "agreement-renewed", actor, agreement_id, {"renewals_used": record.renewals_used + 1})
    return end


def terminate(control: Control, actor_id: str, agreement_id: str, reason: str) -> None:
    if not reason.strip():
        raise InvalidDataError("reason needed", [Problem("--reason", "say why the agreement is terminated")])
    with control.store.transaction() as conn:
        actor = _user(conn, actor_id, "approver", "administrator")
        record = STORE.get(conn, agreement_id, for_update=True)
        _require_party(conn, actor, record, "terminate")
        if record.state == "terminated":
            raise InvalidStateError(f"agreement '{agreement_id}' is already terminated")
        STORE.change(conn, record, state="terminated")
        STORE.event(conn, agreement_id, "terminated", actor.id, None, control.trail.clock(), {"reason": reason})
        _audit(control, conn, "agreement-terminated", actor, agreement_id)


def _agencies(conn: Any, record: AgreementRecord) -> set[str]:
    """The agencies an agreement belongs to: those of its request, or else the agency of whoever drafted it."""
    if record.request_id is not None:
        return set(USERS.get(conn, record.request_id).agencies)
    drafted = next((e for e in record.events if e.event == "drafted"), None)
    return {USERS.user(conn, drafted.actor).agency_id} if drafted else set()


def _in_scope(conn: Any, user: User, record: AgreementRecord) -> bool:
    """An agreement is visible to people of its agencies, and to auditors."""
    return user.has("auditor") or user.agency_id in _agencies(conn, record)


def _agencies_signed(conn: Any, record: AgreementRecord) -> set[str]:
    """The agencies of the approvers who have signed the agreement so far."""
    return {USERS.user(conn, e.actor).agency_id for e in record.events if e.event == "signed"}


def _one_agency_per_party(conn: Any, actor: User, record: AgreementRecord) -> bool:
    """Whether this approver's agency may still sign: between agencies, each party signs for itself.

    An agreement whose request spans two agencies is signed once by each of them, so one agency
    never signs for the other's party. Within one agency, two different approvers sign (the
    separation of duties checked in sign).
    """
    return len(_agencies(conn, record)) < 2 or actor.agency_id not in _agencies_signed(conn, record)


def parties_signable_by(control: Control, actor_id: str, agreement_id: str) -> tuple[str, ...]:
    """The parties not yet signed for that this person's agency may still sign for (their role is checked on signing)."""
    with control.store.transaction() as conn:
        actor = USERS.user(conn, actor_id)
        record = STORE.get(conn, agreement_id)
        if not _one_agency_per_party(conn, actor, record):
            return ()
    return tuple(p for p in PARTIES if p not in record.signed_by)


def _require_party(conn: Any, user: User, record: AgreementRecord, action: str) -> None:
    """Acting on an agreement is for people of its agencies only."""
    if user.agency_id not in _agencies(conn, record):
        raise AccessDeniedError(f"{user.id} may not {action} agreement '{record.id}': their agency is not a party")


def show(control: Control, actor_id: str | None, agreement_id: str) -> AgreementRecord:
    """One agreement with its history, for people of the agencies of its request and auditors."""
    with control.store.transaction() as conn:
        user = authorize(conn, actor_id, AGREEMENT_READERS, "read agreements")
        record = STORE.get(conn, agreement_id)
        if user is not None and not _in_scope(conn, user, record):
            raise AccessDeniedError(f"{user.id} may not see agreement '{agreement_id}': their agency is not a party")
        return record


def listing(control: Control, actor_id: str | None, expiring_within_days: int | None = None) -> list[AgreementRecord]:
    """The agreements the person may see (all, or only active ones whose term ends within N days)."""
    if expiring_within_days is not None and not 0 <= expiring_within_days <= MAX_EXPIRY_WINDOW_DAYS:
        raise InvalidDataError(
            "invalid expiry window",
            [Problem("expiring", f"a number of days from 0 to {MAX_EXPIRY_WINDOW_DAYS}")],
        )
    today = control.trail.clock().date()
    with control.store.transaction() as conn:
        user = authorize(conn, actor_id, AGREEMENT_READERS, "read agreements")
        records = [STORE.get(conn, i) for i in STORE.ids(conn)]
        if user is not None:
            records = [r for r in records if _in_scope(conn, user, r)]
    if expiring_within_days is None:
        return records
    horizon = today + dt.timedelta(days=expiring_within_days)
    return [r for r in records if r.state_on(today) == "active" and r.term_end <= horizon]


def authorized_users_of_request(control: Control, actor_id: str, request_id: str) -> list[dict[str, Any]]:
    """The authorized users named by a request's agreements in force or in progress, for anyone who may see it."""
    from sharewise.services import workflow as workflow_service

    workflow_service.show(control, actor_id, request_id)  # refuses people outside the request's agencies
    with control.store.transaction() as conn:
        records = [STORE.get(conn, i) for i in STORE.ids(conn)]
    users: list[dict[str, Any]] = []
    for record in records:
        if record.request_id == request_id and record.state != "terminated":
            users += [u for u in record.authorized_users if u not in users]
    return users
