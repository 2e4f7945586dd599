"""The share run pages without a browser: start from the plan, follow the steps, download, refusals."""

from __future__ import annotations

import csv
import datetime as dt
import html
import io
import json
import re
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient

from sharewise.security import cms
from sharewise.security.keys import FileKeyProvider
from sharewise.services import audit as audit_service
from sharewise.services import shares
from sharewise.services.share_jobs import JOBS, WORK, jobs_for
from sharewise.web import share_pages  # noqa: F401  (adds the routes before the site's app is made)
from tests.pipeline.certs import make_recipient
from tests.pipeline.data import HEADER, client_rows
from tests.web.conftest import Site, csrf_of, signed_in
from tests.web.test_record_pages import (  # noqa: F401  (people is a fixture)
    active,
    new_agreement,
    people,
    plan,
    share_files,
    summary,
)

TMP = tempfile.gettempdir()
WAIT = 60.0


@pytest.fixture(scope="module")
def recipient(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return make_recipient(tmp_path_factory.mktemp("recipient"))


def runnable(site: Site, law: Any) -> str:
    """An active agreement of the county with its pseudonym key: a share may run under it."""
    agreement_id = active(site, law)
    FileKeyProvider(site.control.settings.keys).create_pseudonym_key(agreement_id)
    return agreement_id


def source_csv(rows: int = 30, extra: str = "") -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(HEADER)
    writer.writerows(client_rows(rows))
    return (out.getvalue() + extra).encode("utf-8")


def run_files(agreement_id: str, cert: Path | None, **changes: Any) -> dict[str, Any]:
    """The plan page's files with the whole source, and a new share id each run (a package is never replaced)."""
    files = share_files(agreement_id, **{"share_id": None, **changes})
    files["source_file"] = ("clients.csv", source_csv(), "text/csv")
    if cert is not None:
        files["certificate_file"] = ("recipient.pem", cert.read_bytes(), "application/x-pem-file")
    return files


def start(client: TestClient, files: dict[str, Any], data: dict[str, str] | None = None) -> Any:
    token = csrf_of(client.get("/shares/runs").text)
    return client.post("/shares/runs", data={"csrf_token": token, **(data or {})}, files=files, follow_redirects=False)


def job_id_of(response: Any) -> str:
    assert response.status_code == 303, response.text[:3000]
    match = re.fullmatch(r"/shares/runs/(sj-[0-9a-f]{32})", response.headers["location"])
    assert match, response.headers["location"]
    return match.group(1)


def data_dir(site: Site) -> Path:
    assert site.control.settings.data_dir is not None
    return site.control.settings.data_dir


def leftovers(site: Site) -> list[str]:
    work = data_dir(site) / JOBS / WORK
    return [p.name for p in work.iterdir() if p.name.startswith("uploads-")] if work.is_dir() else []


def test_a_steward_runs_a_planned_share_and_follows_it_to_its_package(
    people: Site,  # noqa: F811
    law: Any,
    recipient: tuple[Path, Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cert, key = recipient
    agreement_id = runnable(people, law)
    dana = signed_in(people, "dana")
    planned = plan(dana, share_files(agreement_id))
    assert planned.status_code == 200 and 'id="run-form"' in planned.text
    run_form = planned.text[planned.text.index('id="run-form"') :]
    assert 'name="source_file"' in run_form and 'name="certificate_file"' in run_form
    shared = re.search(r'name="share_yaml" value="([^"]*)"', run_form)
    assert shared and f"agreement: {agreement_id}" in shared.group(1).replace("&#39;", "'")

    gate = threading.Event()
    real = cms.envelope

    def envelope_at_the_gate(*args: Any, **kwargs: Any) -> Any:
        assert gate.wait(WAIT)
        return real(*args, **kwargs)

    monkeypatch.setattr(cms, "envelope", envelope_at_the_gate)
    files = run_files(agreement_id, cert)
    texts = {
        "share_yaml": files.pop("share_file")[1].decode(),
        "dictionary_yaml": files.pop("dictionary_file")[1].decode(),
    }
    job_id = job_id_of(start(dana, files, texts))  # as the plan page's form sends it: the texts, then the files
    jobs = jobs_for(people.control)
    try:
        deadline = time.monotonic() + WAIT
        while not any(s.description.startswith("signing") for s in jobs.read(people.control, "dana", job_id).steps):
            assert time.monotonic() < deadline, "the run never reached its signing step"
            time.sleep(0.02)
        page = dana.get(f"/shares/runs/{job_id}")
        assert page.status_code == 200 and "The share run has started" in page.text
        assert 'hx-trigger="every 1s"' in page.text and f'hx-get="/shares/runs/{job_id}/status?seen=' in page.text
        refresh = (
            f'<noscript><meta http-equiv="refresh" content="3; url=/shares/runs/{job_id}?refresh=auto"></noscript>'
        )
        assert refresh in page.text
        assert 'id="job-announcement" class="usa-sr-only" role="status" aria-live="polite"' in page.text
        assert "signing and encrypting the package</th><td>running" in page.text
        version = jobs.read(people.control, "dana", job_id).version
        changed = dana.get(f"/shares/runs/{job_id}/status?seen=queued-0-0")
        assert 'hx-swap-oob="innerHTML">Running, step' in changed.text and "<html" not in changed.text
        same = dana.get(f"/shares/runs/{job_id}/status?seen={version}")
        assert "hx-swap-oob" not in same.text and 'hx-trigger="every 1s"' in same.text  # said once only
    finally:
        gate.set()
    jobs.wait(job_id, WAIT)

    done = dana.get(f"/shares/runs/{job_id}/status?seen={version}")
    assert "hx-trigger" not in done.text and "hx-get" not in done.text  # polling stops
    assert 'hx-swap-oob="innerHTML">Succeeded: 30 rows in the package' in done.text
    page = dana.get(f"/shares/runs/{job_id}").text
    assert "http-equiv" not in page and 'id="job-state">Succeeded<' in page
    job = jobs.read(people.control, "dana", job_id)
    assert job.result is not None
    assert 'id="result-rows">30<' in page and job.result.sha256 in page and f"{job.share_id}.p7m" in page
    download = dana.get(f"/shares/runs/{job_id}/package")
    assert download.status_code == 200 and download.headers["cache-control"] == "no-store"
    assert download.headers["content-type"] == "application/pkcs7-mime"
    assert download.headers["content-disposition"] == f'attachment; filename="{job.share_id}.p7m"'
    received = Path(tempfile.mkdtemp()) / "package.p7m"
    received.write_bytes(download.content)
    assert shares.verify_package(received, cert, key).manifest["output"]["rows"] == 30
    executed = [
        r
        for r in audit_service.log(people.control, "audrey", "share", job.share_id, 10)
        if r["action"] == "share-executed"
    ]
    assert [(r["actor"], r["source"]) for r in executed] == [("dana", "web")]
    assert leftovers(people) == []  # the uploaded source and certificate are gone


def test_a_failed_run_shows_its_message_and_code(people: Site, law: Any, recipient: tuple[Path, Path]) -> None:  # noqa: F811
    agreement_id = runnable(people, law)
    dana = signed_in(people, "dana")
    files = run_files(agreement_id, recipient[0])
    files["source_file"] = ("clients.csv", source_csv(5, "C9,Zebulon Quirke,extra\n"), "text/csv")
    job_id = job_id_of(start(dana, files))
    jobs_for(people.control).wait(job_id, WAIT)
    page = dana.get(f"/shares/runs/{job_id}").text
    error = page[page.index('id="job-error"') :]
    assert "The run failed" in error and "<code>invalid_data</code>" in error and "<li>source.csv: " in error
    assert "Zebulon" not in page and TMP not in page and "/shares/runs/" + job_id + "/package" not in page
    assert leftovers(people) == []


def test_a_run_form_with_problems_shows_every_one_and_keeps_nothing(
    people: Site,  # noqa: F811
    law: Any,
    recipient: tuple[Path, Path],
) -> None:
    agreement_id = runnable(people, law)
    dana = signed_in(people, "dana")
    no_source = run_files(agreement_id, recipient[0])
    del no_source["source_file"]
    not_a_certificate = run_files(agreement_id, None)
    not_a_certificate["certificate_file"] = ("recipient.pem", b"not a certificate", "application/x-pem-file")
    cases = [
        (no_source, 422, ['href="#source-file"', "Choose the source file"]),
        (  # no upload, and the share file's certificate is outside the data directory
            run_files(agreement_id, None),
            422,
            ['href="#certificate-file"', "Not a file in the server&#39;s data directory"],
        ),
        (not_a_certificate, 422, ['href="#certificate-file"', "Not a readable X.509 certificate"]),
        (run_files(agreement_id, recipient[0], needs=["client_id", "no_such_column"]), 422, ["no_such_column"]),
        (run_files(new_agreement(people, law), recipient[0]), 409, ["a share runs only under an active agreement"]),
        (run_files(active(people, law), recipient[0]), 409, ["has no pseudonym key"]),
        (
            run_files(agreement_id, recipient[0], source={"postgres": {"table": "t"}}),
            422,
            ["a PostgreSQL source is planned with"],
        ),
    ]
    before = set((data_dir(people) / JOBS).glob("*.json"))
    for files, status, expected in cases:
        r = start(dana, files)
        assert r.status_code == status, (expected, r.status_code, r.text[:2000])
        errors = summary(r.text)
        for text in expected:
            assert text in errors, (text, errors)
        assert TMP not in errors and str(data_dir(people)) not in errors and "/etc/" not in errors
        assert 'name="share_yaml"' in r.text and agreement_id[:6] in r.text  # the definition is kept in the form
    assert leftovers(people) == [] and set((data_dir(people) / JOBS).glob("*.json")) == before  # no job started


def test_share_runs_are_for_data_stewards_and_need_the_csrf_token(
    people: Site,  # noqa: F811
    law: Any,
    recipient: tuple[Path, Path],
) -> None:
    agreement_id = runnable(people, law)
    for user in ("rosa", "audrey"):
        client = signed_in(people, user)
        assert client.get("/shares/runs").status_code == 403
        token = csrf_of(client.get("/").text)
        r = client.post("/shares/runs", data={"csrf_token": token}, files=run_files(agreement_id, recipient[0]))
        assert r.status_code == 403 and "may not run shares" in r.text
    dana = signed_in(people, "dana")
    dana.get("/shares/runs")
    before = set((data_dir(people) / JOBS).glob("*.json"))
    forged = dana.post("/shares/runs", data={"csrf_token": "forged"}, files=run_files(agreement_id, recipient[0]))
    assert forged.status_code == 403 and "did not come from this site" in forged.text
    assert set((data_dir(people) / JOBS).glob("*.json")) == before and leftovers(people) == []
    theirs = new_agreement(people, law, requester="skye")  # the school district's: the county is no party to it
    refused = start(dana, run_files(theirs, recipient[0]))
    assert refused.status_code == 403 and "their agency is not a party" in refused.text


def test_a_run_is_read_by_its_owner_auditors_and_administrators_and_downloaded_by_the_first_two(
    people: Site,  # noqa: F811
    law: Any,
    recipient: tuple[Path, Path],
) -> None:
    agreement_id = runnable(people, law)
    dana = signed_in(people, "dana")
    job_id = job_id_of(start(dana, run_files(agreement_id, recipient[0])))
    jobs_for(people.control).wait(job_id, WAIT)
    runs = dana.get("/shares/runs").text
    assert f'href="/shares/runs/{job_id}"' in runs  # listed among her recent runs
    assert "its package are deleted 7 days after it ends" in runs
    audrey = signed_in(people, "audrey")
    assert 'id="download-package"' in audrey.get(f"/shares/runs/{job_id}").text
    assert audrey.get(f"/shares/runs/{job_id}/package").status_code == 200
    ada = signed_in(people, "ada")
    page = ada.get(f"/shares/runs/{job_id}")
    assert page.status_code == 200 and 'id="download-package"' not in page.text
    assert ada.get(f"/shares/runs/{job_id}/package").status_code == 403
    for user in ("rosa", "olive"):
        client = signed_in(people, user)
        assert client.get(f"/shares/runs/{job_id}").status_code == 403
        assert client.get(f"/shares/runs/{job_id}/package").status_code == 403
    assert dana.get(f"/shares/runs/sj-{'0' * 32}").status_code == 404
    assert dana.get("/shares/runs/not-a-job").status_code == 404


def test_a_poll_after_the_session_ended_sends_the_page_to_sign_in(people: Site) -> None:  # noqa: F811
    anonymous = TestClient(people.app, base_url="https://testserver")
    job = f"sj-{'1' * 32}"
    r = anonymous.get(f"/shares/runs/{job}/status", headers={"HX-Request": "true"}, follow_redirects=False)
    assert r.status_code == 204 and r.headers["hx-redirect"] == f"/sign-in?next=/shares/runs/{job}"
    page = anonymous.get(f"/shares/runs/{job}", follow_redirects=False)
    assert page.status_code == 303 and page.headers["location"].startswith("/sign-in")


def test_the_share_file_travels_with_the_run_form_exactly(people: Site, law: Any) -> None:  # noqa: F811
    """The plan page hands its share file to the run form in a hidden field; newlines and quotes survive."""
    agreement_id = runnable(people, law)
    dana = signed_in(people, "dana")
    files = share_files(agreement_id)
    text = files["share_file"][1].decode() + "# a 'comment' with \"quotes\" & <angle> brackets\n"
    files["share_file"] = ("share.yaml", text.encode(), "text/yaml")
    page = plan(dana, files).text
    value = re.search(r'name="share_yaml" value="([^"]*)"', page[page.index('id="run-form"') :])
    assert value is not None
    assert html.unescape(value.group(1)) == text and yaml.safe_load(html.unescape(value.group(1)))["agreement"]


def package_events(site: Site, share_id: str) -> list[tuple[str, str, str, str]]:
    return [
        (r["action"], r["actor"], r["source"], r["outcome"])
        for r in reversed(audit_service.log(site.control, "audrey", "share", share_id, 50))
        if r["action"].startswith("package-")
    ]


def test_each_download_of_a_package_from_the_page_and_each_refusal_is_audited(
    people: Site,  # noqa: F811
    law: Any,
    recipient: tuple[Path, Path],
) -> None:
    agreement_id = runnable(people, law)
    dana = signed_in(people, "dana")
    job_id = job_id_of(start(dana, run_files(agreement_id, recipient[0])))
    jobs = jobs_for(people.control)
    jobs.wait(job_id, WAIT)
    job = jobs.read(people.control, "dana", job_id)
    assert job.result is not None
    page = dana.get(f"/shares/runs/{job_id}").text
    expires = jobs.expires_at(job)
    assert expires is not None and f"deleted after {expires:%Y-%m-%d %H:%M} UTC" in page
    assert package_events(people, job.share_id) == []  # showing the page is no download
    assert dana.get(f"/shares/runs/{job_id}/package").status_code == 200
    for user in ("ada", "olive"):  # its agency's administrator reads the run, but neither takes the package
        assert signed_in(people, user).get(f"/shares/runs/{job_id}/package").status_code == 403
    assert package_events(people, job.share_id) == [
        ("package-downloaded", "dana", "web", "success"),
        ("package-download-refused", "ada", "web", "failure"),
        ("package-download-refused", "olive", "web", "failure"),
    ]
    record = next(
        r
        for r in audit_service.log(people.control, "audrey", "share", job.share_id, 50)
        if r["action"] == "package-downloaded"
    )
    assert record["agency"] == "lakeview-dhs" and json.loads(record["details"]) == {
        "job": job_id,
        "package": f"{job.share_id}.p7m",
        "package_sha256": job.result.sha256,
        "bytes": job.result.package_bytes,
    }


def test_polling_a_run_checks_the_session_but_never_keeps_it_alive(
    people: Site,  # noqa: F811
    law: Any,
    recipient: tuple[Path, Path],
) -> None:
    agreement_id = runnable(people, law)
    dana = signed_in(people, "dana")
    job_id = job_id_of(start(dana, run_files(agreement_id, recipient[0])))
    jobs_for(people.control).wait(job_id, WAIT)
    page, status, poll = f"/shares/runs/{job_id}", f"/shares/runs/{job_id}/status", {"HX-Request": "true"}
    auto = f"{page}?refresh=auto"

    def idle(minutes: int) -> None:
        people.clock.offset += dt.timedelta(minutes=minutes)

    # htmx polls: the session is checked each time, and ends 15 minutes after the person's last request.
    assert dana.get(page).status_code == 200
    idle(10)
    assert 'id="job-state">Succeeded<' in dana.get(status, headers=poll).text
    assert dana.get(auto).status_code == 200
    idle(6)
    ended = dana.get(status, headers=poll)
    assert ended.status_code == 204 and ended.headers["hx-redirect"] == f"/sign-in?next={page}"
    after = dana.get(page, follow_redirects=False)
    assert after.status_code == 303 and after.headers["location"] == f"/sign-in?next={page}"
    assert "Your session ended after 15 minutes without activity" in dana.get(after.headers["location"]).text

    # The page's own refresh without JavaScript: the same, and it sends the browser to sign in.
    dana = signed_in(people, "dana")
    assert dana.get(page).status_code == 200
    idle(10)
    assert dana.get(auto).status_code == 200 and dana.get(status, headers=poll).status_code == 200
    idle(6)
    refreshed = dana.get(auto, follow_redirects=False)
    assert refreshed.status_code == 303 and refreshed.headers["location"] == f"/sign-in?next={page}"
    assert "Your session ended after 15 minutes" in dana.get(refreshed.headers["location"]).text

    # What a person asks for does count: their session lives on while polls come and go.
    dana = signed_in(people, "dana")
    assert dana.get(page).status_code == 200
    idle(10)
    assert dana.get("/shares/runs").status_code == 200
    idle(10)
    assert dana.get(status, headers=poll).status_code == 200 and dana.get(auto).status_code == 200
    # A request for the fragment that is not an htmx poll, once the session has ended: to sign in, back to the page.
    idle(16)
    plain = dana.get(status, follow_redirects=False)
    assert plain.status_code == 303 and plain.headers["location"] == f"/sign-in?next={page}"


def parquet_of(data: bytes) -> bytes:
    """CSV records as Parquet, every column text."""
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    options = pacsv.ConvertOptions(column_types={name: pa.string() for name in HEADER})
    table = pacsv.read_csv(io.BytesIO(data), convert_options=options)
    out = io.BytesIO()
    pq.write_table(table, out)
    return out.getvalue()


def test_a_parquet_upload_runs_and_a_file_that_is_not_what_the_share_file_says_is_refused(
    people: Site,  # noqa: F811
    law: Any,
    recipient: tuple[Path, Path],
) -> None:
    agreement_id = runnable(people, law)
    dana = signed_in(people, "dana")
    parquet = parquet_of(source_csv(25))
    files = run_files(agreement_id, recipient[0], source={"parquet": "clients.parquet"})
    files["source_file"] = ("clients.parquet", parquet, "application/vnd.apache.parquet")
    job_id = job_id_of(start(dana, files))
    jobs = jobs_for(people.control)
    jobs.wait(job_id, WAIT)
    job = jobs.read(people.control, "dana", job_id)
    assert job.state == "succeeded" and job.result is not None, job.error
    assert job.result.rows == 25 and 'id="result-rows">25<' in dana.get(f"/shares/runs/{job_id}").text
    assert leftovers(people) == []

    as_parquet = run_files(agreement_id, recipient[0], source={"parquet": "clients.parquet"})  # a CSV file
    as_csv = run_files(agreement_id, recipient[0])
    as_csv["source_file"] = ("clients.csv", parquet, "text/csv")
    before = set((data_dir(people) / JOBS).glob("*.json"))
    for files, expected in (
        (as_parquet, "The share file&#39;s source says parquet:, but this file is not a Parquet file"),
        (as_csv, "This is a Parquet file, but the share file&#39;s source says csv:"),
    ):
        r = start(dana, files)
        assert r.status_code == 422, r.text[:2000]
        errors = summary(r.text)
        assert 'href="#source-file"' in errors and expected in errors, errors
        assert TMP not in errors and str(data_dir(people)) not in errors
    assert leftovers(people) == [] and set((data_dir(people) / JOBS).glob("*.json")) == before


def test_a_share_file_asking_for_bytes_tokens_runs_from_the_page_and_its_package_says_so(
    people: Site,  # noqa: F811
    law: Any,
    recipient: tuple[Path, Path],
    tmp_path: Path,
) -> None:
    import pyarrow.parquet as pq

    agreement_id = runnable(people, law)
    dana = signed_in(people, "dana")
    job_id = job_id_of(start(dana, run_files(agreement_id, recipient[0], token_format="bytes")))
    jobs = jobs_for(people.control)
    jobs.wait(job_id, WAIT)
    job = jobs.read(people.control, "dana", job_id)
    assert job.state == "succeeded" and job.result is not None, job.error
    got = tmp_path / "got"
    verified = shares.verify_package(data_dir(people) / job.result.package, recipient[0], recipient[1], extract_to=got)
    assert verified.manifest["output"]["token_format"] == "bytes"
    tokens = pq.read_table(got / "data" / "part-0.parquet").column("client_id").to_pylist()
    assert len(tokens) == 30 and all(isinstance(t, bytes) and len(t) == 32 for t in tokens)

    refused = start(dana, run_files(agreement_id, recipient[0], token_format="bytes", output="csv"))
    assert refused.status_code == 422 and "only for parquet output" in summary(refused.text)
