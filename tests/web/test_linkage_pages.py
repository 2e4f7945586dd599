"""The linkage pages: deduplicate and link uploaded files, see counts and quality, download outputs; refusals."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import re
import shutil
import time
from collections.abc import Iterator, MutableMapping
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient
from httpx import Response
from playwright.sync_api import Browser, FilePayload
from starlette.requests import ClientDisconnect

from sharewise.cli.serve import DEMO_PASSWORD, DemoAccount
from sharewise.pipeline.synth import generate
from sharewise.services import accounts as accounts_service
from sharewise.services import audit as audit_service
from sharewise.services import workflow as workflow_service
from sharewise.web import linkage_pages  # adds the routes before the site's app is made
from tests.conftest import TODAY
from tests.web.conftest import Site, csrf_of, signed_in
from tests.web.test_browser import axe_violations, base_url, browser, shot, sign_in  # noqa: F401  (fixtures)
from tests.web.test_streamed_form import BOUNDARY, Part, multipart

MAPPING = {"given_name": "first_name", "surname": "last_name", "dob": "birth_date", "street_address": "street"}
MAPPING_LINES = "\n".join(f"{k}={v}" for k, v in MAPPING.items())
IDENTIFIERS = ("first_name", "last_name", "ssn", "birth_date", "street", "phone", "email")
MULTIPART = f"multipart/form-data; boundary={BOUNDARY}"


# Setting up ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """SNAP and TANF records of 300 synthetic people (duplicates within SNAP, people in both), and the truth."""
    folder = tmp_path_factory.mktemp("people")
    generate(folder, people=300, programs=("snap", "tanf"), seed=3, today=TODAY)
    return folder


@pytest.fixture(scope="module")
def stewards(site: Site) -> Site:
    """A data steward of the school district too, to show that jobs stay within their agency."""
    workflow_service.add_user(site.control, "sid", "Sid Steward", "lakeview-schools", {"data_steward"}, "ada")
    new = accounts_service.create_account(site.control, "olive", "sid", DEMO_PASSWORD)
    site.accounts["sid"] = DemoAccount("sid", "data_steward", "lakeview-schools", DEMO_PASSWORD, new.totp_secret)
    return site


def data_dir(site: Site) -> Path:
    assert site.control.settings.data_dir is not None
    return site.control.settings.data_dir.resolve()


def uploads_left(site: Site) -> list[Path]:
    folder = data_dir(site) / "linkage" / "uploads"
    return list(folder.glob("web-*")) if folder.is_dir() else []


def csv_part(path: Path, name: str | None = None) -> tuple[str, bytes, str]:
    return (name or path.name, path.read_bytes(), "text/csv")


def run(client: TestClient, data: dict[str, str], files: dict[str, Any]) -> Response:
    """Submit the run form the way the browser does: the CSRF token of the page just loaded, then the files;
    a run that succeeds leads to its job's page."""
    token = csrf_of(client.get("/linkage").text)
    r: Response = client.post("/linkage/run", data={"csrf_token": token, **data}, files=files, follow_redirects=True)
    return r


def job_id_of(html: str) -> str:
    match = re.search(r"<h1>Linkage job (lj-\d{8}-[0-9a-f]{16})</h1>", html)
    assert match, html[:3000]
    return match.group(1)


def summary(html: str) -> str:
    """The error summary at the top of a page."""
    start = html.index('id="error-summary"')
    return html[start : html.index("</div>\n</div>", start)]


def identifier_values(path: Path) -> set[str]:
    with path.open(encoding="utf-8", newline="") as handle:
        return {row[c] for row in csv.DictReader(handle) for c in IDENTIFIERS if row.get(c) and len(row[c]) >= 5}


def audited(site: Site, action: str) -> list[dict[str, Any]]:
    return [r for r in audit_service.log(site.control, "audrey", limit=500) if r["action"] == action]


def cell(html: str, heading: str) -> str:
    match = re.search(rf"<th scope=\"row\">{re.escape(heading)}</th><td[^>]*>([^<]*)</td>", html)
    assert match, heading
    return match.group(1)


