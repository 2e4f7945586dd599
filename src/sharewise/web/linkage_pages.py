"""Linkage pages: deduplicate one uploaded file or link two, see the run's counts and quality, download its outputs."""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import json
import math
import re
import secrets
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from sharewise.api.context import AppContext
from sharewise.domain.errors import InvalidDataError, InvalidStateError, NotFoundError
from sharewise.domain.events import DetailValue
from sharewise.linkage.link import LinkOptions
from sharewise.linkage.sources import ColumnMapping
from sharewise.services import linkage as linkage_service
from sharewise.web.pages import Ctx, Viewer, flash, render, router
from sharewise.web.record_pages import NO_STORE, FormProblem, _refuse_unless
from sharewise.web.streamed_form import MB, FileField, StreamedForm, UploadTooLarge, size_text
from sharewise.workflow.access import User

LINKERS = frozenset({"data_steward"})
LINKAGE = "linkage"  # data_dir/linkage/<job_id>/: the API's jobs and these pages' share the folder
UPLOADS = "uploads"  # data_dir/linkage/uploads/web-*: each run's private directory, removed after the run
JOB_FILE = "web-job.json"  # what a run from these pages counted, and whose it is (never offered for download)
JOB_ID = re.compile(r"lj-[0-9]{8}-[0-9a-f]{16}")  # random (64 bits), and longer than the API's, so never one of them
INDEX_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")  # as the API's person index names
DOWNLOADS = {
    "matches.csv": "text/csv; charset=utf-8",
    "clusters.csv": "text/csv; charset=utf-8",
    "waterfall.html": "text/html; charset=utf-8",
}

FILE_LIMIT = 50 * MB  # each person file
MAPPING_LIMIT = 64 * 1024  # each mapping file and text field
MAX_FIELDS = 20
STALE_UPLOADS = dt.timedelta(hours=24)  # an upload directory this old is left from a run the server did not finish
TEXTS = {  # the form's text fields, each capped (StreamedForm keeps and checks the CSRF token itself)
    name: MAPPING_LIMIT
    for name in ("kind", "threshold", "mapping_a", "mapping_b", "index", "one_to_one", "explain", "dayfirst", "retrain")
}


def _uploads() -> dict[str, FileField]:
    """The files the form may send: each one's name in the private directory, its limit and its label in messages.

    Made when a form is read, so that each upload is held to the FILE_LIMIT of that moment.
    """
    return {
        "file_a": FileField("file-a.csv", FILE_LIMIT, "File A"),
        "file_b": FileField("file-b.csv", FILE_LIMIT, "File B"),
        "mapping_file_a": FileField("mapping-a.yaml", MAPPING_LIMIT, "The mapping file of file A"),
        "mapping_file_b": FileField("mapping-b.yaml", MAPPING_LIMIT, "The mapping file of file B"),
    }


def _body_limit() -> int:
    """The whole form: its files, with room for its text fields and the multipart framing."""
    return 2 * FILE_LIMIT + 2 * MAPPING_LIMIT + MAX_FIELDS * MAPPING_LIMIT


PREVIEW = 20  # rows of the pairs and persons previews
COMPARED = {
    "given_std": "given name",
    "surname_std": "surname",
    "middle_std": "middle name",
    "dob": "date of birth",
    "ssn": "SSN",
    "address": "home address",
    "city_std": "city",
    "zip": "ZIP code",
    "phone": "phone",
    "sex": "sex",
}
BANDS = ((0.99, "0.99 or more"), (0.95, "0.95 to 0.99"), (0.9, "0.90 to 0.95"), (0.5, "0.50 to 0.90"))


# Where runs live -------------------------------------------------------------------------------------


def _base(context: AppContext) -> Path:
    base = context.web.settings.data_dir
    if base is None:
        raise InvalidStateError("the server has no data directory (SHAREWISE_DATA_DIR): linkage runs need one")
    return base.resolve()


def _job_folder(context: AppContext, job_id: str) -> Path:
    """The folder of a job of these pages, by its id only: a malformed id is unknown, never a path."""
    if not JOB_ID.fullmatch(job_id):
        raise NotFoundError("no such linkage job")
    return _base(context) / LINKAGE / job_id


