"""The data, audit, security, consent-document and accounting routes, end to end, with their refusals."""

from __future__ import annotations

import base64
import csv
import io
import json
import zipfile
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pytest
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.consent import Consent
from sqlalchemy import select

from sharewise.audit.trail import canonical
from sharewise.linkage.evaluate import febrl4
from sharewise.pipeline.synth import generate
from sharewise.security.keys import FileKeyProvider
from sharewise.services import agreement_registry, shares
from sharewise.services import audit as audit_service
from sharewise.store.schema import audit_records
from tests.api.conftest import CONSENT, PERMITTED, World
from tests.conftest import TODAY
from tests.pipeline.certs import make_recipient

API = "/api/v1"
# Medicaid eligibility data to the TANF unit, as in the demo chain: permitted, and listed in HIPAA's accounting.
MEDICAID_TO_TANF = {
    "source": {"program": "medicaid"},
    "recipient": {"name": "Lakeview County DHS, TANF Unit", "kind": "state_or_local_agency", "program": "tanf"},
    "purpose": "eligibility_determination",
    "data": ["identity", "eligibility_and_benefits"],
    "form": "identified",
    "facts": {"hipaa_public_benefit_sharing_authorized": True},
}
SUD_TO_CHILD_WELFARE = {
    "source": {"program": "sud_treatment"},
    "recipient": {"name": "Lakeview child welfare", "kind": "state_or_local_agency", "program": "child_welfare"},
    "purpose": "care_coordination",
    "data": ["sud_treatment_information"],
    "form": "identified",
}
# SSA data may not go on to another agency, consent or not (42 U.S.C. 1306; 20 CFR 401).
CONSENT_CANNOT_HELP = {
    "source": {"program": "snap"},
    "recipient": {"kind": "state_or_local_agency"},
    "purpose": "eligibility_determination",
    "data": ["ssa_data"],
    "form": "identified",
}
SYNTH_MAPPING = {"given_name": "first_name", "surname": "last_name", "dob": "birth_date", "street_address": "street"}