@pytest.fixture(scope="module")
def deduplicated(stewards: Site, files: Path) -> tuple[str, str]:
    """Dana deduplicates the SNAP file (its columns mapped by lines), with the waterfall chart: (job id, page)."""
    dana = signed_in(stewards, "dana")
    r = run(
        dana,
        {"kind": "dedupe", "threshold": "0.9", "mapping_a": MAPPING_LINES, "explain": "on"},
        {"file_a": csv_part(files / "snap.csv")},
    )
    assert r.status_code == 200, summary(r.text) if "error-summary" in r.text else r.text[:3000]
    job_id = job_id_of(r.text)
    # The run answers with the job's own page (a reload shows it again and never runs the linkage twice).
    assert [h.status_code for h in r.history] == [303] and r.url.path == f"/linkage/jobs/{job_id}"
    return job_id, r.text


# Deduplicating -------------------------------------------------------------------------------------


def test_a_deduplication_shows_its_counts_and_quality_and_keeps_no_upload(
    stewards: Site, files: Path, deduplicated: tuple[str, str]
) -> None:
    job_id, page = deduplicated
    assert "One file deduplicated" in page and "your uploaded files are removed" in page
    dana = signed_in(stewards, "dana")
    clusters = list(csv.DictReader(io.StringIO(dana.get(f"/linkage/jobs/{job_id}/clusters.csv").text)))
    with (files / "snap.csv").open(encoding="utf-8") as handle:
        records = [row["record_id"] for row in csv.DictReader(handle)]
    assert sorted(r["record_id"] for r in clusters) == sorted(records)
    persons: dict[str, int] = {}
    for row in clusters:
        persons[row["person_id"]] = persons.get(row["person_id"], 0) + 1
    assert cell(page, "Records") == str(len(records))
    assert cell(page, "Persons (clusters)") == str(len(persons)) and len(persons) < len(records)  # duplicates found
    assert cell(page, "Persons with more than one record") == str(sum(1 for n in persons.values() if n > 1))
    assert cell(page, "Records of the largest person") == str(max(persons.values()))
    assert cell(page, "Model") == "trained on this file"
    assert "<caption>Persons by their number of records</caption>" in page and 'id="linkage-biggest"' in page
    # The duplicates it found are the synthetic generator's own duplicates (the same person, by the truth).
    with (files / "truth.csv").open(encoding="utf-8") as handle:
        truth = {r["record_id"]: r["person_id"] for r in csv.DictReader(handle) if r["program"] == "snap"}
    groups: dict[str, set[str]] = {}
    for row in clusters:
        groups.setdefault(row["person_id"], set()).add(truth[row["record_id"]])
    merged = [g for p, g in groups.items() if persons[p] > 1]
    assert merged and sum(len(g) == 1 for g in merged) / len(merged) >= 0.9
    # Ids, counts and metrics only: not one name, date of birth, SSN, address or phone of the file.
    assert not [v for v in identifier_values(files / "snap.csv") if v in page]
    assert uploads_left(stewards) == []
    assert not list((data_dir(stewards) / "linkage").glob("uploads/*"))
    runs = [r for r in audited(stewards, "linkage-executed") if r["actor"] == "dana"]
    assert runs and runs[0]["source"] == "web" and json.loads(runs[0]["details"])["kind"] == "dedupe"


