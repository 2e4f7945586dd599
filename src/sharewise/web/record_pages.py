"""Record pages: agreement actions and documents, FHIR consent import, audit checkpoints, accounting PDFs, share plans."""

from __future__ import annotations

import codecs
import datetime as dt
import json
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Annotated, Any

import yaml
from fastapi import Form, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from starlette.datastructures import FormData, UploadFile

from sharewise.agreements.registry import AgreementRecord
from sharewise.api.routes import agreement_documents
from sharewise.consent.fhir import EXT as FHIR_EXTENSION
from sharewise.domain.consent import PersonIdentifiers
from sharewise.domain.errors import (
    AccessDeniedError,
    InvalidDataError,
    InvalidStateError,
    NotFoundError,
    NotPermittedError,
    Problem,
    SharewiseError,
)
from sharewise.services import accounting as accounting_service
from sharewise.services import agreement_drafting, agreement_registry
from sharewise.services import audit as audit_service
from sharewise.services import consents as consent_service
from sharewise.services import shares as share_service
from sharewise.web.pages import (
    ACCOUNTING_ROLES,
    Csrf,
    Ctx,
    Viewer,
    _reads_agreements,
    check_csrf,
    citation_links,
    ctx,
    flash,
    render,
    router,
    templates,
)
from sharewise.workflow.access import User

# Downloads carry records or signed statements about them: never cached, always saved as files.
NO_STORE = {"Cache-Control": "no-store"}


@dataclass(frozen=True)
class FormProblem:
    """One problem with a submitted form, and the id of the field it concerns (for the error summary's link)."""

    message: str
    field: str | None = None


def _problems_of(
    exc: SharewiseError, fields: dict[str, str] | None = None, hide: Iterable[str] = (), lead: bool = False
) -> list[FormProblem]:
    """A service error as form problems: each problem's location mapped to a field id; hidden paths removed.

    lead: the error's own message comes first even when it has problems (a refusal, then its reasons).
    """

    def clean(text: str) -> str:
        for secret in hide:
            text = text.replace(secret, "")
        return text

    def sentence(text: str) -> str:
        return text[:1].upper() + text[1:]

    fields = fields or {}
    if not exc.problems:
        return [FormProblem(sentence(clean(exc.message)))]
    found = [FormProblem(sentence(clean(exc.message)))] if lead else []
    for p in exc.problems:
        location, message, field = clean(p.location), clean(p.message), fields.get(p.location)
        # A message linked to its field (or without a place) reads as a sentence; a place is shown as it is named.
        found.append(FormProblem(sentence(message) if field or not location else f"{location}: {message}", field))
    return found


def _refuse_unless(user: User, roles: frozenset[str], action: str) -> None:
    """The page-level refusal: a clear 403 page before any service runs (the services check again)."""
    if not user.roles & roles:
        raise AccessDeniedError(f"{user.id} may not {action}: one of the roles {', '.join(sorted(roles))} is needed")


def _attachment(content: bytes, filename: str, media_type: str) -> Response:
    return Response(
        content,
        media_type=media_type,
        headers={"Content-Disposition": f'attachment; filename="{filename}"', **NO_STORE},
    )


# Agreements ----------------------------------------------------------------------------------------

# The roles each registry action needs, as the agreement registry service checks them.
AGREEMENT_ACTIONS: dict[str, tuple[frozenset[str], str]] = {
    "submit": (frozenset({"requester", "legal_reviewer", "administrator"}), "send agreements to review"),
    "sign": (frozenset({"approver"}), "sign agreements"),
    "activate": (frozenset({"approver", "administrator"}), "activate agreements"),
    "amend": (frozenset({"approver", "administrator"}), "amend agreements"),
    "renew": (frozenset({"approver"}), "renew agreements"),
    "terminate": (frozenset({"approver", "administrator"}), "terminate agreements"),
}


def _agreement_fields(action: str) -> dict[str, str]:
    """Service problem locations (named for the CLI's options) -> the ids of the agreement page's fields."""
    return {"--reason": f"{action}-reason", "--party": "sign-party", "--term-end": "amend-term-end"}