@dataclass(frozen=True)
class RecentJob:
    """A run of the agency, as the form page lists it."""

    job_id: str
    kind: str
    created: str
    actor: str
    records: int


def _recent_jobs(context: AppContext, user: User, limit: int = 20) -> list[RecentJob]:
    folder = _base(context) / LINKAGE
    found: list[RecentJob] = []
    if not folder.is_dir():
        return found
    for path in folder.iterdir():
        if not JOB_ID.fullmatch(path.name):
            continue
        try:
            job = LinkageJob.load(path)
        except NotFoundError:
            continue
        if job.agency == user.agency_id:
            records = (
                job.count_of("records_a") + job.count_of("records_b") if job.kind == "link" else job.count_of("records")
            )
            found.append(RecentJob(job.job_id, job.kind, job.created, job.actor, records))
    return sorted(found, key=lambda j: j.created, reverse=True)[:limit]


def _sweep(uploads: Path, now: float) -> None:
    """Remove upload directories a killed run left behind (person files must not stay on the disk)."""
    for path in uploads.glob("web-*"):
        try:
            if now - path.stat().st_mtime > STALE_UPLOADS.total_seconds():
                shutil.rmtree(path, ignore_errors=True)
        except OSError:
            continue


# The run ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunRequest:
    """What the form asks for, checked."""

    kind: str
    threshold: float
    one_to_one: bool
    explain: bool
    dayfirst: bool
    index: str | None
    retrain: bool
    mapping_a: ColumnMapping | None
    mapping_b: ColumnMapping | None


def _relabel(exc: InvalidDataError, terms: dict[str, str], fields: dict[str, tuple[str, str]]) -> list[FormProblem]:
    """A service's problems in the page's terms: each location's prefix names a field and how to call it."""

    def plain(text: str) -> str:
        for old, new in sorted(terms.items(), key=lambda item: len(item[0]), reverse=True):
            text = text.replace(old, new)
        return text

    def sentence(text: str) -> str:
        return text[:1].upper() + text[1:]

    if not exc.problems:
        return [FormProblem(sentence(plain(exc.message)))]
    found = []
    for p in exc.problems:
        location, message = plain(p.location), plain(p.message)
        prefix = next((k for k in sorted(fields, key=len, reverse=True) if location.startswith(k)), None)
        if prefix is None:
            found.append(FormProblem(sentence(f"{location}: {message}" if location else message)))
            continue
        field_id, label = fields[prefix]
        rest = location[len(prefix) :].lstrip(".")
        found.append(FormProblem(f"{label}{f', {rest}' if rest else ''}: {message}", field_id))
    return found


def _mapping(form: StreamedForm, side: str, problems: list[FormProblem]) -> ColumnMapping | None:
    """A file's column mapping: the YAML mapping file, then the lines (standard=source[+source]), as the CLI merges."""
    upload = form.files.get(f"mapping_file_{side}")
    lines = [line.strip() for line in form.fields.get(f"mapping_{side}", "").splitlines() if line.strip()]
    mapping: ColumnMapping | None = None
    file_label, text_label = f"The mapping file of file {side.upper()}", f"The mapping of file {side.upper()}"
    try:
        mapping = ColumnMapping.from_file(upload) if upload else None
    except (InvalidDataError, NotFoundError) as exc:
        assert upload is not None
        problems += _relabel(
            InvalidDataError(exc.message, exc.problems),
            {upload.name: ""},
            {"": (f"mapping-file-{side}", file_label)},
        )
    try:
        flags = ColumnMapping.from_flags(lines) if lines else None
    except InvalidDataError as exc:
        problems += _relabel(exc, {}, {"--map": (f"mapping-{side}", text_label)})
        flags = None
    if flags is not None:
        mapping = (mapping or ColumnMapping()).merged(flags)
    return mapping