def test_the_outputs_download_from_the_jobs_own_folder(stewards: Site, deduplicated: tuple[str, str]) -> None:
    job_id, page = deduplicated
    folder = data_dir(stewards) / "linkage" / job_id
    dana = signed_in(stewards, "dana")
    assert linkage_pages.JOB_ID.fullmatch(job_id) and f'href="/linkage/jobs/{job_id}/clusters.csv"' in page
    assert f'href="/linkage/jobs/{job_id}/waterfall.html"' in page
    for name, media in (("clusters.csv", "text/csv"), ("waterfall.html", "text/html")):
        r = dana.get(f"/linkage/jobs/{job_id}/{name}")
        assert r.status_code == 200 and r.content == (folder / name).read_bytes()
        assert r.headers["content-type"].startswith(media)
        assert (
            r.headers["content-disposition"].startswith("attachment")
            and f"{job_id}-{name}" in r.headers["content-disposition"]
        )
        assert r.headers["cache-control"] == "no-store"
    assert b"vega" in dana.get(f"/linkage/jobs/{job_id}/waterfall.html").content  # Splink's chart, inline
    assert dana.get(f"/linkage/jobs/{job_id}/matches.csv").status_code == 404  # a dedupe writes no pairs
    runs = len(audited(stewards, "linkage-executed"))
    again = dana.get(f"/linkage/jobs/{job_id}")  # the results page again, without running anything
    assert again.status_code == 200 and cell(again.text, "Persons (clusters)") == cell(page, "Persons (clusters)")
    assert "your uploaded files are removed" not in again.text and len(audited(stewards, "linkage-executed")) == runs
    assert f'href="/linkage/jobs/{job_id}"' in dana.get("/linkage").text  # listed among the agency's runs


def test_a_deduplication_into_a_person_index_keeps_ids_across_batches(stewards: Site, tmp_path: Path) -> None:
    rows = [
        ("r1", "Ann", "Smith", "1980-01-02"),
        ("r2", "Ann", "Smith", "1980-01-02"),
        ("r3", "Bob", "Jones", "1975-05-06"),
        ("r4", "Cara", "Lee", "1990-09-09"),
        ("r5", "Dan", "Ng", "1970-01-01"),
        ("r6", "Eve", "Ok", "1960-02-02"),
    ]
    batch = tmp_path / "batch.csv"
    batch.write_text("record_id,given_name,surname,dob\n" + "".join(",".join(r) + "\n" for r in rows), encoding="utf-8")
    dana = signed_in(stewards, "dana")
    r = run(dana, {"kind": "dedupe", "index": "web-county"}, {"file_a": csv_part(batch)})
    assert r.status_code == 200, r.text[:3000]
    assert cell(r.text, "Index batch") == "1" and cell(r.text, "Persons created in the index") == cell(
        r.text, "Persons (clusters)"
    )
    assert (data_dir(stewards) / "linkage" / "indexes" / "web-county.duckdb").is_file()  # where the API keeps them
    again = run(dana, {"kind": "dedupe", "index": "web-county"}, {"file_a": csv_part(batch)})
    assert again.status_code == 422
    assert "File A, record_id: 6 record ids are already in the index" in summary(again.text)
    assert 'value="web-county"' in again.text  # what was typed is kept
    assert uploads_left(stewards) == []


# Linking -------------------------------------------------------------------------------------------


def test_a_link_of_two_files_with_mapping_files_shows_its_pairs(stewards: Site, files: Path) -> None:
    dana = signed_in(stewards, "dana")
    mapping = ("mapping.yaml", yaml.safe_dump(MAPPING).encode(), "text/yaml")
    r = run(
        dana,
        {"kind": "link", "threshold": "0.9", "one_to_one": "on"},
        {
            "file_a": csv_part(files / "snap.csv"),
            "mapping_file_a": mapping,
            "file_b": csv_part(files / "tanf.csv"),
            "mapping_file_b": mapping,
        },
    )
    assert r.status_code == 200, summary(r.text) if "error-summary" in r.text else r.text[:3000]
    page = r.text
    job_id = job_id_of(page)
    assert "Two files linked" in page and "one-to-one matches only" in page
    assert "given name, surname, date of birth" in page  # the fields the model compared
    pairs = list(csv.DictReader(io.StringIO(dana.get(f"/linkage/jobs/{job_id}/matches.csv").text)))
    assert pairs and cell(page, "Pairs at or above the threshold") == str(len(pairs))
    assert all(float(p["match_probability"]) >= 0.9 for p in pairs)
    lefts = {p["left_id"] for p in pairs}
    assert len(lefts) == len(pairs)  # one-to-one
    assert cell(page, "Records of file A with a match").startswith(f"{len(lefts)} of ")
    assert cell(page, "Records of file A with more than one match") == "0"
    bands = re.findall(r"<tr><th scope=\"row\">([^<]+)</th><td>(\d+)</td></tr>", page.split('id="linkage-bands"')[1])
    assert sum(int(n) for _, n in bands[: len(bands)]) >= len(pairs)
    # The pairs are the same people (the generator's truth).
    with (files / "truth.csv").open(encoding="utf-8") as handle:
        truth = {(r["program"], r["record_id"]): r["person_id"] for r in csv.DictReader(handle)}
    right = sum(truth["snap", p["left_id"]] == truth["tanf", p["right_id"]] for p in pairs)
    assert right / len(pairs) >= 0.95
    assert 'waterfall.html"' not in page  # no chart asked for
    values = identifier_values(files / "snap.csv") | identifier_values(files / "tanf.csv")
    assert not [v for v in values if v in page]
    assert uploads_left(stewards) == []
    runs = [json.loads(r["details"]) for r in audited(stewards, "linkage-executed")]
    assert any(d["kind"] == "link" and d["matches"] == len(pairs) for d in runs)


