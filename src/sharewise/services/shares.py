"""Plan, run and verify shares: an approved determination becomes an encrypted package, and an audited disclosure."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import re
import secrets
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from sharewise.domain.consent import person_lookup_key
from sharewise.domain.determination import Determination
from sharewise.domain.errors import InvalidDataError, InvalidStateError, NotPermittedError, Problem, SharewiseError
from sharewise.domain.events import AuditEvent, AuditSink, DetailValue, DisclosureEvent
from sharewise.domain.outcome import Outcome
from sharewise.domain.request import Request
from sharewise.pipeline.backend import Backend, CsvInput, Input, ParquetInput, PostgresInput, PseudonymPads
from sharewise.pipeline.dictionary import DataDictionary, load_dictionary
from sharewise.pipeline.extract import PARQUET_ENCODINGS, ExtractResult, Progress, extract
from sharewise.pipeline.propose import proposal_yaml, propose_fields, read_sample
from sharewise.pipeline.spec import (
    MAX_SHIFT_DAYS,
    AggregateOptions,
    DateShiftOptions,
    DeidentificationOptions,
    ShareSpec,
    build_spec,
)
from sharewise.pipeline.sql import TOKEN_FORMATS, default_token_format, person_index_sql
from sharewise.pipeline.stage import postgres_columns, stage_postgres
from sharewise.policy.model import LawPack
from sharewise.security import package
from sharewise.security.keys import KeyProvider, PseudonymKey, public_key_pem
from sharewise.security.secrets import keyed_token
from sharewise.services.authorization import SHARE_RUNNERS, authorize
from sharewise.services.determinations import determine, parse_request_text, read_request
from sharewise.wiring import Control

PARQUET_MAGIC = b"PAR1"  # a Parquet file starts and ends with it
CSV_SNIFF = 64 * 1024  # how much of a CSV source is looked at for binary content
WIDE_ENCODINGS = ("utf-16", "utf16", "utf-32", "utf32")  # text in which NUL bytes are normal
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_KEYS = (
    "share_id",
    "agreement",
    "request",
    "dictionary",
    "source",
    "needs",
    "pseudonymize",
    "output",
    "parquet_encodings",
    "token_format",
    "recipient_certificate",
    "deidentification",
    "aggregate",
    "date_shift",
)


@dataclass(frozen=True)
class ShareDefinition:
    """A share file: which approved request, which data, which fields, for which recipient."""

    agreement_id: str
    request: Request
    dictionary: Path
    source: Input
    needs: tuple[str, ...]
    share_id: str | None = None
    pseudonymize: tuple[str, ...] = ()
    output: str = "parquet"
    parquet_encodings: str = "compatible"  # "v2": smaller, faster to write; some older readers lack it
    token_format: str | None = None  # "bytes" (32 bytes, Parquet only) or "hex"; None: the output's default
    recipient_certificate: Path | None = None
    deidentification: DeidentificationOptions = field(default_factory=DeidentificationOptions)
    aggregate: AggregateOptions = field(default_factory=AggregateOptions)
    label: str = "share"
    date_shift: DateShiftOptions | None = None  # off unless the share file asks for it

    @property
    def tokens(self) -> str:
        """How pseudonyms are written: as asked, else bytes in Parquet and hex in CSV (ADR 0005)."""
        return self.token_format or default_token_format(self.output)


@dataclass(frozen=True)
class SharePlan:
    """What a share would send: the determination that allows it and the share specification."""

    definition: ShareDefinition
    determination: Determination
    dictionary: DataDictionary
    spec: ShareSpec

    def output_settings(self) -> dict[str, str | None]:
        """How the recipient receives the data, as the package manifest's `output` section will record it."""
        d = self.definition
        encodings = "compatible" if self.spec.form == "aggregate" else d.parquet_encodings  # tables of counts
        return {
            "format": d.output,
            "parquet_encodings": encodings if d.output == "parquet" else None,
            "token_format": d.tokens if self.spec.pseudonymized else None,
        }

    def describe_output(self) -> str:
        """The output settings in words: what the recipient's tools must open."""
        settings = self.output_settings()
        words = [str(settings["format"])]
        if settings["parquet_encodings"] == "v2":
            words.append("format 2 encodings (recent readers only)")
        elif settings["parquet_encodings"]:
            words.append("compatible encodings (every reader)")
        if settings["token_format"] == "bytes":
            words.append("pseudonyms as 32-byte binary values")
        elif settings["token_format"]:
            words.append("pseudonyms as 64 hex digits (text)")
        return ", ".join(words)


