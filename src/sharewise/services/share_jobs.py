"""Share runs as background jobs: a bounded pool of worker threads, each job's state kept as a JSON file.

A job is started by a data steward after the same checks a run makes first (role, agreement active
today, recipient certificate, the plan, the source's content against its claimed kind); it then
waits for a worker and runs `shares.run`, recording each step it reports. Its state lives in
`<data dir>/share-jobs/<job id>.json`, written whole and atomically, so any worker process of the
server can read it. A job left `queued` or `running` by a process that no longer runs is reported
`interrupted`: shares.run published nothing for it that was not complete, and the next run sweeps
what it staged. Jobs record ids, counts, step names and error codes; never records.

SHAREWISE_SHARE_WORKERS limits the runs of the whole data directory, not of one process: a run
first takes one of that many slot locks (`flock` on `share-jobs/slots/slot-<n>.lock`), which the
operating system releases when the process holding it ends, even by a crash. The uploaded files of
a run (personal data) are removed the moment it ends, in the same write that records how it
ended. A finished job (its record and its package) is deleted SHAREWISE_SHARE_JOB_RETENTION_DAYS
after it ended, each deletion audited; the record goes first (one atomic rename), so a job half
deleted by a crash is never offered for download, and the next sweep finishes the deletion.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import fcntl
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

from sqlalchemy import Connection

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
from sharewise.domain.events import AuditEvent
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
SLOTS = "slots"  # share-jobs/slots/slot-<n>.lock: a run holds one (flock) while it runs
SLOT_POLL = 0.2  # seconds between looks for a free slot
SWEEP_LOCK = ".sweep.lock"  # one sweep of expired jobs at a time, across processes
TOMBSTONE = ".deleting"  # .<job id>.deleting: a job's record while its deletion is finished
DEFAULT_RETENTION_DAYS = 7
MAX_RETENTION_DAYS = 3650
WORKERS_SETTING = "SHAREWISE_SHARE_WORKERS"
RETENTION_SETTING = "SHAREWISE_SHARE_JOB_RETENTION_DAYS"
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


class _Closed(Exception):
    """The runner closed while a job still waited for a slot: the job is interrupted, its uploads removed."""


class ShareJobs:
    """Share runs in the background for one data directory: at most `workers` at once there, the rest queued.

    The limit holds for every process that runs jobs of the data directory (each takes a slot lock
    to run); a process's own pool has as many threads, so it never queues behind itself needlessly.
    """

    def __init__(
        self,
        data_dir: Path,
        workers: int = 1,
        retention_days: int = DEFAULT_RETENTION_DAYS,
        control: Control | None = None,
    ) -> None:
        """control: when given, expired jobs are swept at once (deletions audited with it)."""
        if not 1 <= workers <= MAX_WORKERS:
            raise InvalidDataError("invalid setting", [Problem("share workers", f"a number from 1 to {MAX_WORKERS}")])
        if not 1 <= retention_days <= MAX_RETENTION_DAYS:
            raise InvalidDataError(
                "invalid setting",
                [Problem("share job retention", f"a whole number of days from 1 to {MAX_RETENTION_DAYS}")],
            )
        self.data_dir = data_dir.resolve()
        self.directory = self.data_dir / JOBS
        self.work = self.directory / WORK
        self.slots = self.directory / SLOTS
        try:
            self.work.mkdir(parents=True, exist_ok=True, mode=0o700)
            os.chmod(self.work, 0o700)
            self.slots.mkdir(exist_ok=True, mode=0o700)
        except OSError as exc:
            raise StorageError(f"cannot create the share jobs directory ({exc.strerror})") from exc
        self.workers = workers
        self.retention = dt.timedelta(days=retention_days)
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="sharewise-share-job")
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._futures: dict[str, Future[None]] = {}
        self.recover()
        if control is not None:
            self._sweep(control)

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
            days = self.retention.days
            raise NotFoundError(f"no such share job (a job is deleted {days} days after its run ended)") from None
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

    def _records(self) -> Iterator[ShareJob]:
        """Every readable job record (one that cannot be read is skipped: it is reported when asked for)."""
        for path in sorted(self.directory.glob("sj-*.json")):
            with contextlib.suppress(SharewiseError):
                yield self._load(path.stem)

    # Private directories -------------------------------------------------------------------------

    def private_directory(self) -> Path:
        """A new directory (0700) for a job's uploads; start() takes it over, else the caller removes it."""
        return Path(tempfile.mkdtemp(prefix=f"{UPLOADS_PREFIX}{os.getpid()}-", dir=self.work))

    def _remove_uploads(self, job: ShareJob) -> ShareJob:
        """The job without its uploads: removed from disk, or still named if they could not all be removed."""
        if job.uploads is None:
            return job
        folder = (self.directory / job.uploads).resolve()
        if folder.parent == self.work.resolve() and folder.name.startswith(UPLOADS_PREFIX):  # never elsewhere
            shutil.rmtree(folder, ignore_errors=True)
            if folder.exists():
                log.error("share job %s: its uploaded files could not all be removed; the next sweep retries", job.id)
                return job
        return replace(job, uploads=None)

    # Slots: the worker limit of the whole data directory -------------------------------------------

    def _take_slot(self) -> int:
        """Wait for a free slot and hold it (the open descriptor; closing it frees the slot)."""
        while True:
            if self._closing.is_set():
                raise _Closed
            for number in range(self.workers):
                try:
                    fd = os.open(self.slots / f"slot-{number}.lock", os.O_RDWR | os.O_CREAT, 0o600)
                except OSError as exc:
                    raise StorageError(f"cannot open a share run slot ({exc.strerror})") from exc
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    os.close(fd)
                    continue
                except OSError as exc:
                    os.close(fd)
                    raise StorageError(f"cannot lock a share run slot ({exc.strerror})") from exc
                return fd
            self._closing.wait(SLOT_POLL)

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
        Expired jobs are swept first.
        """
        user = self._preflight(control, law, definition, actor, today)
        if uploads is not None and (
            uploads.resolve().parent != self.work.resolve() or not uploads.name.startswith(UPLOADS_PREFIX)
        ):
            raise InvalidStateError("a job's uploads must be in a directory from private_directory()")
        if self._closing.is_set():
            raise InvalidStateError("the share job runner is closing: start the run again once the server is back")
        self._sweep(control)
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
        shares.check_source_content(definition.source)
        try:
            planned = shares.plan(definition, law, today)
        except NotPermittedError:
            return user  # the run refuses it, and records the refusal
        if planned.spec.needs_key:
            FileKeyProvider(control.settings.keys).pseudonym_key(definition.agreement_id)  # NotFoundError: no key
        return user

    def _ended(self, job_id: str, state: str, now: str, **changes: Any) -> None:
        """Record how the run ended, in the same write that removes its uploads (never one without the other)."""
        self.update(job_id, lambda j: self._remove_uploads(replace(j, state=state, finished_at=now, **changes)))

    def _run(self, job_id: str, run: _Run) -> None:
        """The worker: take a slot, run the share recording its steps, then its result or its failure."""
        progress = JobProgress(self, job_id, run.control)
        slot: int | None = None
        try:
            slot = self._take_slot()
            self.update(job_id, lambda j: replace(j, state="running", started_at=_now(run.control)))
            progress.open("checking the determination, the agreement, the keys and the source")
            result = self._execute(run, progress)
            progress.after_last("recording the disclosure and publishing the package")
            self._ended(job_id, "succeeded", _now(run.control), result=result)
        except _Closed:
            with contextlib.suppress(SharewiseError):
                self.update(job_id, self._interrupted)
        except BaseException as exc:
            error = error_of(exc, run.terms)
            with contextlib.suppress(SharewiseError):
                progress.close("failed")
                self._ended(job_id, "failed", _now(run.control), error=error)
            if not isinstance(exc, Exception):
                raise
        finally:
            if slot is not None:
                os.close(slot)  # frees the slot for the next run, in any process
            with contextlib.suppress(SharewiseError):
                if self._load(job_id).uploads is not None:  # the final write above failed
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
        """Stop taking runs. wait: let the queued runs run first; else they are interrupted (uploads removed)."""
        if wait:
            self._pool.shutdown(wait=True)
            return
        self._closing.set()  # runs waiting for a slot give up
        with self._lock:
            futures = dict(self._futures)
        self._pool.shutdown(wait=False, cancel_futures=True)
        for job_id, future in futures.items():
            if future.cancelled():  # never started: no thread will remove its uploads
                with contextlib.suppress(SharewiseError):
                    self.update(job_id, self._interrupted)
                with self._lock:
                    self._futures.pop(job_id, None)

    # Interrupted jobs ------------------------------------------------------------------------------

    def _interrupted(self, job: ShareJob) -> ShareJob:
        """The job as interrupted (its open steps too), with its uploads removed; a finished job as it is."""
        if not job.active:
            return job
        steps = tuple(s if s.finished_at else replace(s, state="interrupted") for s in job.steps)
        return self._remove_uploads(replace(job, state="interrupted", steps=steps, error=JobError(*INTERRUPTED)))

    def _settled(self, job: ShareJob) -> ShareJob:
        """A job whose process is gone, as interrupted (saved, with its uploads removed); others as they are."""
        if not job.active or alive(job):
            return job

        def interrupted(current: ShareJob) -> ShareJob:
            return current if alive(current) else self._interrupted(current)

        try:
            return self.update(job.id, interrupted)
        except StorageError:
            return replace(job, state="interrupted", error=JobError(*INTERRUPTED))  # reported so, if not saved

    def recover(self) -> list[str]:
        """On start-up: mark the jobs of dead processes interrupted and remove their uploads; sweep stray uploads."""
        import psutil

        found = []
        for job in self._records():
            settled = self._settled(job)
            if settled.state == "interrupted" and job.active:
                found.append(job.id)
            if not settled.active and settled.uploads is not None:  # a removal that failed before
                with contextlib.suppress(SharewiseError):
                    self.update(job.id, self._remove_uploads)
        pattern = re.compile(rf"^{re.escape(UPLOADS_PREFIX)}(\d+)-")
        for path in self.work.iterdir():
            match = pattern.match(path.name)
            if match and path.is_dir() and not psutil.pid_exists(int(match.group(1))):
                shutil.rmtree(path, ignore_errors=True)
        return sorted(found)

    # Retention -------------------------------------------------------------------------------------

    def expires_at(self, job: ShareJob) -> dt.datetime | None:
        """When a finished job (record and package) is deleted; None while it is queued or running."""
        if job.active:
            return None
        return dt.datetime.fromisoformat(job.finished_at or job.created_at) + self.retention

    @contextlib.contextmanager
    def _sweeping(self, wait: bool) -> Iterator[bool]:
        """Hold the sweep lock of the data directory (True), or, when another process sweeps and not wait, False."""
        try:
            fd = os.open(self.directory / SWEEP_LOCK, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise StorageError(f"cannot open the share job sweep lock ({exc.strerror})") from exc
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
            yield True
        finally:
            os.close(fd)

    def prune(self, control: Control, source: str = "system", wait: bool = True) -> list[str]:
        """Delete every job whose retention has passed, with its package; each deletion is audited.

        The record is renamed out of the way first (one atomic step: from then on the job is not
        found, so never offered for download), then the package is deleted in the transaction that
        records the deletion, then the renamed record. A crash between these steps leaves the
        renamed record, and the next sweep finishes its deletion. Returns the ids of the jobs deleted.
        wait: when another process is sweeping, wait for it (else return at once, deleting nothing).
        """
        now = control.trail.clock()
        deleted: list[str] = []
        with self._sweeping(wait) as sweeping:
            if not sweeping:
                return deleted
            for marker in sorted(self.directory.glob(f".sj-*{TOMBSTONE}")):  # deletions a crash left half done
                deleted += self._bury(control, marker, source)
            for record in self._records():
                job = self._settled(record)
                expires = self.expires_at(job)
                if expires is None or expires > now:
                    continue
                marker = self.directory / f".{job.id}{TOMBSTONE}"
                with self._lock:
                    try:
                        os.replace(self._path(job.id), marker)
                    except FileNotFoundError:
                        continue
                    except OSError as exc:
                        raise StorageError(f"share job {job.id} could not be deleted ({exc.strerror})") from exc
                deleted += self._bury(control, marker, source)
        return deleted

    def _bury(self, control: Control, marker: Path, source: str) -> list[str]:
        """Finish the deletion of a job whose record was renamed to `marker`: its package, its audit record."""
        try:
            job = ShareJob.from_record(json.loads(marker.read_text(encoding="utf-8")))
        except FileNotFoundError:
            return []
        except (OSError, ValueError, TypeError, KeyError):
            log.error("the deletion marker %s cannot be read: it is left for an operator", marker.name)
            return []
        job = self._remove_uploads(job)
        result = job.result
        event = AuditEvent(
            action="share-job-deleted",
            actor="system",
            subject_type="share",
            subject_id=job.share_id,
            agency=job.agency,
            source=source,
            details={
                "job": job.id,
                "state": job.state,
                "retention_days": self.retention.days,
                "package": result.package_name if result else None,
                "package_sha256": result.sha256 if result else None,
            },
        )
        with control.store.transaction() as conn:
            control.trail.append(conn, event)
            if result is not None:
                path = (self.data_dir / result.package).resolve()
                if path.is_relative_to(self.data_dir / PACKAGES):
                    try:
                        path.unlink(missing_ok=True)
                    except OSError as exc:  # the transaction is rolled back: nothing is recorded as deleted
                        raise StorageError(f"the package of share job {job.id} could not be deleted") from exc
        marker.unlink(missing_ok=True)
        return [job.id]

    def _sweep(self, control: Control) -> None:
        """Prune in passing (on start-up, on each new job): a failure is logged, and the next sweep retries."""
        try:
            self.prune(control, wait=False)
        except SharewiseError as exc:
            log.error("expired share jobs could not be deleted now (%s); the next sweep retries", exc.code)

    # Reading ---------------------------------------------------------------------------------------

    def read(self, control: Control, reader: str | None, job_id: str) -> ShareJob:
        """A job, for its owner, auditors and its agency's administrators (AccessDeniedError for others)."""
        job = self._load(job_id)
        with control.store.transaction() as conn:
            _user, refusal = self._judge(conn, reader, job, JOB_READERS, "read")
        if refusal is not None:
            raise AccessDeniedError(refusal)
        return self._settled(job)

    def public(self, job: ShareJob) -> dict[str, Any]:
        """The job as clients see it, with when it is deleted."""
        expires = self.expires_at(job)
        return {**job.public(), "expires_at": expires.isoformat(timespec="seconds") if expires else None}

    def package_of(self, control: Control, reader: str | None, job_id: str) -> tuple[ShareJob, Path]:
        """A succeeded job's published package, for its owner and auditors; each download and refusal is audited.

        The audit record is written before the package is handed out (no record, no download). It
        names who, their agency, the job, the share, the package's file name and SHA-256.
        """
        job = self._load(job_id)
        with control.store.transaction() as conn:
            user, refusal = self._judge(conn, reader, job, PACKAGE_READERS, "download the package of")
            if refusal is not None:
                control.trail.append(
                    conn,
                    AuditEvent(
                        action="package-download-refused",
                        actor=user.id if user else "anonymous",
                        agency=user.agency_id if user else None,
                        subject_type="share",
                        subject_id=job.share_id,
                        outcome="failure",
                        details={"job": job.id, "owner": job.owner},
                    ),
                )
        if refusal is not None:
            raise AccessDeniedError(refusal)
        if job.state != "succeeded" or job.result is None:
            raise InvalidStateError(f"share job {job.id} is {job.state}: only a succeeded run has a package")
        path = (self.data_dir / job.result.package).resolve()
        if not path.is_relative_to(self.data_dir / PACKAGES) or not path.is_file():
            raise NotFoundError(f"the package of share job {job.id} is no longer in the data directory")
        with control.store.transaction() as conn:
            control.trail.append(
                conn,
                AuditEvent(
                    action="package-downloaded",
                    actor=user.id if user else (reader or "single-user"),
                    agency=user.agency_id if user else None,
                    subject_type="share",
                    subject_id=job.share_id,
                    details={
                        "job": job.id,
                        "package": job.result.package_name,
                        "package_sha256": job.result.sha256,
                        "bytes": job.result.package_bytes,
                    },
                ),
            )
        return job, path

    def jobs_of(self, control: Control, reader: str | None, limit: int = 20) -> list[ShareJob]:
        """The newest jobs the reader started (auditors: everyone's), newest first."""
        with control.store.transaction() as conn:
            if single_user(conn):
                user = None
            elif not reader:
                raise AccessDeniedError("who is acting? users are registered, so to list share jobs give a user")
            else:
                user = SqlWorkflowStore().user(conn, reader)
        found = [j for j in self._records() if user is None or j.owner == user.id or user.has("auditor")]
        found.sort(key=lambda j: j.created_at, reverse=True)
        return [self._settled(j) for j in found[:limit]]

    def _judge(
        self, conn: Connection, reader: str | None, job: ShareJob, roles: tuple[str, ...], action: str
    ) -> tuple[User | None, str | None]:
        """Who the reader is (None: no users registered, or none given) and why they are refused (None: allowed)."""
        if single_user(conn):
            return None, None
        if not reader:
            return None, f"who is acting? users are registered, so to {action} a share job give a user"
        user = SqlWorkflowStore().user(conn, reader)
        if user.id == job.owner:
            return user, None
        if "auditor" in roles and user.has("auditor"):
            return user, None
        if "administrator" in roles and user.has("administrator") and user.agency_id == job.agency:
            return user, None
        return user, (
            f"{user.id} may not {action} share job {job.id}: it is {job.owner}'s "
            f"(besides its owner: {', '.join(roles)}{' of its agency' if 'administrator' in roles else ''})"
        )


