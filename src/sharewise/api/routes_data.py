"""The /api/v1 routes for data, audit, security, consent documents and accounting formats.

Each route parses its body, checks its access entry, calls the same service as the CLI command
it mirrors, and returns JSON or the document. Paths in share definitions and linkage jobs are
server-side paths, resolved inside the server's data directory; anything outside it is refused.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import os
import secrets
import tempfile
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from cryptography.hazmat.primitives import serialization
from fastapi import Body, Query
from fastapi import Path as PathParam
from fastapi.responses import FileResponse, JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, model_validator

from sharewise.api.context import AppContext
from sharewise.api.problems import problem
from sharewise.api.routes import (
    ANYONE,
    CONSENT_ROLES,
    Access,
    AccountingIn,
    Ctx,
    IdempotencyKey,
    Limit,
    Principal,
    _idempotent,
    _json,
    route,
)
from sharewise.audit.sink import StoreAuditSink
from sharewise.consent.fhir import EXT as FHIR_EXTENSION
from sharewise.domain.consent import ConsentRecord
from sharewise.domain.errors import (
    AccessDeniedError,
    InvalidDataError,
    InvalidStateError,
    NotFoundError,
    Problem,
    SharewiseError,
)
from sharewise.domain.request import Request
from sharewise.linkage.link import LinkOptions
from sharewise.linkage.sources import ColumnMapping
from sharewise.pipeline.duckdb_backend import DuckDBBackend
from sharewise.policy.request_parse import parse_request
from sharewise.security.assess import AssessmentResult, questionnaire
from sharewise.security.keys import FileKeyProvider
from sharewise.security.safeguards import SafeguardsSpec
from sharewise.security.secrets import FileSecrets
from sharewise.services import accounting as accounting_service
from sharewise.services import accounts as accounts_service
from sharewise.services import audit as audit_service
from sharewise.services import consents as consent_service
from sharewise.services import documents as documents_service
from sharewise.services import linkage as linkage_service
from sharewise.services import security as security_service
from sharewise.services import share_jobs as share_jobs_service
from sharewise.services import shares as shares_service
from sharewise.workflow.access import User

# Media types of the documents the routes return.
CSV = "text/csv; charset=utf-8"
PDF = "application/pdf"
FHIR_JSON = "application/fhir+json"
NDJSON = "application/x-ndjson"
PEM = "application/x-pem-file"
PKCS7 = "application/pkcs7-mime"
DOCUMENT_TYPES = {
    "html": "text/html; charset=utf-8",
    "pdf": PDF,
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
}
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
ServerPath = Annotated[
    str, Field(min_length=1, max_length=1000, description="A path inside the server's data directory.")
]


def _document(content: bytes, media_type: str, filename: str) -> Response:
    return Response(
        content, media_type=media_type, headers={"Content-Disposition": f'attachment; filename="{filename}"'}
    )


def _file_responses(media_type: str, description: str) -> dict[int | str, dict[str, Any]]:
    return {200: {"content": {media_type: {}}, "description": description}}


@contextlib.contextmanager
def _in_callers_terms(replacements: Mapping[str, str]) -> Iterator[None]:
    """Report problems in the caller's terms: server and temporary paths become field names or data-dir paths."""
    try:
        yield
    except SharewiseError as exc:
        ordered = sorted(replacements.items(), key=lambda item: len(item[0]), reverse=True)

        def plain(text: str) -> str:
            for old, new in ordered:
                text = text.replace(old, new)
            return text

        exc.message = plain(exc.message)
        exc.problems = [Problem(plain(p.location), plain(p.message)) for p in exc.problems]
        raise


def _sink(context: AppContext) -> StoreAuditSink:
    return context.api.sink  # appends through the trail that records source "api"


def _parse(context: AppContext, raw: dict[str, Any], label: str = "request") -> Request:
    return parse_request(raw, context.law.vocabulary, label=label)


# Server-side paths: inside the data directory only ---------------------------------------------


def data_dir(context: AppContext) -> Path:
    """The server's data directory (resolved): the only place share and linkage paths may point."""
    base = context.api.settings.data_dir
    if base is None:
        raise InvalidStateError("the server has no data directory (SHAREWISE_DATA_DIR): server-side paths are refused")
    return base.resolve()


def server_path(base: Path, value: str, location: str) -> Path:
    """A path given by the caller, relative to the data directory; refused if it leads outside it."""
    try:
        given = Path(value)
        resolved = (given if given.is_absolute() else base / given).resolve()
        resolved.exists()  # a name too long for the file system fails here, not deep in a service
    except (OSError, ValueError, RuntimeError) as exc:
        raise InvalidDataError("invalid path", [Problem(location, "not a usable file path")]) from exc
    if not resolved.is_relative_to(base):
        raise AccessDeniedError(
            "server-side paths must lie inside the server's data directory",
            [Problem(location, "outside the server's data directory")],
        )
    return resolved


def _relative(base: Path, path: Path) -> str:
    return path.relative_to(base).as_posix()


