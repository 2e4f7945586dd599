"""Share jobs through the API: started without holding the connection open (202), then read until done."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import json
import time
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from sqlalchemy import select

from sharewise.services import shares
from sharewise.store.schema import audit_records
from tests.api.conftest import World
from tests.api.test_routes_data import (  # noqa: F401  (medicaid is a fixture)
    API,
    MEDICAID_TO_TANF,
    active_agreement,
    audit_actions,
    data_dir,
    locations,
    medicaid,
    problem_of,
    share_body,
)

WAIT = 60.0


def finished(world: World, job_id: str, role: str = "data_steward") -> dict[str, Any]:
    """The job once it has left the queue and run (polled as a client would)."""
    deadline = time.monotonic() + WAIT
    while True:
        r = world.client.get(f"{API}/shares/jobs/{job_id}", headers=world.h(role))
        assert r.status_code == 200, r.text
        job: dict[str, Any] = r.json()
        if job["state"] not in ("queued", "running"):
            return job
        assert time.monotonic() < deadline, job
        time.sleep(0.05)


def test_a_share_job_answers_at_once_and_runs_to_a_published_package(
    world: World,
    medicaid: dict[str, Any],  # noqa: F811
) -> None:
    agreement = active_agreement(world)
    body = share_body(agreement)
    headers = {**world.h("data_steward"), "Idempotency-Key": "job-1"}
    r = world.client.post(f"{API}/shares/jobs", headers=headers, json=body)
    assert r.status_code == 202, r.text
    started = r.json()
    assert r.headers["location"] == f"{API}/shares/jobs/{started['id']}"
    assert started["state"] == "queued" and started["owner"] == "data_steward-a" and started["agency"] == "agency-a"
    assert started["agreement"] == agreement and started["share_id"].startswith(f"{agreement}-20261125-")
    assert started["source"] == "api" and "pid" not in started and "uploads" not in started

    job = finished(world, started["id"])
    assert job["state"] == "succeeded" and job["error"] is None, job["error"]
    result = job["result"]
    assert result["share_id"] == started["share_id"] and result["package"] == f"packages/{result['share_id']}.p7m"
    with (data_dir(world) / "medicaid" / "medicaid.csv").open(encoding="utf-8") as handle:
        records = sum(1 for _ in csv.DictReader(handle))
    assert result["rows"] == records > 0 and result["form"] == "identified" and "email" not in result["columns"]
    verified = shares.verify_package(data_dir(world) / result["package"], medicaid["cert"], medicaid["key"])
    assert verified.manifest["output"]["rows"] == records and verified.manifest["share_id"] == result["share_id"]
    assert job["steps"][0]["description"].startswith("checking the determination")
    assert "writing parquet" in [s["description"] for s in job["steps"]]
    assert all(s["state"] == "done" and s["seconds"] is not None for s in job["steps"])
    assert [a for a, _, _ in audit_actions(world, "share", result["share_id"])] == [
        "disclosure-recorded",
        "share-executed",
    ]
    assert audit_actions(world, "share", result["share_id"])[1] == ("share-executed", "data_steward-a", "api")

    again = world.client.post(f"{API}/shares/jobs", headers=headers, json=body)  # the same key: the same job
    assert again.status_code == 202 and again.json()["id"] == started["id"]
    assert again.headers["idempotent-replayed"] == "true" and again.headers["location"] == r.headers["location"]
    other = world.client.post(f"{API}/shares/jobs", headers=headers, json={**body, "needs": ["record_id"]})
    problem_of(other, 409, "invalid_state")


def test_a_share_job_is_read_by_its_owner_auditors_and_its_agencys_administrators(
    world: World,
    medicaid: dict[str, Any],  # noqa: F811
) -> None:
    r = world.client.post(
        f"{API}/shares/jobs", headers=world.h("data_steward"), json=share_body(active_agreement(world))
    )
    assert r.status_code == 202, r.text
    job_id = r.json()["id"]
    finished(world, job_id)
    for role, agency in (("auditor", "agency-b"), ("auditor", "agency-a"), ("administrator", "agency-a")):
        read = world.client.get(f"{API}/shares/jobs/{job_id}", headers=world.h(role, agency))
        assert read.status_code == 200 and read.json()["state"] == "succeeded", (role, agency)
    for role, agency in (("data_steward", "agency-b"), ("administrator", "agency-b"), ("requester", "agency-a")):
        refused = problem_of(world.client.get(f"{API}/shares/jobs/{job_id}", headers=world.h(role, agency)), 403)
        assert refused["code"] == "access_denied", (role, agency)
    problem_of(world.client.get(f"{API}/shares/jobs/sj-{'0' * 32}", headers=world.h("auditor")), 404, "not_found")
    problem_of(world.client.get(f"{API}/shares/jobs/..%2F..%2Fetc", headers=world.h("auditor")), 404)


def test_a_share_job_that_cannot_start_is_refused_at_once(
    world: World,
    medicaid: dict[str, Any],  # noqa: F811
) -> None:
    steward = world.h("data_steward")
    agreement = active_agreement(world)
    draft = world.new_agreement()

    def start(body: dict[str, Any], headers: dict[str, str] = steward) -> Any:
        return world.client.post(f"{API}/shares/jobs", headers=headers, json=body)

    problem_of(start(share_body(agreement), world.h("requester")), 403, "access_denied")
    # agency A's agreement alone: agency B is no party to it (the active one is both agencies')
    problem_of(start(share_body(draft), world.h("data_steward", "agency-b")), 403, "access_denied")
    inactive = problem_of(start(share_body(draft)), 409, "invalid_state")
    assert "a share runs only under an active agreement" in inactive["detail"]
    no_cert = problem_of(start({**share_body(agreement), "recipient_certificate": None}), 422, "invalid_data")
    assert locations(no_cert) == ["share: recipient_certificate"]
    outside = problem_of(start(share_body(agreement, source={"csv": "/etc/passwd"})), 403)
    assert locations(outside) == ["share: source.csv"]
    missing = problem_of(start(share_body(agreement, needs=["record_id", "no_such_column"])), 422, "invalid_data")
    assert str(data_dir(world)) not in str(missing)
    bad_cert = problem_of(start(share_body(agreement, recipient_certificate="medicaid/medicaid.csv")), 422)
    assert locations(bad_cert) == ["medicaid/medicaid.csv"]  # a data-directory path, never the server's
    problem_of(start({**share_body(agreement), "dsn": "postgresql://elsewhere/db"}), 422, "invalid_request")
    assert not (data_dir(world) / "share-jobs").exists() or not [
        p for p in (data_dir(world) / "share-jobs").glob("*.json") if draft in p.read_text(encoding="utf-8")
    ]


def test_a_share_the_law_does_not_permit_fails_as_an_audited_refusal(
    world: World,
    medicaid: dict[str, Any],  # noqa: F811
) -> None:
    body = share_body(active_agreement(world), request={**MEDICAID_TO_TANF, "facts": {}})
    r = world.client.post(f"{API}/shares/jobs", headers=world.h("data_steward"), json=body)
    assert r.status_code == 202, r.text
    job = finished(world, r.json()["id"])
    assert job["state"] == "failed" and job["result"] is None
    assert job["error"]["code"] == "not_permitted" and "no share may run on it" in job["error"]["message"]
    assert job["error"]["problems"] and all({"location", "message"} == set(p) for p in job["error"]["problems"])
    assert [a for a, _, _ in audit_actions(world, "share", job["share_id"])] == ["share-refused"]


def started_job(world: World, **changes: Any) -> str:
    body = share_body(active_agreement(world), **changes)
    r = world.client.post(f"{API}/shares/jobs", headers=world.h("data_steward"), json=body)
    assert r.status_code == 202, r.text
    return str(r.json()["id"])


def audit_details(world: World, action: str, subject_id: str) -> list[dict[str, Any]]:
    with world.control.store.transaction() as conn:
        rows = conn.execute(
            select(audit_records.c.details, audit_records.c.agency)
            .where(audit_records.c.action == action, audit_records.c.subject_id == subject_id)
            .order_by(audit_records.c.seq)
        ).all()
    return [{**json.loads(r.details), "agency": r.agency} for r in rows]


def test_a_share_jobs_package_is_downloaded_by_its_owner_and_auditors_each_download_audited(
    world: World,
    medicaid: dict[str, Any],  # noqa: F811
    tmp_path: Path,
) -> None:
    job_id = started_job(world)
    job = finished(world, job_id)
    result = job["result"]
    assert job["expires_at"] == (dt.datetime.fromisoformat(job["finished_at"]) + dt.timedelta(days=7)).isoformat(
        timespec="seconds"
    )
    url = f"{API}/shares/jobs/{job_id}/package"
    got = world.client.get(url, headers=world.h("data_steward"))
    assert got.status_code == 200, got.text
    assert got.headers["content-type"] == "application/pkcs7-mime" and got.headers["cache-control"] == "no-store"
    assert got.headers["content-disposition"] == f'attachment; filename="{result["share_id"]}.p7m"'
    assert hashlib.sha256(got.content).hexdigest() == result["sha256"]
    (tmp_path / "package.p7m").write_bytes(got.content)
    assert (
        shares.verify_package(tmp_path / "package.p7m", medicaid["cert"], medicaid["key"]).manifest["share_id"]
        == (result["share_id"])
    )
    assert world.client.get(url, headers=world.h("auditor", "agency-b")).status_code == 200

    other_steward = problem_of(world.client.get(url, headers=world.h("data_steward", "agency-b")), 403)
    assert other_steward["code"] == "access_denied" and "may not download the package of" in other_steward["detail"]
    for role in ("administrator", "requester"):  # the route table: neither may take a package
        problem_of(world.client.get(url, headers=world.h(role)), 403, "access_denied")
    problem_of(world.client.get(url), 401)
    problem_of(world.client.get(f"{API}/shares/jobs/sj-{'0' * 32}/package", headers=world.h("auditor")), 404)

    events = [(a, actor, s) for a, actor, s in audit_actions(world, "share", result["share_id"]) if "package" in a]
    assert events == [
        ("package-downloaded", "data_steward-a", "api"),
        ("package-downloaded", "auditor-b", "api"),
        ("package-download-refused", "data_steward-b", "api"),
    ]
    assert audit_details(world, "package-downloaded", result["share_id"])[0] == {
        "job": job_id,
        "package": f"{result['share_id']}.p7m",
        "package_sha256": result["sha256"],
        "bytes": result["package_bytes"],
        "agency": "agency-a",
    }
    assert audit_details(world, "package-download-refused", result["share_id"]) == [
        {"job": job_id, "owner": "data_steward-a", "agency": "agency-b"}
    ]

    refused = finished(world, started_job(world, request={**MEDICAID_TO_TANF, "facts": {}}))
    assert refused["state"] == "failed" and refused["expires_at"]
    no_package = world.client.get(f"{API}/shares/jobs/{refused['id']}/package", headers=world.h("data_steward"))
    assert "only a succeeded run has a package" in problem_of(no_package, 409, "invalid_state")["detail"]


def parquet_copy(world: World) -> str:
    """The Medicaid records as Parquet in the data directory (every column text), once per world."""
    source = data_dir(world) / "medicaid" / "medicaid.csv"
    target = source.with_suffix(".parquet")
    if not target.exists():
        with source.open(encoding="utf-8") as handle:
            header = next(csv.reader(handle))
        options = pacsv.ConvertOptions(column_types={name: pa.string() for name in header})
        pq.write_table(pacsv.read_csv(source, convert_options=options), target)
    return "medicaid/medicaid.parquet"


def test_a_share_job_reads_a_parquet_source_and_refuses_a_file_of_another_kind(
    world: World,
    medicaid: dict[str, Any],  # noqa: F811
) -> None:
    parquet = parquet_copy(world)
    job = finished(world, started_job(world, source={"parquet": parquet}))
    assert job["state"] == "succeeded", job["error"]
    with (data_dir(world) / "medicaid" / "medicaid.csv").open(encoding="utf-8") as handle:
        records = sum(1 for _ in csv.DictReader(handle))
    assert job["result"]["rows"] == records and "email" not in job["result"]["columns"]

    agreement = active_agreement(world)
    cases = [
        ({"parquet": "medicaid/medicaid.csv"}, "the source file is not Parquet", "is not a Parquet file"),
        ({"csv": parquet}, "the source file is not CSV", "this is a Parquet file"),
    ]
    for source, detail, message in cases:
        r = world.client.post(
            f"{API}/shares/jobs", headers=world.h("data_steward"), json=share_body(agreement, source=source)
        )
        body = problem_of(r, 422, "invalid_data")
        assert body["detail"] == detail and locations(body) == [next(iter(source.values()))]
        assert message in body["problems"][0]["message"] and str(data_dir(world)) not in r.text