def _checked(form: StreamedForm) -> tuple[RunRequest | None, list[FormProblem]]:
    """The run the form asks for, or every problem with it at once."""
    problems: list[FormProblem] = []
    kind = form.fields.get("kind", "")
    files = form.files
    for name, message in form.oversized():
        problems.append(FormProblem(message, name.replace("_", "-")))
    if kind not in ("dedupe", "link"):
        problems.append(FormProblem("Choose what to do: deduplicate one file or link two files", "kind-dedupe"))
    if "file_a" not in files and "file_a" not in form.too_large:
        problems.append(FormProblem("Choose file A, a CSV file of person records", "file-a"))
    if kind == "link" and "file_b" not in files and "file_b" not in form.too_large:
        problems.append(FormProblem("Choose file B: linking needs a second file", "file-b"))
    if kind == "dedupe":
        unused = {
            "file-b": "file_b" in files,
            "mapping-b": bool(form.fields.get("mapping_b", "").strip()) or "mapping_file_b" in files,
            "one-to-one": form.flag("one_to_one"),
        }
        for field_id, given in unused.items():
            if given:
                what = {"file-b": "file B", "mapping-b": "a mapping of file B", "one-to-one": "one-to-one matches"}
                problems.append(
                    FormProblem(f"A deduplication reads one file: {what[field_id]} is for linking", field_id)
                )
    index = form.fields.get("index", "").strip() or None
    if kind == "link" and (index or form.flag("retrain")):
        problems.append(FormProblem("A person index is for deduplication, not for linking", "index"))
    if index is not None and not INDEX_NAME.fullmatch(index):
        problems.append(
            FormProblem("Name the person index with letters, digits, '.', '_' or '-' (at most 64)", "index")
        )
    if form.flag("retrain") and index is None and kind != "link":
        problems.append(FormProblem("Retraining is for a person index: name the index, or untick it", "retrain"))
    threshold = math.nan
    with contextlib.suppress(ValueError):
        threshold = float(form.fields.get("threshold", "0.9").strip() or "0.9")
    if not 0.0 <= threshold <= 1.0:  # NaN fails too
        problems.append(FormProblem("Give the threshold as a number from 0 to 1, such as 0.9", "threshold"))
    mapping_a = _mapping(form, "a", problems)
    mapping_b = _mapping(form, "b", problems) if kind == "link" else None
    if problems:
        return None, problems
    run = RunRequest(
        kind=kind,
        threshold=threshold,
        one_to_one=form.flag("one_to_one"),
        explain=form.flag("explain"),
        dayfirst=form.flag("dayfirst"),
        index=index,
        retrain=form.flag("retrain"),
        mapping_a=mapping_a,
        mapping_b=mapping_b,
    )
    return run, []


def _service_problems(exc: InvalidDataError, directory: Path, kind: str) -> list[FormProblem]:
    terms = {str(directory) + "/": "", str(directory): "", "file-a.csv": "the file", "file-b.csv": "the file"}
    fields = {
        "file A": ("file-a", "File A"),
        "file B": ("file-b", "File B"),
        "input": ("file-a", "File A") if kind == "dedupe" else ("", "The files"),
        "record_id": ("file-a", "File A, record_id"),  # the person index's refusal of ids it holds already
        "model": ("retrain", "The saved model"),
    }
    return [replace(p, field=p.field or None) for p in _relabel(exc, terms, fields)]


def _run(context: AppContext, user: User, run: RunRequest, files: dict[str, Path], job_id: str, folder: Path) -> None:
    """Run the service into the job's folder, then write what it counted (ids, counts and metrics only)."""
    explain = folder / "waterfall.html" if run.explain else None
    options = LinkOptions(threshold=run.threshold, one_to_one=run.one_to_one, explain_path=explain)
    sink = context.web.sink
    if run.kind == "link":
        outcome = linkage_service.link_files(
            files["file_a"],
            files["file_b"],
            folder / "matches.csv",
            options,
            run.mapping_a,
            run.mapping_b,
            sink,
            user.id,
            dayfirst=run.dayfirst,
        )
        quality = link_quality(outcome.out)
    else:
        index = None
        if run.index:
            index = _base(context) / LINKAGE / "indexes" / f"{run.index}.duckdb"  # where the API keeps them
            index.parent.mkdir(parents=True, exist_ok=True)
        outcome = linkage_service.dedupe_file(
            files["file_a"],
            folder / "clusters.csv",
            options,
            run.mapping_a,
            index,
            sink,
            user.id,
            dayfirst=run.dayfirst,
            retrain=run.retrain,
        )
        quality = dedupe_quality(outcome.out)
    outputs = [outcome.out.name] + (["waterfall.html"] if explain is not None and explain.is_file() else [])
    job = LinkageJob(
        job_id=job_id,
        kind=run.kind,
        actor=user.id,
        agency=user.agency_id,
        created=context.web.trail.clock().isoformat(timespec="seconds"),
        seconds=round(outcome.seconds, 1),
        options={
            "threshold": run.threshold,
            "one_to_one": run.one_to_one,
            "dayfirst": run.dayfirst,
            "index": run.index,
            "retrain": run.retrain,
            "mapped": run.mapping_a is not None or run.mapping_b is not None,
        },
        details=dict(outcome.details),
        quality=quality,
        outputs=outputs,
    )
    (folder / JOB_FILE).write_text(json.dumps(asdict(job), indent=1), encoding="utf-8")