@dataclass(frozen=True)
class AgreementPanel:
    """What the agreement page offers this person: the document, and the actions the record's state allows."""

    documents: tuple[str, ...]  # the formats kept, DOCX first
    submit: bool
    sign_parties: tuple[str, ...]
    signed_already: bool
    activate: bool
    amend: bool
    renew: bool
    renewals_left: int | None
    terminate: bool
    authorized_users: str

    @property
    def any_action(self) -> bool:
        return bool(self.submit or self.sign_parties or self.activate or self.amend or self.renew or self.terminate)


def _may(user: User, action: str) -> bool:
    return bool(user.roles & AGREEMENT_ACTIONS[action][0])


def agreement_panel(request: Request, user: User, record: AgreementRecord, today: dt.date) -> AgreementPanel:
    """The agreement page's document link and action forms (a template global: the page is pages.agreement_page)."""
    kept = agreement_documents(ctx(request), record.id)
    signed_already = any(e.event == "signed" and e.actor == user.id for e in record.events)
    unsigned = agreement_registry.parties_signable_by(ctx(request).web, user.id, record.id)
    renewals_left = None if record.max_renewals is None else max(record.max_renewals - record.renewals_used, 0)
    return AgreementPanel(
        documents=tuple(kept),
        submit=record.state == "draft" and _may(user, "submit"),
        sign_parties=unsigned
        if record.state in ("in_review", "signed") and _may(user, "sign") and not signed_already
        else (),
        signed_already=signed_already and record.state in ("in_review", "signed"),
        activate=record.state == "signed" and _may(user, "activate"),
        amend=record.state not in ("expired", "terminated") and _may(user, "amend"),
        renew=record.state == "active" and _may(user, "renew") and renewals_left != 0,
        renewals_left=renewals_left,
        terminate=record.state != "terminated" and _may(user, "terminate"),
        authorized_users=users_text(record.authorized_users),
    )


def users_text(users: list[dict[str, Any]]) -> str:
    """Authorized users as the amend form shows them: one a line, "role; name; organization"."""
    lines = []
    for u in users:
        parts = [str(u.get("role") or ""), str(u.get("name") or ""), str(u.get("organization") or "")]
        while parts and not parts[-1]:
            parts.pop()
        lines.append("; ".join(parts))
    return "\n".join(lines)


def parse_users(text: str) -> list[dict[str, Any]]:
    """The amend form's authorized users, one a line: "role; name; organization" (name and organization optional)."""
    users: list[dict[str, Any]] = []
    problems: list[Problem] = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        parts = [p.strip() for p in line.split(";")]
        if len(parts) > 3 or not parts[0]:
            problems.append(Problem(f"Authorized users, line {number}", "write: role; name; organization"))
            continue
        if any(len(p) > 300 for p in parts):
            problems.append(Problem(f"Authorized users, line {number}", "at most 300 characters a part"))
            continue
        parts += [""] * (3 - len(parts))
        users.append({"role": parts[0], "name": parts[1] or None, "organization": parts[2] or None})
    if len(users) > 200:
        problems.append(Problem("Authorized users", "at most 200 lines"))
    if problems:
        raise InvalidDataError("invalid authorized users", problems)
    return users


