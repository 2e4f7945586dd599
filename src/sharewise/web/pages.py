"""The web UI: server-rendered pages (Jinja2, USWDS, htmx) calling the same services as the CLI and API."""

from __future__ import annotations

import datetime as dt
import json
import secrets
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Depends, FastAPI, Form, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from pydantic import ValidationError
from starlette.datastructures import MutableHeaders, QueryParams
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.sessions import SessionMiddleware

from sharewise.api.context import AppContext
from sharewise.api.problems import status_for
from sharewise.api.routes import authority_json, rule_json, search_rules
from sharewise.api.routes_data import DOCUMENT_TYPES as CONSENT_FORM_TYPES
from sharewise.consent import forms as consent_forms
from sharewise.domain.consent import STATEMENTS, ConsentRecord, PersonIdentifiers, consent_errors
from sharewise.domain.determination import Determination
from sharewise.domain.errors import AccessDeniedError, InvalidDataError, InvalidRequestError, Problem, SharewiseError
from sharewise.domain.outcome import Outcome
from sharewise.policy.request_parse import parse_request
from sharewise.services import accounting as accounting_service
from sharewise.services import accounts as accounts_service
from sharewise.services import agreement_registry, law_library
from sharewise.services import audit as audit_service
from sharewise.services import consents as consent_service
from sharewise.services import documents as documents_service
from sharewise.services import security as security_service
from sharewise.services import workflow as workflow_service
from sharewise.services.determinations import determine
from sharewise.workflow import process
from sharewise.workflow.access import User

HERE = Path(__file__).resolve().parent
templates = Jinja2Templates(directory=str(HERE / "templates"))
router = APIRouter(include_in_schema=False)

OUTCOME_LABELS = {
    "permitted": "Permitted",
    "permitted_with_conditions": "Permitted, with conditions",
    "needs_facts": "More facts are needed",
    "needs_consent": "Consent is needed",
    "needs_legal_review": "Needs legal review",
    "prohibited": "Not permitted",
}
OUTCOME_ALERT = {
    "permitted": "success",
    "permitted_with_conditions": "success",
    "needs_facts": "info",
    "needs_consent": "warning",
    "needs_legal_review": "warning",
    "prohibited": "error",
}


class SignInRequired(Exception):
    """The page needs a signed-in user (or the session went idle)."""

    def __init__(self, next_url: str, reason: str | None = None) -> None:
        super().__init__(reason or "")
        self.next_url = next_url
        self.reason = reason


def ctx(request: Request) -> AppContext:
    context: AppContext = request.app.state.ctx
    return context


Ctx = Annotated[AppContext, Depends(ctx)]


SESSION_LIFETIME = dt.timedelta(
    hours=12
)  # from sign-in, however active (SP 800-63B 4.2.3: AAL2 re-authenticates every 12 h)


def _now(context: AppContext) -> dt.datetime:
    return context.web.trail.clock()


def current_user(request: Request) -> User:
    """The signed-in user; a session idle longer than the timeout is ended. The request counts as activity."""
    return _session_user(request, activity=True)


def polling_user(request: Request) -> User:
    """The signed-in user of a background poll: checked as current_user does, but not counted as activity.

    A page that polls its status (a share run's) would otherwise keep a session alive for as long
    as it stays open, with nobody at the screen: the idle timeout (NIST SP 800-63B 7.2) would never
    end it. Only requests a person made move the session's last activity on.
    """
    return _session_user(request, activity=False)


def _session_user(request: Request, activity: bool) -> User:
    context = ctx(request)
    session = request.session
    uid = session.get("uid")
    next_url = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    if not uid:
        raise SignInRequired(next_url)
    seen = dt.datetime.fromisoformat(session.get("seen", "1970-01-01T00:00:00+00:00"))
    now = _now(context)
    if now - seen > request.app.state.idle_timeout:
        session.clear()
        raise SignInRequired(next_url, "Your session ended after 15 minutes without activity. Please sign in again.")
    # The absolute limit is checked here, not left to the cookie's max_age: the session middleware
    # sends the cookie again with each response, so its expiry would move with every page.
    since = dt.datetime.fromisoformat(session.setdefault("since", now.isoformat()))
    if now - since > SESSION_LIFETIME:
        session.clear()
        raise SignInRequired(next_url, "Your session ended 12 hours after you signed in. Please sign in again.")
    if activity:
        session["seen"] = now.isoformat()
    try:
        return accounts_service.user(context.web, str(uid))
    except SharewiseError:
        session.clear()
        raise SignInRequired(next_url) from None