# Refusals ------------------------------------------------------------------------------------------


def test_linkage_is_for_data_stewards(stewards: Site, files: Path) -> None:
    dana = signed_in(stewards, "dana")
    token = csrf_of(dana.get("/linkage").text)
    assert 'action="/linkage/run"' in dana.get("/linkage").text
    for user in ("rosa", "audrey", "ada"):
        client = signed_in(stewards, user)
        page = client.get("/linkage")
        assert page.status_code == 403 and "may not run record linkage" in page.text
        own = csrf_of(client.get("/").text)
        for token_sent in (own, token):
            r = client.post(
                "/linkage/run",
                data={"csrf_token": token_sent, "kind": "dedupe", "mapping_a": MAPPING_LINES},
                files={"file_a": csv_part(files / "snap.csv")},
            )
            assert r.status_code == 403 and "may not run record linkage" in r.text
    assert uploads_left(stewards) == []


def test_a_run_without_the_csrf_token_is_refused_and_writes_nothing(stewards: Site, files: Path) -> None:
    dana = signed_in(stewards, "dana")
    dana.get("/linkage")
    jobs = data_dir(stewards) / "linkage"
    before = sorted(jobs.glob("lj-*"))
    form = {"kind": "dedupe", "mapping_a": MAPPING_LINES}
    for data in ({**form, "csrf_token": "forged"}, form):
        r = dana.post("/linkage/run", data=data, files={"file_a": csv_part(files / "snap.csv")})
        assert r.status_code == 403 and "did not come from this site" in r.text
    r = dana.post(
        "/linkage/run", data=form, files={"file_a": csv_part(files / "snap.csv")}, headers={"X-CSRF-Token": "x"}
    )
    assert r.status_code == 403
    assert sorted(jobs.glob("lj-*")) == before and uploads_left(stewards) == []


def test_a_form_without_its_files_shows_every_problem(stewards: Site, files: Path) -> None:
    dana = signed_in(stewards, "dana")
    no_file = ("", b"", "application/octet-stream")  # what a browser sends for a file input left empty
    r = run(
        dana,
        {"kind": "link", "threshold": "high", "mapping_a": "nickname=first_name\nsurname"},
        {"file_a": no_file, "file_b": no_file},
    )
    assert r.status_code == 422
    errors = summary(r.text)
    for expected in (
        '<a class="usa-link" href="#file-a">Choose file A, a CSV file of person records</a>',
        '<a class="usa-link" href="#file-b">Choose file B: linking needs a second file</a>',
        'href="#threshold">Give the threshold as a number from 0 to 1',
        'href="#mapping-a">The mapping of file A: &#39;surname&#39;: expected standard=source',
    ):
        assert expected in errors, (expected, errors)
    assert 'id="file-a-error"' in r.text and 'aria-describedby="file-a-hint file-a-error" aria-invalid="true"' in r.text
    assert 'value="high"' in r.text and "nickname=first_name" in r.text  # what was typed is kept
    assert 'id="linkage-result"' not in r.text


