"""Share runs as background jobs: steps recorded, failures explained, readers checked, queues bounded, crashes seen."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import yaml
from argon2 import PasswordHasher

from sharewise.audit.sink import StoreAuditSink
from sharewise.audit.trail import AuditTrail
from sharewise.domain.errors import (
    AccessDeniedError,
    InvalidDataError,
    InvalidStateError,
    NotFoundError,
    StorageError,
)
from sharewise.policy.model import LawPack
from sharewise.security import cms
from sharewise.security.keys import FileKeyProvider
from sharewise.services import accounts, agreement_registry, shares
from sharewise.services import audit as audit_service
from sharewise.services import workflow as workflow_service
from sharewise.services.share_jobs import (
    JOBS,
    RETENTION_SETTING,
    SLOTS,
    SWEEP_LOCK,
    TOMBSTONE,
    WORK,
    ShareJob,
    ShareJobs,
    retention_from_env,
    workers_from_env,
)
from sharewise.wiring import Control, Settings, control_for
from tests.conftest import REPO, TODAY
from tests.pipeline.certs import make_recipient
from tests.pipeline.data import HEADER, client_rows, write_clients

SNAP_TO_TANF = {
    "as_of": "2026-03-01",
    "source": {"program": "snap"},
    "recipient": {"name": "Lakeview TANF unit", "kind": "state_or_local_agency", "program": "tanf"},
    "purpose": "eligibility_determination",
    "data": ["identity", "contact", "eligibility_and_benefits"],
    "form": "identified",
}
PARTIES = REPO / "examples" / "parties" / "lakeview-snap-tanf.yaml"
# user, agency, roles
PEOPLE = [
    ("rosa", "dhs", {"requester"}),
    ("avery", "dhs", {"approver"}),
    ("april", "dhs", {"approver"}),
    ("dana", "dhs", {"data_steward"}),
    ("dirk", "dhs", {"data_steward"}),
    ("audrey", "dhs", {"auditor"}),
    ("olive", "schools", {"administrator"}),
]
WAIT = 60.0


@pytest.fixture(scope="module", autouse=True)
def cheap_hashing() -> None:
    accounts.use_hasher(PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))


@dataclass
class Setup:
    base: Path
    control: Control
    law: LawPack
    agreement: str
    share: dict[str, Any]
    cert: Path
    key: Path

    @property
    def data_dir(self) -> Path:
        assert self.control.settings.data_dir is not None
        return self.control.settings.data_dir

    def definition(self, **changes: Any) -> shares.ShareDefinition:
        return shares.parse_share({**self.share, **changes}, self.law, self.base)

    def runner(self, workers: int = 1) -> ShareJobs:
        return ShareJobs(self.data_dir, workers)


def registered(base: Path, law: LawPack) -> tuple[Control, str]:
    """Two agencies with their people, and an agreement of the first taken to active, with its pseudonym key."""
    control = control_for(Settings(data_dir=base / "data", key_dir=base / "keys", cache_dir=None))
    workflow_service.add_agency(control, "dhs", "Department of Human Services", None)
    workflow_service.add_user(control, "ada", "Ada Admin", "dhs", {"administrator"}, None)
    workflow_service.add_agency(control, "schools", "School District", "ada")
    for user, agency, roles in PEOPLE:
        workflow_service.add_user(control, user, user.title(), agency, roles, "ada")
    request = base / "request.yaml"
    request.write_text(yaml.safe_dump(SNAP_TO_TANF), encoding="utf-8")
    agreement = agreement_registry.record_draft(control, law, "rosa", request, PARTIES, base / "no-document.md")
    agreement_registry.submit_for_review(control, "rosa", agreement)
    agreement_registry.sign(control, "avery", agreement, "discloser")
    agreement_registry.sign(control, "april", agreement, "recipient")
    agreement_registry.activate(control, "avery", agreement)
    FileKeyProvider(control.settings.keys).create_pseudonym_key(agreement)
    return control, agreement


def share_file(agreement: str, cert: Path) -> dict[str, Any]:
    return {
        "agreement": agreement,
        "request": SNAP_TO_TANF,
        "dictionary": "dictionary.yaml",
        "source": {"csv": "clients.csv"},
        "needs": ["client_id", "first_name", "ssn", "zip", "benefit", "note"],
        "pseudonymize": ["client_id", "ssn"],
        "recipient_certificate": cert.name,
    }


@pytest.fixture
def setup(tmp_path: Path, law: LawPack) -> Iterator[Setup]:
    write_clients(tmp_path)
    cert, key = make_recipient(tmp_path)
    control, agreement = registered(tmp_path, law)
    yield Setup(tmp_path, control, law, agreement, share_file(agreement, cert), cert, key)
    control.store.dispose()


def until(check: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def actions(control: Control, share_id: str) -> list[str]:
    return [r["action"] for r in reversed(audit_service.log(control, "audrey", "share", share_id, 50))]


def test_a_job_runs_the_share_in_the_background_and_records_each_step(setup: Setup) -> None:
    jobs = setup.runner()
    uploads = jobs.private_directory()
    (uploads / "stand-in.csv").write_text("a file the page kept for this run", encoding="utf-8")
    job = jobs.start(setup.control, setup.law, setup.definition(), "dana", TODAY, "web", uploads)
    assert job.state == "queued" and job.owner == "dana" and job.agency == "dhs" and job.agreement == setup.agreement
    assert job.id.startswith("sj-") and len(job.id) == 35 and job.share_id.startswith(f"{setup.agreement}-20261125-")
    jobs.wait(job.id, WAIT)

    done = jobs.read(setup.control, "dana", job.id)
    assert done.state == "succeeded" and done.error is None, done.error
    assert done.result is not None and done.result.rows == 60 and done.result.form == "identified"
    assert done.result.package == f"packages/{done.share_id}.p7m" and "note" not in done.result.columns
    package = setup.data_dir / done.result.package
    verified = shares.verify_package(package, setup.cert, setup.key)
    assert verified.manifest["share_id"] == done.share_id and verified.manifest["output"]["rows"] == 60
    steps = [s.description for s in done.steps]
    assert steps[0].startswith("checking the determination") and steps[-1].startswith("recording the disclosure")
    assert "writing parquet" in steps and "signing and encrypting the package" in steps
    assert all(s.state == "done" and s.finished_at and s.started_at <= s.finished_at for s in done.steps)
    assert done.started_at and done.finished_at and done.created_at <= done.started_at <= done.finished_at
    assert actions(setup.control, done.share_id) == ["disclosure-recorded", "share-executed"]
    # The uploads are gone; the record is whole JSON with no temporary file beside it; no personal data in it.
    assert not uploads.exists() and done.uploads is None
    files = sorted(p.name for p in (setup.data_dir / JOBS).iterdir())
    assert files == sorted([SWEEP_LOCK, f"{job.id}.json", SLOTS, WORK])
    record = (setup.data_dir / JOBS / f"{job.id}.json").read_text(encoding="utf-8")
    assert ShareJob.from_record(json.loads(record)) == done
    assert "Name1" not in record and "900-" not in record
    assert set(done.public()) >= {"id", "state", "steps", "result", "error"} and "pid" not in done.public()


def test_a_failed_run_says_why_in_the_projects_terms_without_personal_data(setup: Setup) -> None:
    rows = client_rows(5)
    text = ",".join(HEADER) + "\n" + "".join(",".join(r) + "\n" for r in rows) + "C9,Zebulon Quirke,extra\n"
    (setup.base / "clients.csv").write_text(text, encoding="utf-8")
    jobs = setup.runner()
    job = jobs.start(setup.control, setup.law, setup.definition(), "dana", TODAY, terms={str(setup.base) + os.sep: ""})
    jobs.wait(job.id, WAIT)
    failed = jobs.read(setup.control, "dana", job.id)
    assert failed.state == "failed" and failed.result is None and failed.error is not None
    assert failed.error.code == "invalid_data"
    said = failed.error.message + " ".join(f"{p.location} {p.message}" for p in failed.error.problems)
    assert "clients.csv:7" in said and "Zebulon" not in said and str(setup.base) not in said
    assert failed.steps[-1].state == "failed"
    assert actions(setup.control, failed.share_id) == ["share-failed"]
    packages = setup.data_dir / "packages"
    assert not packages.exists() or not list(packages.iterdir())  # nothing published, nothing half-published


def test_a_run_the_law_does_not_permit_fails_as_an_audited_refusal(setup: Setup) -> None:
    court = {"source": {"program": "snap"}, "recipient": {"kind": "court"}, "purpose": "judicial_proceeding"}
    jobs = setup.runner()
    job = jobs.start(setup.control, setup.law, setup.definition(request={**court, "data": ["identity"]}), "dana", TODAY)
    jobs.wait(job.id, WAIT)
    refused = jobs.read(setup.control, "dana", job.id)
    assert refused.state == "failed" and refused.error is not None and refused.error.code == "not_permitted"
    assert "not permitted: no share may run on it" in refused.error.message and refused.error.problems
    assert actions(setup.control, refused.share_id) == ["share-refused"]


def test_a_run_that_cannot_start_is_refused_at_once_and_leaves_no_job(setup: Setup, law: LawPack) -> None:
    jobs = setup.runner()
    draft = agreement_registry.record_draft(
        setup.control, law, "rosa", setup.base / "request.yaml", PARTIES, setup.base / "none.md"
    )
    cases: list[tuple[type[Exception], str, str, dict[str, Any]]] = [
        (AccessDeniedError, "rosa", "may not run shares", {}),
        (AccessDeniedError, "olive", "may not run shares", {}),
        (InvalidStateError, "dana", "a share runs only under an active agreement", {"agreement": draft}),
        (NotFoundError, "dana", "a-none", {"agreement": "a-none"}),
        (InvalidDataError, "dana", "invalid share file", {"recipient_certificate": None}),
        (InvalidDataError, "dana", "invalid recipient certificate", {"recipient_certificate": "clients.csv"}),
        (InvalidDataError, "dana", "invalid share", {"needs": ["client_id", "no_such_column"]}),
    ]
    for error, actor, message, changes in cases:
        definition = setup.definition(**{k: v for k, v in changes.items() if v is not None})
        if "recipient_certificate" in changes and changes["recipient_certificate"] is None:
            definition = replace(definition, recipient_certificate=None)
        with pytest.raises(error, match=message):
            jobs.start(setup.control, setup.law, definition, actor, TODAY)
    assert list((setup.data_dir / JOBS).glob("*.json")) == []


def test_only_the_owner_auditors_and_the_agencys_administrators_read_a_job(setup: Setup) -> None:
    jobs = setup.runner()
    job = jobs.start(setup.control, setup.law, setup.definition(), "dana", TODAY)
    jobs.wait(job.id, WAIT)
    for reader in ("dana", "audrey", "ada"):
        assert jobs.read(setup.control, reader, job.id).id == job.id
    for reader in ("dirk", "olive", "rosa"):
        with pytest.raises(AccessDeniedError, match=f"may not read share job {job.id}: it is dana's"):
            jobs.read(setup.control, reader, job.id)
    with pytest.raises(AccessDeniedError, match="who is acting"):
        jobs.read(setup.control, None, job.id)
    # The package: its owner and auditors only.
    assert jobs.package_of(setup.control, "dana", job.id)[1].name == f"{job.share_id}.p7m"
    assert jobs.package_of(setup.control, "audrey", job.id)[1].is_file()
    with pytest.raises(AccessDeniedError, match="may not download the package of"):
        jobs.package_of(setup.control, "ada", job.id)
    assert [j.id for j in jobs.jobs_of(setup.control, "dana")] == [job.id]
    assert jobs.jobs_of(setup.control, "dirk") == [] and len(jobs.jobs_of(setup.control, "audrey")) == 1
    # Unknown and malformed ids are simply not found (never read as paths).
    for bad in ("sj-" + "0" * 32, "../share-jobs/x", job.id + ".json", "sj-ABC"):
        with pytest.raises(NotFoundError, match="no such share job"):
            jobs.read(setup.control, "dana", bad)


def test_runs_beyond_the_workers_wait_in_the_queue(setup: Setup, monkeypatch: pytest.MonkeyPatch) -> None:
    gate = threading.Event()
    real = cms.envelope

    def envelope_at_the_gate(*args: Any, **kwargs: Any) -> Any:
        assert gate.wait(WAIT), "the test never opened the gate"
        return real(*args, **kwargs)

    monkeypatch.setattr(cms, "envelope", envelope_at_the_gate)
    jobs = setup.runner(workers=1)
    first = jobs.start(setup.control, setup.law, setup.definition(), "dana", TODAY)

    def at_the_gate() -> bool:
        steps = jobs.read(setup.control, "dana", first.id).steps
        return bool(steps) and steps[-1].description == "signing and encrypting the package"

    until(at_the_gate, "the first run to reach the gate")
    second = jobs.start(setup.control, setup.law, setup.definition(), "dirk", TODAY)
    time.sleep(0.3)
    waiting = jobs.read(setup.control, "dirk", second.id)
    assert waiting.state == "queued" and waiting.steps == () and waiting.started_at is None
    assert jobs.read(setup.control, "dana", first.id).state == "running"
    gate.set()
    jobs.wait(first.id, WAIT)
    jobs.wait(second.id, WAIT)
    a, b = jobs.read(setup.control, "dana", first.id), jobs.read(setup.control, "dirk", second.id)
    assert a.state == b.state == "succeeded", (a.error, b.error)
    assert a.finished_at and b.started_at and b.started_at >= a.finished_at  # one at a time
    assert a.share_id != b.share_id


CHILD = """
import sys, time
from pathlib import Path
sys.path.insert(0, {repo!r})
from sharewise.policy.load import load_law
from sharewise.security import cms
from sharewise.services import shares
from sharewise.services.share_jobs import ShareJobs
from sharewise.wiring import Settings, control_for
from tests.conftest import TODAY