Viewer = Annotated[User, Depends(current_user)]


def csrf_token(request: Request) -> str:
    token = request.session.get("csrf")
    if not token:
        token = secrets.token_urlsafe(32)
        request.session["csrf"] = token
    return str(token)


def check_csrf(request: Request, token: str) -> None:
    expected = request.session.get("csrf")
    header = request.headers.get("x-csrf-token")
    if not expected or not (
        secrets.compare_digest(str(expected), token or "") or secrets.compare_digest(str(expected), header or "")
    ):
        raise AccessDeniedError("the form expired or did not come from this site; reload the page and try again")


Csrf = Annotated[str, Form(alias="csrf_token")]


def flash(request: Request, message: str, kind: str = "success") -> None:
    request.session.setdefault("flash", []).append({"message": message, "kind": kind})


def render(request: Request, template: str, status_code: int = 200, **values: Any) -> HTMLResponse:
    context = ctx(request)
    user = values.pop("user", None)
    return templates.TemplateResponse(
        request,
        template,
        {
            "user": user,
            "csrf": csrf_token(request),
            "flashes": request.session.pop("flash", []),
            "law": context.law,
            "labels": OUTCOME_LABELS,
            "alerts": OUTCOME_ALERT,
            **values,
        },
        status_code=status_code,
    )


