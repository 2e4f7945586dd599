"""Share run pages: run a planned share in the background, watch its steps live, download its package."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from sharewise.api.context import AppContext
from sharewise.domain.errors import (
    InvalidDataError,
    InvalidStateError,
    NotFoundError,
    NotPermittedError,
    Problem,
    SharewiseError,
)
from sharewise.services import share_jobs
from sharewise.services import shares as share_service
from sharewise.services.share_jobs import ShareJob, ShareJobs
from sharewise.web.pages import (
    Ctx,
    SignInRequired,
    Viewer,
    current_user,
    flash,
    polling_user,
    render,
    router,
    templates,
)
from sharewise.web.record_pages import (
    DICTIONARY_LIMIT,
    NO_STORE,
    RUN_SOURCE_LIMIT,
    SHARE_LABEL,
    SHARE_LIMIT,
    FormProblem,
    _browser_source,
    _no_aliases,
    _problems_of,
    _refuse_unless,
    agreement_of,
)
from sharewise.web.streamed_form import FileField, StreamedForm, UploadTooLarge, size_text
from sharewise.workflow.access import User

SHARE_RUNNERS = frozenset({"data_steward"})  # as the API's SHARE_RUNNERS and services.authorization's
SOURCE_LIMIT = RUN_SOURCE_LIMIT  # larger sources run with `sharewise share run` or the API, from the data directory
CERTIFICATE_LIMIT = 64 * 1024
UPLOADS: dict[str, FileField] = {
    "share_file": FileField("share.yaml", SHARE_LIMIT, "The share file"),
    "dictionary_file": FileField("dictionary.yaml", DICTIONARY_LIMIT, "The data dictionary"),
    "source_file": FileField("source.upload", SOURCE_LIMIT, "The source file"),
    "certificate_file": FileField("recipient-cert.pem", CERTIFICATE_LIMIT, "The recipient's certificate"),
}
TEXTS = {"share_yaml": SHARE_LIMIT, "dictionary_yaml": DICTIONARY_LIMIT}
BODY_LIMIT = sum(f.limit for f in UPLOADS.values()) + sum(TEXTS.values()) + 64 * 1024  # with the multipart framing
# Service problem locations -> the ids of the form's fields (for the error summary's links).
FIELDS = {
    "share_file": "share-file",
    "share_yaml": "share-yaml",
    "dictionary_file": "dictionary-file",
    "dictionary_yaml": "dictionary-yaml",
    "source_file": "source-file",
    "certificate_file": "certificate-file",
    f"{SHARE_LABEL}: recipient_certificate": "certificate-file",
}
STATE_LABELS = {
    "queued": "Queued",
    "running": "Running",
    "succeeded": "Succeeded",
    "failed": "Failed",
    "interrupted": "Interrupted",
}
REFRESH_SECONDS = 3  # the page's own refresh while a run is active, for people without JavaScript
AUTO_REFRESH = "auto"  # ?refresh=auto: the page's own refresh (not a person's request), which keeps no session alive


def _jobs(context: AppContext) -> ShareJobs:
    return share_jobs.jobs_for(context.web)


# Starting a run -----------------------------------------------------------------------------------


def _text(form: StreamedForm, file_field: str, text_field: str, what: str) -> str | None:
    """UTF-8 text from an uploaded file or, when none was chosen, from the form's text field."""
    path = form.files.get(file_field)
    if path is not None:
        try:
            return path.read_bytes().decode("utf-8-sig")
        except UnicodeDecodeError:
            raise InvalidDataError(f"the {what} is not UTF-8 text", [Problem(file_field, "save it as UTF-8")]) from None
    text = form.fields.get(text_field, "")
    return text if text.strip() else None


def _certificate(data: dict[str, Any], form: StreamedForm, base: Path, problems: list[Problem]) -> str | None:
    """The uploaded certificate, or the share file's recipient_certificate inside the server's data directory."""
    uploaded = form.files.get("certificate_file")
    if uploaded is not None:
        return uploaded.name
    given = data.get("recipient_certificate")
    where = f"{SHARE_LABEL}: recipient_certificate"
    if not isinstance(given, str) or not given:
        problems.append(
            Problem("certificate_file", "choose the recipient's certificate (PEM): the package is for them")
        )
        return None
    try:
        resolved = (base / given).resolve()
    except (OSError, ValueError, RuntimeError):
        resolved = None
    if resolved is None or not resolved.is_relative_to(base) or not resolved.is_file():
        problems.append(
            Problem(where, "not a file in the server's data directory: upload the recipient's certificate instead")
        )
        return None
    return str(resolved)