# What a run counted --------------------------------------------------------------------------------


def _rows(path: Path) -> Iterator[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        yield from csv.DictReader(handle)


def link_quality(matches: Path) -> dict[str, Any]:
    """From matches.csv: how many records found a match, how many found several, and the pairs by probability."""
    per_left: Counter[str] = Counter()
    per_right: Counter[str] = Counter()
    bands = Counter[str]()
    nearest: list[tuple[float, str, str]] = []
    for row in _rows(matches):
        p = float(row["match_probability"])
        per_left[row["left_id"]] += 1
        per_right[row["right_id"]] += 1
        bands[next((label for low, label in BANDS if p >= low), "below 0.50")] += 1
        nearest.append((p, row["left_id"], row["right_id"]))
    nearest.sort()
    return {
        "pairs": sum(per_left.values()),
        "left_matched": len(per_left),
        "right_matched": len(per_right),
        "left_several": sum(1 for n in per_left.values() if n > 1),
        "right_several": sum(1 for n in per_right.values() if n > 1),
        "bands": [[label, bands[label]] for label in [*(b[1] for b in BANDS), "below 0.50"] if bands[label]],
        "nearest": [[left, right, round(p, 4)] for p, left, right in nearest[:PREVIEW]],
    }


def dedupe_quality(clusters: Path) -> dict[str, Any]:
    """From clusters.csv: persons by their number of records, and the persons with the most records."""
    members: dict[str, list[str]] = {}
    for row in _rows(clusters):
        members.setdefault(row["person_id"], []).append(row["record_id"])
    sizes = Counter(min(len(ids), 5) for ids in members.values())
    largest = sorted(members.items(), key=lambda item: (-len(item[1]), item[0]))
    return {
        "persons": len(members),
        "records_shared": sum(len(ids) for ids in members.values() if len(ids) > 1),
        "persons_several": sum(1 for ids in members.values() if len(ids) > 1),
        "largest": max((len(ids) for ids in members.values()), default=0),
        "sizes": [["5 or more" if n == 5 else str(n), sizes[n]] for n in range(1, 6) if sizes[n]],
        "biggest": [[person, len(ids), ids[:10]] for person, ids in largest[:PREVIEW] if len(ids) > 1],
    }


@dataclass(frozen=True)
class LinkageJob:
    """A run from these pages: whose it is, its options, what the service counted, and its outputs."""

    job_id: str
    kind: str
    actor: str
    agency: str
    created: str
    seconds: float
    options: dict[str, Any]
    details: dict[str, DetailValue]
    quality: dict[str, Any]
    outputs: list[str]

    @classmethod
    def load(cls, folder: Path) -> LinkageJob:
        """A job of these pages (the API's jobs have no such record and are not shown here)."""
        try:
            raw = json.loads((folder / JOB_FILE).read_text(encoding="utf-8"))
            return cls(**raw)
        except (OSError, ValueError, TypeError):
            raise NotFoundError("no such linkage job") from None

    def count_of(self, key: str) -> int:
        value = self.details.get(key)
        return value if isinstance(value, int) and not isinstance(value, bool) else 0

    @property
    def compared(self) -> list[str]:
        names = str(self.details.get("comparisons") or "")
        return [COMPARED.get(n, n) for n in names.split(",") if n]

    def share(self, count: int, of: str) -> str:
        total = self.count_of(of)
        return f"{count} of {total} ({100 * count / total:.1f}%)" if total else str(count)


def _job_of(context: AppContext, user: User, job_id: str) -> tuple[LinkageJob, Path]:
    """A job of the person's agency; others' jobs, the API's and malformed ids are all simply unknown."""
    _refuse_unless(user, LINKERS, "run record linkage")
    folder = _job_folder(context, job_id)
    job = LinkageJob.load(folder)
    if job.agency != user.agency_id or job.job_id != job_id:
        raise NotFoundError("no such linkage job")
    return job, folder


# Pages ---------------------------------------------------------------------------------------------

DEFAULT_FORM = {"kind": "dedupe", "threshold": "0.9", "explain": "on"}


def _form_page(
    request: Request,
    context: AppContext,
    user: User,
    form: dict[str, str],
    problems: list[FormProblem] | None = None,
    status: int = 200,
) -> HTMLResponse:
    return render(
        request,
        "link_run.html",
        status,
        user=user,
        form=form,
        problems=problems or [],
        recent=_recent_jobs(context, user),
        file_limit=FILE_LIMIT // MB,
    )


@router.get("/linkage")
def linkage_form(request: Request, context: Ctx, user: Viewer) -> HTMLResponse:
    _refuse_unless(user, LINKERS, "run record linkage")
    return _form_page(request, context, user, DEFAULT_FORM)


@router.post("/linkage/run")
async def linkage_run(request: Request, context: Ctx, user: Viewer) -> Response:
    _refuse_unless(user, LINKERS, "run record linkage")
    base = _base(context)
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > _body_limit():
        return _too_large(request, context, user)
    uploads = base / LINKAGE / UPLOADS
    uploads.mkdir(parents=True, exist_ok=True, mode=0o700)
    _sweep(uploads, time.time())
    with tempfile.TemporaryDirectory(prefix="web-", dir=uploads) as tmp:  # mode 0700, removed after the run
        directory = Path(tmp)
        form = StreamedForm(request, directory, _uploads(), TEXTS, _body_limit(), MAX_FIELDS)
        try:
            await form.read()
        except UploadTooLarge:
            return _too_large(request, context, user)
        shown = {k: v for k, v in form.fields.items() if k != "csrf_token"}
        run, problems = _checked(form)
        if run is None:
            status = 413 if form.too_large else 422
            return _form_page(request, context, user, shown, problems, status)
        job_id = f"lj-{context.today():%Y%m%d}-{secrets.token_hex(8)}"
        folder = base / LINKAGE / job_id
        folder.mkdir(parents=True)
        try:
            await run_in_threadpool(_run, context, user, run, dict(form.files), job_id, folder)
        except InvalidDataError as exc:
            shutil.rmtree(folder, ignore_errors=True)
            return _form_page(request, context, user, shown, _service_problems(exc, directory, run.kind), 422)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
    job, _ = _job_of(context, user, job_id)
    what = "linking" if job.kind == "link" else "deduplication"
    flash(request, f"The {what} ran in {job.seconds} seconds; your uploaded files are removed.")
    # To the job's own page: reloading it shows the results again, and never runs the linkage twice.
    return RedirectResponse(f"/linkage/jobs/{job.job_id}", status_code=303)


def _too_large(request: Request, context: AppContext, user: User) -> HTMLResponse:
    problem = FormProblem(
        f"The upload is too large: each person file may be at most {size_text(FILE_LIMIT)} "
        "(for larger files, use `sharewise link` or the API on files in the data directory)",
        "file-a",
    )
    return _form_page(request, context, user, DEFAULT_FORM, [problem], 413)


@router.get("/linkage/jobs/{job_id}")
def linkage_job(job_id: str, request: Request, context: Ctx, user: Viewer) -> HTMLResponse:
    job, _ = _job_of(context, user, job_id)
    return render(request, "link_job.html", user=user, job=job)


@router.get("/linkage/jobs/{job_id}/{name}")
def linkage_download(job_id: str, name: str, context: Ctx, user: Viewer) -> Response:
    job, folder = _job_of(context, user, job_id)
    if name not in DOWNLOADS or name not in job.outputs or not (folder / name).is_file():
        raise NotFoundError(f"linkage job {job.job_id} has no such output")
    return FileResponse(folder / name, media_type=DOWNLOADS[name], filename=f"{job.job_id}-{name}", headers=NO_STORE)
