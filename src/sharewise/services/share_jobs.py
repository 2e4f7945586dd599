"""Share runs as background jobs: a bounded pool of worker threads, each job's state kept as a JSON file.

A job is started by a data steward after the same checks a run makes first (role, agreement active
today, recipient certificate, the plan); it then waits for a worker (at most `workers` run at once
in a process; the others are queued) and runs `shares.run`, recording each step it reports. Its
state lives in `<data dir>/share-jobs/<job id>.json`, written whole and atomically, so any worker
process of the server can read it. A job left `queued` or `running` by a process that no longer
runs is reported `interrupted`: shares.run published nothing for it that was not complete, and the
next run sweeps what it staged. Jobs record ids, counts, step names and error codes; never records.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import json
import logging
import os
import re
import secrets
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from sharewise.domain.errors import (
    AccessDeniedError,
    InvalidDataError,
    InvalidStateError,
    NotFoundError,
    NotPermittedError,
    Problem,
    SharewiseError,
    StorageError,
)
from sharewise.pipeline.duckdb_backend import DuckDBBackend
from sharewise.policy.model import LawPack
from sharewise.security import package
from sharewise.security.keys import FileKeyProvider
from sharewise.security.secrets import FileSecrets
from sharewise.services import accounting, agreement_registry, shares
from sharewise.services.authorization import SHARE_RUNNERS, authorize, single_user
from sharewise.wiring import Control, Settings
from sharewise.workflow.access import User
from sharewise.workflow.store import SqlWorkflowStore

log = logging.getLogger(__name__)

JOBS = "share-jobs"  # <data dir>/share-jobs/: one <job id>.json per job, and work/ (private, 0700)
WORK = "work"  # uploads of each job (removed after its run) and shares.run's staging
PACKAGES = "packages"  # where packages are published, as the API's synchronous runs publish them
JOB_ID = re.compile(r"sj-[0-9a-f]{32}")  # 128 random bits: unguessable
UPLOADS_PREFIX = "uploads-"  # uploads-<pid>-<random>: a dead process's directories are swept
STATES = ("queued", "running", "succeeded", "failed", "interrupted")
ACTIVE = frozenset({"queued", "running"})
JOB_READERS = ("auditor", "administrator")  # besides the job's owner; administrators of its agency only
PACKAGE_READERS = ("auditor",)  # besides the owner: the package is the recipient's, not the directory's
MAX_WORKERS = 16
INTERRUPTED = (
    "interrupted",
    "the server stopped before this run finished: nothing incomplete was published, and what the run staged "
    "is removed when the next share runs; the share's audit events show what was recorded",
)


@dataclass(frozen=True)
class JobStep:
    """One step of a run as shares.run reported it: running, done, failed or interrupted."""

    description: str
    started_at: str
    finished_at: str | None = None
    state: str = "running"

    @property
    def seconds(self) -> float | None:
        if self.finished_at is None:
            return None
        return round(
            (dt.datetime.fromisoformat(self.finished_at) - dt.datetime.fromisoformat(self.started_at)).total_seconds(),
            1,
        )


@dataclass(frozen=True)
class JobResult:
    """What a successful run published: the package (its path relative to the data directory) and its content."""

    share_id: str
    package: str
    package_bytes: int
    sha256: str
    rows: int
    columns: tuple[str, ...]
    format: str
    form: str
    dropped: int

    @property
    def package_name(self) -> str:
        return Path(self.package).name


@dataclass(frozen=True)
class JobError:
    """Why a run failed: the error's stable code, its message and located problems (ids and field names only)."""

    code: str
    message: str
    problems: tuple[Problem, ...] = ()