def _definition(
    context: AppContext, user: User, form: StreamedForm, directory: Path, base: Path, shown: dict[str, str]
) -> share_service.ShareDefinition:
    """The share definition the form asks to run, with its files replaced by the uploads; every problem at once."""
    share_text = _text(form, "share_file", "share_yaml", "share definition")
    dictionary_text = _text(form, "dictionary_file", "dictionary_yaml", "data dictionary")
    missing = []
    if share_text is None:
        missing.append(Problem("share_file", "choose the share definition (YAML) or paste it"))
    else:
        shown["share_yaml"] = share_text
    if dictionary_text is None:
        missing.append(Problem("dictionary_file", "choose the data dictionary (YAML) or paste it"))
    else:
        shown["dictionary_yaml"] = dictionary_text
    if "source_file" not in form.files and "source_file" not in form.too_large:
        missing.append(Problem("source_file", "choose the source file whose records the share sends (CSV or Parquet)"))
    missing.extend(Problem(name, message) for name, message in form.oversized())
    if share_text is None or dictionary_text is None:
        raise InvalidDataError("the run needs a share definition and its data dictionary", missing)
    data = _no_aliases(share_text, SHARE_LABEL)
    agreement_of(context, user, data, SHARE_LABEL)  # unknown: a problem; another agency's: refused (403)
    if not isinstance(data, dict):
        raise InvalidDataError("malformed share definition", [Problem(SHARE_LABEL, "expected a mapping")])
    problems = list(missing)
    if not isinstance(data.get("request"), dict):
        problems.append(
            Problem(f"{SHARE_LABEL}: request", "write the sharing request inline (a mapping), not a file path")
        )
    found = _browser_source(data, SHARE_LABEL, problems)
    certificate = _certificate(data, form, base, problems)
    if problems or found is None:
        raise InvalidDataError("the share cannot run", problems)
    kind, options = found
    form.files["source_file"].rename(directory / f"source.{kind}")
    (directory / "dictionary.yaml").write_text(dictionary_text, encoding="utf-8")
    kept = {k: v for k, v in data.items() if k not in ("dictionary", "source", "recipient_certificate")}
    browser = {
        **kept,
        "dictionary": "dictionary.yaml",
        "source": {kind: f"source.{kind}", **options},
        "recipient_certificate": certificate,
    }
    return share_service.parse_share(browser, context.law, directory, SHARE_LABEL)


def _form_page(
    request: Request,
    context: AppContext,
    user: User,
    form: dict[str, str],
    problems: list[FormProblem] | None = None,
    status: int = 200,
    refused: bool = False,
) -> HTMLResponse:
    jobs = _jobs(context)
    return render(
        request,
        "share_run.html",
        status,
        user=user,
        form=form,
        problems=problems or [],
        refused=refused,
        recent=jobs.jobs_of(context.web, user.id),
        retention_days=jobs.retention.days,
        labels_of_states=STATE_LABELS,
        source_limit=size_text(SOURCE_LIMIT),
    )


@router.get("/shares/runs")
def share_run_form(request: Request, context: Ctx, user: Viewer) -> HTMLResponse:
    _refuse_unless(user, SHARE_RUNNERS, "run shares")
    return _form_page(request, context, user, {})


@router.post("/shares/runs")
async def share_run_start(request: Request, context: Ctx, user: Viewer) -> Response:
    _refuse_unless(user, SHARE_RUNNERS, "run shares")
    jobs = _jobs(context)
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > BODY_LIMIT:
        return _too_large(request, context, user)
    directory = jobs.private_directory()
    handed_over = False
    try:
        form = StreamedForm(request, directory, UPLOADS, TEXTS, BODY_LIMIT)
        try:
            await form.read()
        except UploadTooLarge:
            return _too_large(request, context, user)
        shown = {k: v for k, v in form.fields.items() if k in TEXTS}
        hide = [f"{directory}/", str(directory), f"{jobs.data_dir}/", str(jobs.data_dir)]
        # The service names the uploaded files by their paths: a problem with one links to its field.
        fields = {**FIELDS, **{str(directory / f.filename): n.replace("_", "-") for n, f in UPLOADS.items()}}
        fields |= {str(directory / f"source.{kind}"): "source-file" for kind in ("csv", "parquet")}
        try:
            definition = await run_in_threadpool(_definition, context, user, form, directory, jobs.data_dir, shown)
            job = await run_in_threadpool(
                jobs.start,
                context.web,
                context.law,
                definition,
                user.id,
                context.today(),
                "web",
                directory,
                {f"{directory}/": "", str(directory): "", f"{jobs.data_dir}/": "", str(jobs.data_dir): "."},
            )
            handed_over = True
        except InvalidDataError as exc:
            status = 413 if form.too_large else 422
            return _form_page(request, context, user, shown, _problems_of(exc, fields, hide), status)
        except (InvalidStateError, NotFoundError, NotPermittedError) as exc:
            problems = _problems_of(exc, fields, hide, lead=bool(exc.problems))
            return _form_page(request, context, user, shown, problems, 409, refused=True)
    finally:
        if not handed_over:
            shutil.rmtree(directory, ignore_errors=True)
    flash(request, "The share run has started; your uploaded files are removed once it ends.")
    # To the job's own page: reloading it shows the run again, and never starts it twice.
    return RedirectResponse(f"/shares/runs/{job.id}", status_code=303)