base = Path({base!r})
real = cms.envelope

def envelope_then_hang(*args, **kwargs):
    real(*args, **kwargs)  # the unpublished package and the staging are on disk now
    print("sealed", flush=True)
    time.sleep(600)

cms.envelope = envelope_then_hang
law = load_law()
control = control_for(Settings(data_dir=base / "data", key_dir=base / "keys", cache_dir=None))
jobs = ShareJobs(base / "data")
uploads = jobs.private_directory()
(uploads / "clients.csv").write_bytes((base / "clients.csv").read_bytes())
definition = shares.parse_share({share!r}, law, base)
job = jobs.start(control, law, definition, None, TODAY, uploads=uploads)
print(job.id, flush=True)
time.sleep(600)
"""


def test_a_job_whose_process_died_is_interrupted_and_leaves_nothing_behind(tmp_path: Path, law: LawPack) -> None:
    write_clients(tmp_path)
    cert, _key = make_recipient(tmp_path)
    control = control_for(Settings(data_dir=tmp_path / "data", key_dir=tmp_path / "keys", cache_dir=None))
    FileKeyProvider(control.settings.keys).create_pseudonym_key("agr-1")  # one person alone: no directory of users
    share = {**share_file("agr-1", cert), "share_id": "s-killed"}
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD.format(repo=str(REPO), base=str(tmp_path), share=share)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    try:
        assert child.stdout is not None and child.stderr is not None
        job_id = child.stdout.readline().strip()
        sealed = child.stdout.readline().strip()
        assert job_id.startswith("sj-") and sealed == "sealed", child.stderr.read()
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
    data, work = tmp_path / "data", tmp_path / "data" / JOBS / WORK
    assert [p.name for p in (data / "packages").iterdir() if p.name.endswith(".partial")]  # the kill left these
    assert [p.name for p in work.iterdir() if p.name.startswith(shares.STAGING_PREFIX)]
    on_disk = json.loads((data / JOBS / f"{job_id}.json").read_text(encoding="utf-8"))
    assert on_disk["state"] == "running" and on_disk["uploads"]  # as the dead process left it

    jobs = ShareJobs(data)  # a new server process starts: the job is interrupted, its uploads removed
    job = jobs.read(control, None, job_id)
    assert job.state == "interrupted" and job.error is not None and job.error.code == "interrupted"
    assert job.steps[-1].description == "signing and encrypting the package" and job.steps[-1].state == "interrupted"
    assert json.loads((data / JOBS / f"{job_id}.json").read_text(encoding="utf-8"))["state"] == "interrupted"
    assert not [p for p in work.iterdir() if p.name.startswith("uploads-")]
    assert not (data / "packages" / "s-killed.p7m").exists()

    again = jobs.start(control, law, shares.parse_share({**share, "share_id": "s-again"}, law, tmp_path), None, TODAY)
    jobs.wait(again.id, WAIT)
    assert jobs.read(control, None, again.id).state == "succeeded"
    assert [p.name for p in (data / "packages").iterdir()] == ["s-again.p7m"]  # the dead run's partial is swept
    assert list(work.iterdir()) == []  # and its staging
    shutil.rmtree(data / "packages")
    control.store.dispose()


# Package downloads are audited ---------------------------------------------------------------------


def audited(control: Control, action: str) -> list[dict[str, Any]]:
    """The audit records of one action, oldest first, with their details parsed."""
    found = [dict(r) for r in reversed(audit_service.log(control, "audrey", limit=1000)) if r["action"] == action]
    for record in found:
        record["details"] = json.loads(record["details"])
    return found


def test_each_package_download_and_each_refusal_is_audited_without_personal_data(setup: Setup) -> None:
    jobs = setup.runner()
    job = jobs.start(setup.control, setup.law, setup.definition(), "dana", TODAY)
    jobs.wait(job.id, WAIT)
    done = jobs.read(setup.control, "dana", job.id)
    assert done.result is not None
    assert audited(setup.control, "package-downloaded") == []  # reading the job is not a download

    for reader in ("dana", "audrey"):
        assert jobs.package_of(setup.control, reader, job.id)[1].is_file()
    downloads = audited(setup.control, "package-downloaded")
    assert [(r["actor"], r["agency"], r["outcome"], r["subject_type"], r["subject_id"]) for r in downloads] == [
        ("dana", "dhs", "success", "share", done.share_id),
        ("audrey", "dhs", "success", "share", done.share_id),
    ]
    assert downloads[0]["details"] == {
        "job": job.id,
        "package": f"{done.share_id}.p7m",
        "package_sha256": done.result.sha256,
        "bytes": done.result.package_bytes,
    }

    # The administrator of its agency reads the job but may not take the package; another steward neither.
    for reader, message in (("ada", "may not download the package of"), ("dirk", "it is dana's")):
        with pytest.raises(AccessDeniedError, match=message):
            jobs.package_of(setup.control, reader, job.id)
    with pytest.raises(AccessDeniedError, match="who is acting"):
        jobs.package_of(setup.control, None, job.id)
    refused = audited(setup.control, "package-download-refused")
    assert [(r["actor"], r["agency"], r["outcome"], r["subject_id"]) for r in refused] == [
        ("ada", "dhs", "failure", done.share_id),
        ("dirk", "dhs", "failure", done.share_id),
        ("anonymous", None, "failure", done.share_id),
    ]
    assert refused[0]["details"] == {"job": job.id, "owner": "dana"}
    assert len(audited(setup.control, "package-downloaded")) == 2  # a refusal hands nothing out
    said = json.dumps(downloads + refused)
    assert "Name1" not in said and "900-" not in said and "C0001" not in said

    # A run without a package, and an unknown job: refused, with nothing to audit.
    court = {"source": {"program": "snap"}, "recipient": {"kind": "court"}, "purpose": "judicial_proceeding"}
    failed = jobs.start(
        setup.control, setup.law, setup.definition(request={**court, "data": ["identity"]}), "dana", TODAY
    )
    jobs.wait(failed.id, WAIT)
    with pytest.raises(InvalidStateError, match="only a succeeded run has a package"):
        jobs.package_of(setup.control, "dana", failed.id)
    with pytest.raises(NotFoundError):
        jobs.package_of(setup.control, "dana", f"sj-{'0' * 32}")
    assert len(audited(setup.control, "package-downloaded")) == 2


# The uploaded source is removed whenever the run ends ----------------------------------------------


def uploaded(jobs: ShareJobs, setup: Setup) -> Path:
    """A private directory holding a copy of the source, as the web page keeps an upload."""
    directory = jobs.private_directory()
    shutil.copy(setup.base / "clients.csv", directory / "clients.csv")
    return directory


def test_the_uploaded_source_is_removed_when_a_run_fails(setup: Setup) -> None:
    jobs = setup.runner()
    folder = uploaded(jobs, setup)
    broken = ",".join(HEADER) + "\nC9,Zebulon Quirke,extra\n"
    (folder / "clients.csv").write_text(broken, encoding="utf-8")
    job = jobs.start(
        setup.control,
        setup.law,
        setup.definition(source={"csv": str(folder / "clients.csv")}),
        "dana",
        TODAY,
        uploads=folder,
    )
    jobs.wait(job.id, WAIT)
    failed = jobs.read(setup.control, "dana", job.id)
    assert failed.state == "failed" and failed.uploads is None and not folder.exists()


def interrupted(jobs: ShareJobs, control: Control, reader: str, job_id: str) -> bool:
    return jobs.read(control, reader, job_id).state == "interrupted"


def test_runs_stopped_by_a_closing_runner_are_interrupted_and_their_uploads_removed(
    setup: Setup, monkeypatch: pytest.MonkeyPatch
) -> None:
    gate = threading.Event()
    real = cms.envelope

    def envelope_at_the_gate(*args: Any, **kwargs: Any) -> Any:
        assert gate.wait(WAIT), "the test never opened the gate"
        return real(*args, **kwargs)

    monkeypatch.setattr(cms, "envelope", envelope_at_the_gate)
    first, second = setup.runner(workers=1), setup.runner(workers=1)  # two processes' runners: one slot
    try:
        running = first.start(
            setup.control, setup.law, setup.definition(), "dana", TODAY, uploads=uploaded(first, setup)
        )
        until(lambda: first.read(setup.control, "dana", running.id).state == "running", "the first run to start")
        in_pool = first.start(
            setup.control, setup.law, setup.definition(), "dana", TODAY, uploads=uploaded(first, setup)
        )
        waiting = second.start(
            setup.control, setup.law, setup.definition(), "dirk", TODAY, uploads=uploaded(second, setup)
        )
        time.sleep(0.5)
        assert second.read(setup.control, "dirk", waiting.id).state == "queued"  # waiting for the one slot

        second.close(wait=False)  # its run was waiting for a slot
        first.close(wait=False)  # its second run had not left the pool's queue
        for runner, job, reader in ((second, waiting, "dirk"), (first, in_pool, "dana")):
            until(partial(interrupted, runner, setup.control, reader, job.id), f"{job.id} to be interrupted")
            stopped = runner.read(setup.control, reader, job.id)
            assert stopped.uploads is None and stopped.error is not None and stopped.error.code == "interrupted"
        with pytest.raises(InvalidStateError, match="closing"):
            first.start(setup.control, setup.law, setup.definition(), "dana", TODAY)
    finally:
        gate.set()
    first.wait(running.id, WAIT)
    assert first.read(setup.control, "dana", running.id).state == "succeeded"  # a started run finishes
    assert [p.name for p in (setup.data_dir / JOBS / WORK).iterdir() if p.name.startswith("uploads-")] == []


# Retention ------------------------------------------------------------------------------------------


def later(control: Control, delta: dt.timedelta) -> Control:
    """The same control plane with its clock moved on by delta."""
    trail = AuditTrail(lambda: control.trail.clock() + delta, control.trail.signer)
    return Control(control.store, trail, StoreAuditSink(control.store, trail), control.settings)


def finished_jobs(setup: Setup, jobs: ShareJobs) -> tuple[ShareJob, ShareJob]:
    """A succeeded run (with its package) and a failed one."""
    ok = jobs.start(setup.control, setup.law, setup.definition(), "dana", TODAY)
    court = {"source": {"program": "snap"}, "recipient": {"kind": "court"}, "purpose": "judicial_proceeding"}
    bad = jobs.start(setup.control, setup.law, setup.definition(request={**court, "data": ["identity"]}), "dana", TODAY)
    jobs.wait(ok.id, WAIT)
    jobs.wait(bad.id, WAIT)
    return jobs.read(setup.control, "dana", ok.id), jobs.read(setup.control, "dana", bad.id)


def test_finished_jobs_and_their_packages_are_deleted_after_the_retention_period(setup: Setup) -> None:
    jobs = ShareJobs(setup.data_dir, retention_days=7)
    ok, bad = finished_jobs(setup, jobs)
    assert ok.state == "succeeded" and bad.state == "failed" and ok.result is not None
    package = setup.data_dir / ok.result.package
    assert ok.finished_at is not None
    assert jobs.expires_at(ok) == dt.datetime.fromisoformat(ok.finished_at) + dt.timedelta(days=7)
    assert jobs.public(ok)["expires_at"] == jobs.expires_at(ok).isoformat(timespec="seconds")  # type: ignore[union-attr]

    assert jobs.prune(later(setup.control, dt.timedelta(days=6, hours=23))) == []  # not yet
    assert package.is_file() and jobs.read(setup.control, "dana", ok.id).id == ok.id

    deleted = jobs.prune(later(setup.control, dt.timedelta(days=7, minutes=1)))
    assert sorted(deleted) == sorted([ok.id, bad.id])
    assert not package.exists() and list((setup.data_dir / JOBS).glob("*sj-*")) == []
    for job_id in (ok.id, bad.id):
        with pytest.raises(NotFoundError, match="a job is deleted 7 days after its run ended"):
            jobs.read(setup.control, "dana", job_id)
        with pytest.raises(NotFoundError):
            jobs.package_of(setup.control, "dana", job_id)
    assert jobs.jobs_of(setup.control, "dana") == []
    records = audited(setup.control, "share-job-deleted")
    assert sorted((r["actor"], r["source"], r["agency"], r["subject_id"]) for r in records) == sorted(
        [("system", "system", "dhs", ok.share_id), ("system", "system", "dhs", bad.share_id)]
    )
    by_job = {r["details"]["job"]: r["details"] for r in records}
    assert by_job[ok.id] == {
        "job": ok.id,
        "state": "succeeded",
        "retention_days": 7,
        "package": f"{ok.share_id}.p7m",
        "package_sha256": ok.result.sha256,
    }
    assert by_job[bad.id]["package"] is None and by_job[bad.id]["state"] == "failed"
    assert jobs.prune(later(setup.control, dt.timedelta(days=30))) == []  # nothing twice


def test_expired_jobs_are_swept_when_the_runner_starts_and_when_a_job_is_submitted(setup: Setup) -> None:
    jobs = ShareJobs(setup.data_dir, retention_days=1)
    ok, bad = finished_jobs(setup, jobs)
    ShareJobs(setup.data_dir, retention_days=2, control=later(setup.control, dt.timedelta(days=1, hours=1)))
    assert jobs.read(setup.control, "dana", ok.id).id == ok.id  # kept 2 days by that runner: not yet

    ShareJobs(setup.data_dir, retention_days=1, control=later(setup.control, dt.timedelta(days=1, hours=1)))
    for job_id in (ok.id, bad.id):
        with pytest.raises(NotFoundError):
            jobs.read(setup.control, "dana", job_id)

    older = jobs.start(setup.control, setup.law, setup.definition(), "dana", TODAY)
    jobs.wait(older.id, WAIT)
    newer = jobs.start(later(setup.control, dt.timedelta(days=2)), setup.law, setup.definition(), "dana", TODAY)
    with pytest.raises(NotFoundError):
        jobs.read(setup.control, "dana", older.id)
    jobs.wait(newer.id, WAIT)
    assert jobs.read(setup.control, "dana", newer.id).state == "succeeded"  # queued or running: never swept
    assert len(audited(setup.control, "share-job-deleted")) == 3


def test_a_deletion_cut_short_never_leaves_a_downloadable_job_and_is_finished_later(
    setup: Setup, monkeypatch: pytest.MonkeyPatch
) -> None:
    jobs = ShareJobs(setup.data_dir, retention_days=1)
    ok, _bad = finished_jobs(setup, jobs)
    assert ok.result is not None
    package = setup.data_dir / ok.result.package
    soon = later(setup.control, dt.timedelta(days=2))

    # The package cannot be deleted (a crash at that point looks the same from outside).
    real_unlink = Path.unlink

    def unlink_but_not_packages(self: Path, missing_ok: bool = False) -> None:
        if self.suffix == ".p7m":
            raise PermissionError(13, "Permission denied")
        real_unlink(self, missing_ok=missing_ok)

    monkeypatch.setattr(Path, "unlink", unlink_but_not_packages)
    with pytest.raises(StorageError, match=f"the package of share job {ok.id} could not be deleted"):
        jobs.prune(soon)
    monkeypatch.undo()
    assert package.is_file() and (setup.data_dir / JOBS / f".{ok.id}{TOMBSTONE}").is_file()
    with pytest.raises(NotFoundError):  # half deleted: not found, never downloadable
        jobs.package_of(setup.control, "dana", ok.id)
    assert [r["details"]["job"] for r in audited(setup.control, "share-job-deleted")] != [ok.id]  # rolled back
    assert ok.id not in {j.id for j in jobs.jobs_of(setup.control, "audrey")}

    assert ok.id in jobs.prune(soon)  # the next sweep finishes it
    assert not package.exists() and not (setup.data_dir / JOBS / f".{ok.id}{TOMBSTONE}").exists()
    assert [r["details"]["job"] for r in audited(setup.control, "share-job-deleted")].count(ok.id) == 1


def test_the_retention_and_worker_settings_are_checked(setup: Setup, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(RETENTION_SETTING, raising=False)
    monkeypatch.delenv("SHAREWISE_SHARE_WORKERS", raising=False)
    assert retention_from_env() == 7 and workers_from_env() == 1
    monkeypatch.setenv(RETENTION_SETTING, " 30 ")
    assert retention_from_env() == 30
    for bad in ("0", "-1", "seven", "3651", "1.5", "99999999"):
        monkeypatch.setenv(RETENTION_SETTING, bad)
        with pytest.raises(InvalidDataError, match="invalid setting") as caught:
            retention_from_env()
        assert [str(p) for p in caught.value.problems] == [
            f"{RETENTION_SETTING}: a whole number of days from 1 to 3650 (default 7)"
        ]
    for bad in ("0", "17", "many"):
        monkeypatch.setenv("SHAREWISE_SHARE_WORKERS", bad)
        with pytest.raises(InvalidDataError, match="invalid setting"):
            workers_from_env()
    for days in (0, 3651):
        with pytest.raises(InvalidDataError, match="invalid setting"):
            ShareJobs(setup.data_dir, retention_days=days)


# The worker limit holds for the whole data directory -------------------------------------------------


def test_two_runners_of_one_data_directory_never_run_more_than_the_limit_at_once(
    setup: Setup, monkeypatch: pytest.MonkeyPatch
) -> None:
    lock = threading.Lock()
    now_running = [0]
    most = [0]
    real = shares.run

    def counted(*args: Any, **kwargs: Any) -> Any:
        with lock:
            now_running[0] += 1
            most[0] = max(most[0], now_running[0])
        try:
            time.sleep(0.3)  # runs overlap whenever the limit lets them
            return real(*args, **kwargs)
        finally:
            with lock:
                now_running[0] -= 1

    monkeypatch.setattr(shares, "run", counted)
    first, second = setup.runner(workers=2), setup.runner(workers=2)  # as two server processes would
    started = [
        (runner, runner.start(setup.control, setup.law, setup.definition(), "dana", TODAY))
        for _ in range(3)
        for runner in (first, second)
    ]
    for runner, job in started:
        runner.wait(job.id, WAIT)
        ended = runner.read(setup.control, "dana", job.id)
        assert ended.state == "succeeded", ended.error
    assert most[0] == 2  # two at once (so they do overlap), never four


SLOT_HOLDER = """
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o600)
fcntl.flock(fd, fcntl.LOCK_EX)
print("holding", flush=True)
time.sleep(600)
"""


def test_a_slot_held_by_a_process_that_dies_is_freed_by_the_system(setup: Setup) -> None:
    jobs = setup.runner(workers=1)
    holder = subprocess.Popen(
        [sys.executable, "-c", SLOT_HOLDER, str(setup.data_dir / JOBS / SLOTS / "slot-0.lock")],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "holding"
        job = jobs.start(setup.control, setup.law, setup.definition(), "dana", TODAY)
        time.sleep(1.0)
        assert jobs.read(setup.control, "dana", job.id).state == "queued"  # the other process holds the slot
    finally:
        os.kill(holder.pid, signal.SIGKILL)  # a crash: no clean-up runs
        holder.wait()
    jobs.wait(job.id, WAIT)
    assert jobs.read(setup.control, "dana", job.id).state == "succeeded"


# Parquet sources ------------------------------------------------------------------------------------


def write_parquet(csv_file: Path, target: Path) -> Path:
    """The CSV's records as Parquet, every column text (as an export from another system would have them)."""
    import pyarrow as pa
    import pyarrow.csv as pv
    import pyarrow.parquet as pq

    options = pv.ConvertOptions(column_types={h: pa.string() for h in HEADER})
    pq.write_table(pv.read_csv(csv_file, convert_options=options), target)
    return target