def _base_terms(base: Path) -> dict[str, str]:
    return {str(base) + os.sep: "", str(base): "."}


# Audit -------------------------------------------------------------------------------------------

AUDIT_READERS = Access(frozenset({"auditor"}))
CHECKPOINT_SIGNERS = Access(frozenset({"auditor", "administrator", "security_officer"}))
AuditOffset = Annotated[int, Query(ge=0, le=100_000, description="Records to skip, newest first.")]


def audit_record_json(record: Mapping[str, Any]) -> dict[str, Any]:
    data: dict[str, Any] = _json(dict(record))
    if isinstance(data.get("details"), str):
        data["details"] = json.loads(data["details"])
    return data


@route("GET", "/audit/records", AUDIT_READERS, tags=["audit"])
def audit_records(
    context: Ctx,
    user: Principal,
    subject_type: Annotated[str | None, Query(max_length=60)] = None,
    subject_id: Annotated[str | None, Query(max_length=200)] = None,
    limit: Limit = 50,
    offset: AuditOffset = 0,
) -> dict[str, Any]:
    """The audit log, newest first, optionally for one subject (auditors only).

    The chain is not counted: a page says whether older records follow (next_offset).
    """
    rows = audit_service.log(context.api, user.id, subject_type, subject_id, offset + limit + 1)
    items = rows[offset : offset + limit]
    more = len(rows) > offset + limit
    return {
        "items": [audit_record_json(r) for r in items],
        "limit": limit,
        "offset": offset,
        "next_offset": offset + limit if more else None,
    }


@route("POST", "/audit/checkpoints", CHECKPOINT_SIGNERS, tags=["audit"], status_code=201)
def create_checkpoint(context: Ctx, user: Principal) -> JSONResponse:
    """Sign the chain's head now; the answer is the checkpoint line to keep outside the database."""
    cp = audit_service.checkpoint(context.api, None, user.id)
    if cp is None:
        raise InvalidStateError("no checkpoint was signed: the audit trail has no signing key")
    return JSONResponse({"type": "checkpoint", **cp.to_json()}, status_code=201)


@route(
    "GET",
    "/audit/export",
    AUDIT_READERS,
    tags=["audit"],
    response_class=Response,
    responses=_file_responses(NDJSON, "Every record and checkpoint, one JSON object a line."),
)
def export_audit(context: Ctx, user: Principal) -> Response:
    """Every record and checkpoint as JSON lines: the file `sharewise audit export` writes (auditors only)."""
    with tempfile.TemporaryDirectory(prefix="sharewise-audit-") as tmp:
        target = Path(tmp) / "audit.jsonl"
        count = audit_service.export(context.api, target, user.id)
        content = target.read_bytes()
    filename = f"sharewise-audit-{context.today():%Y%m%d}.jsonl"
    response = _document(content, NDJSON, filename)
    response.headers["Sharewise-Records"] = str(count)
    return response


@route(
    "GET",
    "/audit/public-key",
    ANYONE,
    tags=["audit"],
    response_class=Response,
    responses=_file_responses(PEM, "The PEM public key that verifies the checkpoints."),
)
def audit_public_key(context: Ctx, user: Principal) -> Response:
    """The Ed25519 public key that signs the audit checkpoints, to keep with exported checkpoints."""
    signer = context.api.trail.signer
    if signer is None:
        raise NotFoundError("the audit trail has no signing key")
    pem = signer.public_key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return Response(pem, media_type=PEM, headers={"Sharewise-Key-Id": signer.key_id})


# Accounting in its other forms --------------------------------------------------------------------

ACCOUNTING_READERS = Access(frozenset({"data_steward", "auditor"}))


class AccountingFhirIn(AccountingIn):
    """Whose accounting, from when, and the FHIR reference of the person the AuditEvents name."""

    person_reference: str = Field(default="Patient/requester", pattern=r"^[A-Z][A-Za-z]{1,63}/[A-Za-z0-9.-]{1,64}$")


def _accounting(context: AppContext, body: AccountingIn, user: User) -> accounting_service.Accounting:
    return accounting_service.accounting_for(context.api, context.law, body.person, body.since, user.id)


@route(
    "POST",
    "/accounting/csv",
    ACCOUNTING_READERS,
    tags=["accounting"],
    response_class=Response,
    responses=_file_responses(CSV, "One row a listed disclosure."),
)
def accounting_csv(body: AccountingIn, context: Ctx, user: Principal) -> Response:
    """The accounting of disclosures as CSV (spreadsheet-safe cells)."""
    acc = _accounting(context, body, user)
    return _document(accounting_service.to_csv(acc).encode("utf-8"), CSV, "accounting.csv")