def _too_large(request: Request, context: AppContext, user: User) -> HTMLResponse:
    problem = FormProblem(
        f"The upload is too large: the source file may be at most {size_text(SOURCE_LIMIT)} "
        "(for larger files, use `sharewise share run` or the API on files in the data directory)",
        "source-file",
    )
    return _form_page(request, context, user, {}, [problem], 413)


# Watching a run ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class JobView:
    """A share job as its page shows it."""

    job: ShareJob
    may_download: bool
    expires: str | None = None  # when the job and its package are deleted (UTC, to the minute)

    @property
    def label(self) -> str:
        return STATE_LABELS[self.job.state]

    @property
    def announcement(self) -> str:
        """What the live region says when the state changes (a screen reader hears each change once)."""
        job = self.job
        if job.state == "queued":
            return "Queued: the run starts when the runs ahead of it finish."
        if job.state == "running":
            current = job.steps[-1].description if job.steps else "starting"
            return f"Running, step {max(1, len(job.steps))}: {current}."
        if job.state == "succeeded" and job.result is not None:
            return f"Succeeded: {job.result.rows} rows in the package {job.result.package_name}."
        if job.error is not None:
            return f"{self.label}: {job.error.message} ({job.error.code})."
        return f"{self.label}."


def _view(context: AppContext, user: User, job_id: str) -> JobView:
    jobs = _jobs(context)
    job = jobs.read(context.web, user.id, job_id)  # its owner, auditors, its agency's administrators
    may_download = job.state == "succeeded" and (job.owner == user.id or user.has("auditor"))
    expires = jobs.expires_at(job)
    return JobView(job, may_download, expires.strftime("%Y-%m-%d %H:%M") if expires else None)


def _page_url(job_id: str) -> str:
    return f"/shares/runs/{quote(job_id)}"


@router.get("/shares/runs/{job_id}")
def share_job_page(job_id: str, request: Request, context: Ctx, refresh: str = "") -> HTMLResponse:
    """The run's page. Its own refresh without JavaScript (?refresh=auto) checks the session without renewing it."""
    try:
        user = polling_user(request) if refresh == AUTO_REFRESH else current_user(request)
    except SignInRequired as exc:
        raise SignInRequired(_page_url(job_id), exc.reason) from None  # back to the page, as a person opens it
    view = _view(context, user, job_id)
    return render(request, "share_job.html", user=user, view=view, refresh=REFRESH_SECONDS, refresh_flag=AUTO_REFRESH)


@router.get("/shares/runs/{job_id}/status")
def share_job_status(job_id: str, request: Request, context: Ctx, seen: str = "") -> Response:
    """The status fragment the job page polls (htmx); it stops polling once the run has ended.

    Only the page's polling element asks for it, in the background: it checks the session without
    renewing it, so an open run page never keeps a session alive. Once the session has ended, an
    htmx poll (HX-Request) is told to send the whole page to the sign-in page (HX-Redirect); any
    other request for the fragment is redirected there.
    """
    try:
        user = polling_user(request)
    except SignInRequired as exc:
        if not request.headers.get("hx-request"):
            raise SignInRequired(_page_url(job_id), exc.reason) from None
        if exc.reason:
            flash(request, exc.reason, "warning")
        # A poll after the session ended: the whole page goes to the sign-in page, not into the fragment.
        return Response(status_code=204, headers={"HX-Redirect": f"/sign-in?next={quote(_page_url(job_id))}"})
    try:
        view = _view(context, user, job_id)
    except SharewiseError as exc:
        # The fragment says it, in place (a 200 so that htmx swaps it in), and polling ends.
        return templates.TemplateResponse(
            request, "share_job_status.html", {"view": None, "error": exc.message}, headers=NO_STORE
        )
    return templates.TemplateResponse(
        request,
        "share_job_status.html",
        {"view": view, "announce": seen[:40] != view.job.version},
        headers=NO_STORE,
    )


@router.get("/shares/runs/{job_id}/package")
def share_job_package(job_id: str, context: Ctx, user: Viewer) -> Response:
    """The encrypted package, for the job's owner and auditors; the service audits each download and refusal."""
    job, path = _jobs(context).package_of(context.web, user.id, job_id)
    return FileResponse(path, media_type="application/pkcs7-mime", filename=f"{job.share_id}.p7m", headers=NO_STORE)