def test_a_mapping_to_no_standard_column_is_refused_on_its_field(stewards: Site, files: Path) -> None:
    dana = signed_in(stewards, "dana")
    r = run(dana, {"kind": "dedupe", "mapping_a": "nickname=first_name"}, {"file_a": csv_part(files / "snap.csv")})
    assert r.status_code == 422
    assert 'href="#mapping-a">The mapping of file A, nickname: not a standard column' in summary(r.text)
    bad_yaml = ("mapping.yaml", b"given_name: [unclosed\n", "text/yaml")
    r = run(dana, {"kind": "dedupe"}, {"file_a": csv_part(files / "snap.csv"), "mapping_file_a": bad_yaml})
    assert r.status_code == 422
    assert 'href="#mapping-file-a">The mapping file of file A: not a readable YAML file' in summary(r.text)
    assert uploads_left(stewards) == []


def test_a_file_with_the_wrong_columns_is_refused_without_its_values(stewards: Site, files: Path) -> None:
    dana = signed_in(stewards, "dana")
    r = run(dana, {"kind": "dedupe"}, {"file_a": csv_part(files / "snap.csv")})  # first_name, not given_name
    assert r.status_code == 422
    errors = summary(r.text)
    assert 'href="#file-a">File A, given_name: missing column given_name' in errors
    assert 'href="#file-a">File A, dob: missing column dob' in errors
    assert str(data_dir(stewards)) not in r.text and "file-a.csv" not in r.text  # no server path
    unreadable = ("people.csv", b"\xff\xfe" + "record_id\n1\n".encode("utf-16-le"), "text/csv")
    r = run(dana, {"kind": "dedupe"}, {"file_a": unreadable})
    assert r.status_code == 422 and "File A: the file is UTF-16; save it as UTF-8" in summary(r.text)
    duplicate_ids = ("people.csv", b"record_id,given_name,surname,dob\n1,A,B,2000-01-01\n1,C,D,2001-01-01\n", "")
    r = run(dana, {"kind": "dedupe"}, {"file_a": duplicate_ids})
    assert r.status_code == 422 and "File A, record_id: record ids are not unique" in summary(r.text)
    assert not [v for v in identifier_values(files / "snap.csv") if v in r.text]
    assert uploads_left(stewards) == []
    linkage = data_dir(stewards) / "linkage"
    assert all((p / "web-job.json").is_file() for p in linkage.glob("lj-*"))  # a failed run leaves no job folder


def test_options_of_the_other_kind_are_refused(stewards: Site, files: Path) -> None:
    dana = signed_in(stewards, "dana")
    r = run(
        dana,
        {"kind": "dedupe", "one_to_one": "on", "mapping_b": "dob=birth_date", "index": "../escape"},
        {"file_a": csv_part(files / "snap.csv"), "file_b": csv_part(files / "tanf.csv")},
    )
    assert r.status_code == 422
    errors = summary(r.text)
    for field in ("file-b", "mapping-b", "one-to-one", "index"):
        assert f'href="#{field}"' in errors, field
    r = run(dana, {"kind": "link", "index": "county"}, {"file_a": csv_part(files / "snap.csv")})
    assert r.status_code == 422 and "A person index is for deduplication" in summary(r.text)
    r = run(dana, {"kind": "merge"}, {"file_a": csv_part(files / "snap.csv")})
    assert r.status_code == 422 and 'href="#kind-dedupe"' in summary(r.text)
    assert uploads_left(stewards) == []


