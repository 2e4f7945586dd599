"""Share runs as background jobs: steps recorded, failures explained, readers checked, queues bounded, crashes seen."""

from __future__ import annotations

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
from pathlib import Path
from typing import Any

import pytest
import yaml
from argon2 import PasswordHasher

from sharewise.domain.errors import AccessDeniedError, InvalidDataError, InvalidStateError, NotFoundError
from sharewise.policy.model import LawPack
from sharewise.security import cms
from sharewise.security.keys import FileKeyProvider
from sharewise.services import accounts, agreement_registry, shares
from sharewise.services import audit as audit_service
from sharewise.services import workflow as workflow_service
from sharewise.services.share_jobs import JOBS, WORK, ShareJob, ShareJobs
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
    assert files == [f"{job.id}.json", WORK]
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