def error_page(request: Request, exc: Exception) -> Response:
    """An error as a page: the message and each problem's location, never a traceback or personal data."""
    if isinstance(exc, SignInRequired):
        if exc.reason:
            flash(request, exc.reason, "warning")
        return RedirectResponse(f"/sign-in?next={quote(exc.next_url)}", status_code=303)
    if isinstance(exc, SharewiseError):
        status, title = status_for(exc)
        message, problems = exc.message, [str(p) for p in exc.problems]
    elif isinstance(exc, RequestValidationError):
        status, title, message = 422, "The form is incomplete", "some fields are missing or invalid"
        problems = [f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg')}" for e in exc.errors()]
    elif isinstance(exc, StarletteHTTPException):
        status, title, message, problems = (
            exc.status_code,
            "Page not found" if exc.status_code == 404 else "Error",
            str(exc.detail),
            [],
        )
    else:
        status, title, message, problems = 500, "Error", "something went wrong", []
    return render(request, "error.html", status, title=title, message=message, problems=problems, user=None)


# Sign-in -----------------------------------------------------------------------------------------


def _safe_next(url: str | None) -> str:
    # Only paths on this site: "//host" and "/\\host" would leave it.
    return url if url and url.startswith("/") and not url.startswith(("//", "/\\")) else "/"


@router.get("/sign-in")
def sign_in_form(request: Request, next: str | None = None) -> HTMLResponse:
    return render(request, "sign_in.html", next=_safe_next(next), error=None)


@router.post("/sign-in")
def sign_in(
    request: Request,
    context: Ctx,
    csrf: Csrf,
    username: Annotated[str, Form(max_length=80)],
    password: Annotated[str, Form(max_length=1024)],
    code: Annotated[str, Form(max_length=12)] = "",
    next: Annotated[str, Form(max_length=500)] = "/",
) -> Response:
    check_csrf(request, csrf)
    try:
        user = accounts_service.authenticate(context.web, username.strip(), password, code or None)
    except AccessDeniedError as exc:
        if exc.message != accounts_service.ENROLMENT_REQUIRED:
            return render(request, "sign_in.html", 401, next=_safe_next(next), error=exc.message)
        # A privileged account without an authenticator: straight into enrolment, and nowhere else.
        try:
            enrolling = accounts_service.sign_in_to_enrol(context.web, username.strip(), password)
        except AccessDeniedError as refused:
            return render(request, "sign_in.html", 401, next=_safe_next(next), error=refused.message)
        request.session.clear()
        request.session.update(
            {"enrolling": enrolling.id, "seen": _now(context).isoformat(), "csrf": secrets.token_urlsafe(32)}
        )
        accounts_service.begin_totp(context.web, enrolling.id)
        return RedirectResponse("/account/mfa#enrolment", status_code=303)
    start_session(request, context, user)
    return RedirectResponse(_safe_next(next), status_code=303)


def start_session(request: Request, context: AppContext, user: User) -> None:
    """A new session for a signed-in person (never the one they arrived with: no fixation), with a new CSRF token."""
    request.session.clear()
    now = _now(context).isoformat()
    request.session.update({"uid": user.id, "seen": now, "since": now, "csrf": secrets.token_urlsafe(32)})


@router.post("/sign-out")
def sign_out(request: Request, csrf: Csrf) -> Response:
    check_csrf(request, csrf)
    request.session.clear()
    flash(request, "You are signed out.")
    return RedirectResponse("/sign-in", status_code=303)


# Dashboard ---------------------------------------------------------------------------------------


@router.get("/")
def dashboard(request: Request, context: Ctx, user: Viewer) -> HTMLResponse:
    queue = workflow_service.queue(context.web, user.id, limit=PAGE_SIZE)
    expiring = [a for a in agreement_registry.listing(context.web, user.id, 90)] if _reads_agreements(user) else []
    return render(request, "dashboard.html", user=user, queue=queue, expiring=expiring)


def _reads_agreements(user: User) -> bool:
    return bool(user.roles & AGREEMENT_READER_ROLES)


# The guided interview ----------------------------------------------------------------------------


def _interview_request(params: dict[str, Any]) -> dict[str, Any] | None:
    """The contract request the interview's answers describe, or None while the basics are missing."""
    if not (params.get("source") and params.get("kind") and params.get("purpose") and params.get("data")):
        return None
    recipient: dict[str, Any] = {"kind": params["kind"]}
    if params.get("rprogram"):
        recipient["program"] = params["rprogram"]
    raw: dict[str, Any] = {
        "source": {"program": params["source"]},
        "recipient": recipient,
        "purpose": params["purpose"],
        "data": params["data"],
        "form": params.get("form") or "identified",
    }
    facts = {k: v == "yes" for k, v in params.get("facts", {}).items() if v in ("yes", "no")}
    if facts:
        raw["facts"] = facts
    return raw


def citation_links(context: AppContext) -> dict[str, str]:
    links: dict[str, str] = {}
    for authority in context.law.authorities:
        for c in authority.citations:
            if c.url:
                links.setdefault(c.cite, c.url)
        for rule in authority.rules:
            for version in rule.versions:
                for c in version.citations:
                    if c.url:
                        links.setdefault(c.cite, c.url)
    return links


def _interview_params(query: QueryParams) -> dict[str, Any]:
    """The interview's answers, as its query string carries them."""
    return {
        "source": query.get("source") or None,
        "kind": query.get("kind") or None,
        "rprogram": query.get("rprogram") or None,
        "purpose": query.get("purpose") or None,
        "data": [d for d in query.getlist("data") if d],
        "form": query.get("form") or "identified",
        "facts": {k[5:]: val for k, val in query.items() if k.startswith("fact_")},
    }


@router.get("/interview")
def interview(request: Request, context: Ctx, user: Viewer) -> HTMLResponse:
    v = context.law.vocabulary
    params = _interview_params(request.query_params)
    raw = _interview_request(params)
    det: Determination | None = None
    error: SharewiseError | None = None
    if raw is not None:
        try:
            det = determine(context.law, raw, context.today())
        except SharewiseError as exc:
            error = exc
    questions = []
    consent_form: dict[str, Any] | None = None
    if det is not None and raw is not None and any(a.outcome == Outcome.CONSENT_REQUIRED for a in det.authorities):
        try:
            form = documents_service.consent_form(context.law, parse_request(raw, v), context.today())
        except SharewiseError:
            pass  # consent cannot make it lawful, or no authority offers it: no form to print
        else:
            query = str(request.url.query)
            consent_form = {"query": query, "warnings": form.warnings, "formats": consent_forms.FORMATS}
    if det is not None:
        for q in det.questions:
            fact = q.fact[6:] if q.fact.startswith("facts.") else None
            questions.append({"fact": fact, "ask": q.ask, "answer": params["facts"].get(fact or "", "unknown")})
    return render(
        request,
        "interview.html",
        user=user,
        v=v,
        params=params,
        det=det,
        error=error,
        questions=questions,
        consent_form=consent_form,
        request_json=json.dumps(raw) if raw else "",
        links=citation_links(context) if det else {},
        doc_labels=v.documents,
    )


@router.get("/interview/consent-form")
def interview_consent_form(request: Request, context: Ctx, user: Viewer) -> Response:
    """The universal consent form for the interview's answers (PDF, DOCX or HTML), as the API makes it.

    A blank form holds no personal data, so, as in the API, anyone signed in may print one. Text
    that awaits counsel's review is listed on the interview page, next to the links.
    """
    fmt = request.query_params.get("format") or "pdf"
    if fmt not in consent_forms.FORMATS:
        raise InvalidRequestError(
            "invalid option", [Problem("format", f"'{fmt}' is not one of {', '.join(consent_forms.FORMATS)}")]
        )
    raw = _interview_request(_interview_params(request.query_params))
    if raw is None:
        raise InvalidRequestError(
            "the interview is not finished",
            [Problem("interview", "answer whose records, to whom, for what and which data first")],
        )
    form = documents_service.consent_form(context.law, parse_request(raw, context.law.vocabulary), context.today())
    return Response(
        consent_forms.render(form, fmt),
        media_type=CONSENT_FORM_TYPES[fmt],
        headers={"Content-Disposition": f'attachment; filename="consent-form.{fmt}"'},
    )


@router.post("/requests/new")
def new_request(
    request: Request,
    context: Ctx,
    user: Viewer,
    csrf: Csrf,
    request_json: Annotated[str, Form(max_length=20000)],
    title: Annotated[str, Form(min_length=1, max_length=300)],
    use_case: Annotated[str, Form(min_length=1, max_length=5000)],
    recipient_agency: Annotated[str, Form(max_length=40)] = "",
) -> Response:
    check_csrf(request, csrf)
    try:
        raw = json.loads(request_json)
    except ValueError:
        raise InvalidDataError("the interview's request was lost; start the interview again") from None
    request_id = workflow_service.create_request(
        context.web, context.law, user.id, title, use_case, raw, None, recipient_agency.strip() or None
    )
    flash(request, f"Sharing request {request_id} created as a draft.")
    return RedirectResponse(f"/requests/{request_id}", status_code=303)


# Law library ---------------------------------------------------------------------------------------


@router.get("/law")
def law_page(request: Request, context: Ctx, user: Viewer, q: str = "", authority: str = "") -> HTMLResponse:
    rules = list(law_library.find_authority(context.law, authority).rules) if authority else context.law.all_rules()
    found = [rule_json(r) for r in search_rules(list(rules), q[:200] or None)]
    authorities = [authority_json(a) for a in context.law.authorities]
    return render(request, "law.html", user=user, rules=found, authorities=authorities, q=q, authority=authority)


@router.get("/law/rules/{rule_id}")
def rule_page(rule_id: str, request: Request, context: Ctx, user: Viewer) -> HTMLResponse:
    rule = law_library.find_rule(context.law, rule_id)
    cases = law_library.cases_for_rule(context.law, rule.id)
    return render(request, "rule.html", user=user, rule=rule_json(rule), cases=cases)


# Requests ----------------------------------------------------------------------------------------


PAGE_SIZE = 50  # rows per list page: pages stay fast however many requests an agency has


@router.get("/requests")
def requests_page(request: Request, context: Ctx, user: Viewer, page: int = 1) -> HTMLResponse:
    page = max(page, 1)
    offset = (page - 1) * PAGE_SIZE
    queue = workflow_service.queue(context.web, user.id, limit=PAGE_SIZE + 1, offset=offset)
    everything = workflow_service.all_requests(context.web, user.id, limit=PAGE_SIZE + 1, offset=offset)
    return render(
        request,
        "requests.html",
        user=user,
        queue=queue[:PAGE_SIZE],
        everything=everything[:PAGE_SIZE],
        page=page,
        has_next=len(queue) > PAGE_SIZE or len(everything) > PAGE_SIZE,
    )


def _actions(user: User, state: str) -> list[str]:
    actions = []
    if state == "draft" and user.has("requester"):
        actions.append("submit")
    if state in process.REVIEW_STAGES and user.has(process.REVIEW_STAGES[state][1]):
        actions.append("review")
    if state == "approval" and user.has("approver"):
        actions.append("approve")
    return actions


@router.get("/requests/{request_id}")
def request_page(request_id: str, request: Request, context: Ctx, user: Viewer) -> HTMLResponse:
    return request_view(request, context, user, request_id)


AGREEMENT_DRAFTER_ROLES = frozenset({"requester", "legal_reviewer", "approver", "administrator"})
AGREEMENT_RECORDER_ROLES = frozenset({"approver", "administrator"})


def request_view(
    request: Request, context: Any, user: User, request_id: str, status_code: int = 200, **extra: Any
) -> HTMLResponse:
    """The request page: its determination, Five Safes, timeline, the actions due and its agreements."""
    record = workflow_service.show(context.web, user.id, request_id)
    stage = process.REVIEW_STAGES.get(record.state, (None,))[0]
    agreements = (
        [a for a in agreement_registry.listing(context.web, user.id) if a.request_id == record.id]
        if _reads_agreements(user)
        else []
    )
    pending = record.state == "agreement_pending"
    values: dict[str, Any] = {
        "draft_form": {},
        "draft_problems": [],
        "may_draft": pending and bool(user.roles & AGREEMENT_DRAFTER_ROLES),
        "may_record": pending and bool(user.roles & AGREEMENT_RECORDER_ROLES),
        "in_force": [a for a in agreements if a.state_on(context.today()) == "active"],
        **extra,
    }
    return render(
        request,
        "request.html",
        status_code=status_code,
        user=user,
        record=record,
        actions=_actions(user, record.state),
        stage=stage,
        links=citation_links(context) if record.determination else {},
        five_safes=security_service.five_safes_for_request(
            context.web, context.law, user.id, request_id, context.today()
        ),
        agreements=agreements,
        today=context.today(),
        **values,
    )


@router.get("/requests/{request_id}/safeguards")
def request_safeguards(request_id: str, request: Request, context: Ctx, user: Viewer) -> HTMLResponse:
    """The safeguards specification the security review works from: categorization, overlays, controls."""
    spec = security_service.specification_for_request(context.web, context.law, user.id, request_id, context.today())
    return render(request, "request_safeguards.html", user=user, request_id=request_id, spec=spec)


@router.get("/requests/{request_id}/safeguards.json")
def request_safeguards_oscal(request_id: str, context: Ctx, user: Viewer) -> JSONResponse:
    """The specification as an OSCAL profile, for the agency's GRC tools."""
    spec = security_service.specification_for_request(context.web, context.law, user.id, request_id, context.today())
    return JSONResponse(
        security_service.export(spec, "profile", _now(context)),
        headers={"Content-Disposition": f'attachment; filename="{request_id}-safeguards-oscal.json"'},
    )


@router.post("/requests/{request_id}/submit")
def submit_request(request_id: str, request: Request, context: Ctx, user: Viewer, csrf: Csrf) -> Response:
    check_csrf(request, csrf)
    return _act(
        request,
        request_id,
        lambda: workflow_service.submit(context.web, user.id, request_id),
        "Submitted for program review.",
    )


@router.post("/requests/{request_id}/review")
def review_request(
    request_id: str,
    request: Request,
    context: Ctx,
    user: Viewer,
    csrf: Csrf,
    decision: Annotated[str, Form(pattern="^(approve|return|deny)$")],
    comments: Annotated[str, Form(max_length=5000)] = "",
) -> Response:
    check_csrf(request, csrf)
    return _act(
        request,
        request_id,
        lambda: workflow_service.review(context.web, context.law, user.id, request_id, decision, comments or None),
        "Your review is recorded.",
    )


@router.post("/requests/{request_id}/approve")
def approve_request(
    request_id: str,
    request: Request,
    context: Ctx,
    user: Viewer,
    csrf: Csrf,
    decision: Annotated[str, Form(pattern="^(approve|return|deny)$")],
    comments: Annotated[str, Form(max_length=5000)] = "",
) -> Response:
    check_csrf(request, csrf)
    return _act(
        request,
        request_id,
        lambda: workflow_service.approve(context.web, user.id, request_id, decision, comments or None),
        "Your decision is recorded.",
    )


def _act(request: Request, request_id: str, action: Any, done: str) -> Response:
    try:
        action()
        flash(request, done)
    except (AccessDeniedError, InvalidDataError) as exc:
        flash(request, exc.message + "".join(f" {p}" for p in exc.problems), "error")
    except SharewiseError as exc:
        flash(request, exc.message, "error")
    return RedirectResponse(f"/requests/{request_id}", status_code=303)


# Consents ----------------------------------------------------------------------------------------

CONSENT_ROLES = frozenset({"requester", "data_steward", "auditor"})


def _consent_user(user: User) -> None:
    if not user.roles & CONSENT_ROLES:
        raise AccessDeniedError(f"{user.id} may not work with consents")


@router.get("/consents")
def consents_page(request: Request, context: Ctx, user: Viewer) -> HTMLResponse:
    _consent_user(user)
    return _consents(request, context, user, None)


def _consents(request: Request, context: AppContext, user: User, found: Any) -> HTMLResponse:
    """The consents page: the agency's consents, and the answer to a look-up when there is one."""
    records = consent_service.list_consents(context.web, user.agency_id)
    return render(
        request,
        "consents.html",
        user=user,
        records=records,
        today=context.today(),
        found=found,
        v=context.law.vocabulary,
    )


@router.get("/consents/new")
def consent_form(request: Request, context: Ctx, user: Viewer) -> HTMLResponse:
    _consent_user(user)
    return render(
        request, "consent_new.html", user=user, v=context.law.vocabulary, statements=STATEMENTS, form={}, problems=[]
    )


def _consent_from_form(form: dict[str, Any]) -> dict[str, Any]:
    def one(name: str) -> str | None:
        value = form.get(name)
        return str(value).strip() if value and str(value).strip() else None

    recipient = {
        k: v
        for k, v in {
            "kind": one("recipient_kind"),
            "program": one("recipient_program"),
            "name": one("recipient_name"),
        }.items()
        if v
    }
    signature = {
        "signer": one("signer") or "person",
        "name": one("signer_name"),
        "signed_on": one("signed_on"),
        "method": one("method"),
    }
    if one("relationship"):
        signature["relationship"] = one("relationship")
    return {
        "person": {
            "given_name": one("given_name"),
            "family_name": one("family_name"),
            "date_of_birth": one("date_of_birth"),
        },
        "person_is_minor": form.get("person_is_minor") == "yes",
        "disclosers": [{"program": one("discloser_program")}],
        "recipients": [recipient],
        "data": form.get("data", []),
        "information_description": one("information_description"),
        "purposes": form.get("purposes", []),
        "purpose_description": one("purpose_description"),
        "effective": one("effective"),
        "expiration": {k: v for k, v in {"date": one("expires_on"), "event": one("expires_event")}.items() if v},
        "signatures": [signature],
        "statements": form.get("statements", []),
    }


@router.post("/consents/new")
async def consent_add(request: Request, context: Ctx, user: Viewer) -> Response:
    if not user.roles & {"requester", "data_steward"}:
        raise AccessDeniedError(f"{user.id} may not record consents")
    submitted = await request.form()
    check_csrf(request, str(submitted.get("csrf_token", "")))
    form: dict[str, Any] = {k: submitted.get(k) for k in submitted if k not in ("data", "purposes", "statements")}
    for many in ("data", "purposes", "statements"):
        form[many] = [str(x) for x in submitted.getlist(many)]
    problems: list[str] = []
    try:
        consent = ConsentRecord.model_validate({**_consent_from_form(form), "agency": user.agency_id})
        recorded = consent_service.record(context.web, context.law, consent, user.id, "consent")
    except ValidationError as exc:
        # Field paths and messages only: the values typed are not echoed in the messages.
        problems = [
            f"{'.'.join(str(p) for p in e['loc'])}: {'required' if e['type'] == 'missing' else e['msg']}"
            for e in consent_errors(exc)
        ]
    except InvalidDataError as exc:
        problems = [exc.message, *(p.message for p in exc.problems)]
    if problems:
        form.pop("csrf_token", None)
        return render(
            request,
            "consent_new.html",
            422,
            user=user,
            v=context.law.vocabulary,
            statements=STATEMENTS,
            form=form,
            problems=problems,
        )
    repeats = "".join(
        f" It repeats consent {other}, in force for the same person, programs, recipients, data, purposes and"
        " dates: if one signature was entered twice, revoke one."
        for other in recorded.repeats
    )
    flash(request, f"Consent {recorded.id} recorded.{repeats}")
    return RedirectResponse("/consents", status_code=303)


@router.post("/consents/find")
def consent_find(
    request: Request,
    context: Ctx,
    user: Viewer,
    csrf: Csrf,
    given_name: Annotated[str, Form(max_length=100)],
    family_name: Annotated[str, Form(max_length=100)],
    date_of_birth: Annotated[dt.date, Form()],
    source: Annotated[str, Form(max_length=80)],
    kind: Annotated[str, Form(max_length=80)],
    purpose: Annotated[str, Form(max_length=80)],
    data: Annotated[list[str], Form()],
) -> HTMLResponse:
    check_csrf(request, csrf)
    if not user.roles & {"requester", "data_steward"}:
        raise AccessDeniedError(f"{user.id} may not look up consents")
    person = PersonIdentifiers(given_name=given_name, family_name=family_name, date_of_birth=date_of_birth)
    req = parse_request(
        {"source": {"program": source}, "recipient": {"kind": kind}, "purpose": purpose, "data": data},
        context.law.vocabulary,
    )
    found = consent_service.find(context.web, context.law, person, req, context.today(), user.id)
    return _consents(request, context, user, found)


@router.post("/consents/{consent_id}/revoke")
def consent_revoke(
    consent_id: str,
    request: Request,
    context: Ctx,
    user: Viewer,
    csrf: Csrf,
    method: Annotated[str, Form(pattern="^(written|electronic|verbal)$")],
    revoked_on: Annotated[dt.date, Form()],
) -> Response:
    check_csrf(request, csrf)
    if not user.roles & {"requester", "data_steward"}:
        raise AccessDeniedError(f"{user.id} may not revoke consents")
    record = consent_service.show(context.web, consent_id, user.id)
    if record.agency not in (None, user.agency_id):
        raise AccessDeniedError(f"{user.id} may not revoke consents of another agency")
    revocation = consent_service.revocation(revoked_on, method, user.id)
    consent_service.revoke(context.web, consent_id, revocation, user.id)
    flash(request, f"Consent {consent_id} revoked.")
    return RedirectResponse("/consents", status_code=303)


# Agreements, audit, accounting ---------------------------------------------------------------------


@router.get("/agreements")
def agreements_page(request: Request, context: Ctx, user: Viewer, expiring: int | None = None) -> HTMLResponse:
    if not _reads_agreements(user):
        raise AccessDeniedError(f"{user.id} may not see agreements")
    records = agreement_registry.listing(context.web, user.id, expiring)
    return render(request, "agreements.html", user=user, records=records, expiring=expiring, today=context.today())


@router.get("/agreements/{agreement_id}")
def agreement_page(agreement_id: str, request: Request, context: Ctx, user: Viewer) -> HTMLResponse:
    if not _reads_agreements(user):
        raise AccessDeniedError(f"{user.id} may not see agreements")
    record = agreement_registry.show(context.web, user.id, agreement_id)
    return render(request, "agreement.html", user=user, record=record, today=context.today())


AUDIT_ROLES = frozenset({"auditor", "administrator", "security_officer"})


@router.get("/audit")
def audit_page(request: Request, context: Ctx, user: Viewer) -> HTMLResponse:
    if not user.roles & AUDIT_ROLES:
        raise AccessDeniedError(f"{user.id} may not see the audit trail")
    return render(request, "audit.html", user=user, report=None)


@router.post("/audit/verify")
def audit_verify(request: Request, context: Ctx, user: Viewer, csrf: Csrf) -> HTMLResponse:
    check_csrf(request, csrf)
    if not user.roles & AUDIT_ROLES:
        raise AccessDeniedError(f"{user.id} may not verify the audit trail")
    return render(request, "audit.html", user=user, report=audit_service.verify(context.web, actor=user.id))


ACCOUNTING_ROLES = frozenset({"data_steward", "auditor"})
AGREEMENT_READER_ROLES = frozenset({"requester", "legal_reviewer", "approver", "administrator", "auditor"})
STEWARD_ROLES = frozenset({"data_steward"})

# The primary navigation: (href, label, roles that may open the page, or None for everyone). A person
# is offered only the pages their roles open, so no menu link answers "not permitted".
NAVIGATION: tuple[tuple[str, str, frozenset[str] | None], ...] = (
    ("/interview", "Can we share?", None),
    ("/requests", "Requests", None),
    ("/law", "Law library", None),
    ("/consents", "Consents", CONSENT_ROLES),
    ("/agreements", "Agreements", AGREEMENT_READER_ROLES),
    ("/shares/plan", "Share plan", STEWARD_ROLES),
    ("/shares/runs", "Share runs", STEWARD_ROLES),
    ("/linkage", "Linkage", STEWARD_ROLES),
    ("/audit", "Audit", AUDIT_ROLES),
    ("/accounting", "Accounting", ACCOUNTING_ROLES),
)


def navigation(user: User) -> list[tuple[str, str]]:
    """The menu items this person's roles open."""
    return [(href, label) for href, label, roles in NAVIGATION if roles is None or user.roles & roles]


templates.env.globals["navigation"] = navigation


@router.get("/accounting")
def accounting_form(request: Request, user: Viewer) -> HTMLResponse:
    if not user.roles & ACCOUNTING_ROLES:
        raise AccessDeniedError(f"{user.id} may not produce accountings")
    return render(request, "accounting.html", user=user, acc=None)


@router.post("/accounting")
def accounting_page(
    request: Request,
    context: Ctx,
    user: Viewer,
    csrf: Csrf,
    given_name: Annotated[str, Form(max_length=100)],
    family_name: Annotated[str, Form(max_length=100)],
    date_of_birth: Annotated[dt.date, Form()],
    since: Annotated[dt.date | None, Form()] = None,
) -> HTMLResponse:
    check_csrf(request, csrf)
    if not user.roles & ACCOUNTING_ROLES:
        raise AccessDeniedError(f"{user.id} may not produce accountings")
    person = PersonIdentifiers(given_name=given_name, family_name=family_name, date_of_birth=date_of_birth)
    acc = accounting_service.accounting_for(context.web, context.law, person, since, user.id)
    return render(request, "accounting.html", user=user, acc=acc)


def interview_url(raw: dict[str, Any]) -> str:
    """The interview page pre-filled with a request (used by links and tests)."""
    pairs: list[tuple[str, str]] = [
        ("source", raw["source"]["program"]),
        ("kind", raw["recipient"]["kind"]),
        ("purpose", raw["purpose"]),
        *(("data", d) for d in raw["data"]),
    ]
    if raw["recipient"].get("program"):
        pairs.append(("rprogram", raw["recipient"]["program"]))
    for fact, value in raw.get("facts", {}).items():
        pairs.append((f"fact_{fact}", "yes" if value else "no"))
    return "/interview?" + urlencode(pairs)


def mount_web(app: FastAPI, secret: str, secure_cookies: bool, idle_timeout: dt.timedelta) -> None:
    """Add the pages, the static assets and the signed, HttpOnly, SameSite session cookie."""
    app.state.idle_timeout = idle_timeout
    import sharewise.web.account_pages
    import sharewise.web.linkage_pages
    import sharewise.web.oidc_pages
    import sharewise.web.record_pages
    import sharewise.web.request_agreement_pages
    import sharewise.web.share_pages

    sharewise.web.oidc_pages.configure_from_env(
        app
    )  # a bad identity-provider file stops the server, listing every problem

    app.include_router(router)
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")
    app.add_middleware(
        SessionMiddleware,
        secret_key=secret,
        session_cookie="sharewise_session",
        max_age=int(SESSION_LIFETIME.total_seconds()),  # both limits are also checked on every page
        same_site="lax",
        https_only=secure_cookies,
    )

    app.add_middleware(SecurityHeaders)
    app.add_exception_handler(SignInRequired, error_page)


CSP = "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'"


class SecurityHeaders:
    """Security headers on every response, as plain ASGI middleware (no per-request task or body copy)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]

        async def with_headers(message: Any) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.setdefault("X-Content-Type-Options", "nosniff")
                headers.setdefault("X-Frame-Options", "DENY")
                headers.setdefault("Referrer-Policy", "same-origin")
                if not path.startswith("/api/v1/docs"):
                    headers.setdefault("Content-Security-Policy", CSP)
                if path.startswith(("/api/", "/sign-in")) or "text/html" in headers.get("content-type", ""):
                    headers.setdefault("Cache-Control", "no-store")
            await send(message)

        await self.app(scope, receive, with_headers)