def test_a_file_over_the_limit_is_refused_and_not_kept(
    stewards: Site, files: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dana = signed_in(stewards, "dana")
    big = b"record_id,given_name,surname,dob\n" + b"".join(b"%d,Ann,Smith,1980-01-02\n" % i for i in range(10))
    monkeypatch.setattr(linkage_pages, "FILE_LIMIT", len(big) - 1)
    r = run(dana, {"kind": "dedupe"}, {"file_a": ("big.csv", big, "text/csv")})
    assert r.status_code == 413
    assert 'href="#file-a">File A is larger than' in summary(r.text) and 'id="linkage-result"' not in r.text
    # A form longer than the limit is refused by its declared length, before any of it is read.
    monkeypatch.setattr(linkage_pages, "_body_limit", lambda: 4096)
    r = run(dana, {"kind": "dedupe"}, {"file_a": ("a.csv", big * 100, "text/csv")})
    assert r.status_code == 413 and "The upload is too large" in summary(r.text)
    # Sent without a length (chunked), it is refused as it streams in, past the limit.
    token = csrf_of(dana.get("/linkage").text)
    boundary = "sharewise-test-boundary"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="csrf_token"\r\n\r\n{token}\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="file_a"; filename="a.csv"\r\n'
        "Content-Type: text/csv\r\n\r\n"
    ).encode()

    def chunks() -> Iterator[bytes]:
        yield head
        for _ in range(100):
            yield big
        yield f"\r\n--{boundary}--\r\n".encode()

    r = dana.post(
        "/linkage/run", content=chunks(), headers={"Content-Type": f"multipart/form-data; boundary={boundary}"}
    )
    assert r.status_code == 413 and "The upload is too large" in summary(r.text)
    assert uploads_left(stewards) == []


def test_a_file_of_more_than_50_mb_is_refused(stewards: Site) -> None:
    dana = signed_in(stewards, "dana")
    huge = b"record_id,given_name,surname,dob\n" + b"x" * (50 * 1000 * 1000)
    r = run(dana, {"kind": "dedupe"}, {"file_a": ("huge.csv", huge, "text/csv")})
    assert r.status_code == 413 and 'href="#file-a">File A is larger than 50 MB' in summary(r.text)
    assert uploads_left(stewards) == []


def jobs_of(site: Site) -> list[Path]:
    return sorted((data_dir(site) / "linkage").glob("lj-*"))


def post_multipart(client: TestClient, body: bytes) -> Response:
    r: Response = client.post("/linkage/run", content=body, headers={"Content-Type": MULTIPART})
    return r


def test_a_form_without_a_file_part_or_not_sent_as_an_upload_is_refused(stewards: Site) -> None:
    dana = signed_in(stewards, "dana")
    token = csrf_of(dana.get("/linkage").text).encode()
    r = post_multipart(dana, multipart([("csrf_token", token), ("kind", b"link")]))  # no file inputs at all
    assert r.status_code == 422
    assert 'href="#file-a">Choose file A' in summary(r.text) and 'href="#file-b">Choose file B' in summary(r.text)
    r = dana.post("/linkage/run", data={"csrf_token": token.decode(), "kind": "dedupe"})  # url-encoded, no files
    assert r.status_code == 422 and "not sent as a file upload (multipart/form-data)" in r.text
    assert uploads_left(stewards) == []


def test_a_text_field_over_its_limit_is_refused_and_keeps_no_upload(stewards: Site, files: Path) -> None:
    dana = signed_in(stewards, "dana")
    token = csrf_of(dana.get("/linkage").text).encode()
    before = jobs_of(stewards)
    body = multipart(
        [
            ("csrf_token", token),
            ("kind", b"dedupe"),
            ("file_a", (files / "snap.csv").read_bytes(), "snap.csv"),
            ("mapping_a", b"x" * (linkage_pages.MAPPING_LIMIT + 1)),  # after the file: the file is written first
        ]
    )
    r = post_multipart(dana, body)
    assert r.status_code == 422 and "a form field is too long" in r.text and "mapping_a: at most 64 KiB" in r.text
    assert uploads_left(stewards) == [] and jobs_of(stewards) == before