_RUNNERS: dict[Path, ShareJobs] = {}
_RUNNERS_LOCK = threading.Lock()


def _base(control: Control) -> Path:
    if control.settings.data_dir is None:
        raise InvalidStateError("the server has no data directory (SHAREWISE_DATA_DIR): share jobs need one")
    return control.settings.data_dir.resolve()


def jobs_for(control: Control, workers: int | None = None) -> ShareJobs:
    """The job runner of this process for the control plane's data directory (made on first use).

    workers: at most this many runs at once in the data directory, whatever the number of server
    processes; by default SHAREWISE_SHARE_WORKERS or 1. Retention: SHAREWISE_SHARE_JOB_RETENTION_DAYS
    or 7. Expired jobs are swept when the runner is made (deletions audited as the system's).
    """
    base = _base(control)
    with _RUNNERS_LOCK:
        runner = _RUNNERS.get(base)
        if runner is None:
            chosen = workers if workers is not None else workers_from_env()
            runner = ShareJobs(base, chosen, retention_from_env(), control)
            _RUNNERS[base] = runner
        return runner


def standalone(control: Control) -> ShareJobs:
    """A runner for one command (list, prune), with the settings as they are now, that sweeps nothing by itself."""
    return ShareJobs(_base(control), workers_from_env(), retention_from_env())


def _whole_number(name: str, default: int, low: int, high: int, what: str) -> int:
    raw = os.environ.get(name, "").strip() or str(default)
    if not re.fullmatch(r"[0-9]{1,6}", raw) or not low <= int(raw) <= high:
        raise InvalidDataError("invalid setting", [Problem(name, f"{what} from {low} to {high} (default {default})")])
    return int(raw)


def workers_from_env() -> int:
    """SHAREWISE_SHARE_WORKERS: how many share runs at once in the data directory (1 to 16; default 1)."""
    return _whole_number(WORKERS_SETTING, 1, 1, MAX_WORKERS, "a whole number of runs")


def retention_from_env() -> int:
    """SHAREWISE_SHARE_JOB_RETENTION_DAYS: days a finished job and its package are kept (1 to 3650; default 7)."""
    return _whole_number(RETENTION_SETTING, DEFAULT_RETENTION_DAYS, 1, MAX_RETENTION_DAYS, "a whole number of days")