def _same_users(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> bool:
    def norm(users: list[dict[str, Any]]) -> list[tuple[str, str | None, str | None]]:
        return [(str(u.get("role")), u.get("name") or None, u.get("organization") or None) for u in users]

    return norm(a) == norm(b)


def _document_path(context: Any, agreement_id: str, fmt: str | None = None) -> Path | None:
    """A drafted document kept for an agreement (Settings.data_dir/agreements/{id}.{ext}): this format or the first."""
    kept = agreement_documents(context, agreement_id)
    return kept.get(fmt) if fmt else next(iter(kept.values()), None)


def _agreement_for(context: Any, user: User, agreement_id: str) -> AgreementRecord:
    """The agreement, if this person may see it (other agencies are refused by the service)."""
    if not _reads_agreements(user):
        raise AccessDeniedError(f"{user.id} may not see agreements")
    return agreement_registry.show(context.web, user.id, agreement_id)


@router.get("/agreements/{agreement_id}/document")
def agreement_document(agreement_id: str, context: Ctx, user: Viewer, format: str | None = None) -> Response:
    record = _agreement_for(context, user, agreement_id)
    if format is not None and format not in agreement_drafting.FORMATS:
        raise InvalidDataError("unknown document format", [Problem("format", "one of docx, pdf, html, md")])
    path = _document_path(context, record.id, format)
    if path is None:
        raise NotFoundError(
            f"no document is kept for agreement '{record.id}'" + (f" as {format.upper()}" if format else "")
        )
    return FileResponse(path, filename=path.name, headers=NO_STORE)


def _agreement_action(
    request: Request,
    context: Any,
    user: User,
    agreement_id: str,
    action: str,
    run: Callable[[], str],
    form: dict[str, str | None] | None = None,
) -> Response:
    """Refuse a wrong role or another agency; run the action; on a refusal by the rules, show the page with why."""
    roles, verb = AGREEMENT_ACTIONS[action]
    _refuse_unless(user, roles, verb)
    agreement_registry.show(context.web, user.id, agreement_id)  # refuses people of other agencies
    try:
        done = run()
    except (InvalidDataError, InvalidStateError, NotPermittedError) as exc:
        status = 422 if isinstance(exc, InvalidDataError) else 409
        record = agreement_registry.show(context.web, user.id, agreement_id)
        return render(
            request,
            "agreement.html",
            status,
            user=user,
            record=record,
            today=context.today(),
            failed=action,
            problems=_problems_of(exc, _agreement_fields(action)),
            form=form or {},
        )
    flash(request, done)
    return RedirectResponse(f"/agreements/{agreement_id}", status_code=303)


@router.post("/agreements/{agreement_id}/submit")
def agreement_submit(agreement_id: str, request: Request, context: Ctx, user: Viewer, csrf: Csrf) -> Response:
    check_csrf(request, csrf)

    def run() -> str:
        agreement_registry.submit_for_review(context.web, user.id, agreement_id)
        return f"Agreement {agreement_id} sent to review."

    return _agreement_action(request, context, user, agreement_id, "submit", run)


@router.post("/agreements/{agreement_id}/sign")
def agreement_sign(
    agreement_id: str,
    request: Request,
    context: Ctx,
    user: Viewer,
    csrf: Csrf,
    party: Annotated[str, Form(max_length=20)] = "",
) -> Response:
    check_csrf(request, csrf)

    def run() -> str:
        state = agreement_registry.sign(context.web, user.id, agreement_id, party)
        after = "both parties have signed" if state == "signed" else "the other party has yet to sign"
        return f"You signed agreement {agreement_id} for the {party}: {after}."

    return _agreement_action(request, context, user, agreement_id, "sign", run, {"party": party})


@router.post("/agreements/{agreement_id}/activate")
def agreement_activate(agreement_id: str, request: Request, context: Ctx, user: Viewer, csrf: Csrf) -> Response:
    check_csrf(request, csrf)

    def run() -> str:
        agreement_registry.activate(context.web, user.id, agreement_id)
        return f"Agreement {agreement_id} is active."

    return _agreement_action(request, context, user, agreement_id, "activate", run)


@router.post("/agreements/{agreement_id}/amend")
def agreement_amend(
    agreement_id: str,
    request: Request,
    context: Ctx,
    user: Viewer,
    csrf: Csrf,
    reason: Annotated[str, Form(max_length=2000)] = "",
    term_end: Annotated[str, Form(max_length=40)] = "",
    authorized_users: Annotated[str | None, Form(max_length=50_000)] = None,
) -> Response:
    check_csrf(request, csrf)
    form: dict[str, str | None] = {"reason": reason, "term_end": term_end, "authorized_users": authorized_users}

    def run() -> str:
        record = agreement_registry.show(context.web, user.id, agreement_id)
        end: dt.date | None = None
        if term_end.strip():
            try:
                end = dt.date.fromisoformat(term_end.strip())
            except ValueError:
                raise InvalidDataError(
                    "invalid end of term", [Problem("--term-end", "give the new end of term as a date (YYYY-MM-DD)")]
                ) from None
            end = None if end == record.term_end else end
        # The form always sends the list (an empty one removes every authorized user); absent, it is unchanged.
        users = None if authorized_users is None else parse_users(authorized_users)
        changed_users = None if users is None or _same_users(users, record.authorized_users) else users
        agreement_registry.amend(context.web, user.id, agreement_id, changed_users, end, reason)
        return f"Agreement {agreement_id} amended."

    return _agreement_action(request, context, user, agreement_id, "amend", run, form)


@router.post("/agreements/{agreement_id}/renew")
def agreement_renew(agreement_id: str, request: Request, context: Ctx, user: Viewer, csrf: Csrf) -> Response:
    check_csrf(request, csrf)

    def run() -> str:
        end = agreement_registry.renew(context.web, user.id, agreement_id)
        return f"Agreement {agreement_id} renewed until {end.isoformat()}."

    return _agreement_action(request, context, user, agreement_id, "renew", run)


@router.post("/agreements/{agreement_id}/terminate")
def agreement_terminate(
    agreement_id: str,
    request: Request,
    context: Ctx,
    user: Viewer,
    csrf: Csrf,
    reason: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    check_csrf(request, csrf)

    def run() -> str:
        agreement_registry.terminate(context.web, user.id, agreement_id, reason)
        return f"Agreement {agreement_id} terminated."

    return _agreement_action(request, context, user, agreement_id, "terminate", run, {"reason": reason})


# Uploads -------------------------------------------------------------------------------------------


async def _upload(form: FormData, name: str, limit: int, what: str) -> tuple[bytes, str] | None:
    """An uploaded file's bytes and its base name, or None when no file was chosen; refused over the limit."""
    item = form.get(name)
    if not isinstance(item, UploadFile) or not item.filename:
        return None
    data = await item.read(limit + 1)
    if len(data) > limit:
        raise InvalidDataError(f"the {what} is too large", [Problem(name, f"at most {limit // 1024} KiB")])
    return (data, PurePath(item.filename.replace("\\", "/")).name[:100]) if data else None


async def _text(form: FormData, file_field: str, text_field: str, limit: int, what: str) -> tuple[str, str] | None:
    """UTF-8 text from an uploaded file or, when none was chosen, from a text area; with a label for problems."""
    upload = await _upload(form, file_field, limit, what)
    if upload is not None:
        try:
            return upload[0].decode("utf-8-sig"), upload[1] or what
        except UnicodeDecodeError:
            raise InvalidDataError(f"the {what} is not UTF-8 text", [Problem(file_field, "save it as UTF-8")]) from None
    text = form.get(text_field)
    if isinstance(text, str) and text.strip():
        if len(text) > limit:
            raise InvalidDataError(f"the {what} is too large", [Problem(text_field, f"at most {limit // 1024} KiB")])
        return text, what
    return None


# Consents: FHIR import -----------------------------------------------------------------------------

CONSENT_WRITER_ROLES = frozenset({"requester", "data_steward"})
FHIR_LIMIT = 512 * 1024
AGENCY_EXTENSION = FHIR_EXTENSION + "agency"


@router.get("/consents/import")
def consent_import_form(request: Request, user: Viewer) -> HTMLResponse:
    _refuse_unless(user, CONSENT_WRITER_ROLES, "record consents")
    return render(request, "rec_consent_import.html", user=user, problems=[], pasted="", result=None)


@dataclass(frozen=True)
class ImportedConsent:
    """A consent recorded from FHIR, and the governing consent rules it was checked against."""

    consent_id: str
    checked: list[tuple[str, str, int]]  # (authority, rule, elements required)
    other_agency: bool  # the file named another agency; the consent is recorded for the importer's
    repeats: tuple[str, ...] = ()  # the agency's consents in force that this one repeats


def _scoped_to(data: dict[str, Any], user: User) -> tuple[dict[str, Any], bool]:
    """The resource as this agency records it, and whether it named another agency.

    As with the consent form and the API, a consent is recorded for the importer's own agency (the
    agency a file names is replaced), and sharewise gives it its own id (the file's id is not kept).
    """
    extensions = data.get("extension") or []
    if not isinstance(extensions, list):
        return data, False  # the FHIR validation reports it
    named = [e.get("valueString") for e in extensions if isinstance(e, dict) and e.get("url") == AGENCY_EXTENSION]
    kept = [e for e in extensions if not (isinstance(e, dict) and e.get("url") == AGENCY_EXTENSION)]
    scoped = {k: v for k, v in data.items() if k != "id"}
    scoped["extension"] = [*kept, {"url": AGENCY_EXTENSION, "valueString": user.agency_id}]
    return scoped, any(a != user.agency_id for a in named)


@router.post("/consents/import")
async def consent_import(request: Request, context: Ctx, user: Viewer) -> Response:
    form = await request.form(max_files=1, max_fields=10, max_part_size=FHIR_LIMIT + 1024)
    check_csrf(request, str(form.get("csrf_token", "")))
    _refuse_unless(user, CONSENT_WRITER_ROLES, "record consents")
    pasted = form.get("fhir_json")
    pasted = pasted if isinstance(pasted, str) else ""
    problems: list[FormProblem] = []
    result: ImportedConsent | None = None
    try:
        text = await _text(form, "fhir_file", "fhir_json", FHIR_LIMIT, "FHIR Consent")
        if text is None:
            raise InvalidDataError(
                "nothing to import", [Problem("fhir_file", "choose a FHIR Consent JSON file or paste its JSON")]
            )
        content, label = text
        try:
            data = json.loads(content)
        except json.JSONDecodeError as exc:
            raise InvalidDataError(
                "not JSON", [Problem(label, f"not valid JSON (line {exc.lineno}, column {exc.colno})")]
            ) from None
        if not isinstance(data, dict) or data.get("resourceType") != "Consent":
            raise InvalidDataError(
                "not a FHIR Consent", [Problem(label, 'expected a resource with "resourceType": "Consent"')]
            )
        scoped, other_agency = _scoped_to(data, user)
        result = _import(context, user, scoped, label, other_agency)
    except InvalidDataError as exc:
        problems = _problems_of(exc, {"fhir_file": "fhir-file", "fhir_json": "fhir-json"})
    status = 422 if problems else 200
    return render(
        request, "rec_consent_import.html", status, user=user, problems=problems, pasted=pasted, result=result
    )


def _import(context: Any, user: User, data: dict[str, Any], label: str, other_agency: bool) -> ImportedConsent:
    with tempfile.TemporaryDirectory(prefix="sharewise-fhir-") as tmp:
        path = Path(tmp) / "consent.json"
        path.write_text(json.dumps(data), encoding="utf-8")
        try:
            recorded = consent_service.import_fhir(context.web, context.law, path, user.id)
        except InvalidDataError as exc:
            # Problems name the file: show the name the person gave, not the server's temporary path.
            raise InvalidDataError(
                exc.message.replace(str(path), label),
                [
                    Problem(p.location.replace(str(path), label), p.message.replace(str(path), label))
                    for p in exc.problems
                ],
            ) from None
    record = consent_service.show(context.web, recorded.id, user.id)
    names = consent_service.titles_of(context.law)
    checked = [
        (names.get(r.authority, r.authority), r.rule, len(r.elements))
        for r in consent_service.requirements_for(context.law, record)
    ]
    return ImportedConsent(recorded.id, checked, other_agency, recorded.repeats)


# Audit: the latest signed checkpoint ---------------------------------------------------------------


@router.post("/audit/checkpoint")
def audit_checkpoint(request: Request, context: Ctx, user: Viewer, csrf: Csrf) -> Response:
    check_csrf(request, csrf)
    _refuse_unless(user, frozenset({"auditor"}), "export audit checkpoints")
    with tempfile.TemporaryDirectory(prefix="sharewise-checkpoint-") as tmp:
        path = Path(tmp) / "checkpoint.jsonl"
        cp = audit_service.checkpoint(context.web, path, user.id)
        if cp is None:
            problem = "There is no checkpoint to export: the chain is empty or no signing key is configured."
            return render(request, "audit.html", 409, user=user, report=None, checkpoint_problem=problem)
        content = path.read_bytes()
    return _attachment(content, f"sharewise-audit-checkpoint-{cp.seq}.jsonl", "application/x-ndjson")


# Accounting: the PDF -------------------------------------------------------------------------------


@router.post("/accounting/pdf")
def accounting_pdf(
    request: Request,
    context: Ctx,
    user: Viewer,
    csrf: Csrf,
    given_name: Annotated[str, Form(max_length=100)],
    family_name: Annotated[str, Form(max_length=100)],
    date_of_birth: Annotated[dt.date, Form()],
    since: Annotated[dt.date | None, Form()] = None,
) -> Response:
    check_csrf(request, csrf)
    _refuse_unless(user, ACCOUNTING_ROLES, "produce accountings")
    person = PersonIdentifiers(given_name=given_name, family_name=family_name, date_of_birth=date_of_birth)
    acc = accounting_service.accounting_for(context.web, context.law, person, since, user.id)
    with tempfile.TemporaryDirectory(prefix="sharewise-accounting-") as tmp:
        out = Path(tmp) / "accounting.pdf"
        accounting_service.to_pdf(acc, f"{person.given_name} {person.family_name}", out)
        content = out.read_bytes()
    return _attachment(
        content, f"accounting-of-disclosures-{acc.generated_at.date().isoformat()}.pdf", "application/pdf"
    )


# Shares: the plan preview --------------------------------------------------------------------------

SHARE_PLANNER_ROLES = frozenset({"data_steward"})
SHARE_LIMIT = 256 * 1024
DICTIONARY_LIMIT = 1024 * 1024
SAMPLE_LIMIT = 20 * 1024 * 1024
RUN_SOURCE_LIMIT = 100 * 1000 * 1000  # a whole source uploaded to run (share_pages); larger ones run from the data dir


@router.get("/shares/plan")
def share_plan_form(request: Request, user: Viewer) -> HTMLResponse:
    _refuse_unless(user, SHARE_PLANNER_ROLES, "plan shares")
    return render(request, "rec_share_plan.html", user=user, problems=[], form={}, plan=None)


def _no_aliases(text: str, label: str) -> Any:
    """YAML without anchors or aliases (which could expand a small file into a huge one), parsed."""
    try:
        for event in yaml.parse(text):
            if isinstance(event, yaml.AliasEvent):
                raise InvalidDataError(
                    "malformed share definition", [Problem(label, "YAML aliases (*name) are not accepted here")]
                )
        return yaml.safe_load(text)
    except (yaml.YAMLError, ValueError) as exc:  # ValueError: a value YAML cannot build, such as 2026-02-30
        mark = getattr(exc, "problem_mark", None)
        where = f"{label}, line {mark.line + 1}" if mark is not None else label
        raise InvalidDataError(
            "malformed share definition",
            [
                Problem(
                    where,
                    "not valid YAML"
                    if isinstance(exc, yaml.YAMLError)
                    else "a value that cannot be read (for example an impossible date)",
                )
            ],
        ) from None


def _browser_source(data: dict[str, Any], label: str, problems: list[Problem]) -> tuple[str, dict[str, Any]] | None:
    """The share file's source kind (csv or parquet) and its options; a database is refused in the browser."""
    source = data.get("source")
    kinds = [k for k in ("csv", "parquet", "postgres") if isinstance(source, dict) and k in source]
    if len(kinds) != 1:
        problems.append(Problem(f"{label}: source", "one of csv: or parquet: (the file you upload stands for it)"))
        return None
    if kinds[0] == "postgres":
        problems.append(
            Problem(
                f"{label}: source", "a PostgreSQL source is planned with `sharewise share plan`, not in the browser"
            )
        )
        return None
    assert isinstance(source, dict)
    if kinds[0] == "parquet":
        return "parquet", {}
    encoding = str(source.get("encoding", "utf-8"))
    delimiter = str(source.get("delimiter", ","))
    try:
        codecs.lookup(encoding)
    except LookupError:
        problems.append(Problem(f"{label}: source.encoding", f"unknown text encoding '{encoding[:40]}'"))
    if len(delimiter) != 1:
        problems.append(Problem(f"{label}: source.delimiter", "one character"))
    return "csv", {"encoding": encoding, "delimiter": delimiter}


def _browser_share(
    data: Any, label: str, directory: Path, dictionary: str, sample: tuple[bytes, str] | None
) -> dict[str, Any]:
    """The share definition with its files replaced by the uploads; server paths and databases are refused."""
    if not isinstance(data, dict):
        raise InvalidDataError("malformed share definition", [Problem(label, "expected a mapping")])
    problems: list[Problem] = []
    if not isinstance(data.get("request"), dict):
        problems.append(Problem(f"{label}: request", "write the sharing request inline (a mapping), not a file path"))
    found = _browser_source(data, label, problems)
    new_source: dict[str, Any] = {}
    if found is not None and sample is None:
        problems.append(
            Problem("source_file", f"upload a sample of the {found[0].upper()} source (its columns are read)")
        )
    elif found is not None and sample is not None:
        kind, options = found
        target = directory / f"source.{kind}"
        # Of a CSV, only the header row is kept: the rows of a sample never reach the disk.
        target.write_bytes(_header_only(sample[0]) if kind == "csv" else sample[0])
        new_source = {kind: target.name, **options}
    if problems:
        raise InvalidDataError("the share definition cannot be planned in the browser", problems)
    (directory / "dictionary.yaml").write_text(dictionary, encoding="utf-8")
    kept = {k: v for k, v in data.items() if k not in ("dictionary", "source", "recipient_certificate")}
    return {**kept, "dictionary": "dictionary.yaml", "source": new_source}


def _header_only(data: bytes) -> bytes:
    end = data.find(b"\n")
    return data if end < 0 else data[: end + 1]


@dataclass(frozen=True)
class PlanView:
    """A share plan as the page shows it."""

    plan: share_service.SharePlan
    agreement: AgreementRecord


@router.post("/shares/plan")
async def share_plan(request: Request, context: Ctx, user: Viewer) -> Response:
    form = await request.form(max_files=3, max_fields=10, max_part_size=DICTIONARY_LIMIT + 1024)
    check_csrf(request, str(form.get("csrf_token", "")))
    _refuse_unless(user, SHARE_PLANNER_ROLES, "plan shares")
    shown = {k: v for k, v in ((k, form.get(k)) for k in ("share_yaml", "dictionary_yaml")) if isinstance(v, str)}
    problems: list[FormProblem] = []
    view: PlanView | None = None
    status = 200
    with tempfile.TemporaryDirectory(prefix="sharewise-plan-") as tmp:
        directory = Path(tmp)
        fields = {"share_file": "share-file", "share_yaml": "share-yaml", "dictionary_file": "dictionary-file"}
        fields |= {"dictionary_yaml": "dictionary-yaml", "source_file": "source-file"}
        try:
            view = await _plan(form, context, user, directory, shown)
        except NotPermittedError as exc:
            # The refusal itself first (the outcome), then each authority's reason and each open question.
            status, problems = 409, _problems_of(exc, hide=[f"{directory}/", str(directory)], lead=True)
        except InvalidDataError as exc:
            status, problems = 422, _problems_of(exc, fields, hide=[f"{directory}/", str(directory)])
    return render(
        request,
        "rec_share_plan.html",
        status,
        user=user,
        problems=problems,
        refused=status == 409,
        form=shown,
        plan=view,
        links=citation_links(context) if view else {},
        doc_labels=context.law.vocabulary.documents,
        today=context.today(),
        source_limit=f"{RUN_SOURCE_LIMIT // (1000 * 1000)} MB",
    )


SHARE_LABEL = "Share definition"


def agreement_of(context: Any, user: User, data: Any, label: str) -> AgreementRecord | None:
    """The share file's agreement, if it names one; plans and runs are for agreements of the person's agency."""
    agreement_id = data.get("agreement") if isinstance(data, dict) else None
    if not isinstance(agreement_id, str) or not agreement_id:
        return None
    try:
        # Agreements of agencies this person's agency is not party to are refused here (403).
        return agreement_registry.show(context.web, user.id, agreement_id)
    except NotFoundError:
        raise InvalidDataError(
            "unknown agreement",
            [Problem(f"{label}: agreement", f"no agreement '{agreement_id[:60]}' is registered")],
        ) from None


async def _plan(form: FormData, context: Any, user: User, directory: Path, shown: dict[str, str]) -> PlanView:
    share_text = await _text(form, "share_file", "share_yaml", SHARE_LIMIT, "share definition")
    dictionary_text = await _text(form, "dictionary_file", "dictionary_yaml", DICTIONARY_LIMIT, "data dictionary")
    sample = await _upload(form, "source_file", SAMPLE_LIMIT, "source sample")
    missing = []
    if share_text is None:
        missing.append(Problem("share_file", "choose the share definition (YAML) or paste it"))
    if dictionary_text is None:
        missing.append(Problem("dictionary_file", "choose the data dictionary (YAML) or paste it"))
    if share_text is None or dictionary_text is None:
        raise InvalidDataError("the plan needs a share definition and its data dictionary", missing)
    shown["share_yaml"], shown["dictionary_yaml"] = share_text[0], dictionary_text[0]
    label = SHARE_LABEL
    data = _no_aliases(share_text[0], label)
    agreement = agreement_of(context, user, data, label)
    browser = _browser_share(data, label, directory, dictionary_text[0], sample)
    definition = share_service.parse_share(browser, context.law, directory, label)
    assert agreement is not None  # parse_share requires the agreement id
    return PlanView(share_service.plan(definition, context.law, context.today()), agreement)


# The dashboard: disclosures over time --------------------------------------------------------------

CHART_MONTHS = 12
CHART_W, CHART_H = 640, 240
PLOT_LEFT, PLOT_RIGHT, PLOT_TOP, PLOT_BOTTOM = 44, 8, 20, 44


@dataclass(frozen=True)
class MonthBar:
    """One month of the chart: its count and its bar's place in the SVG."""

    month: str  # YYYY-MM
    label: str  # "March 2026"
    short: str  # "Mar"
    year: str  # shown under January and the first bar
    count: int
    x: float
    y: float
    width: float
    height: float

    @property
    def middle(self) -> float:
        return round(self.x + self.width / 2, 1)


@dataclass(frozen=True)
class DisclosureChart:
    """Monthly counts of disclosures, laid out as an SVG bar chart with its text alternative."""

    bars: tuple[MonthBar, ...]
    top: int
    ticks: tuple[tuple[int, float], ...]
    incomplete_before: str | None  # the first month counted in full, when the audit trail was read only in part
    width: int = CHART_W
    height: int = CHART_H
    plot_left: int = PLOT_LEFT
    plot_right: int = CHART_W - PLOT_RIGHT
    baseline: int = CHART_H - PLOT_BOTTOM

    @property
    def total(self) -> int:
        return sum(b.count for b in self.bars)

    @property
    def busiest(self) -> MonthBar | None:
        busy = [b for b in self.bars if b.count]
        return max(busy, key=lambda b: b.count) if busy else None

    @property
    def description(self) -> str:
        first, last = self.bars[0].label, self.bars[-1].label
        text = f"{self.total} disclosure{'' if self.total == 1 else 's'} from {first} to {last}"
        busiest = self.busiest
        text += f"; the most in {busiest.label} ({busiest.count})." if busiest else "."
        if self.incomplete_before:
            text += f" Months before {self.incomplete_before} are counted only in part."
        return text


def _months(today: dt.date, count: int) -> list[dt.date]:
    year, month = today.year, today.month
    found = []
    for _ in range(count):
        found.append(dt.date(year, month, 1))
        year, month = (year - 1, 12) if month == 1 else (year, month - 1)
    return found[::-1]


def _nice_top(value: int) -> int:
    """The y axis's top: the smallest 1, 2 or 5 times a power of ten at or above the largest count."""
    if value <= 1:
        return 1
    magnitude = 1
    while True:
        for step in (1, 2, 5):
            if step * magnitude >= value:
                return step * magnitude
        magnitude *= 10


def monthly_chart(counts: dict[str, int], today: dt.date, incomplete_before: str | None = None) -> DisclosureChart:
    """Lay out the last months' counts (YYYY-MM -> count) as bars, newest month last."""
    months = _months(today, CHART_MONTHS)
    top = _nice_top(max([counts.get(m.strftime("%Y-%m"), 0) for m in months] + [0]))
    plot_w = CHART_W - PLOT_LEFT - PLOT_RIGHT
    plot_h = CHART_H - PLOT_TOP - PLOT_BOTTOM
    slot = plot_w / len(months)
    bars = []
    for i, m in enumerate(months):
        count = counts.get(m.strftime("%Y-%m"), 0)
        height = round(plot_h * count / top, 1)
        bars.append(
            MonthBar(
                month=m.strftime("%Y-%m"),
                label=m.strftime("%B %Y"),
                short=m.strftime("%b"),
                year=str(m.year) if i == 0 or m.month == 1 else "",
                count=count,
                x=round(PLOT_LEFT + i * slot + slot * 0.15, 1),
                y=round(PLOT_TOP + plot_h - height, 1),
                width=round(slot * 0.7, 1),
                height=height,
            )
        )
    values = sorted({0, top // 2, top}) if top % 2 == 0 else [0, top]
    ticks = tuple((v, round(PLOT_TOP + plot_h - plot_h * v / top, 1)) for v in values)
    return DisclosureChart(tuple(bars), top, ticks, incomplete_before)


def disclosure_chart(request: Request, user: User | None) -> DisclosureChart | None:
    """The dashboard's disclosures over time (a template global), for those who read the accounting."""
    if user is None or not (user.has("auditor") or user.has("data_steward")):
        return None
    context = ctx(request)
    first = _months(context.today(), CHART_MONTHS)[0]
    return monthly_chart(accounting_service.disclosures_by_month(context.web, user.id, first), context.today())


templates.env.globals["agreement_panel"] = agreement_panel
templates.env.globals["disclosure_chart"] = disclosure_chart