def test_a_form_cut_short_or_abandoned_keeps_no_upload_and_runs_nothing(stewards: Site, files: Path) -> None:
    dana = signed_in(stewards, "dana")
    token = csrf_of(dana.get("/linkage").text).encode()
    before, runs = jobs_of(stewards), len(audited(stewards, "linkage-executed"))
    parts: list[Part] = [("csrf_token", token), ("kind", b"dedupe"), ("mapping_a", MAPPING_LINES.encode())]
    whole = multipart([*parts, ("file_a", (files / "snap.csv").read_bytes(), "snap.csv")])
    # The body ends without its closing boundary: the file may be whole, but the form is not.
    r = post_multipart(dana, whole[: -len(b"--\r\n")])
    assert r.status_code == 422 and "cut short or is malformed" in r.text and 'id="linkage-result"' not in r.text
    # The client goes away half way through the file (the server reads no more of it).
    cookie = "; ".join(f"{name}={value}" for name, value in dana.cookies.items())
    messages: list[dict[str, Any]] = [
        {"type": "http.request", "body": whole[: len(whole) // 2], "more_body": True},
        {"type": "http.disconnect"},
    ]

    async def receive() -> dict[str, Any]:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: MutableMapping[str, Any]) -> None:
        return None

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "https",
        "server": ("testserver", 443),
        "client": ("testclient", 50000),
        "root_path": "",
        "path": "/linkage/run",
        "raw_path": b"/linkage/run",
        "query_string": b"",
        "headers": [
            (b"host", b"testserver"),
            (b"cookie", cookie.encode()),
            (b"content-type", MULTIPART.encode()),
            (b"content-length", str(len(whole)).encode()),
        ],
    }
    with pytest.raises(ClientDisconnect):
        asyncio.run(stewards.app(scope, receive, send))
    assert uploads_left(stewards) == [] and jobs_of(stewards) == before
    assert len(audited(stewards, "linkage-executed")) == runs