def problem_of(response: Any, status: int, code: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    if code is not None:
        assert body["code"] == code, body
    return body


def locations(body: dict[str, Any]) -> list[str]:
    return [p["location"] for p in body["problems"]]


def data_dir(world: World) -> Path:
    base = world.control.settings.data_dir
    assert base is not None
    return base


def audit_actions(world: World, subject_type: str, subject_id: str) -> list[tuple[str, str, str]]:
    with world.control.store.transaction() as conn:
        rows = conn.execute(
            select(audit_records.c.action, audit_records.c.actor, audit_records.c.source)
            .where(audit_records.c.subject_type == subject_type, audit_records.c.subject_id == subject_id)
            .order_by(audit_records.c.seq)
        ).all()
    return [(r.action, r.actor, r.source) for r in rows]


# Files in the server's data directory --------------------------------------------------------------


@pytest.fixture(scope="module")
def medicaid(world: World) -> dict[str, Any]:
    """Synthetic Medicaid records, their dictionary and a recipient certificate, in the data directory."""
    base = data_dir(world)
    generate(base / "medicaid", people=60, programs=("medicaid",), seed=7, today=TODAY)
    (base / "certs").mkdir()
    cert, key = make_recipient(base / "certs")
    with (base / "medicaid" / "medicaid.csv").open(encoding="utf-8") as handle:
        first = next(csv.DictReader(handle))
    person = {
        "given_name": first["first_name"],
        "family_name": first["last_name"],
        "date_of_birth": first["birth_date"],
    }
    return {"cert": cert, "key": key, "person": person}


def active_agreement(world: World, agency: str = "agency-a") -> str:
    """An agreement taken through review and both signatures to active, with its pseudonym key."""
    other = "agency-b" if agency == "agency-a" else "agency-a"
    agreement_id = world.new_agreement(agency, submitted=True, recipient_agency=other)
    agreement_registry.sign(world.control, f"approver-{agency[-1]}", agreement_id, "discloser")
    agreement_registry.sign(world.control, f"approver-{other[-1]}", agreement_id, "recipient")
    agreement_registry.activate(world.control, f"administrator-{agency[-1]}", agreement_id)
    shares.create_key(FileKeyProvider(world.control.settings.keys), agreement_id)
    return agreement_id


def share_body(agreement_id: str, **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "agreement": agreement_id,
        "request": MEDICAID_TO_TANF,
        "dictionary": "medicaid/dictionary-medicaid.yaml",
        "source": {"csv": "medicaid/medicaid.csv"},
        "needs": ["record_id", "first_name", "last_name", "birth_date", "eligibility_group", "ssn", "email"],
        "pseudonymize": ["record_id"],
        "recipient_certificate": "certs/recipient-cert.pem",
    }
    body.update(changes)
    return body


@pytest.fixture(scope="module")
def published(world: World, medicaid: dict[str, Any]) -> dict[str, Any]:
    """One share run through the API by agency A's data steward (repeated once with the same key)."""
    agreement_id = active_agreement(world)
    body = share_body(agreement_id, share_id=f"{agreement_id}-first")
    headers = {**world.h("data_steward"), "Idempotency-Key": "first-run"}
    first = world.client.post(f"{API}/shares/runs", headers=headers, json=body)
    assert first.status_code == 201, first.text
    again = world.client.post(f"{API}/shares/runs", headers=headers, json=body)
    return {"agreement": agreement_id, "body": body, "first": first, "again": again, **medicaid}


# Shares ------------------------------------------------------------------------------------------


def test_a_share_plan_lists_what_leaves_and_what_stays_with_reasons(world: World, medicaid: dict[str, Any]) -> None:
    r = world.client.post(f"{API}/shares/plan", headers=world.h("data_steward"), json=share_body("agr-plan"))
    assert r.status_code == 200, r.text
    plan = r.json()
    assert plan["outcome"] == "permitted" and plan["form"] == "identified"
    assert plan["authorities"] and all(a["outcome"] == "permitted" for a in plan["authorities"])
    kept = {f["name"]: f["transform"] for f in plan["fields"]}
    assert kept["record_id"] == "pseudonymize" and "eligibility_group" in kept
    dropped = {d["name"]: d["reason"] for d in plan["dropped"]}
    assert "email" in dropped and "street" in dropped  # contact is not in the request; street was not needed
    assert all(reason for reason in dropped.values())
    assert plan["output"] == {"format": "parquet", "parquet_encodings": "compatible", "token_format": "bytes"}
    assert any("does not replace legal advice" in notice for notice in plan["notices"])


def test_parquet_encodings_are_one_of_two_and_only_for_parquet(world: World, medicaid: dict[str, Any]) -> None:
    headers = world.h("data_steward")
    unknown = world.client.post(
        f"{API}/shares/plan", headers=headers, json=share_body("agr-plan", parquet_encodings="v3")
    )
    assert unknown.status_code == 422 and "parquet_encodings" in unknown.text
    csv_v2 = world.client.post(
        f"{API}/shares/plan", headers=headers, json=share_body("agr-plan", parquet_encodings="v2", output="csv")
    )
    assert csv_v2.status_code == 422 and "only for parquet output" in csv_v2.text
    v2 = world.client.post(f"{API}/shares/plan", headers=headers, json=share_body("agr-plan", parquet_encodings="v2"))
    assert v2.status_code == 200, v2.text


def test_the_token_format_is_hex_or_bytes_and_bytes_only_for_parquet(world: World, medicaid: dict[str, Any]) -> None:
    headers = world.h("data_steward")
    unknown = world.client.post(f"{API}/shares/plan", headers=headers, json=share_body("agr-plan", token_format="b64"))
    assert unknown.status_code == 422 and "token_format" in unknown.text
    csv_bytes = world.client.post(
        f"{API}/shares/plan", headers=headers, json=share_body("agr-plan", token_format="bytes", output="csv")
    )
    assert csv_bytes.status_code == 422 and "only for parquet output" in csv_bytes.text
    planned = world.client.post(
        f"{API}/shares/plan", headers=headers, json=share_body("agr-plan", token_format="bytes")
    )
    assert planned.status_code == 200, planned.text
    assert planned.json()["output"]["token_format"] == "bytes"  # as the manifest will record it


def test_a_share_plan_is_refused_unless_the_determination_permits(world: World, medicaid: dict[str, Any]) -> None:
    refused = world.client.post(
        f"{API}/shares/plan",
        headers=world.h("data_steward"),
        json=share_body("agr-plan", request={**MEDICAID_TO_TANF, "facts": {}}),
    )
    assert problem_of(refused, 409, "not_permitted")["problems"]


def test_a_published_share_is_a_verified_package_and_one_disclosure(world: World, published: dict[str, Any]) -> None:
    result = published["first"].json()
    assert result["share_id"] == f"{published['agreement']}-first"
    assert result["package"] == f"packages/{result['share_id']}.p7m"
    with (data_dir(world) / "medicaid" / "medicaid.csv").open(encoding="utf-8") as handle:
        assert result["rows"] == sum(1 for _ in csv.DictReader(handle))
    package = data_dir(world) / result["package"]
    verified = shares.verify_package(package, published["cert"], published["key"])
    manifest = verified.manifest
    assert manifest["output"]["rows"] == result["rows"] > 0
    assert manifest["agreement_id"] == published["agreement"] and result["pseudonym_key_id"]
    assert "email" not in result["columns"] and "ssn" in result["columns"]
    assert {d["name"] for d in result["dropped"]} >= {"email", "street"}
    # The repeat with the same Idempotency-Key replays the answer and discloses nothing more.
    again = published["again"]
    assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == result
    actions = audit_actions(world, "share", result["share_id"])
    assert [a for a, _, _ in actions] == ["disclosure-recorded", "share-executed"]
    assert actions[1] == ("share-executed", "data_steward-a", "api")


def test_the_run_status_is_the_shares_audit_events(world: World, published: dict[str, Any]) -> None:
    share_id = published["first"].json()["share_id"]
    r = world.client.get(f"{API}/shares/runs/{share_id}", headers=world.h("auditor", "agency-b"))
    assert r.status_code == 200, r.text
    status = r.json()
    assert status["status"] == "published"
    assert [e["action"] for e in status["events"]] == ["disclosure-recorded", "share-executed"]
    assert status["events"][1]["details"]["rows"] == published["first"].json()["rows"]
    problem_of(world.client.get(f"{API}/shares/runs/no-such-share", headers=world.h("auditor")), 404, "not_found")
    problem_of(world.client.get(f"{API}/shares/runs/{share_id}", headers=world.h("data_steward")), 403)


def test_a_share_runs_only_for_stewards_of_the_agreements_agencies(world: World, published: dict[str, Any]) -> None:
    body = share_body(published["agreement"])
    problem_of(world.client.post(f"{API}/shares/runs", headers=world.h("requester"), json=body), 403)
    problem_of(world.client.post(f"{API}/shares/plan", headers=world.h("requester"), json=body), 403)
    agency_a_only = share_body(world.new_agreement())  # agency-a's alone: agency-b is no party to it
    other = world.client.post(f"{API}/shares/runs", headers=world.h("data_steward", "agency-b"), json=agency_a_only)
    assert "agency is not a party" in problem_of(other, 403, "access_denied")["detail"]
    unknown = world.client.post(f"{API}/shares/runs", headers=world.h("data_steward"), json=share_body("agr-none"))
    problem_of(unknown, 404, "not_found")


def test_a_share_runs_only_under_an_active_agreement(world: World, medicaid: dict[str, Any]) -> None:
    draft = world.new_agreement()
    r = world.client.post(f"{API}/shares/runs", headers=world.h("data_steward"), json=share_body(draft))
    assert "a share runs only under an active agreement" in problem_of(r, 409, "invalid_state")["detail"]
    assert not audit_actions(world, "share", f"{draft}-x")


def test_share_paths_outside_the_data_directory_are_refused(
    world: World, published: dict[str, Any], tmp_path: Path
) -> None:
    outside = tmp_path / "elsewhere.csv"
    outside.write_text((data_dir(world) / "medicaid" / "medicaid.csv").read_text(encoding="utf-8"), encoding="utf-8")
    link = data_dir(world) / "medicaid" / "link-out.csv"
    link.unlink(missing_ok=True)
    link.symlink_to(outside)
    h = world.h("data_steward")
    for path in (str(outside), "../elsewhere.csv", "medicaid/../../elsewhere.csv", "medicaid/link-out.csv"):
        for route in ("plan", "runs"):
            r = world.client.post(
                f"{API}/shares/{route}", headers=h, json=share_body(published["agreement"], source={"csv": path})
            )
            body = problem_of(r, 403, "access_denied")
            assert locations(body) == ["share: source.csv"], path
            assert str(tmp_path) not in r.text and str(data_dir(world)) not in r.text
    r = world.client.post(
        f"{API}/shares/plan", headers=h, json=share_body("agr-plan", recipient_certificate="/etc/hostname")
    )
    assert locations(problem_of(r, 403)) == ["share: recipient_certificate"]


def test_share_problems_name_data_directory_paths_not_server_paths(world: World, medicaid: dict[str, Any]) -> None:
    r = world.client.post(
        f"{API}/shares/plan", headers=world.h("data_steward"), json=share_body("agr-plan", dictionary="missing.yaml")
    )
    body = problem_of(r, 422, "invalid_data")
    assert locations(body) == ["missing.yaml"]
    assert str(data_dir(world)) not in r.text


def test_a_malformed_share_definition_is_a_validation_problem(world: World) -> None:
    h = world.h("data_steward")
    for bad in (
        {**share_body("agr-1"), "dsn": "postgresql://elsewhere/db"},
        share_body("agr-1", source={"postgres": {"table": "clients", "dsn": "postgresql://elsewhere/db"}}),
        share_body("agr-1", source={"csv": "a.csv", "parquet": "b.parquet"}),
        share_body("agr-1", needs=[]),
        share_body("../agr"),
    ):
        body = problem_of(world.client.post(f"{API}/shares/plan", headers=h, json=bad), 422, "invalid_request")
        assert body["problems"]


# Accounting --------------------------------------------------------------------------------------


def test_the_accounting_comes_as_csv(world: World, published: dict[str, Any]) -> None:
    r = world.client.post(f"{API}/accounting/csv", headers=world.h("auditor"), json={"person": published["person"]})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "text/csv; charset=utf-8"
    assert 'filename="accounting.csv"' in r.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert len(rows) == 1
    assert rows[0]["recipient"] == "Lakeview County DHS, TANF Unit" and rows[0]["required_by"] == "hipaa"
    disclosed = world.client.get(
        f"{API}/audit/records?subject_type=share&subject_id={published['first'].json()['share_id']}",
        headers=world.h("auditor"),
    ).json()["items"]
    assert rows[0]["date"] == next(e["at"][:10] for e in disclosed if e["action"] == "disclosure-recorded")


def test_the_accounting_comes_as_a_pdf(world: World, published: dict[str, Any]) -> None:
    r = world.client.post(
        f"{API}/accounting/pdf", headers=world.h("data_steward"), json={"person": published["person"]}
    )
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/pdf"
    assert r.content.startswith(b"%PDF-") and len(r.content) > 1000


def test_a_name_that_looks_like_markup_still_prints(world: World) -> None:
    person = {"given_name": "<b>Ana", "family_name": "Ex & Ample", "date_of_birth": "1990-04-02"}
    r = world.client.post(f"{API}/accounting/pdf", headers=world.h("auditor"), json={"person": person})
    assert r.status_code == 200, r.text
    assert r.content.startswith(b"%PDF-")


def test_the_accounting_comes_as_fhir_audit_events(world: World, published: dict[str, Any]) -> None:
    r = world.client.post(
        f"{API}/accounting/fhir",
        headers=world.h("auditor"),
        json={"person": published["person"], "person_reference": "Patient/p-42"},
    )
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/fhir+json"
    bundle = r.json()
    Bundle.model_validate(bundle)
    [entry] = bundle["entry"]
    event = entry["resource"]
    assert event["resourceType"] == "AuditEvent" and event["type"]["code"] == "110106"
    assert event["entity"][0]["what"]["reference"] == "Patient/p-42"
    assert event["entity"][1]["what"]["identifier"]["value"] == published["first"].json()["share_id"]


def test_accountings_are_for_stewards_and_auditors_and_need_a_person(world: World) -> None:
    person = {"given_name": "Ana", "family_name": "Example", "date_of_birth": "1990-04-02"}
    for form in ("csv", "pdf", "fhir"):
        problem_of(
            world.client.post(f"{API}/accounting/{form}", headers=world.h("requester"), json={"person": person}), 403
        )
        bad = world.client.post(f"{API}/accounting/{form}", headers=world.h("auditor"), json={"since": "2026-01-01"})
        assert locations(problem_of(bad, 422, "invalid_request")) == ["body.person"]
        assert "1990-04-02" not in bad.text
    wrong = world.client.post(
        f"{API}/accounting/fhir", headers=world.h("auditor"), json={"person": person, "person_reference": "x y"}
    )
    problem_of(wrong, 422, "invalid_request")
    nobody = world.client.post(f"{API}/accounting/csv", headers=world.h("auditor"), json={"person": person})
    assert nobody.status_code == 200 and nobody.text.splitlines()[1:] == []


# Audit -------------------------------------------------------------------------------------------


def test_auditors_page_the_audit_log_newest_first(world: World) -> None:
    request_id = world.new_request()
    h = world.h("auditor", "agency-b")
    first = world.client.get(f"{API}/audit/records?limit=3", headers=h).json()
    seqs = [r["seq"] for r in first["items"]]
    assert len(seqs) == 3 and seqs == sorted(seqs, reverse=True) and first["next_offset"] == 3
    second = world.client.get(f"{API}/audit/records?limit=3&offset=3", headers=h).json()
    assert [r["seq"] for r in second["items"]] == [seqs[-1] - 1, seqs[-1] - 2, seqs[-1] - 3]
    mine = world.client.get(
        f"{API}/audit/records?subject_type=sharing_request&subject_id={request_id}", headers=h
    ).json()
    assert [r["action"] for r in mine["items"]] == ["request-created"] and mine["next_offset"] is None
    assert isinstance(mine["items"][0]["details"], dict) and mine["items"][0]["source"] == "api"
    for role in ("administrator", "security_officer", "data_steward"):
        problem_of(world.client.get(f"{API}/audit/records", headers=world.h(role)), 403, "access_denied")
    problem_of(world.client.get(f"{API}/audit/records?limit=0", headers=h), 422, "invalid_request")
    problem_of(world.client.get(f"{API}/audit/records"), 401)


def test_a_signed_checkpoint_verifies_the_chain_outside_the_database(world: World, tmp_path: Path) -> None:
    r = world.client.post(f"{API}/audit/checkpoints", headers=world.h("security_officer"))
    assert r.status_code == 201, r.text
    checkpoint = r.json()
    assert checkpoint["type"] == "checkpoint" and checkpoint["seq"] > 0 and checkpoint["signature"]
    key = world.client.get(f"{API}/audit/public-key", headers=world.h("requester"))
    assert key.headers["content-type"] == "application/x-pem-file"
    assert key.text.startswith("-----BEGIN PUBLIC KEY-----") and key.headers["sharewise-key-id"] == checkpoint["key_id"]
    kept, pem = tmp_path / "checkpoints.jsonl", tmp_path / "audit.pub.pem"
    kept.write_text(canonical(checkpoint) + "\n", encoding="utf-8")
    pem.write_text(key.text, encoding="utf-8")
    assert audit_service.verify(world.control, [kept], pem).ok
    forged = {**checkpoint, "signature": base64.b64encode(bytes(64)).decode()}
    kept.write_text(canonical(forged) + "\n", encoding="utf-8")
    assert not audit_service.verify(world.control, [kept], pem).ok
    problem_of(world.client.post(f"{API}/audit/checkpoints", headers=world.h("requester")), 403)


def test_the_audit_export_is_the_file_the_cli_writes(world: World, tmp_path: Path) -> None:
    world.client.post(f"{API}/audit/checkpoints", headers=world.h("auditor"))
    r = world.client.get(f"{API}/audit/export", headers=world.h("auditor"))
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/x-ndjson"
    lines = [json.loads(line) for line in r.text.splitlines()]
    records = [line for line in lines if line["type"] == "record"]
    assert len(records) == int(r.headers["sharewise-records"]) and any(x["type"] == "checkpoint" for x in lines)
    assert records[-1]["action"] == "audit-exported" and records[-1]["source"] == "api"
    cli_file = tmp_path / "cli.jsonl"
    audit_service.export(world.control, cli_file, "auditor-a")
    cli_lines = cli_file.read_text(encoding="utf-8").splitlines()
    exported = r.text.splitlines()
    assert cli_lines[: len(records)] == exported[: len(records)]  # the CLI's later export holds the same records
    for role in ("administrator", "data_steward"):
        problem_of(world.client.get(f"{API}/audit/export", headers=world.h(role)), 403)


# Consent documents -------------------------------------------------------------------------------


def test_a_consent_goes_out_and_back_in_as_fhir(world: World) -> None:
    consent_id = world.new_consent()
    r = world.client.get(f"{API}/consents/{consent_id}/fhir", headers=world.h("data_steward"))
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/fhir+json"
    resource = r.json()
    Consent.model_validate(resource)
    assert resource["id"] == consent_id and resource["contained"][0]["resourceType"] == "Patient"
    assert ("consent-exported", "data_steward-a", "api") in audit_actions(world, "consent", consent_id)
    imported = world.client.post(
        f"{API}/consents/fhir",
        headers={**world.h("requester", "agency-b"), "Content-Type": "application/fhir+json"},
        content=json.dumps(resource),
    )
    assert imported.status_code == 201, imported.text
    new_id = imported.json()["id"]
    assert new_id != consent_id
    shown = world.client.get(f"{API}/consents/{new_id}", headers=world.h("requester", "agency-b")).json()
    assert shown["agency"] == "agency-b"  # recorded for the importer's agency, whatever the resource said
    assert shown["data"] == CONSENT["data"] and shown["purposes"] == CONSENT["purposes"]
    problem_of(world.client.get(f"{API}/consents/{new_id}", headers=world.h("requester")), 403)


def test_fhir_consent_export_is_for_stewards_of_the_consents_agency(world: World) -> None:
    consent_id = world.new_consent()
    problem_of(world.client.get(f"{API}/consents/{consent_id}/fhir", headers=world.h("requester")), 403)
    problem_of(world.client.get(f"{API}/consents/{consent_id}/fhir", headers=world.h("auditor")), 403)
    problem_of(world.client.get(f"{API}/consents/{consent_id}/fhir", headers=world.h("data_steward", "agency-b")), 403)
    problem_of(world.client.get(f"{API}/consents/c-nope/fhir", headers=world.h("data_steward")), 404, "not_found")
    assert "consent-exported" not in [a for a, _, _ in audit_actions(world, "consent", consent_id)]


def test_an_invalid_fhir_consent_is_refused_without_echoing_identifiers(world: World) -> None:
    consent_id = world.new_consent()
    resource = world.client.get(f"{API}/consents/{consent_id}/fhir", headers=world.h("data_steward")).json()
    h = world.h("data_steward")
    no_patient = {k: v for k, v in resource.items() if k not in ("contained", "patient")}
    r = world.client.post(f"{API}/consents/fhir", headers=h, json=no_patient)
    assert "no contained Patient" in problem_of(r, 422, "invalid_data")["detail"]
    broken = {**resource, "provision": "everything"}
    r = world.client.post(f"{API}/consents/fhir", headers=h, json=broken)
    body = problem_of(r, 422, "invalid_data")
    assert body["problems"] and all(loc.startswith("consent: ") for loc in locations(body))
    assert "Example" not in r.text and "/tmp" not in r.text
    problem_of(world.client.post(f"{API}/consents/fhir", headers=world.h("auditor"), json=resource), 403)


@pytest.mark.parametrize(
    ("fmt", "media_type", "magic"),
    [
        ("pdf", "application/pdf", b"%PDF-"),
        ("docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document", b"PK"),
        ("html", "text/html; charset=utf-8", b"<!DOCTYPE html>"),
    ],
)
def test_a_consent_form_is_generated_in_each_format(world: World, fmt: str, media_type: str, magic: bytes) -> None:
    r = world.client.post(
        f"{API}/consent-forms", headers=world.h("requester"), json={"request": SUD_TO_CHILD_WELFARE, "format": fmt}
    )
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == media_type
    assert r.headers["content-disposition"] == f'attachment; filename="consent-form.{fmt}"'
    assert r.content.lstrip().startswith(magic)
    if fmt == "docx":
        text = zipfile.ZipFile(io.BytesIO(r.content)).read("word/document.xml").decode("utf-8")
        assert "42 CFR" in text
    if fmt == "html":
        assert "Lakeview child welfare" in r.text


def test_a_consent_form_is_refused_where_consent_cannot_help(world: World) -> None:
    h = world.h("requester")
    r = world.client.post(f"{API}/consent-forms", headers=h, json={"request": CONSENT_CANNOT_HELP, "format": "pdf"})
    assert locations(problem_of(r, 409, "not_permitted")) == ["authority ssa"]
    bad = world.client.post(f"{API}/consent-forms", headers=h, json={"request": {**PERMITTED, "purpose": "fun"}})
    body = problem_of(bad, 422, "invalid_request")
    assert all(loc.startswith("request") for loc in locations(body)) and "/tmp" not in bad.text
    problem_of(world.client.post(f"{API}/consent-forms", headers=h, json={"request": PERMITTED, "format": "rtf"}), 422)


# Security ----------------------------------------------------------------------------------------


def test_a_share_is_categorized_with_its_reasons(world: World) -> None:
    r = world.client.post(f"{API}/security/categorization", headers=world.h("requester"), json={"request": PERMITTED})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["overall"] in ("low", "moderate", "high") and body["baselines"]
    assert body["categorization"]["reasons"]
    unknown = world.client.post(
        f"{API}/security/categorization",
        headers=world.h("requester"),
        json={"request": PERMITTED, "facts": {"no_such_fact": True}},
    )
    assert locations(problem_of(unknown, 422, "invalid_data")) == ["facts.no_such_fact"]


def test_only_security_officers_change_a_categorization_and_it_is_audited(world: World) -> None:
    change = {"request": PERMITTED, "changes": {"availability": "high"}, "justification": "benefits cut-off dates"}
    problem_of(world.client.post(f"{API}/security/categorization", headers=world.h("requester"), json=change), 403)
    unjustified = {**change, "justification": None}
    r = world.client.post(f"{API}/security/categorization", headers=world.h("security_officer"), json=unjustified)
    assert locations(problem_of(r, 422, "invalid_data")) == ["justification"]
    r = world.client.post(f"{API}/security/categorization", headers=world.h("security_officer"), json=change)
    assert r.status_code == 200, r.text
    assert r.json()["categorization"]["availability"] == "high"
    actions = audit_actions(world, "security-categorization", "snap-state_or_local_agency-eligibility_determination")
    assert ("categorization-raised", "security_officer-a", "api") in actions


def test_the_specification_comes_as_json_or_oscal(world: World) -> None:
    h = world.h("legal_reviewer")
    spec = world.client.post(f"{API}/security/specification", headers=h, json={"request": PERMITTED}).json()
    assert len(spec["specification_sha256"]) == 64 and spec["safeguards"]
    profile = world.client.post(
        f"{API}/security/specification", headers=h, json={"request": PERMITTED, "oscal": "profile"}
    ).json()
    assert profile["profile"]["imports"] and profile["profile"]["metadata"]["title"]
    component = world.client.post(
        f"{API}/security/specification", headers=h, json={"request": PERMITTED, "oscal": "component-definition"}
    ).json()
    assert "component-definition" in component
    bad = world.client.post(f"{API}/security/specification", headers=h, json={"request": PERMITTED, "oscal": "ssp"})
    assert locations(problem_of(bad, 422, "invalid_request")) == ["body.oscal"]


def _answered(form: dict[str, Any]) -> dict[str, Any]:
    for entry in form["answers"].values():
        entry["status"] = "implemented"
        entry["evidence"] = [{"ref": "https://grc.example.org/doc/ssp-2026", "description": "System security plan"}]
    return form


def test_a_recipients_answers_are_assessed_with_a_plan_for_each_gap(world: World) -> None:
    h = world.h("security_officer")
    blank = world.client.post(
        f"{API}/security/assessment", headers=h, json={"request": PERMITTED, "recipient": "TANF unit"}
    ).json()
    assert blank["recipient"] == "TANF unit" and all(a["status"] is None for a in blank["answers"].values())
    answers = _answered(blank)
    clean = world.client.post(f"{API}/security/assessment", headers=h, json={"request": PERMITTED, "answers": answers})
    assert clean.status_code == 200, clean.text
    assert clean.json()["gaps"] == [] and clean.json()["answered"] == len(answers["answers"])
    item = next(iter(answers["answers"]))
    answers["answers"][item]["status"] = "planned"
    answers["answers"][item]["plan"] = {"action": "Deploy account reviews", "due": "2027-01-31"}
    gapped = world.client.post(f"{API}/security/assessment", headers=h, json={"request": PERMITTED, "answers": answers})
    result = gapped.json()
    assert [g["item"] for g in result["gaps"]] == [item]
    assert result["plan"][0]["due"] == "2027-01-31" and result["plan"][0]["proposed_by"] == "recipient"
    del answers["answers"][item]
    missing = world.client.post(
        f"{API}/security/assessment", headers=h, json={"request": PERMITTED, "answers": answers}
    )
    assert locations(problem_of(missing, 422, "invalid_data")) == [f"answers: answers.{item}"]
    problem_of(
        world.client.post(f"{API}/security/assessment", headers=world.h("requester"), json={"request": PERMITTED}), 403
    )


def test_the_five_safes_summary_names_the_authorized_users(world: World) -> None:
    r = world.client.post(
        f"{API}/security/five-safes",
        headers=world.h("approver"),
        json={"request": PERMITTED, "users": ["analyst Jo Ortiz (TANF unit)"]},
    )
    assert r.status_code == 200, r.text
    safes = {s["name"]: s for s in r.json()["safes"]}
    assert list(safes) == ["project", "people", "setting", "data", "outputs"]
    assert any("Jo Ortiz" in p for p in safes["people"]["points"])
    bad = world.client.post(
        f"{API}/security/five-safes", headers=world.h("approver"), json={"request": PERMITTED, "x": 1}
    )
    problem_of(bad, 422, "invalid_request")


# Linkage -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def febrl(world: World) -> dict[str, str]:
    """600 FEBRL4 originals and their corrupted duplicates; file A names its columns its own way."""
    a, b, truth_a, truth_b = febrl4()
    keep = {str(i) for i in range(600)}
    a = a.filter(pa.array([e in keep for e in truth_a.column("entity_id").to_pylist()]))
    b = b.filter(pa.array([e in keep for e in truth_b.column("entity_id").to_pylist()]))
    folder = data_dir(world) / "febrl"
    folder.mkdir(parents=True, exist_ok=True)
    renamed = {"given_name": "first_name", "surname": "last_name", "dob": "birth_date"}
    pacsv.write_csv(a.rename_columns([renamed.get(c, c) for c in a.column_names]), folder / "a.csv")
    pacsv.write_csv(b, folder / "b.csv")
    entity = dict(zip(truth_a.column("record_id").to_pylist(), truth_a.column("entity_id").to_pylist(), strict=True))
    entity.update(zip(truth_b.column("record_id").to_pylist(), truth_b.column("entity_id").to_pylist(), strict=True))
    return entity


@pytest.fixture(scope="module")
def people(world: World) -> Path:
    """SNAP records of 300 synthetic people (nicknames, typos, moves, duplicates within the program)."""
    folder = data_dir(world) / "people"
    generate(folder, people=300, programs=("snap",), seed=3, today=TODAY)
    return folder


def test_a_link_job_matches_two_files_in_the_data_directory(world: World, febrl: dict[str, str]) -> None:
    body = {
        "kind": "link",
        "file_a": "febrl/a.csv",
        "file_b": "febrl/b.csv",
        "mapping_a": {"given_name": "first_name", "surname": "last_name", "dob": "birth_date"},
        "threshold": 0.5,
        "one_to_one": True,
    }
    r = world.client.post(f"{API}/linkage/jobs", headers=world.h("data_steward"), json=body)
    assert r.status_code == 201, r.text
    job = r.json()
    assert job["output"] == f"linkage/{job['job_id']}/matches.csv" and job["rows"] > 0
    with (data_dir(world) / job["output"]).open(encoding="utf-8") as handle:
        pairs = list(csv.DictReader(handle))
    right = sum(febrl[p["left_id"]] == febrl[p["right_id"]] for p in pairs)
    assert len(pairs) == job["rows"] == job["details"]["matches"]
    assert right / len(pairs) >= 0.98 and right / 600 >= 0.95  # precision and recall floors
    assert ("linkage-executed", "data_steward-a", "api") in audit_actions(world, "linkage", "matches.csv")


def test_a_dedupe_job_keeps_a_person_index_by_name(world: World, people: Path) -> None:
    body = {"kind": "dedupe", "file_a": "people/snap.csv", "mapping_a": SYNTH_MAPPING, "index": "county"}
    r = world.client.post(f"{API}/linkage/jobs", headers=world.h("data_steward"), json=body)
    assert r.status_code == 201, r.text
    job = r.json()
    assert job["output"].endswith("/clusters.csv") and job["details"]["batch"] == 1
    assert 0 < job["details"]["persons"] <= job["rows"]
    assert (data_dir(world) / "linkage" / "indexes" / "county.duckdb").is_file()


def test_linkage_jobs_are_refused_outside_the_data_directory_and_to_other_roles(
    world: World, people: Path, tmp_path: Path
) -> None:
    h = world.h("data_steward")
    outside = {"kind": "dedupe", "file_a": str(tmp_path / "x.csv"), "mapping_a": SYNTH_MAPPING}
    assert locations(problem_of(world.client.post(f"{API}/linkage/jobs", headers=h, json=outside), 403)) == ["file_a"]
    up = {"kind": "link", "file_a": "people/snap.csv", "file_b": "../../x.csv"}
    assert locations(problem_of(world.client.post(f"{API}/linkage/jobs", headers=h, json=up), 403)) == ["file_b"]
    for bad in (
        {"kind": "link", "file_a": "people/snap.csv"},
        {"kind": "dedupe", "file_a": "people/snap.csv", "file_b": "people/tanf.csv"},
        {"kind": "dedupe", "file_a": "people/snap.csv", "index": "../escape"},
        {"kind": "merge", "file_a": "people/snap.csv"},
    ):
        problem_of(world.client.post(f"{API}/linkage/jobs", headers=h, json=bad), 422, "invalid_request")
    unmapped = {"kind": "dedupe", "file_a": "people/snap.csv", "mapping_a": {"nickname": "first_name"}}
    body = problem_of(world.client.post(f"{API}/linkage/jobs", headers=h, json=unmapped), 422, "invalid_data")
    assert locations(body) == ["mapping_a.nickname"]
    too_long = {"kind": "dedupe", "file_a": "x" * 600}
    assert locations(problem_of(world.client.post(f"{API}/linkage/jobs", headers=h, json=too_long), 422)) == ["file_a"]
    missing = {"kind": "dedupe", "file_a": "people/none.csv"}
    assert problem_of(world.client.post(f"{API}/linkage/jobs", headers=h, json=missing), 404)["code"] == "not_found"
    ok = {"kind": "dedupe", "file_a": "people/snap.csv", "mapping_a": SYNTH_MAPPING}
    problem_of(world.client.post(f"{API}/linkage/jobs", headers=world.h("requester"), json=ok), 403)
    problem_of(world.client.post(f"{API}/linkage/jobs", json=ok), 401)


# Every route of this module wants a token ---------------------------------------------------------


def test_every_data_route_refuses_a_call_without_a_token(world: World) -> None:
    calls = [
        ("GET", "/audit/records"),
        ("POST", "/audit/checkpoints"),
        ("GET", "/audit/export"),
        ("GET", "/audit/public-key"),
        ("POST", "/accounting/csv"),
        ("POST", "/accounting/pdf"),
        ("POST", "/accounting/fhir"),
        ("POST", "/consents/fhir"),
        ("GET", "/consents/c-1/fhir"),
        ("POST", "/consent-forms"),
        ("POST", "/security/categorization"),
        ("POST", "/security/specification"),
        ("POST", "/security/assessment"),
        ("POST", "/security/five-safes"),
        ("POST", "/shares/plan"),
        ("POST", "/shares/runs"),
        ("GET", "/shares/runs/s-1"),
        ("POST", "/linkage/jobs"),
    ]
    for method, path in calls:
        r = world.client.request(method, API + path, json={} if method == "POST" else None)
        assert r.status_code == 401, (method, path)
        assert r.headers["www-authenticate"].startswith("Bearer")
