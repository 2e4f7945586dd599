"""The /api/v1 routes: each parses input, checks the route's access entry, calls a service, returns JSON."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Header, Query, Request, Response
from fastapi.encoders import jsonable_encoder
from fastapi.responses import FileResponse, JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from sharewise.api.context import AppContext
from sharewise.api.problems import NotSignedInError, problem
from sharewise.domain.consent import ConsentRecord, PersonIdentifiers, Revocation
from sharewise.domain.errors import AccessDeniedError, InvalidDataError, NotFoundError, Problem
from sharewise.domain.outcome import Outcome
from sharewise.policy.model import Authority, Rule
from sharewise.policy.request_parse import parse_request
from sharewise.services import accounting as accounting_service
from sharewise.services import accounts as accounts_service
from sharewise.services import agreement_drafting, agreement_registry, law_library
from sharewise.services import audit as audit_service
from sharewise.services import consents as consent_service
from sharewise.services import security as security_service
from sharewise.services import workflow as workflow_service
from sharewise.services.determinations import determine
from sharewise.workflow.access import User
from sharewise.workflow.store import SharingRequestRecord

PREFIX = "/api/v1"
ALL_ROLES = frozenset(
    (
        "requester",
        "program_reviewer",
        "legal_reviewer",
        "security_officer",
        "approver",
        "data_steward",
        "auditor",
        "administrator",
    )
)


@dataclass(frozen=True)
class Access:
    """Who may call a route: the roles (None: anyone signed in), and whether the record is agency-scoped.

    scoped: the record belongs to agencies, and people of other agencies are refused (auditors may
    read; administrators too where administrator_reads, as for initiatives).
    """

    roles: frozenset[str] | None
    scoped: bool = False
    auditor_reads: bool = False
    administrator_reads: bool = False


ANYONE = Access(None)
# (method, path) -> access: the route table the authorization matrix test is generated from.
ROUTE_ACCESS: dict[tuple[str, str], Access] = {}

router = APIRouter(prefix=PREFIX)


# The dependencies below are async: each is pure, or touches the store only through the thread pool,
# so FastAPI runs them on the event loop instead of hopping to a worker thread for each one.


async def ctx(request: Request) -> AppContext:
    context: AppContext = request.app.state.ctx
    return context


async def signed_in(request: Request, authorization: Annotated[str | None, Header()] = None) -> User:
    """The user a Bearer API token acts as (with the token's roles only)."""
    if not authorization or not authorization.lower().startswith("bearer "):
        raise NotSignedInError("an API token is needed: Authorization: Bearer <token>")
    control = request.app.state.ctx.api
    secret = authorization[7:].strip()
    cached = accounts_service.cached_user_for_token(control, secret)
    if cached is not None:
        return cached
    try:
        return await run_in_threadpool(accounts_service.user_for_token, control, secret)
    except AccessDeniedError as exc:
        raise NotSignedInError(exc.message) from None


Ctx = Annotated[AppContext, Depends(ctx)]
Principal = Annotated[User, Depends(signed_in)]
IdempotencyKey = Annotated[
    str | None, Header(alias="Idempotency-Key", max_length=200, description="Repeat a create safely.")
]


def _role_check(access: Access) -> Callable[[User], Awaitable[None]]:
    async def check(user: Principal) -> None:
        if access.roles is not None and not (user.roles & access.roles):
            raise AccessDeniedError(f"{user.id} may not do this: one of the roles {', '.join(sorted(access.roles))}")

    return check


def route(method: str, path: str, access: Access, **kwargs: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register a route with its access entry; the entry's roles are checked before the service runs."""

    def register(fn: Callable[..., Any]) -> Callable[..., Any]:
        ROUTE_ACCESS[(method, PREFIX + path)] = access
        router.add_api_route(
            path, fn, methods=[method], dependencies=[Depends(_role_check(access))], operation_id=fn.__name__, **kwargs
        )
        return fn

    return register


def _json(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = dataclasses.asdict(value)
    return jsonable_encoder(value)


class Page(BaseModel):
    """One page of a list."""

    items: list[Any]
    total: int
    limit: int
    offset: int


Limit = Annotated[int, Query(ge=1, le=200)]
Offset = Annotated[int, Query(ge=0, le=1_000_000)]


def page(items: list[Any], limit: int, offset: int) -> dict[str, Any]:
    return {
        "items": [_json(i) for i in items[offset : offset + limit]],
        "total": len(items),
        "limit": limit,
        "offset": offset,
    }


def _idempotent(
    context: AppContext, user: User, key: str | None, request_body: Any, path: str, create: Callable[[], Any]
) -> JSONResponse:
    """Run a create once per Idempotency-Key: a repeat returns the first response; another body is refused."""
    if key is None:
        return JSONResponse(_json(create()), status_code=201)
    fingerprint = hashlib.sha256(
        (path + "\n" + json.dumps(jsonable_encoder(request_body), sort_keys=True)).encode("utf-8")
    ).hexdigest()
    before = accounts_service.remembered(context.api, user.id, key)
    if before is not None:
        if before.fingerprint != fingerprint:
            return problem(
                409, "Idempotency key reused", "invalid_state", "this Idempotency-Key was used with another request"
            )
        return JSONResponse(
            json.loads(before.body), status_code=before.status_code, headers={"Idempotent-Replayed": "true"}
        )
    body = _json(create())
    accounts_service.remember(context.api, user.id, key, fingerprint, 201, json.dumps(body))
    return JSONResponse(body, status_code=201)


# Determinations and the interview --------------------------------------------------------------


class DeterminationIn(BaseModel):
    """A sharing request in the contract's terms, and optionally the date of the disclosure."""

    model_config = ConfigDict(extra="forbid")
    request: dict[str, Any] = Field(description="The contract request: source, recipient, purpose, data, form, facts.")
    as_of: dt.date | None = None


def _checker(context: AppContext) -> Any:
    def check(request: Any, on: dt.date) -> Any:
        return consent_service.check_cited(context.api, context.law, request, on)

    return check


@route("POST", "/determinations", ANYONE, tags=["determinations"])
async def create_determination(body: DeterminationIn, context: Ctx, user: Principal) -> Response:
    """Determine whether a disclosure is lawful: outcome, reasons with citations, obligations, remedies."""
    if body.request.get("consents"):  # checked against the consent registry: store work, off the event loop
        det = await run_in_threadpool(
            determine, context.law, body.request, context.today(), body.as_of, _checker(context)
        )
    else:  # the law pack only: under a millisecond of pure computation, on the event loop
        det = determine(context.law, body.request, context.today(), body.as_of)
    return Response(orjson.dumps(det.to_contract()), media_type="application/json")


@route("POST", "/interview", ANYONE, tags=["determinations"])
def interview_step(body: DeterminationIn, context: Ctx, user: Principal) -> dict[str, Any]:
    """One step of the guided interview: the questions still open, and the determination so far."""
    det = determine(context.law, body.request, context.today(), body.as_of)
    return {
        "complete": det.outcome is not Outcome.NEEDS_FACTS or not det.questions,
        "questions": [q.model_dump(mode="json") for q in det.questions],
        "determination": det.to_contract(),
    }


# The law library ---------------------------------------------------------------------------------


def authority_json(a: Authority) -> dict[str, Any]:
    return {
        "id": a.id,
        "name": a.name,
        "summary": a.summary,
        "citations": [{"cite": c.cite, "url": c.url} for c in a.citations],
        "confidence": a.confidence,
        "notes": a.notes,
        "rules": [r.id for r in a.rules],
    }


def rule_json(rule: Rule) -> dict[str, Any]:
    return {
        "id": rule.id,
        "authority": rule.authority,
        "kind": rule.kind,
        "title": rule.title,
        "remedy": rule.remedy,
        "source": rule.source,
        "versions": [
            {
                "effective_from": v.effective_from.isoformat(),
                "effective_to": v.effective_to.isoformat() if v.effective_to else None,
                "summary": v.summary,
                "citations": [{"cite": c.cite, "url": c.url} for c in v.citations],
                "obligations": [{"id": o.id, "text": o.text} for o in v.obligations],
                "documents": list(v.documents),
                "consent_elements": [{"id": e.id, "text": e.text} for e in v.consent_elements],
                "confidence": v.confidence,
                "needs_legal_review": v.needs_legal_review,
                "notes": v.notes,
            }
            for v in rule.versions
        ],
    }


def search_rules(rules: list[Rule], q: str | None) -> list[Rule]:
    """Rules whose id, title, summary or citations contain every word of the query."""
    if not q:
        return rules
    words = q.lower().split()

    def text(r: Rule) -> str:
        v = r.versions[-1]
        return " ".join([r.id, r.title, v.summary, *(c.cite for c in v.citations)]).lower()

    return [r for r in rules if all(w in text(r) for w in words)]


Q = Annotated[str | None, Query(max_length=200, description="Words to search for.")]


@route("GET", "/law/authorities", ANYONE, tags=["law"])
def list_authorities(context: Ctx, user: Principal, limit: Limit = 50, offset: Offset = 0) -> dict[str, Any]:
    """The authorities of the loaded law pack."""
    return page([authority_json(a) for a in context.law.authorities], limit, offset)


@route("GET", "/law/authorities/{authority_id}", ANYONE, tags=["law"])
def show_authority(authority_id: str, context: Ctx, user: Principal) -> dict[str, Any]:
    """One authority with its rule ids."""
    return authority_json(law_library.find_authority(context.law, authority_id))


@route("GET", "/law/rules", ANYONE, tags=["law"])
def list_rules(
    context: Ctx,
    user: Principal,
    q: Q = None,
    authority: Annotated[str | None, Query(max_length=100)] = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> dict[str, Any]:
    """Rules, optionally of one authority and matching a search."""
    rules = list(law_library.find_authority(context.law, authority).rules) if authority else context.law.all_rules()
    return page([rule_json(r) for r in search_rules(list(rules), q)], limit, offset)


@route("GET", "/law/rules/{rule_id}", ANYONE, tags=["law"])
def show_rule(rule_id: str, context: Ctx, user: Principal) -> dict[str, Any]:
    """One rule: versions, summaries, citations, obligations, documents and its cases."""
    rule = law_library.find_rule(context.law, rule_id)
    return {**rule_json(rule), "cases": [c.name for c in law_library.cases_for_rule(context.law, rule.id)]}


@route("GET", "/law/rules/{rule_id}/citations", ANYONE, tags=["law"])
def cite_rule(rule_id: str, context: Ctx, user: Principal, as_of: dt.date | None = None) -> dict[str, Any]:
    """The citations and source links of the version in force on a date."""
    rule = law_library.find_rule(context.law, rule_id)
    date = as_of or context.today()
    version = rule.version_on(date)
    if version is None:
        raise NotFoundError(f"{rule.id} is not in force on {date.isoformat()}")
    return {
        "rule": rule.id,
        "as_of": date.isoformat(),
        "citations": [{"cite": c.cite, "url": c.url} for c in version.citations],
    }


@route("GET", "/law/vocabulary", ANYONE, tags=["law"])
def vocabulary(context: Ctx, user: Principal) -> dict[str, Any]:
    """Every id a request may use, and every fact the pack reads."""
    v = context.law.vocabulary
    return {
        "law_version": context.law.law_version,
        "programs": v.programs,
        "recipient_kinds": v.recipient_kinds,
        "purposes": v.purposes,
        "data_categories": v.data_categories,
        "roles": v.roles,
        "forms": v.forms,
        "documents": v.documents,
        "facts": v.facts,
    }


# Consents ------------------------------------------------------------------------------------------

CONSENT_ROLES = frozenset({"requester", "data_steward"})
CONSENT_WRITERS = Access(CONSENT_ROLES, scoped=True)
CONSENT_READERS = Access(CONSENT_ROLES | {"auditor"}, scoped=True, auditor_reads=True)
# Creates and lists act only within the caller's own agency: there is no other agency's record to refuse.
CONSENT_CREATORS = Access(CONSENT_ROLES)
CONSENT_LISTERS = Access(CONSENT_ROLES | {"auditor"})


def _consent_in_scope(user: User, record: ConsentRecord) -> None:
    if record.agency not in (None, user.agency_id) and not user.has("auditor"):
        raise AccessDeniedError(f"{user.id} may not see consents of another agency")


def consent_summary(record: ConsentRecord, today: dt.date) -> dict[str, Any]:
    """A consent without the person's identifiers."""
    data = record.model_dump(mode="json", exclude={"person"})
    data["status"] = "revoked" if record.revocation else ("in_force" if record.in_force(today) else "not_in_force")
    return data


@route("POST", "/consents/validate", ANYONE, tags=["consents"])
def validate_consent(consent: ConsentRecord, context: Ctx, user: Principal) -> dict[str, Any]:
    """Check a consent against every governing law's required elements (nothing is stored)."""
    problems = consent_service.validate(context.law, consent)
    return {
        "valid": not problems,
        "checked_against": [r.rule for r in consent_service.requirements_for(context.law, consent)],
        "problems": [
            {"authority": p.authority, "rule": p.rule, "element": p.element, "message": str(p)} for p in problems
        ],
    }


@route("POST", "/consents", CONSENT_CREATORS, tags=["consents"], status_code=201)
def add_consent(
    consent: ConsentRecord, context: Ctx, user: Principal, idempotency_key: IdempotencyKey = None
) -> JSONResponse:
    """Record a consent for the caller's agency (refused, with every missing element, if incomplete).

    `repeats` lists the consents of the agency in force for the same person, programs, recipients, data,
    purposes and dates: the consent is recorded all the same (a person may sign again), for the caller to
    revoke one if a single signature was entered twice.
    """
    scoped = consent.model_copy(update={"agency": user.agency_id, "id": None})

    def create() -> dict[str, Any]:
        recorded = consent_service.record(context.api, context.law, scoped, user.id)
        return {"id": recorded.id, "repeats": list(recorded.repeats)}

    return _idempotent(context, user, idempotency_key, consent, "/consents", create)


@route("GET", "/consents", CONSENT_LISTERS, tags=["consents"])
def list_consents(context: Ctx, user: Principal, limit: Limit = 50, offset: Offset = 0) -> dict[str, Any]:
    """The newest consents of the caller's agency (without identifiers)."""
    records = consent_service.list_consents(context.api, user.agency_id)
    return page([consent_summary(r, context.today()) for r in records], limit, offset)


@route("GET", "/consents/{consent_id}", CONSENT_READERS, tags=["consents"])
def show_consent(consent_id: str, context: Ctx, user: Principal) -> dict[str, Any]:
    """One consent, without the person's identifiers."""
    record = consent_service.show(context.api, consent_id, user.id)
    _consent_in_scope(user, record)
    return consent_summary(record, context.today())


@route("POST", "/consents/{consent_id}/revocation", CONSENT_WRITERS, tags=["consents"])
def revoke_consent(consent_id: str, revocation: Revocation, context: Ctx, user: Principal) -> dict[str, Any]:
    """Record that the person revoked a consent."""
    _consent_in_scope(user, consent_service.show(context.api, consent_id, user.id))
    return consent_summary(consent_service.revoke(context.api, consent_id, revocation, user.id), context.today())


class FindIn(BaseModel):
    """Whose consent, and the disclosure it must cover."""

    model_config = ConfigDict(extra="forbid")
    person: PersonIdentifiers
    request: dict[str, Any]
    on: dt.date | None = None


@route("POST", "/consents/find", Access(frozenset({"requester", "data_steward"})), tags=["consents"])
def find_consent(body: FindIn, context: Ctx, user: Principal) -> dict[str, Any]:
    """Does a consent in force cover this person and disclosure? Reveals no other consent."""
    request = parse_request(body.request, context.law.vocabulary)
    result = consent_service.find(context.api, context.law, body.person, request, body.on or context.today(), user.id)
    found: dict[str, Any] = _json(result)
    return found


# Sharing requests --------------------------------------------------------------------------------


class ProposalIn(BaseModel):
    """A new sharing request: the use case, the vision and the disclosure in the contract's terms."""

    model_config = ConfigDict(extra="forbid")
    title: str = Field(min_length=1, max_length=300)
    use_case: str = Field(min_length=1, max_length=5000)
    vision: str | None = Field(default=None, max_length=5000)
    recipient_agency: str | None = Field(default=None, max_length=40)
    initiative_id: str | None = Field(default=None, max_length=40)
    request: dict[str, Any]


class DecisionIn(BaseModel):
    """A review or approval decision."""

    model_config = ConfigDict(extra="forbid")
    decision: str = Field(pattern="^(approve|return|deny)$")
    comments: str | None = Field(default=None, max_length=5000)


def request_json(record: SharingRequestRecord) -> dict[str, Any]:
    data: dict[str, Any] = _json(record)
    data["agencies"] = sorted(record.agencies)
    return data


REQUEST_READERS = Access(None, scoped=True, auditor_reads=True)
REVIEWERS = frozenset({"program_reviewer", "legal_reviewer", "security_officer"})


@route("POST", "/requests", Access(frozenset({"requester"})), tags=["requests"], status_code=201)
def create_request(
    body: ProposalIn, context: Ctx, user: Principal, idempotency_key: IdempotencyKey = None
) -> JSONResponse:
    """Draft a sharing request."""

    def create() -> dict[str, Any]:
        request_id = workflow_service.create_request(
            context.api,
            context.law,
            user.id,
            body.title,
            body.use_case,
            body.request,
            body.vision,
            body.recipient_agency,
            body.initiative_id,
        )
        return request_json(workflow_service.show(context.api, user.id, request_id))

    return _idempotent(context, user, idempotency_key, body, "/requests", create)


@route("GET", "/requests", ANYONE, tags=["requests"])
def list_requests(context: Ctx, user: Principal, limit: Limit = 50, offset: Offset = 0) -> dict[str, Any]:
    """Every request of the caller's agency (auditors: all)."""
    return page([request_json(r) for r in workflow_service.all_requests(context.api, user.id)], limit, offset)


@route("GET", "/requests/queue", ANYONE, tags=["requests"])
def request_queue(context: Ctx, user: Principal, limit: Limit = 50, offset: Offset = 0) -> dict[str, Any]:
    """The requests waiting for something the caller may do."""
    return page([request_json(r) for r in workflow_service.queue(context.api, user.id)], limit, offset)


@route("GET", "/requests/{request_id}", REQUEST_READERS, tags=["requests"])
def show_request(request_id: str, context: Ctx, user: Principal) -> dict[str, Any]:
    """A request with its timeline of reviews and comments and its determination."""
    return request_json(workflow_service.show(context.api, user.id, request_id))


@route("GET", "/requests/{request_id}/five-safes", REQUEST_READERS, tags=["requests"])
def request_five_safes(request_id: str, context: Ctx, user: Principal) -> dict[str, Any]:
    """The request in the Five Safes frame: safe project, people, setting, data and outputs, each settled or open."""
    view = security_service.five_safes_for_request(context.api, context.law, user.id, request_id, context.today())
    return {"request_id": request_id, "safes": [s.model_dump() for s in view.safes]}


@route("POST", "/requests/{request_id}/submission", Access(frozenset({"requester"}), scoped=True), tags=["requests"])
def submit_request(request_id: str, context: Ctx, user: Principal) -> dict[str, Any]:
    """Send a draft to program review."""
    workflow_service.submit(context.api, user.id, request_id)
    return request_json(workflow_service.show(context.api, user.id, request_id))


@route("POST", "/requests/{request_id}/reviews", Access(REVIEWERS, scoped=True), tags=["requests"])
def review_request(request_id: str, body: DecisionIn, context: Ctx, user: Principal) -> dict[str, Any]:
    """Record the program, legal or security review that is due (the legal review records the determination)."""
    workflow_service.review(context.api, context.law, user.id, request_id, body.decision, body.comments)
    return request_json(workflow_service.show(context.api, user.id, request_id))


@route("POST", "/requests/{request_id}/approvals", Access(frozenset({"approver"}), scoped=True), tags=["requests"])
def approve_request(request_id: str, body: DecisionIn, context: Ctx, user: Principal) -> dict[str, Any]:
    """Leadership approval for the caller's agency."""
    workflow_service.approve(context.api, user.id, request_id, body.decision, body.comments)
    return request_json(workflow_service.show(context.api, user.id, request_id))


# Agreements ----------------------------------------------------------------------------------------

AGREEMENT_READERS = Access(
    frozenset({"requester", "legal_reviewer", "approver", "administrator", "auditor"}), scoped=True, auditor_reads=True
)


class AgreementDraftIn(BaseModel):
    """Draft the agreement for a sharing request: the parties file's content, in JSON."""

    model_config = ConfigDict(extra="forbid")
    request_id: str = Field(max_length=40)
    parties: dict[str, Any]
    doc_type: str | None = Field(default=None, max_length=60)
    format: str = Field(default="docx", pattern="^(docx|pdf|md|html)$")


class SignIn(BaseModel):
    """Which party the approver signs for."""

    model_config = ConfigDict(extra="forbid")
    party: str = Field(pattern="^(discloser|recipient)$")


def agreement_documents(context: AppContext, agreement_id: str) -> dict[str, Path]:
    """The documents kept for an agreement, by format (data_dir/agreements/{id}.{format}), DOCX and PDF first."""
    return agreement_drafting.kept_documents(documents_dir(context), agreement_id)


def documents_dir(context: AppContext) -> Path:
    base = context.api.settings.data_dir or Path(tempfile.gettempdir())
    path = base / "agreements"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _agreement_in_scope(context: AppContext, user: User, agreement_id: str) -> Any:
    return agreement_registry.show(context.api, user.id, agreement_id)  # refuses other agencies


def agreement_json(record: Any, today: dt.date) -> dict[str, Any]:
    data: dict[str, Any] = _json(record)
    data["state_today"] = record.state_on(today)
    data["signed_by"] = sorted(record.signed_by)
    return data


@route(
    "POST",
    "/agreements",
    Access(frozenset({"requester", "legal_reviewer", "approver", "administrator"}), scoped=True),
    tags=["agreements"],
    status_code=201,
)
def draft_agreement(
    body: AgreementDraftIn, context: Ctx, user: Principal, idempotency_key: IdempotencyKey = None
) -> JSONResponse:
    """Draft the agreement a request's determination requires, and register it as a draft."""
    workflow_service.show(context.api, user.id, body.request_id)  # refused before the idempotency record

    def create() -> dict[str, Any]:
        agreement_id = agreement_drafting.draft_for_request(
            context.api,
            context.law,
            user.id,
            body.request_id,
            body.parties,
            body.doc_type,
            body.format,
            documents_dir(context),
            context.today(),
        )
        return agreement_json(agreement_registry.show(context.api, user.id, agreement_id), context.today())

    return _idempotent(context, user, idempotency_key, body, "/agreements", create)


@route("GET", "/agreements", Access(AGREEMENT_READERS.roles), tags=["agreements"])
def list_agreements(
    context: Ctx,
    user: Principal,
    expiring_within_days: Annotated[int | None, Query(ge=0, le=3650)] = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> dict[str, Any]:
    """Agreements of the caller's requests (auditors: all); optionally only those expiring soon."""
    records = agreement_registry.listing(context.api, user.id, expiring_within_days)
    return page([agreement_json(r, context.today()) for r in records], limit, offset)


@route("GET", "/agreements/{agreement_id}", AGREEMENT_READERS, tags=["agreements"])
def show_agreement(agreement_id: str, context: Ctx, user: Principal) -> dict[str, Any]:
    """One agreement with its history."""
    return agreement_json(_agreement_in_scope(context, user, agreement_id), context.today())


@route("GET", "/agreements/{agreement_id}/document", AGREEMENT_READERS, tags=["agreements"])
def agreement_document(
    agreement_id: str,
    context: Ctx,
    user: Principal,
    format: Annotated[str | None, Query(pattern="^(md|html|docx|pdf)$")] = None,
) -> FileResponse:
    """The drafted agreement document: the format asked for, or the first kept (DOCX before PDF)."""
    _agreement_in_scope(context, user, agreement_id)
    kept = agreement_documents(context, agreement_id)
    path = kept.get(format) if format else next(iter(kept.values()), None)
    if path is None:
        wanted = f" as {format.upper()}" if format else ""
        raise NotFoundError(f"no document kept for agreement '{agreement_id}'{wanted}")
    return FileResponse(path, filename=path.name)


@route(
    "POST",
    "/agreements/{agreement_id}/submission",
    Access(frozenset({"requester", "legal_reviewer", "administrator"}), scoped=True),
    tags=["agreements"],
)
def submit_agreement(agreement_id: str, context: Ctx, user: Principal) -> dict[str, Any]:
    """Send a draft agreement to review."""
    _agreement_in_scope(context, user, agreement_id)
    agreement_registry.submit_for_review(context.api, user.id, agreement_id)
    return agreement_json(agreement_registry.show(context.api, user.id, agreement_id), context.today())


@route(
    "POST", "/agreements/{agreement_id}/signatures", Access(frozenset({"approver"}), scoped=True), tags=["agreements"]
)
def sign_agreement(agreement_id: str, body: SignIn, context: Ctx, user: Principal) -> dict[str, Any]:
    """An approver signs for one party; the agreement is signed once both parties have."""
    _agreement_in_scope(context, user, agreement_id)
    agreement_registry.sign(context.api, user.id, agreement_id, body.party)
    return agreement_json(agreement_registry.show(context.api, user.id, agreement_id), context.today())


# Audit and accounting ------------------------------------------------------------------------------

AUDITORS = Access(frozenset({"auditor", "administrator", "security_officer"}))


@route("POST", "/audit/verification", AUDITORS, tags=["audit"])
def verify_audit(context: Ctx, user: Principal) -> dict[str, Any]:
    """Verify the whole audit chain and its checkpoints."""
    report = audit_service.verify(context.api, actor=user.id)
    return {
        "ok": report.ok,
        "records": report.records,
        "checkpoints": report.checkpoints,
        "findings": _json(report.findings),
    }


class AccountingIn(BaseModel):
    """Whose accounting, from when (default: six years back)."""

    model_config = ConfigDict(extra="forbid")
    person: PersonIdentifiers
    since: dt.date | None = None


@route("POST", "/accounting", Access(frozenset({"data_steward", "auditor"})), tags=["accounting"])
def accounting(body: AccountingIn, context: Ctx, user: Principal) -> dict[str, Any]:
    """Every disclosure of one person's records that a governing law requires listing."""
    acc = accounting_service.accounting_for(context.api, context.law, body.person, body.since, user.id)
    listed: dict[str, Any] = _json(acc)
    return listed


# Tokens --------------------------------------------------------------------------------------------


class TokenIn(BaseModel):
    """A new API token for the caller, limited to some of the caller's roles."""

    model_config = ConfigDict(extra="forbid")
    roles: list[str] = Field(min_length=1, max_length=8)
    label: str = Field(min_length=1, max_length=200)
    expires_in_days: int = Field(default=90, ge=1, le=366)


@route("POST", "/tokens", ANYONE, tags=["tokens"], status_code=201)
def issue_token(body: TokenIn, context: Ctx, user: Principal) -> dict[str, Any]:
    """Issue a token (shown once) for the caller's own machine client."""
    unknown = sorted(set(body.roles) - ALL_ROLES)
    if unknown:
        raise InvalidDataError("unknown roles", [Problem("roles", f"unknown role(s) {unknown}")])
    if not set(body.roles) <= user.roles:
        raise AccessDeniedError(f"{user.id} may not issue a token with roles this token does not carry")
    issued = accounts_service.issue_token(context.api, user.id, set(body.roles), body.label, body.expires_in_days)
    return {"id": issued.id, "token": issued.secret, "agency": issued.agency_id, "roles": sorted(issued.roles)}


@route("DELETE", "/tokens/{token_id}", ANYONE, tags=["tokens"])
def revoke_token(token_id: str, context: Ctx, user: Principal) -> dict[str, Any]:
    """Revoke a token (its owner, or an administrator of its agency)."""
    accounts_service.revoke_token(context.api, user.id, token_id)
    return {"id": token_id, "revoked": True}


@route("GET", "/me", ANYONE, tags=["tokens"])
def whoami(user: Principal) -> dict[str, Any]:
    """Who the token acts as."""
    return {"id": user.id, "name": user.name, "agency": user.agency_id, "roles": sorted(user.roles)}