def test_a_parquet_source_runs_and_a_file_of_another_kind_is_refused_clearly(setup: Setup) -> None:
    parquet = write_parquet(setup.base / "clients.csv", setup.base / "clients.parquet")
    jobs = setup.runner()
    job = jobs.start(setup.control, setup.law, setup.definition(source={"parquet": "clients.parquet"}), "dana", TODAY)
    jobs.wait(job.id, WAIT)
    done = jobs.read(setup.control, "dana", job.id)
    assert done.state == "succeeded" and done.result is not None, done.error
    assert done.result.rows == 60 and "note" not in done.result.columns
    verified = shares.verify_package(setup.data_dir / done.result.package, setup.cert, setup.key)
    assert verified.manifest["output"]["rows"] == 60

    shutil.copy(setup.base / "clients.csv", setup.base / "named.parquet")
    shutil.copy(parquet, setup.base / "named.csv")
    (setup.base / "sheet.csv").write_bytes(b"PK\x03\x04\x14\x00\x06\x00\x08\x00\x00\x00!\x00" + b"\x00" * 64)
    (setup.base / "wide.csv").write_bytes((",".join(HEADER) + "\n").encode("utf-16"))
    cases = [
        ({"parquet": "named.parquet"}, "the source file is not Parquet", "this file is not a Parquet file"),
        (
            {"csv": "named.csv"},
            "the source file is not CSV",
            "this is a Parquet file, but the share file's source says csv:",
        ),
        ({"csv": "sheet.csv"}, "the source file is not CSV", "not CSV text: it holds binary data"),
    ]
    before = sorted((setup.data_dir / JOBS).glob("*.json"))
    for source, message, problem in cases:
        with pytest.raises(InvalidDataError, match=message) as caught:
            jobs.start(setup.control, setup.law, setup.definition(source=source), "dana", TODAY)
        (found,) = caught.value.problems
        assert found.location == str(setup.base / next(iter(source.values()))) and problem in found.message
    assert sorted((setup.data_dir / JOBS).glob("*.json")) == before  # no job was started
    # NUL bytes are text in UTF-16: that file is left to the engine (it has no data rows, so it runs to a failure).
    wide = jobs.start(
        setup.control, setup.law, setup.definition(source={"csv": "wide.csv", "encoding": "utf-16"}), "dana", TODAY
    )
    jobs.wait(wide.id, WAIT)
    assert jobs.read(setup.control, "dana", wide.id).state in ("succeeded", "failed")