@dataclass(frozen=True)
class ShareJob:
    """A share run in the background: whose it is, where it stands, its steps and its outcome."""

    id: str
    owner: str
    agency: str | None
    agreement: str
    share_id: str
    source: str  # the interface it was started from: web or api
    state: str
    created_at: str
    pid: int
    process_started: float
    boot_id: str
    started_at: str | None = None
    finished_at: str | None = None
    steps: tuple[JobStep, ...] = ()
    result: JobResult | None = None
    error: JobError | None = None
    uploads: str | None = None  # the private directory, relative to share-jobs/, while it exists

    @property
    def active(self) -> bool:
        return self.state in ACTIVE

    @property
    def version(self) -> str:
        """Changes whenever the job's visible state does (the page announces changes only)."""
        done = sum(1 for s in self.steps if s.finished_at is not None)
        return f"{self.state}-{len(self.steps)}-{done}"

    def to_record(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        if self.error is not None:
            data["error"]["problems"] = [{"location": p.location, "message": p.message} for p in self.error.problems]
        return data

    @classmethod
    def from_record(cls, raw: Mapping[str, Any]) -> ShareJob:
        data = dict(raw)
        data["steps"] = tuple(JobStep(**s) for s in data.get("steps", ()))
        if data.get("result") is not None:
            result = dict(data["result"])
            result["columns"] = tuple(result["columns"])
            data["result"] = JobResult(**result)
        if data.get("error") is not None:
            error = dict(data["error"])
            error["problems"] = tuple(Problem(p["location"], p["message"]) for p in error.get("problems", ()))
            data["error"] = JobError(**error)
        return cls(**data)

    def public(self) -> dict[str, Any]:
        """The job as clients see it: no process ids, no private directory."""
        data = self.to_record()
        for internal in ("pid", "process_started", "boot_id", "uploads"):
            data.pop(internal)
        for step in data["steps"]:
            step["seconds"] = JobStep(**step).seconds
        return data


def _now(control: Control) -> str:
    return control.trail.clock().isoformat(timespec="milliseconds")


def _boot_id() -> str:
    """This boot of the machine: a process id of an earlier boot names nothing now."""
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text(encoding="ascii").strip()
    except OSError:
        import psutil

        return str(int(psutil.boot_time()))


def _process_started(pid: int) -> float | None:
    import psutil

    try:
        return float(psutil.Process(pid).create_time())
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return None


def alive(job: ShareJob) -> bool:
    """Whether the process that holds the job still runs (the same boot, pid and start time: pids are reused)."""
    if job.boot_id != _boot_id():
        return False
    started = _process_started(job.pid)
    return started is not None and abs(started - job.process_started) < 1.0


def _plain(text: str, terms: Mapping[str, str]) -> str:
    for old, new in sorted(terms.items(), key=lambda item: len(item[0]), reverse=True):
        text = text.replace(old, new)
    return text


def error_of(exc: BaseException, terms: Mapping[str, str]) -> JobError:
    """A failure as the job records it: a sharewise error's code, message and problems in the caller's terms."""
    if isinstance(exc, SharewiseError):
        return JobError(
            exc.code,
            _plain(exc.message, terms),
            tuple(Problem(_plain(p.location, terms), _plain(p.message, terms)) for p in exc.problems),
        )
    # A foreign error's text may quote data (a value the engine choked on): only its type is logged.
    log.error("share job failed with an unexpected %s", type(exc).__name__)
    return JobError(
        "unexpected_error",
        "the run failed unexpectedly (the server's log names the error type); the share's audit events show "
        "what was recorded",
    )


class JobProgress:
    """A Progress (pipeline.extract) that records each step of a run on its job, start and end."""

    def __init__(self, jobs: ShareJobs, job_id: str, control: Control) -> None:
        self.jobs = jobs
        self.job_id = job_id
        self.control = control

    @contextlib.contextmanager
    def step(self, description: str) -> Iterator[None]:
        self.open(description)
        try:
            yield
        except BaseException:
            self.close("failed")
            raise
        self.close("done")

    def open(self, description: str) -> None:
        now = _now(self.control)
        self.close("done")  # a step opened by the runner itself ends where the run's next one begins
        self.jobs.update(self.job_id, lambda j: replace(j, steps=(*j.steps, JobStep(description, now))))

    def after_last(self, description: str) -> None:
        """A step the run does not report, from the end of its last reported step until now."""
        now = _now(self.control)

        def added(job: ShareJob) -> ShareJob:
            start = job.steps[-1].finished_at if job.steps and job.steps[-1].finished_at else now
            return replace(job, steps=(*job.steps, JobStep(description, start, now, "done")))

        self.jobs.update(self.job_id, added)

    def close(self, state: str) -> None:
        now = _now(self.control)

        def closed(job: ShareJob) -> ShareJob:
            if not job.steps or job.steps[-1].finished_at is not None:
                return job
            return replace(job, steps=(*job.steps[:-1], replace(job.steps[-1], finished_at=now, state=state)))

        self.jobs.update(self.job_id, closed)


@dataclass
class _Run:
    """What a queued job needs to run (kept in memory only: it holds paths and the control plane)."""

    control: Control
    law: LawPack
    definition: shares.ShareDefinition
    actor: str | None
    today: dt.date
    terms: dict[str, str] = field(default_factory=dict)


class ShareJobs:
    """Share runs in the background for one data directory: at most `workers` at once here, the rest queued."""

    def __init__(self, data_dir: Path, workers: int = 1) -> None:
        if not 1 <= workers <= MAX_WORKERS:
            raise InvalidDataError("invalid setting", [Problem("share workers", f"a number from 1 to {MAX_WORKERS}")])
        self.data_dir = data_dir.resolve()
        self.directory = self.data_dir / JOBS
        self.work = self.directory / WORK
        try:
            self.work.mkdir(parents=True, exist_ok=True, mode=0o700)
            os.chmod(self.work, 0o700)
        except OSError as exc:
            raise StorageError(f"cannot create the share jobs directory ({exc.strerror})") from exc
        self.workers = workers
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="sharewise-share-job")
        self._lock = threading.Lock()
        self._futures: dict[str, Future[None]] = {}
        self.recover()

    # Files -----------------------------------------------------------------------------------------

    def _path(self, job_id: str) -> Path:
        if not JOB_ID.fullmatch(job_id):
            raise NotFoundError("no such share job")
        return self.directory / f"{job_id}.json"

    def _load(self, job_id: str) -> ShareJob:
        path = self._path(job_id)
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
            job = ShareJob.from_record(raw)
        except FileNotFoundError:
            raise NotFoundError("no such share job") from None
        except (OSError, ValueError, TypeError, KeyError) as exc:
            raise StorageError(f"share job {job_id} cannot be read") from exc
        if job.id != job_id:
            raise NotFoundError("no such share job")
        return job

    def _write(self, job: ShareJob) -> None:
        """Write the whole record beside its name, then rename it into place: readers never see half of it."""
        target = self._path(job.id)
        fd, tmp = tempfile.mkstemp(prefix=f".{job.id}-", suffix=".tmp", dir=self.directory)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(job.to_record(), handle, indent=1)
            os.replace(tmp, target)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise StorageError(f"share job {job.id} could not be saved ({exc.strerror})") from exc

    def update(self, job_id: str, change: Callable[[ShareJob], ShareJob]) -> ShareJob:
        with self._lock:
            job = change(self._load(job_id))
            self._write(job)
            return job

    # Private directories -------------------------------------------------------------------------

    def private_directory(self) -> Path:
        """A new directory (0700) for a job's uploads; start() takes it over, else the caller removes it."""
        return Path(tempfile.mkdtemp(prefix=f"{UPLOADS_PREFIX}{os.getpid()}-", dir=self.work))

    def _remove_uploads(self, job: ShareJob) -> ShareJob:
        if job.uploads is not None:
            folder = (self.directory / job.uploads).resolve()
            if folder.parent == self.work.resolve() and folder.name.startswith(UPLOADS_PREFIX):  # never elsewhere
                shutil.rmtree(folder, ignore_errors=True)
        return replace(job, uploads=None)

    # Starting and running --------------------------------------------------------------------------

    def start(
        self,
        control: Control,
        law: LawPack,
        definition: shares.ShareDefinition,
        actor: str | None,
        today: dt.date,
        source: str = "cli",
        uploads: Path | None = None,
        terms: Mapping[str, str] | None = None,
    ) -> ShareJob:
        """Check the run as shares.run would, then queue it; refusals are raised here, not recorded as jobs.

        uploads: the job's private directory (from private_directory()), removed once the run ends.
        terms: replacements that put a failure's paths in the caller's terms (the data directory is
        always removed from them). A determination that does not permit the share is left to the run,
        which records the refusal in the audit trail; the job then fails with not_permitted.
        """
        user = self._preflight(control, law, definition, actor, today)
        if uploads is not None and (
            uploads.resolve().parent != self.work.resolve() or not uploads.name.startswith(UPLOADS_PREFIX)
        ):
            raise InvalidStateError("a job's uploads must be in a directory from private_directory()")
        job_id = f"sj-{secrets.token_hex(16)}"
        share_id = definition.share_id or f"{definition.agreement_id}-{today:%Y%m%d}-{secrets.token_hex(3)}"
        started = _process_started(os.getpid())
        job = ShareJob(
            id=job_id,
            owner=user.id if user else (actor or "single-user"),
            agency=user.agency_id if user else None,
            agreement=definition.agreement_id,
            share_id=share_id,
            source=source,
            state="queued",
            created_at=_now(control),
            pid=os.getpid(),
            process_started=started if started is not None else 0.0,
            boot_id=_boot_id(),
            uploads=uploads.resolve().relative_to(self.directory).as_posix() if uploads is not None else None,
        )
        all_terms = {str(self.data_dir) + os.sep: "", str(self.data_dir): ".", **(terms or {})}
        run = _Run(control, law, replace(definition, share_id=share_id), actor, today, all_terms)
        with self._lock:
            self._write(job)
            self._futures[job_id] = self._pool.submit(self._run, job_id, run)
        return job

    def _preflight(
        self, control: Control, law: LawPack, definition: shares.ShareDefinition, actor: str | None, today: dt.date
    ) -> User | None:
        with control.store.transaction() as conn:
            user = authorize(conn, actor, SHARE_RUNNERS, "run shares")
        if user is not None:
            record = agreement_registry.show(control, user.id, definition.agreement_id)
            state = record.state_on(today)
            if state != "active":
                raise InvalidStateError(
                    f"agreement '{definition.agreement_id}' is {state}; a share runs only under an active agreement"
                )
        if definition.recipient_certificate is None:
            raise InvalidDataError(
                "invalid share file",
                [Problem(f"{definition.label}: recipient_certificate", "required to run a share")],
            )
        package.load_certificate(definition.recipient_certificate)
        try:
            planned = shares.plan(definition, law, today)
        except NotPermittedError:
            return user  # the run refuses it, and records the refusal
        if planned.spec.needs_key:
            FileKeyProvider(control.settings.keys).pseudonym_key(definition.agreement_id)  # NotFoundError: no key
        return user

    def _run(self, job_id: str, run: _Run) -> None:
        """The worker: run the share, recording its steps, then its result or its failure."""
        progress = JobProgress(self, job_id, run.control)
        try:
            self.update(job_id, lambda j: replace(j, state="running", started_at=_now(run.control)))
            progress.open("checking the determination, the agreement, the keys and the source")
            result = self._execute(run, progress)
            progress.after_last("recording the disclosure and publishing the package")
            self.update(job_id, lambda j: replace(j, state="succeeded", result=result, finished_at=_now(run.control)))
        except BaseException as exc:
            error = error_of(exc, run.terms)
            with contextlib.suppress(SharewiseError):
                progress.close("failed")
                self.update(job_id, lambda j: replace(j, state="failed", error=error, finished_at=_now(run.control)))
            if not isinstance(exc, Exception):
                raise
        finally:
            with contextlib.suppress(SharewiseError):
                self.update(job_id, self._remove_uploads)
            with self._lock:
                self._futures.pop(job_id, None)

    def _execute(self, run: _Run, progress: JobProgress) -> JobResult:
        settings: Settings = run.control.settings
        backend = DuckDBBackend()
        try:
            outcome = shares.run(
                run.control,
                run.definition,
                run.law,
                run.today,
                backend,
                FileKeyProvider(settings.keys),
                self.data_dir / PACKAGES,
                run.actor,
                progress=progress,
                work_dir=self.work,
                person_index_key=FileSecrets(settings.keys).key(accounting.PERSON_INDEX_KEY),
            )
        finally:
            backend.close()
        return JobResult(
            share_id=outcome.share_id,
            package=outcome.package.path.resolve().relative_to(self.data_dir).as_posix(),
            package_bytes=outcome.package.bytes,
            sha256=outcome.package.sha256,
            rows=outcome.extract.rows,
            columns=tuple(outcome.extract.columns),
            format=outcome.extract.format,
            form=outcome.plan.spec.form,
            dropped=len(outcome.plan.spec.dropped),
        )

    def wait(self, job_id: str, timeout: float | None = None) -> None:
        """Block until a job of this process has finished (for the CLI and tests)."""
        with self._lock:
            future = self._futures.get(job_id)
        if future is not None:
            future.result(timeout)

    def close(self, wait: bool = True) -> None:
        self._pool.shutdown(wait=wait, cancel_futures=not wait)

    # Interrupted jobs ------------------------------------------------------------------------------

    def _settled(self, job: ShareJob) -> ShareJob:
        """A job whose process is gone, as interrupted (saved, with its uploads removed); others as they are."""
        if not job.active or alive(job):
            return job

        def interrupted(current: ShareJob) -> ShareJob:
            if not current.active or alive(current):
                return current
            steps = tuple(s if s.finished_at else replace(s, state="interrupted") for s in current.steps)
            error = JobError(*INTERRUPTED)
            return self._remove_uploads(replace(current, state="interrupted", steps=steps, error=error))

        try:
            return self.update(job.id, interrupted)
        except StorageError:
            return replace(job, state="interrupted", error=JobError(*INTERRUPTED))  # reported so, if not saved

    def recover(self) -> list[str]:
        """On start-up: mark the jobs of dead processes interrupted and remove their uploads; sweep stray uploads."""
        import psutil

        found = []
        for path in self.directory.glob("sj-*.json"):
            with contextlib.suppress(SharewiseError):
                job = self._load(path.stem)
                if self._settled(job).state == "interrupted" and job.active:
                    found.append(job.id)
        pattern = re.compile(rf"^{re.escape(UPLOADS_PREFIX)}(\d+)-")
        for path in self.work.iterdir():
            match = pattern.match(path.name)
            if match and path.is_dir() and not psutil.pid_exists(int(match.group(1))):
                shutil.rmtree(path, ignore_errors=True)
        return sorted(found)

    # Reading ---------------------------------------------------------------------------------------

    def read(self, control: Control, reader: str | None, job_id: str) -> ShareJob:
        """A job, for its owner, auditors and its agency's administrators (AccessDeniedError for others)."""
        job = self._load(job_id)
        self._check_reader(control, reader, job, JOB_READERS, "read")
        return self._settled(job)

    def package_of(self, control: Control, reader: str | None, job_id: str) -> tuple[ShareJob, Path]:
        """A succeeded job's published package, for its owner and auditors."""
        job = self._load(job_id)
        self._check_reader(control, reader, job, PACKAGE_READERS, "download the package of")
        if job.state != "succeeded" or job.result is None:
            raise InvalidStateError(f"share job {job.id} is {job.state}: only a succeeded run has a package")
        path = (self.data_dir / job.result.package).resolve()
        if not path.is_relative_to(self.data_dir / PACKAGES) or not path.is_file():
            raise NotFoundError(f"the package of share job {job.id} is no longer in the data directory")
        return job, path

    def jobs_of(self, control: Control, reader: str | None, limit: int = 20) -> list[ShareJob]:
        """The newest jobs the reader started (auditors: everyone's), newest first."""
        with control.store.transaction() as conn:
            user = None if single_user(conn) else SqlWorkflowStore().user(conn, reader or "")
        found = []
        for path in self.directory.glob("sj-*.json"):
            with contextlib.suppress(SharewiseError):
                job = self._load(path.stem)
                if user is None or job.owner == user.id or user.has("auditor"):
                    found.append(job)
        found.sort(key=lambda j: j.created_at, reverse=True)
        return [self._settled(j) for j in found[:limit]]

    def _check_reader(
        self, control: Control, reader: str | None, job: ShareJob, roles: tuple[str, ...], action: str
    ) -> None:
        with control.store.transaction() as conn:
            if single_user(conn):
                return
            if not reader:
                raise AccessDeniedError(f"who is acting? users are registered, so to {action} a share job give a user")
            user = SqlWorkflowStore().user(conn, reader)
        if user.id == job.owner:
            return
        if "auditor" in roles and user.has("auditor"):
            return
        if "administrator" in roles and user.has("administrator") and user.agency_id == job.agency:
            return
        raise AccessDeniedError(
            f"{user.id} may not {action} share job {job.id}: it is {job.owner}'s "
            f"(besides its owner: {', '.join(roles)}{' of its agency' if 'administrator' in roles else ''})"
        )


_RUNNERS: dict[Path, ShareJobs] = {}
_RUNNERS_LOCK = threading.Lock()


def jobs_for(settings: Settings, workers: int | None = None) -> ShareJobs:
    """The job runner of this process for the settings' data directory (made on first use).

    workers: at most this many runs at once in this process; by default SHAREWISE_SHARE_WORKERS or 1.
    """
    if settings.data_dir is None:
        raise InvalidStateError("the server has no data directory (SHAREWISE_DATA_DIR): share jobs need one")
    base = settings.data_dir.resolve()
    with _RUNNERS_LOCK:
        runner = _RUNNERS.get(base)
        if runner is None:
            runner = ShareJobs(base, workers if workers is not None else _workers_from_env())
            _RUNNERS[base] = runner
        return runner


def _workers_from_env() -> int:
    raw = os.environ.get("SHAREWISE_SHARE_WORKERS", "1")
    try:
        return int(raw)
    except ValueError:
        raise InvalidDataError(
            "invalid setting", [Problem("SHAREWISE_SHARE_WORKERS", f"a number from 1 to {MAX_WORKERS}")]
        ) from None