def test_a_run_that_fails_keeps_no_upload_and_no_job(
    stewards: Site, files: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The uploads sit in a private (0700) directory while the service runs, and go with its job when it fails."""
    seen: dict[str, Any] = {}

    def failing(context: Any, user: Any, request: Any, uploads: dict[str, Path], job_id: str, folder: Path) -> None:
        seen["mode"] = uploads["file_a"].parent.stat().st_mode & 0o777
        seen["kept"] = uploads["file_a"].read_bytes() == (files / "snap.csv").read_bytes()
        (folder / "matches.csv").write_text("half written", encoding="utf-8")
        raise OSError("the disk is full")

    monkeypatch.setattr(linkage_pages, "_run", failing)
    dana = signed_in(stewards, "dana")
    before = jobs_of(stewards)
    with pytest.raises(OSError, match="the disk is full"):
        run(dana, {"kind": "dedupe", "mapping_a": MAPPING_LINES}, {"file_a": csv_part(files / "snap.csv")})
    assert seen == {"mode": 0o700, "kept": True}
    assert uploads_left(stewards) == [] and jobs_of(stewards) == before


def test_uploads_left_by_a_killed_run_are_removed_by_the_next_run(stewards: Site, files: Path) -> None:
    uploads = data_dir(stewards) / "linkage" / "uploads"
    stale, recent = uploads / "web-killed", uploads / "web-running"
    for folder in (stale, recent):
        folder.mkdir(parents=True)
        (folder / "file-a.csv").write_bytes((files / "snap.csv").read_bytes())
    two_days_ago = time.time() - 2 * 86400
    os.utime(stale, (two_days_ago, two_days_ago))
    dana = signed_in(stewards, "dana")
    assert run(dana, {"kind": "dedupe"}, {"file_a": csv_part(files / "snap.csv")}).status_code == 422
    assert not stale.exists() and (recent / "file-a.csv").is_file()  # another run may still be using it
    shutil.rmtree(recent)


@pytest.fixture
def foreign_jobs(stewards: Site, deduplicated: tuple[str, str]) -> Iterator[dict[str, str]]:
    """A job of the school district (dana's job, copied and re-owned) and a job the API ran (no web record)."""
    linkage = data_dir(stewards) / "linkage"
    job_id = deduplicated[0]
    theirs = "lj-20261125-00000000000000aa"
    shutil.copytree(linkage / job_id, linkage / theirs)
    record = json.loads((linkage / theirs / "web-job.json").read_text(encoding="utf-8"))
    record.update(job_id=theirs, agency="lakeview-schools", actor="sid")
    (linkage / theirs / "web-job.json").write_text(json.dumps(record), encoding="utf-8")
    api = "lj-20261125-0a0b0c0d"
    (linkage / api).mkdir()
    shutil.copy(linkage / job_id / "clusters.csv", linkage / api / "clusters.csv")
    yield {"ours": job_id, "theirs": theirs, "api": api}
    shutil.rmtree(linkage / theirs)
    shutil.rmtree(linkage / api)


def test_jobs_of_another_agency_and_malformed_ids_are_not_found(stewards: Site, foreign_jobs: dict[str, str]) -> None:
    dana, sid = signed_in(stewards, "dana"), signed_in(stewards, "sid")
    ours, theirs = foreign_jobs["ours"], foreign_jobs["theirs"]
    for job_id in (theirs, foreign_jobs["api"]):
        assert dana.get(f"/linkage/jobs/{job_id}").status_code == 404
        assert dana.get(f"/linkage/jobs/{job_id}/clusters.csv").status_code == 404
    assert sid.get(f"/linkage/jobs/{ours}").status_code == 404
    assert sid.get(f"/linkage/jobs/{ours}/clusters.csv").status_code == 404
    assert sid.get(f"/linkage/jobs/{theirs}/clusters.csv").status_code == 200  # their own
    assert theirs in sid.get("/linkage").text and ours not in sid.get("/linkage").text
    assert theirs not in dana.get("/linkage").text
    for bad in (
        ours.upper(),
        ours + "0",
        ours[:-1],
        "lj-1",
        "%2e%2e",
        "lj-20261125-0000000000000%2F",
        " " + ours,
    ):
        r = dana.get(f"/linkage/jobs/{bad}/clusters.csv")
        assert r.status_code == 404, bad
        assert dana.get(f"/linkage/jobs/{bad}").status_code == 404, bad
    for name in ("web-job.json", "matches.csv", "..%2Fweb-job.json", "clusters.csv%00", "CLUSTERS.CSV"):
        assert dana.get(f"/linkage/jobs/{ours}/{name}").status_code == 404, name
    for user in ("rosa", "audrey"):
        r = signed_in(stewards, user).get(f"/linkage/jobs/{ours}/clusters.csv")
        assert r.status_code == 403 and "may not run record linkage" in r.text


# In a real browser: the form, its errors and a result meet WCAG 2.1 AA (axe-core) ------------------


def test_the_linkage_pages_have_no_wcag_aa_violations(
    browser: Browser,  # noqa: F811
    base_url: str,  # noqa: F811
    stewards: Site,
    files: Path,
) -> None:
    found: dict[str, list[dict[str, Any]]] = {}

    def check(name: str) -> None:
        found[name] = axe_violations(page)
        shot(page, f"linkage-{name}")

    page = sign_in(browser, base_url, stewards, "dana")
    page.goto(f"{base_url}/linkage")
    check("form")
    page.click("form[action='/linkage/run'] button[type=submit]")  # no file chosen
    assert page.locator("#error-summary").is_visible() and page.locator("#file-a-error").is_visible()
    check("form-error")
    snap = (files / "snap.csv").read_bytes()
    page.set_input_files("#file-a", files=FilePayload(name="snap.csv", mimeType="text/csv", buffer=snap))
    page.fill("#mapping-a", MAPPING_LINES)
    page.click("form[action='/linkage/run'] button[type=submit]", timeout=120_000)
    page.wait_for_selector("#linkage-result", timeout=120_000)
    assert page.locator("#linkage-counts").is_visible()
    check("result")
    page.context.close()
    assert len(found) == 3 and not any(found.values()), {k: v for k, v in found.items() if v}