@route(
    "POST",
    "/accounting/pdf",
    ACCOUNTING_READERS,
    tags=["accounting"],
    response_class=Response,
    responses=_file_responses(PDF, "A printable accounting for the person."),
)
def accounting_pdf(body: AccountingIn, context: Ctx, user: Principal) -> Response:
    """The accounting of disclosures as a printable PDF for the person."""
    acc = _accounting(context, body, user)
    with tempfile.TemporaryDirectory(prefix="sharewise-accounting-") as tmp:
        target = Path(tmp) / "accounting.pdf"
        accounting_service.to_pdf(acc, f"{body.person.given_name} {body.person.family_name}", target)
        content = target.read_bytes()
    return _document(content, PDF, "accounting.pdf")


@route(
    "POST",
    "/accounting/fhir",
    ACCOUNTING_READERS,
    tags=["accounting"],
    response_class=Response,
    responses=_file_responses(FHIR_JSON, "A FHIR R4 Bundle (collection) of AuditEvents."),
)
def accounting_fhir(body: AccountingFhirIn, context: Ctx, user: Principal) -> Response:
    """The accounting as FHIR R4 AuditEvents (IHE BALP privacy disclosures), in a collection Bundle."""
    acc = _accounting(context, body, user)
    events = accounting_service.to_fhir_audit_events(acc, body.person_reference)
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "timestamp": acc.generated_at.isoformat(),
        "entry": [{"resource": event} for event in events],
    }
    return Response(json.dumps(bundle), media_type=FHIR_JSON)


# Consent documents ------------------------------------------------------------------------------

FHIR_IMPORTERS = Access(CONSENT_ROLES)
FHIR_EXPORTERS = Access(frozenset({"data_steward"}), scoped=True)
AGENCY_EXTENSION = FHIR_EXTENSION + "agency"


def _consent_in_scope(user: User, record: ConsentRecord) -> None:
    if record.agency not in (None, user.agency_id):
        raise AccessDeniedError(f"{user.id} may not export consents of another agency")


def _for_agency(resource: Mapping[str, Any], agency: str) -> dict[str, Any]:
    """The resource recorded for the caller's agency, under a new id (an id from elsewhere is not reused)."""
    data = {k: v for k, v in resource.items() if k not in ("id", "identifier")}
    extensions = data.get("extension", [])
    if isinstance(extensions, list):
        kept = [e for e in extensions if not (isinstance(e, Mapping) and e.get("url") == AGENCY_EXTENSION)]
        data["extension"] = [*kept, {"url": AGENCY_EXTENSION, "valueString": agency}]
    return data