# The command line -------------------------------------------------------------------------------------


def test_share_jobs_list_and_prune_on_the_command_line(setup: Setup, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from sharewise.cli.main import app

    monkeypatch.setenv("SHAREWISE_DATA_DIR", str(setup.data_dir))
    monkeypatch.setenv("SHAREWISE_KEY_DIR", str(setup.base / "keys"))
    monkeypatch.delenv("SHAREWISE_USER", raising=False)
    monkeypatch.delenv("SHAREWISE_DATABASE_URL", raising=False)
    monkeypatch.delenv(RETENTION_SETTING, raising=False)
    jobs = setup.runner()
    ok, bad = finished_jobs(setup, jobs)
    ten_days_ago = (setup.control.trail.clock() - dt.timedelta(days=10)).isoformat(timespec="milliseconds")
    jobs.update(bad.id, lambda j: replace(j, created_at=ten_days_ago, finished_at=ten_days_ago))
    cli = CliRunner()

    pruned = cli.invoke(app, ["share", "jobs", "prune"])
    assert pruned.exit_code == 0, pruned.output
    assert f"deleted {bad.id}" in pruned.output and "1 expired share job deleted" in pruned.output
    assert [(r["details"]["job"], r["source"]) for r in audited(setup.control, "share-job-deleted")] == [
        (bad.id, "cli")
    ]
    again = cli.invoke(app, ["share", "jobs", "prune"])
    assert again.exit_code == 0 and "0 expired share jobs deleted" in again.output

    jobs.update(ok.id, lambda j: replace(j, created_at=ten_days_ago, finished_at=ten_days_ago))
    listed = cli.invoke(app, ["share", "jobs", "list", "--as", "audrey"])  # expired, awaiting the next sweep
    assert listed.exit_code == 0, listed.output
    lines = listed.output.splitlines()
    assert lines[0].split() == ["job", "owner", "state", "created", "expires"] and len(lines) == 2
    row = lines[1].split()
    assert row[:3] == [ok.id, "dana", "succeeded"] and row[3] == ten_days_ago[:10]  # the deleted job is gone
    assert row[5] == (dt.date.fromisoformat(ten_days_ago[:10]) + dt.timedelta(days=7)).isoformat()
    assert "Name1" not in listed.output and "900-" not in listed.output and ok.share_id not in listed.output
    mine = cli.invoke(app, ["share", "jobs", "list", "--as", "dirk"])
    assert mine.exit_code == 0 and "no share jobs" in mine.output  # dirk started none
    anonymous = cli.invoke(app, ["share", "jobs", "list"])
    assert anonymous.exit_code == 9 and "who is acting?" in anonymous.output  # access denied

    monkeypatch.setenv(RETENTION_SETTING, "0")
    refused = cli.invoke(app, ["share", "jobs", "prune"])
    assert refused.exit_code == 2 and RETENTION_SETTING in refused.output
    assert jobs.read(setup.control, "dana", ok.id).state == "succeeded"  # nothing deleted under a bad setting