@dataclass(frozen=True)
class ShareResult:
    """An executed share: its id, the published package and what went into it."""

    share_id: str
    plan: SharePlan
    extract: ExtractResult
    package: package.PublishedPackage
    key_id: str | None
    signer_key_id: str


def read_share(path: Path, law: LawPack) -> ShareDefinition:
    """Read a share file (YAML); relative paths are relative to it. Every problem is reported together."""
    label = str(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidDataError("cannot read share file", [Problem(label, "cannot read the file")]) from exc
    except (yaml.YAMLError, ValueError) as exc:  # ValueError: a value YAML cannot build, such as 2026-02-30
        raise InvalidDataError(
            "malformed share file",
            [
                Problem(
                    label,
                    "not valid YAML"
                    if isinstance(exc, yaml.YAMLError)
                    else "a value that cannot be read (for example an impossible date)",
                )
            ],
        ) from exc
    return parse_share(data, law, path.parent, label)


def parse_share(data: Any, law: LawPack, base: Path, label: str = "share") -> ShareDefinition:
    """Validate a parsed share file."""
    if not isinstance(data, Mapping):
        raise InvalidDataError("malformed share file", [Problem(label, "expected a mapping")])
    problems = [Problem(f"{label}: {k}", "unknown key") for k in data if k not in _KEYS]

    def ident(key: str, required: bool) -> str | None:
        value = data.get(key)
        if value is None:
            if required:
                problems.append(Problem(f"{label}: {key}", "required"))
            return None
        if not isinstance(value, str) or not _ID.match(value):
            problems.append(Problem(f"{label}: {key}", "letters, digits, '.', '_' and '-' (at most 128)"))
            return None
        return value

    def path_of(value: Any, key: str) -> Path | None:
        if not isinstance(value, str) or not value:
            problems.append(Problem(f"{label}: {key}", "required: a file path"))
            return None
        p = Path(value).expanduser()
        return p if p.is_absolute() else base / p

    def names(key: str) -> tuple[str, ...]:
        value = data.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            problems.append(Problem(f"{label}: {key}", "a list of field names"))
            return ()
        return tuple(value)

    agreement = ident("agreement", True)
    share_id = ident("share_id", False)
    request: Request | None = None
    raw_request = data.get("request")
    try:
        if isinstance(raw_request, Mapping):
            request = parse_request_text(yaml.safe_dump(dict(raw_request)), law, f"{label}: request")
        else:
            request_path = path_of(raw_request, "request")
            request = read_request(request_path, law) if request_path else None
    except SharewiseError as exc:
        problems.extend(exc.problems or [Problem(f"{label}: request", exc.message)])
    dictionary = path_of(data.get("dictionary"), "dictionary")
    source = _source(data.get("source"), base, label, problems)
    needs = names("needs")
    if not needs:
        problems.append(Problem(f"{label}: needs", "required: the fields the recipient needs (minimum necessary)"))
    output = data.get("output", "parquet")
    if output not in ("parquet", "csv"):
        problems.append(Problem(f"{label}: output", "parquet or csv"))
    encodings = data.get("parquet_encodings", "compatible")
    if encodings not in PARQUET_ENCODINGS:
        problems.append(Problem(f"{label}: parquet_encodings", "compatible or v2"))
    elif encodings != "compatible" and output != "parquet":
        problems.append(Problem(f"{label}: parquet_encodings", "only for parquet output"))
    token_format = data.get("token_format")
    if token_format is not None and token_format not in TOKEN_FORMATS:
        problems.append(Problem(f"{label}: token_format", "hex or bytes"))
    elif token_format == "bytes" and output != "parquet":
        problems.append(
            Problem(f"{label}: token_format", "bytes only for parquet output (CSV cells are text: use hex)")
        )
    cert = data.get("recipient_certificate")
    deid = data.get("deidentification") or {}
    agg = data.get("aggregate") or {}
    options_ok = isinstance(deid, Mapping) and isinstance(agg, Mapping)
    if not options_ok:
        problems.append(Problem(f"{label}: deidentification/aggregate", "mappings of options"))
    date_shift = _date_shift(data.get("date_shift"), label, problems)
    if problems or request is None or dictionary is None or source is None or agreement is None:
        raise InvalidDataError("invalid share file", problems)
    try:
        deid_options = DeidentificationOptions(
            k=int(deid.get("k", 5)), max_suppression=float(deid.get("max_suppression", 0.05))
        )
        agg_options = AggregateOptions(by=tuple(agg.get("by", ())), hide_at_most=int(agg.get("hide_at_most", 10)))
    except (TypeError, ValueError) as exc:
        raise InvalidDataError(
            "invalid share file", [Problem(f"{label}: deidentification/aggregate", "numbers expected")]
        ) from exc
    return ShareDefinition(
        agreement_id=agreement,
        request=request,
        dictionary=dictionary,
        source=source,
        needs=needs,
        share_id=share_id,
        pseudonymize=names("pseudonymize"),
        output=str(output),
        parquet_encodings=str(encodings),
        token_format=None if token_format is None else str(token_format),
        recipient_certificate=path_of(cert, "recipient_certificate") if cert is not None else None,
        deidentification=deid_options,
        aggregate=agg_options,
        label=label,
        date_shift=date_shift,
    )


def _date_shift(value: Any, label: str, problems: list[Problem]) -> DateShiftOptions | None:
    """The share file's date_shift: {by: PERSON FIELD, max_days: N}; absent means dates leave unshifted."""
    if value is None:
        return None
    where = f"{label}: date_shift"
    if not isinstance(value, Mapping):
        problems.append(Problem(where, "a mapping: {by: the person field, max_days: N}"))
        return None
    before = len(problems)
    problems.extend(Problem(f"{where}.{k}", "unknown key") for k in value if k not in ("by", "max_days"))
    by = value.get("by")
    if not isinstance(by, str) or not by:
        problems.append(Problem(f"{where}.by", "required: the field that identifies the person, such as client_id"))
    max_days = value.get("max_days", 180)
    if isinstance(max_days, bool) or not isinstance(max_days, int) or not 1 <= max_days <= MAX_SHIFT_DAYS:
        problems.append(Problem(f"{where}.max_days", f"a whole number of days from 1 to {MAX_SHIFT_DAYS}"))
    if len(problems) > before:
        return None
    return DateShiftOptions(str(by), int(max_days))


def _source(value: Any, base: Path, label: str, problems: list[Problem]) -> Input | None:
    where = f"{label}: source"
    if not isinstance(value, Mapping) or len([k for k in ("csv", "parquet", "postgres") if k in value]) != 1:
        problems.append(Problem(where, "one of csv: PATH, parquet: PATH or postgres: {dsn, table}"))
        return None

    def resolve(p: str) -> Path:
        path = Path(p).expanduser()
        return path if path.is_absolute() else base / path

    try:
        if "csv" in value:
            return CsvInput(
                resolve(str(value["csv"])), str(value.get("encoding", "utf-8")), str(value.get("delimiter", ","))
            )
        if "parquet" in value:
            return ParquetInput(resolve(str(value["parquet"])))
        pg = value["postgres"]
        if not isinstance(pg, Mapping) or "table" not in pg:
            problems.append(Problem(f"{where}.postgres", "a mapping with dsn (or SHAREWISE_SOURCE_DSN) and table"))
            return None
        dsn = str(pg.get("dsn") or os.environ.get("SHAREWISE_SOURCE_DSN", ""))
        return PostgresInput(dsn, str(pg["table"]), str(pg.get("schema", "public")))
    except SharewiseError as exc:
        problems.extend(exc.problems)
        return None


def _require_permitted(determination: Determination) -> None:
    if determination.outcome is Outcome.PERMITTED:
        return
    problems = [
        Problem(f"authority {a.authority}", f"{a.outcome.value}: {a.explanation}")
        for a in determination.authorities
        if a.outcome is not Outcome.PERMITTED
    ]
    problems += [Problem(q.fact, q.ask) for q in determination.questions]
    raise NotPermittedError(
        f"the determination is {determination.outcome.value}, not permitted: no share may run on it", problems
    )


def plan(definition: ShareDefinition, law: LawPack, today: dt.date, backend: Backend | None = None) -> SharePlan:
    """Determine the request, require permitted, and derive the share specification from the dictionary."""
    determination = determine(law, definition.request, today)
    _require_permitted(determination)
    dictionary = load_dictionary(definition.dictionary, law.vocabulary.data_categories)
    if dictionary.program != definition.request.source.program:
        raise InvalidDataError(
            "dictionary for another program",
            [
                Problem(
                    dictionary.source,
                    f"maps {dictionary.program} records; the request shares {definition.request.source.program}",
                )
            ],
        )
    source = definition.source
    if isinstance(source, PostgresInput):
        columns = postgres_columns(source)
    elif backend is not None:
        columns = backend.register_input(source)
    else:
        from sharewise.pipeline.duckdb_backend import read_csv_header

        columns = read_csv_header(source) if isinstance(source, CsvInput) else _parquet_columns(source.path)
    spec = build_spec(
        dictionary,
        columns,
        definition.needs,
        definition.request.data,
        definition.request.form,
        definition.pseudonymize,
        definition.deidentification,
        definition.aggregate,
        definition.date_shift,
    )
    return SharePlan(definition, determination, dictionary, spec)


def _parquet_columns(path: Path) -> list[str]:
    import pyarrow.dataset as ds

    try:
        return list(ds.dataset(path, format="parquet").schema.names)
    except (OSError, ValueError) as exc:
        raise InvalidDataError("cannot read input", [Problem(str(path), "not a readable Parquet file")]) from exc


def _manifest(
    result_plan: SharePlan, share_id: str, extracted: ExtractResult, key: PseudonymKey | None, at: dt.datetime
) -> dict[str, Any]:
    d = result_plan.determination
    req = result_plan.definition.request
    return {
        "share_id": share_id,
        "created_at": at.isoformat(),
        "agreement_id": result_plan.definition.agreement_id,
        "pseudonym_key_id": key.key_id if key else None,
        "pseudonym_key_version": key.version if key else None,
        "law_version": d.law_version,
        "law_hash": d.law_hash,
        "request": req.model_dump(mode="json"),
        "determination": d.to_contract(),
        "share_spec": result_plan.spec.as_dict(),
        "output": {
            "format": extracted.format,
            "parquet_encodings": extracted.parquet_encodings,
            "token_format": extracted.token_format,
            "rows": extracted.rows,
            "columns": list(extracted.columns),
            "files": list(extracted.files),
        },
        "deidentification": extracted.risk.as_dict() if extracted.risk else None,
        "suppression": extracted.suppression or None,
        "date_shift": _date_shift_record(result_plan.spec, key),
    }


def _date_shift_record(spec: ShareSpec, key: PseudonymKey | None) -> dict[str, Any] | None:
    """That dates were shifted, which, by how much at most and under which key; never any shift itself."""
    if spec.date_shift is None or key is None:
        return None
    return {
        "shifted": True,
        "fields": list(spec.shifted_dates),
        "by": spec.date_shift.person.name,
        "max_days": spec.date_shift.max_days,
        "method": "per-person whole days in [-max_days, +max_days] except 0, from HMAC-SHA256 under the key",
        "key_id": key.key_id,
        "key_version": key.version,
    }


def check_source_content(source: Input) -> None:
    """Refuse a source file whose content is not of the kind the share file claims (csv: or parquet:).

    A mismatch would otherwise fail deep in the engine with a message that names neither the file
    nor the fix. Only a few bytes are read; a missing file is left to the run, which says so.
    """
    if not isinstance(source, CsvInput | ParquetInput) or source.path.is_dir():
        return
    try:
        with source.path.open("rb") as handle:
            head = handle.read(CSV_SNIFF if isinstance(source, CsvInput) else len(PARQUET_MAGIC))
            size = handle.seek(0, os.SEEK_END)
            handle.seek(max(0, size - len(PARQUET_MAGIC)))
            tail = handle.read(len(PARQUET_MAGIC))
    except OSError:
        return
    where = str(source.path)
    parquet = head.startswith(PARQUET_MAGIC) and tail == PARQUET_MAGIC and size >= 3 * len(PARQUET_MAGIC)
    if isinstance(source, ParquetInput):
        if not parquet:
            raise InvalidDataError(
                "the source file is not Parquet",
                [Problem(where, "the share file's source says parquet:, but this file is not a Parquet file")],
            )
        return
    if head.startswith(PARQUET_MAGIC):
        raise InvalidDataError(
            "the source file is not CSV",
            [Problem(where, "this is a Parquet file, but the share file's source says csv: (write parquet: instead)")],
        )
    if b"\0" in head and not source.encoding.lower().replace("_", "-").startswith(WIDE_ENCODINGS):
        raise InvalidDataError(
            "the source file is not CSV",
            [Problem(where, "not CSV text: it holds binary data (a spreadsheet or an archive?); save it as CSV")],
        )


def run(
    control: Control,
    definition: ShareDefinition,
    law: LawPack,
    today: dt.date,
    backend: Backend,
    keys: KeyProvider,
    out_dir: Path,
    actor: str | None,
    progress: Progress | None = None,
    work_dir: Path | None = None,
    person_index_key: bytes | None = None,
    sink: AuditSink | None = None,
) -> ShareResult:
    """Execute an approved share and publish its package; every outcome is audited, success as a disclosure.

    Only data stewards run shares (anyone while the directory is empty). The extract is staged in
    a private temporary directory and removed whatever happens. The disclosure is recorded before
    the package is published, so if the audit write fails no package appears; if publication then
    fails, a failure event follows the disclosure record. `sink` replaces the control's audit sink.
    """
    with control.store.transaction() as conn:
        user = authorize(conn, actor, SHARE_RUNNERS, "run shares")
    if user is not None:
        _require_active_agreement(control, user.id, definition.agreement_id, today)
    check_source_content(definition.source)
    actor = user.id if user else (actor or "single-user")
    sink = sink if sink is not None else control.sink
    now = control.trail.clock
    share_id = definition.share_id or f"{definition.agreement_id}-{today:%Y%m%d}-{secrets.token_hex(3)}"
    subject = _Subject(actor, share_id)
    try:
        share_plan = plan(definition, law, today, None)
    except NotPermittedError as exc:
        sink.record(subject.event("share-refused", {"error": exc.code}, "failure"))
        raise
    if definition.recipient_certificate is None:
        raise InvalidDataError(
            "invalid share file", [Problem(f"{definition.label}: recipient_certificate", "required to run a share")]
        )
    recipient = package.load_certificate(definition.recipient_certificate)
    target = out_dir / f"{share_id}{package.PACKAGE_SUFFIX}"
    spec = share_plan.spec
    _sweep_leftovers(work_dir, out_dir)
    staging = Path(tempfile.mkdtemp(prefix=f"{STAGING_PREFIX}{os.getpid()}-", dir=work_dir))
    sealed: package.SealedPackage | None = None
    disclosed = False
    try:
        key = keys.pseudonym_key(definition.agreement_id) if spec.needs_key else None
        signer = keys.signing_key()
        source = definition.source
        if isinstance(source, PostgresInput):
            source = stage_postgres(source, staging)
        columns = backend.register_input(source)
        if sorted(columns) != sorted(_columns_of(share_plan)):
            raise InvalidDataError(
                "the input changed", [Problem(definition.label, "its columns changed between planning and running")]
            )
        pads = PseudonymPads.from_key(key.secret) if key else None
        as_of = definition.request.as_of or today
        extracted = extract(
            backend,
            share_plan.spec,
            staging,
            definition.output,
            as_of,
            pads,
            progress,
            definition.parquet_encodings,
            definition.tokens,
        )
        tokens = _person_tokens(backend, definition, share_plan, staging, person_index_key)
        manifest = _manifest(share_plan, share_id, extracted, key, now())
        if progress:
            with progress.step("signing and encrypting the package"):
                sealed = package.seal(staging, extracted.files, manifest, signer, recipient, target)
        else:
            sealed = package.seal(staging, extracted.files, manifest, signer, recipient, target)
        d = share_plan.determination
        sink.record_disclosure(
            DisclosureEvent(
                share_id=share_id,
                recipient=definition.request.recipient.name or definition.request.recipient.kind,
                purpose=definition.request.purpose,
                data_categories=share_plan.spec.categories,
                legal_basis=tuple(a.pathway for a in d.authorities if a.pathway),
                law_version=d.law_version,
                law_hash=d.law_hash,
                row_count=extracted.rows,
                package_sha256=sealed.sha256,
                agreement_id=definition.agreement_id,
                person_tokens=tokens,
                form=share_plan.spec.form,
                source_program=definition.request.source.program,
            ),
            actor,
        )
        disclosed = True
        published = sealed.commit()
        sink.record(
            subject.event(
                "share-executed",
                {
                    "agreement": definition.agreement_id,
                    "form": share_plan.spec.form,
                    "rows": extracted.rows,
                    "fields": len(share_plan.spec.fields),
                    "dropped_fields": len(share_plan.spec.dropped),
                    "pseudonym_key_id": key.key_id if key else None,
                    "package_sha256": published.sha256,
                    "law_version": d.law_version,
                },
            )
        )
    except SharewiseError as exc:
        if sealed is not None and not sealed.target.exists():
            sealed.discard()
        _record_failure(sink, subject, exc.code, disclosed)
        raise
    except Exception:
        if sealed is not None:
            sealed.discard()
        _record_failure(sink, subject, "unexpected_error", disclosed)
        raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return ShareResult(
        share_id, share_plan, extracted, published, key.key_id if key else None, package.key_id(signer.public_key())
    )


STAGING_PREFIX = "sharewise-share-"


def _require_active_agreement(control: Control, actor_id: str, agreement_id: str, today: dt.date) -> None:
    """Once people are registered, a share runs only under a registered agreement of the steward's agency, active today."""
    from sharewise.services import agreement_registry

    record = agreement_registry.show(control, actor_id, agreement_id)  # NotFound, or refused for other agencies
    state = record.state_on(today)
    if state != "active":
        raise InvalidStateError(f"agreement '{agreement_id}' is {state}; a share runs only under an active agreement")


def _sweep_leftovers(work_dir: Path | None, out_dir: Path) -> None:
    """Remove what runs killed before their clean-up left behind: staging directories and unpublished packages.

    Only files of processes that no longer run are removed.
    """
    import psutil

    base = work_dir or Path(tempfile.gettempdir())
    pattern = re.compile(rf"^{re.escape(STAGING_PREFIX)}(\d+)-")
    if base.is_dir():
        for path in base.iterdir():
            match = pattern.match(path.name)
            if match and path.is_dir() and not psutil.pid_exists(int(match.group(1))):
                shutil.rmtree(path, ignore_errors=True)
    package.sweep_partials(out_dir)


def _person_tokens(
    backend: Backend, definition: ShareDefinition, share_plan: SharePlan, staging: Path, key: bytes | None
) -> tuple[str, ...]:
    """Keyed person-index tokens of everyone whose records leave, for the accounting of disclosures.

    Only identified and limited-data-set shares disclose individuals' records; the three person
    fields are read back in batches from the engine, never the whole table at once.
    """
    fields = share_plan.dictionary.person_fields()
    if key is None or fields is None or share_plan.spec.form not in ("identified", "limited_data_set"):
        return ()
    import pyarrow.parquet as pq

    target = staging / "person-index"
    written = backend.write(
        person_index_sql(fields["given_name"], fields["family_name"], fields["date_of_birth"]), target, "parquet"
    )
    birth_format = share_plan.dictionary.get(fields["date_of_birth"])
    fmt = birth_format.date_format if birth_format else None
    tokens: set[str] = set()
    for name in written.files:
        for batch in pq.ParquetFile(target / name).iter_batches(batch_size=50_000):
            for given, family, birth in zip(*(batch.column(i).to_pylist() for i in range(3)), strict=True):
                iso = _iso_date(birth, fmt)
                if given and family and iso:
                    tokens.add(keyed_token(key, person_lookup_key(given, family, iso)))
    shutil.rmtree(target, ignore_errors=True)
    return tuple(sorted(tokens))


def _iso_date(text: str | None, fmt: str | None) -> str | None:
    if not text:
        return None
    try:
        if fmt:
            return dt.datetime.strptime(text, fmt).date().isoformat()
        return dt.date.fromisoformat(text[:10]).isoformat()
    except ValueError:
        return None


def _columns_of(share_plan: SharePlan) -> list[str]:
    return [*share_plan.spec.columns, *(d.name for d in share_plan.spec.dropped)]


@dataclass(frozen=True)
class _Subject:
    actor: str
    share_id: str

    def event(self, action: str, details: dict[str, DetailValue], outcome: str = "success") -> AuditEvent:
        return AuditEvent(action, self.actor, "share", self.share_id, outcome=outcome, details=details)


def _record_failure(sink: AuditSink, subject: _Subject, code: str, disclosed: bool) -> None:
    action = "share-publication-failed" if disclosed else "share-failed"
    with contextlib.suppress(Exception):
        sink.record(subject.event(action, {"error": code}, "failure"))


def verify_package(
    path: Path,
    certificate: Path,
    private_key: Path,
    signer_public_key: Path | None = None,
    extract_to: Path | None = None,
) -> package.VerifiedPackage:
    """Check a received package with the recipient's certificate and key, and the sender's public key if known."""
    trusted = package.load_public_key(signer_public_key) if signer_public_key else None
    return package.verify(
        path, package.load_certificate(certificate), package.load_private_key(private_key), trusted, extract_to
    )


def create_key(keys: KeyProvider, agreement_id: str, rotate: bool = False) -> PseudonymKey:
    """Create an agreement's pseudonym key, or rotate it to a new version."""
    return keys.rotate_pseudonym_key(agreement_id) if rotate else keys.create_pseudonym_key(agreement_id)


def signer_public_pem(keys: KeyProvider) -> bytes:
    """The package-signing public key, for recipients to pin."""
    return public_key_pem(keys.signing_key())


def propose_dictionary(sample: Path, program: str) -> str:
    """A proposed dictionary (YAML, status: proposed) from a sample of a CSV or Parquet file."""
    header, rows = read_sample(sample)
    return proposal_yaml(program, propose_fields(header, rows), str(sample))