@route("POST", "/consents/fhir", FHIR_IMPORTERS, tags=["consents"], status_code=201)
def import_fhir_consent(
    resource: Annotated[dict[str, Any], Body(description="An HL7 FHIR R4 Consent resource (JSON).")],
    context: Ctx,
    user: Principal,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """Import an HL7 FHIR R4 Consent for the caller's agency, validated like any other consent.

    The body is the FHIR resource itself (application/json or application/fhir+json); it must
    contain the Patient whose consent it is. Its id is not kept: the consent gets a new one.
    `repeats` lists the agency's consents in force that it repeats (as `POST /consents` does).
    """

    def create() -> dict[str, Any]:
        with tempfile.TemporaryDirectory(prefix="sharewise-fhir-") as tmp:
            path = Path(tmp) / "consent.json"
            path.write_text(json.dumps(_for_agency(resource, user.agency_id)), encoding="utf-8")
            with _in_callers_terms({str(path): "consent", tmp + os.sep: ""}):
                recorded = consent_service.import_fhir(context.api, context.law, path, user.id)
        return {"id": recorded.id, "repeats": list(recorded.repeats)}

    return _idempotent(context, user, idempotency_key, resource, "/consents/fhir", create)


@route(
    "GET",
    "/consents/{consent_id}/fhir",
    FHIR_EXPORTERS,
    tags=["consents"],
    response_class=Response,
    responses=_file_responses(FHIR_JSON, "The consent as a FHIR R4 Consent with its contained Patient."),
)
def export_fhir_consent(consent_id: str, context: Ctx, user: Principal) -> Response:
    """A consent as an HL7 FHIR R4 Consent resource, with the person's identifiers (audited; data stewards)."""
    _consent_in_scope(user, consent_service.show(context.api, consent_id, user.id))
    resource = consent_service.export_fhir(context.api, consent_id, user.id)
    return Response(json.dumps(resource), media_type=FHIR_JSON)


class ConsentFormIn(BaseModel):
    """The sharing request a consent form is for, and the document format."""

    model_config = ConfigDict(extra="forbid")
    request: dict[str, Any] = Field(description="The contract request: source, recipient, purpose, data, form.")
    format: Literal["html", "docx", "pdf"] = "docx"


@route(
    "POST",
    "/consent-forms",
    ANYONE,
    tags=["consents"],
    response_class=Response,
    responses={
        200: {
            "content": {media: {} for media in DOCUMENT_TYPES.values()},
            "description": "The universal consent form, with every element each governing law requires.",
        }
    },
)
def generate_consent_form(body: ConsentFormIn, context: Ctx, user: Principal) -> Response:
    """Generate the universal consent form for a request (refused when consent cannot make it lawful).

    Warnings a person must act on (elements without a check, text awaiting counsel) come in the
    Sharewise-Warnings header, separated by " | ".
    """
    with tempfile.TemporaryDirectory(prefix="sharewise-form-") as tmp:
        request_file = Path(tmp) / "request.yaml"
        request_file.write_text(yaml.safe_dump(body.request), encoding="utf-8")
        target = Path(tmp) / f"consent-form.{body.format}"
        with _in_callers_terms({str(request_file): "request", tmp + os.sep: ""}):
            generated = documents_service.consent_form_file(
                context.law, request_file, body.format, target, context.today()
            )
        content = target.read_bytes()
    response = _document(content, DOCUMENT_TYPES[body.format], target.name)
    if generated.warnings:
        text = " | ".join(generated.warnings).replace("\r", " ").replace("\n", " ")
        response.headers["Sharewise-Warnings"] = text.encode("latin-1", "replace").decode("latin-1")
    return response


# Security ---------------------------------------------------------------------------------------

ASSESSORS = Access(frozenset({"security_officer"}))
Objective = Literal["confidentiality", "integrity", "availability"]
Level = Literal["low", "moderate", "high"]


class SecurityIn(BaseModel):
    """A share to secure: the request, how many people's records, security facts, and the date."""

    model_config = ConfigDict(extra="forbid")
    request: dict[str, Any] = Field(description="The contract request: source, recipient, purpose, data, form.")
    records: int | None = Field(default=None, ge=1, le=10_000_000_000, description="People whose records it holds.")
    facts: dict[str, bool] = Field(default_factory=dict, description="Security facts (as --fact NAME=true|false).")
    as_of: dt.date | None = Field(default=None, description="Apply the law as of this date (default: today).")


class CategorizationIn(SecurityIn):
    """A share to categorize, optionally with a security officer's changes and why."""

    changes: dict[Objective, Level] = Field(
        default_factory=dict, description="Reviewer changes, objective -> level (security officers; audited)."
    )
    justification: str | None = Field(default=None, max_length=5000)


class SpecificationIn(CategorizationIn):
    """A share to specify; optionally as an OSCAL profile or component definition."""

    oscal: Literal["profile", "component-definition"] | None = Field(
        default=None, description="Answer with the OSCAL document instead of the specification."
    )


class EvidenceIn(BaseModel):
    """Evidence by reference."""

    model_config = ConfigDict(extra="forbid")
    ref: str = Field(min_length=1, max_length=2000)
    sha256: str | None = Field(default=None, max_length=64)
    description: str | None = Field(default=None, max_length=2000)


class PlanIn(BaseModel):
    """The recipient's plan to close a gap."""

    model_config = ConfigDict(extra="forbid")
    action: str | None = Field(default=None, max_length=2000)
    due: dt.date | None = None


class AnswerIn(BaseModel):
    """One answer of the questionnaire (title, duty and evidence_expected are the blank form's, and ignored)."""

    model_config = ConfigDict(extra="forbid")
    status: str | None = Field(default=None, max_length=40)
    evidence: list[EvidenceIn | str] = Field(default_factory=list, max_length=100)
    notes: str | None = Field(default=None, max_length=5000)
    plan: PlanIn | None = None
    title: str | None = None
    duty: str | None = None
    evidence_expected: list[str] | None = None


class QuestionnaireIn(BaseModel):
    """A completed questionnaire, as the blank one from POST /security/assessment, filled in."""

    model_config = ConfigDict(extra="forbid")
    format: str = Field(max_length=80)
    specification_sha256: str | None = Field(default=None, max_length=64)
    recipient: str = Field(max_length=300)
    statuses: list[str] | None = None
    answers: dict[str, AnswerIn]


class AssessmentIn(SecurityIn):
    """The share and the recipient's answers; without answers, the blank questionnaire is returned."""

    answers: QuestionnaireIn | None = None
    recipient: str | None = Field(default=None, max_length=300, description="The recipient, for a blank form.")


class FiveSafesIn(SecurityIn):
    """The share, optionally the recipient's answers and the authorized users."""

    answers: QuestionnaireIn | None = None
    users: list[str] = Field(default_factory=list, max_length=200, description="Authorized users, one line each.")


def _specify(context: AppContext, body: SecurityIn, user: User) -> tuple[Request, SafeguardsSpec]:
    changes = list(body.changes.items()) if isinstance(body, CategorizationIn) else []
    if changes and not user.has("security_officer"):
        raise AccessDeniedError(f"{user.id} may not change a categorization: the security_officer role is needed")
    request = _parse(context, body.request)
    sec = security_service.security_law(context.law)
    pairs = [f"{name}={'true' if value else 'false'}" for name, value in body.facts.items()]
    with _in_callers_terms({"--fact ": "facts.", "(--justification)": "(justification)"}):
        facts = security_service.parse_facts(pairs, sec.overlays)
        spec = security_service.specify(
            context.law,
            request,
            body.as_of or context.today(),
            records=body.records,
            facts=facts,
            changes=changes,
            justification=body.justification if isinstance(body, CategorizationIn) else None,
            reviewer=user.id,
            sink=_sink(context) if changes else None,
        )
    return request, spec


def _assessment(spec: SafeguardsSpec, answers: QuestionnaireIn, today: dt.date) -> AssessmentResult:
    with tempfile.TemporaryDirectory(prefix="sharewise-answers-") as tmp:
        path = Path(tmp) / "answers.yaml"
        path.write_text(yaml.safe_dump(answers.model_dump(exclude_none=True)), encoding="utf-8")
        with _in_callers_terms({str(path): "answers", tmp + os.sep: ""}):
            return security_service.assess(spec, path, today)


@route("POST", "/security/categorization", ANYONE, tags=["security"])
def security_categorization(body: CategorizationIn, context: Ctx, user: Principal) -> dict[str, Any]:
    """FIPS 199 categorization of a share with its reasons, the overlays it triggers and the baselines."""
    _, spec = _specify(context, body, user)
    cat = spec.categorization
    return {
        "categorization": cat.model_dump(mode="json"),
        "overall": cat.overall,
        "baselines": list(spec.baselines),
        "overlays": [o.model_dump(mode="json") for o in spec.overlays],
        "questions": [{"fact": path, "ask": ask} for path, ask in spec.questions],
    }


@route("POST", "/security/specification", ANYONE, tags=["security"])
def security_specification(body: SpecificationIn, context: Ctx, user: Principal) -> dict[str, Any]:
    """The safeguards specification (every control, duty and evidence), or its OSCAL export."""
    _, spec = _specify(context, body, user)
    if body.oscal is not None:
        exported: dict[str, Any] = security_service.export(spec, body.oscal, context.api.trail.clock())
        return exported
    return {"specification_sha256": security_service.spec_digest(spec), **spec.model_dump(mode="json")}


@route("POST", "/security/assessment", ASSESSORS, tags=["security"])
def security_assessment(body: AssessmentIn, context: Ctx, user: Principal) -> dict[str, Any]:
    """Gaps and a plan of action for the recipient's answers; without answers, the blank questionnaire.

    Signing the result stays with the reviewer's own key: `sharewise security assess --sign-key`.
    """
    _, spec = _specify(context, body, user)
    if body.answers is None:
        return questionnaire(spec, body.recipient or "RECIPIENT")
    result = _assessment(spec, body.answers, body.as_of or context.today())
    return result.model_dump(mode="json")


@route("POST", "/security/five-safes", ANYONE, tags=["security"])
def security_five_safes(body: FiveSafesIn, context: Ctx, user: Principal) -> dict[str, Any]:
    """The Five Safes summary of a share: safe project, people, setting, data and outputs."""
    request, spec = _specify(context, body, user)
    today = body.as_of or context.today()
    result = _assessment(spec, body.answers, today) if body.answers is not None else None
    view = security_service.five_safes_view(context.law, request, spec, today, result, tuple(body.users))
    return {"safes": [s.model_dump(mode="json") for s in view.safes]}


# Shares -----------------------------------------------------------------------------------------

SHARE_STEWARDS = Access(frozenset({"data_steward"}))
SHARE_RUNNERS = Access(frozenset({"data_steward"}), scoped=True)
PACKAGES = "packages"
RUN_STATUS = {
    "share-executed": "published",
    "share-publication-failed": "publication_failed",
    "share-failed": "failed",
    "share-refused": "refused",
    "disclosure-recorded": "disclosed",
}


class PostgresSourceIn(BaseModel):
    """A table read through the server's SHAREWISE_SOURCE_DSN (a DSN is never taken from a caller)."""

    model_config = ConfigDict(extra="forbid")
    table: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
    schema_: str = Field(default="public", alias="schema", pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


class SourceIn(BaseModel):
    """Where the records are: a CSV or Parquet file in the data directory, or a table of the server's source DSN."""

    model_config = ConfigDict(extra="forbid")
    csv: ServerPath | None = None
    parquet: ServerPath | None = None
    postgres: PostgresSourceIn | None = None
    encoding: str | None = Field(default=None, max_length=40)
    delimiter: str | None = Field(default=None, min_length=1, max_length=1)

    @model_validator(mode="after")
    def one_source(self) -> SourceIn:
        if sum(x is not None for x in (self.csv, self.parquet, self.postgres)) != 1:
            raise ValueError("give exactly one of csv, parquet or postgres")
        return self


class DeidentificationIn(BaseModel):
    """The k-anonymity check's settings."""

    model_config = ConfigDict(extra="forbid")
    k: int = Field(default=5, ge=2, le=1000)
    max_suppression: float = Field(default=0.05, ge=0.0, le=1.0)


class AggregateIn(BaseModel):
    """An aggregate share's dimensions and small-cell threshold."""

    model_config = ConfigDict(extra="forbid")
    by: list[str] = Field(default_factory=list, max_length=50)
    hide_at_most: int = Field(default=10, ge=0, le=1_000_000)


class DateShiftIn(BaseModel):
    """Per-person date shifting: the field that identifies the person, and the largest shift in days."""

    model_config = ConfigDict(extra="forbid")
    by: str = Field(min_length=1, max_length=200)
    max_days: int = Field(default=180, ge=1, le=3650)


class ShareIn(BaseModel):
    """A share definition: the share file's content in JSON, with paths inside the server's data directory."""

    model_config = ConfigDict(extra="forbid")
    share_id: str | None = Field(default=None, pattern=ID_PATTERN)
    agreement: str = Field(pattern=ID_PATTERN)
    request: dict[str, Any] | ServerPath = Field(description="The contract request, or the path of a request file.")
    dictionary: ServerPath
    source: SourceIn
    needs: list[str] = Field(min_length=1, max_length=1000)
    pseudonymize: list[str] = Field(default_factory=list, max_length=1000)
    output: Literal["parquet", "csv"] = "parquet"
    parquet_encodings: Literal["compatible", "v2"] = Field(
        default="compatible",
        description="Parquet only. compatible: the 1.0 encodings every reader opens. v2: the format 2 encodings "
        "(smaller, faster to write; pyarrow, pandas, DuckDB, Spark 3.3+ open them, some older readers do not).",
    )
    token_format: Literal["hex", "bytes"] | None = Field(
        default=None,
        description="How pseudonyms are written. bytes: the HMAC's 32 bytes (binary; Parquet only, and Parquet's "
        "default): half the size and a faster share; recipients join on binary columns. hex: 64 lowercase hex "
        "digits (text; CSV's only form, Parquet's on request).",
    )
    recipient_certificate: ServerPath | None = None
    deidentification: DeidentificationIn | None = None
    aggregate: AggregateIn | None = None
    date_shift: DateShiftIn | None = Field(default=None, description="Shift dates per person (off when absent).")


def share_definition(context: AppContext, body: ShareIn, base: Path) -> shares_service.ShareDefinition:
    """The share definition with every path resolved inside the data directory (refused otherwise)."""
    data = body.model_dump(exclude_none=True, by_alias=True)
    if isinstance(body.request, str):
        data["request"] = str(server_path(base, body.request, "share: request"))
    data["dictionary"] = str(server_path(base, body.dictionary, "share: dictionary"))
    if body.recipient_certificate is not None:
        data["recipient_certificate"] = str(
            server_path(base, body.recipient_certificate, "share: recipient_certificate")
        )
    for kind in ("csv", "parquet"):
        value = getattr(body.source, kind)
        if value is not None:
            data["source"][kind] = str(server_path(base, value, f"share: source.{kind}"))
    return shares_service.parse_share(data, context.law, base, "share")


@route("POST", "/shares/plan", SHARE_STEWARDS, tags=["shares"])
def plan_share(body: ShareIn, context: Ctx, user: Principal) -> dict[str, Any]:
    """What a share would send: the fields that leave with their transformation, those that stay and why.

    Refused (409, not_permitted) unless the request's determination is permitted.
    """
    base = data_dir(context)
    with _in_callers_terms(_base_terms(base)):
        definition = share_definition(context, body, base)
        planned = shares_service.plan(definition, context.law, context.today())
    d = planned.determination
    return {
        "outcome": d.outcome.value,
        "law_version": d.law_version,
        "law_hash": d.law_hash,
        "as_of": d.as_of.isoformat(),
        "authorities": [
            {"authority": a.authority, "outcome": a.outcome.value, "pathway": a.pathway} for a in d.authorities
        ],
        **planned.spec.as_dict(),
        "output": planned.output_settings(),
        "notices": d.notices,
    }


@route("POST", "/shares/runs", SHARE_RUNNERS, tags=["shares"], status_code=201)
def run_share(body: ShareIn, context: Ctx, user: Principal, idempotency_key: IdempotencyKey = None) -> JSONResponse:
    """Run an approved share under an active agreement: extract, transform, sign, encrypt, publish, audit.

    Runs to completion before answering. The package is published in the data directory's
    packages/ folder; the answer gives its path there. Repeat safely with an Idempotency-Key.
    """
    base = data_dir(context)

    def create() -> dict[str, Any]:
        settings = context.api.settings
        with _in_callers_terms(_base_terms(base)):
            definition = share_definition(context, body, base)
            backend = DuckDBBackend()
            try:
                result = shares_service.run(
                    context.api,
                    definition,
                    context.law,
                    context.today(),
                    backend,
                    FileKeyProvider(settings.keys),
                    base / PACKAGES,
                    user.id,
                    person_index_key=FileSecrets(settings.keys).key(accounting_service.PERSON_INDEX_KEY),
                    sink=_sink(context),
                )
            finally:
                backend.close()
        extracted = result.extract
        return {
            "share_id": result.share_id,
            "agreement": definition.agreement_id,
            "package": _relative(base, result.package.path.resolve()),
            "package_sha256": result.package.sha256,
            "package_bytes": result.package.bytes,
            "signer_key_id": result.signer_key_id,
            "pseudonym_key_id": result.key_id,
            "form": result.plan.spec.form,
            "rows": extracted.rows,
            "columns": list(extracted.columns),
            "format": extracted.format,
            "dropped": [{"name": d.name, "reason": d.reason} for d in result.plan.spec.dropped],
            "deidentification": extracted.risk.as_dict() if extracted.risk else None,
            "suppression": extracted.suppression or None,
        }

    return _idempotent(context, user, idempotency_key, body, "/shares/runs", create)


@route("GET", "/shares/runs/{share_id}", AUDIT_READERS, tags=["shares"])
def share_run_status(
    share_id: Annotated[str, PathParam(max_length=128)], context: Ctx, user: Principal
) -> dict[str, Any]:
    """A share run's status and its audit events, oldest first (auditors, who read the audit trail)."""
    events = audit_service.log(context.api, user.id, "share", share_id, 200)
    if not events:
        raise NotFoundError(f"no share run '{share_id}' in the audit trail")
    status = next((RUN_STATUS[e["action"]] for e in events if e["action"] in RUN_STATUS), "unknown")
    return {"share_id": share_id, "status": status, "events": [audit_record_json(e) for e in reversed(events)]}


# Share jobs: runs in the background ---------------------------------------------------------------

# A job is read by the steward who started it, by auditors, and by administrators of its agency.
SHARE_JOB_READERS = Access(frozenset({"data_steward", "auditor", "administrator"}), scoped=True, auditor_reads=True)
# Its package: the steward who started it and auditors only (it is the recipient's, not the directory's).
SHARE_PACKAGE_READERS = Access(frozenset({"data_steward", "auditor"}), scoped=True, auditor_reads=True)
JOB_PATH = "/shares/jobs"


def _job_location(job_id: str) -> str:
    return f"/api/v1{JOB_PATH}/{job_id}"


def _accepted(
    context: AppContext, user: User, key: str | None, body: BaseModel, start: Callable[[], dict[str, Any]]
) -> JSONResponse:
    """202 with the job and its Location; once per Idempotency-Key (a repeat returns the same job)."""
    if key is None:
        job = start()
        return JSONResponse(job, status_code=202, headers={"Location": _job_location(job["id"])})
    fingerprint = hashlib.sha256(
        (JOB_PATH + "\n" + json.dumps(body.model_dump(mode="json"), sort_keys=True)).encode("utf-8")
    ).hexdigest()
    before = accounts_service.remembered(context.api, user.id, key)
    if before is not None:
        if before.fingerprint != fingerprint:
            return problem(
                409, "Idempotency key reused", "invalid_state", "this Idempotency-Key was used with another request"
            )
        job = json.loads(before.body)
        headers = {"Location": _job_location(job["id"]), "Idempotent-Replayed": "true"}
        return JSONResponse(job, status_code=before.status_code, headers=headers)
    job = start()
    accounts_service.remember(context.api, user.id, key, fingerprint, 202, json.dumps(job))
    return JSONResponse(job, status_code=202, headers={"Location": _job_location(job["id"])})


@route("POST", JOB_PATH, SHARE_RUNNERS, tags=["shares"], status_code=202)
def start_share_job(
    body: ShareIn, context: Ctx, user: Principal, idempotency_key: IdempotencyKey = None
) -> JSONResponse:
    """Start a share run in the background and answer at once (202) with the job; its Location gives its state.

    The checks a run makes first are made before answering: the caller's role, the agreement
    (active today), the recipient certificate, the source file's content (CSV or Parquet, as the
    definition says), the plan and the pseudonym key; a refusal is the usual problem and starts nothing. A determination that does not permit the share is refused by
    the run itself, which records the refusal in the audit trail: the job then fails with
    not_permitted. Repeat safely with an Idempotency-Key (the same job is returned).
    """
    base = data_dir(context)

    def start() -> dict[str, Any]:
        with _in_callers_terms(_base_terms(base)):
            definition = share_definition(context, body, base)
            jobs = share_jobs_service.jobs_for(context.api)
            job = jobs.start(
                context.api, context.law, definition, user.id, context.today(), "api", terms=_base_terms(base)
            )
        return jobs.public(job)

    return _accepted(context, user, idempotency_key, body, start)


JobId = Annotated[str, PathParam(max_length=64)]


@route("GET", JOB_PATH + "/{job_id}", SHARE_JOB_READERS, tags=["shares"])
def share_job(job_id: JobId, context: Ctx, user: Principal) -> dict[str, Any]:
    """A share job: its state (queued, running, succeeded, failed, interrupted), its steps and its outcome.

    Readable by the data steward who started it, by auditors, and by administrators of its agency.
    A succeeded job gives its package's path in the data directory, rows, columns and SHA-256; a
    failed one the error's code, message and problems. `expires_at` says when a finished job and
    its package are deleted (SHAREWISE_SHARE_JOB_RETENTION_DAYS after the run ended, 7 by default).
    """
    jobs = share_jobs_service.jobs_for(context.api)
    return jobs.public(jobs.read(context.api, user.id, job_id))


@route(
    "GET",
    JOB_PATH + "/{job_id}/package",
    SHARE_PACKAGE_READERS,
    tags=["shares"],
    response_class=Response,
    responses=_file_responses(PKCS7, "The package, signed and encrypted for the recipient."),
)
def share_job_package(job_id: JobId, context: Ctx, user: Principal) -> Response:
    """The package of a succeeded share job, for the data steward who started it and for auditors.

    Each download is audited (`package-downloaded`: who, their agency, the job, the package's
    file name and SHA-256), and so is each refusal of a steward who did not start the job
    (`package-download-refused`). Only the recipient's private key opens the package.
    """
    job, path = share_jobs_service.jobs_for(context.api).package_of(context.api, user.id, job_id)
    return FileResponse(path, media_type=PKCS7, filename=f"{job.share_id}.p7m")


# Linkage ----------------------------------------------------------------------------------------

LINKERS = Access(frozenset({"data_steward"}))
LINKAGE = "linkage"
ColumnsIn = dict[str, str | list[str]]


class LinkageJobIn(BaseModel):
    """A linkage job on files in the server's data directory: link two files, or deduplicate one."""

    model_config = ConfigDict(extra="forbid")
    kind: Literal["link", "dedupe"]
    file_a: ServerPath = Field(description="The (first) person file, CSV or Parquet.")
    file_b: ServerPath | None = Field(default=None, description="The second person file (link only).")
    mapping_a: ColumnsIn | None = Field(default=None, description="Standard column -> source column(s) of file A.")
    mapping_b: ColumnsIn | None = Field(default=None, description="The same for file B (link only).")
    threshold: float = Field(default=0.9, ge=0.0, le=1.0)
    one_to_one: bool = Field(default=False, description="Keep each record's mutual best match only (link only).")
    index: str | None = Field(
        default=None, pattern=NAME_PATTERN, description="A person index by name: stable ids across batches (dedupe)."
    )
    dayfirst: bool = False

    @model_validator(mode="after")
    def fits_kind(self) -> LinkageJobIn:
        if self.kind == "link":
            if self.file_b is None:
                raise ValueError("a link job needs file_b")
            if self.index is not None:
                raise ValueError("a person index is for dedupe jobs")
        elif self.file_b is not None or self.mapping_b is not None or self.one_to_one:
            raise ValueError("a dedupe job reads one file: no file_b, mapping_b or one_to_one")
        return self


def _mapping(raw: ColumnsIn | None, location: str) -> ColumnMapping | None:
    return ColumnMapping.parse(raw, location) if raw is not None else None


@route("POST", "/linkage/jobs", LINKERS, tags=["linkage"], status_code=201)
def run_linkage_job(
    body: LinkageJobIn, context: Ctx, user: Principal, idempotency_key: IdempotencyKey = None
) -> JSONResponse:
    """Link two files or deduplicate one (Splink on DuckDB); the result is written in the data directory.

    Runs to completion before answering (minutes for large files). Link jobs write
    linkage/<job_id>/matches.csv (left_id, right_id, match_probability); dedupe jobs write
    linkage/<job_id>/clusters.csv (record_id, person_id).
    """
    base = data_dir(context)

    def create() -> dict[str, Any]:
        job_id = f"lj-{context.today():%Y%m%d}-{secrets.token_hex(4)}"
        folder = base / LINKAGE / job_id
        options = LinkOptions(threshold=body.threshold, one_to_one=body.one_to_one)
        with _in_callers_terms(_base_terms(base)):
            file_a = server_path(base, body.file_a, "file_a")
            mapping_a = _mapping(body.mapping_a, "mapping_a")
            if body.kind == "link":
                assert body.file_b is not None
                file_b = server_path(base, body.file_b, "file_b")
                outcome = linkage_service.link_files(
                    file_a,
                    file_b,
                    folder / "matches.csv",
                    options,
                    mapping_a,
                    _mapping(body.mapping_b, "mapping_b"),
                    _sink(context),
                    user.id,
                    dayfirst=body.dayfirst,
                )
            else:
                index = base / LINKAGE / "indexes" / f"{body.index}.duckdb" if body.index else None
                if index is not None:
                    index.parent.mkdir(parents=True, exist_ok=True)
                outcome = linkage_service.dedupe_file(
                    file_a,
                    folder / "clusters.csv",
                    options,
                    mapping_a,
                    index,
                    _sink(context),
                    user.id,
                    dayfirst=body.dayfirst,
                )
        return {
            "job_id": job_id,
            "kind": body.kind,
            "output": _relative(base, outcome.out.resolve()),
            "rows": outcome.rows,
            "seconds": round(outcome.seconds, 3),
            "details": dict(outcome.details),
        }

    return _idempotent(context, user, idempotency_key, body, "/linkage/jobs", create)
