"""How to call the data, audit, security and accounting routes in the authorization matrix (merged into CASES)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sharewise.consent.fhir import to_fhir
from sharewise.domain.consent import ConsentRecord
from sharewise.security.keys import FileKeyProvider
from sharewise.services import agreement_registry
from tests.api.conftest import CONSENT, PERMITTED, World
from tests.pipeline.certs import make_recipient
from tests.pipeline.data import write_clients

Call = tuple[str, dict[str, Any] | None]
PERSON = {"given_name": "Ana", "family_name": "Example", "date_of_birth": "1990-04-02"}
SHARE = {
    "agreement": "agr-matrix",
    "request": PERMITTED,
    "dictionary": "none.yaml",
    "source": {"csv": "none.csv"},
    "needs": ["client_id"],
}

_JOBS: dict[str, str] = {}  # data directory -> its job


def share_job(w: World) -> str:
    """A share job of agency A's data steward, under an active agreement of A (one per world)."""
    base = w.control.settings.data_dir
    assert base is not None
    if str(base) not in _JOBS:
        folder = base / "matrix-job"
        folder.mkdir(parents=True)
        write_clients(folder, 5)
        make_recipient(folder)
        agreement = w.new_agreement("agency-a", submitted=True, recipient_agency="agency-b")
        agreement_registry.sign(w.control, "approver-a", agreement, "discloser")
        agreement_registry.sign(w.control, "approver-b", agreement, "recipient")
        agreement_registry.activate(w.control, "administrator-a", agreement)
        FileKeyProvider(w.control.settings.keys).create_pseudonym_key(agreement)
        body = {
            "agreement": agreement,
            "request": PERMITTED,
            "dictionary": "matrix-job/dictionary.yaml",
            "source": {"csv": "matrix-job/clients.csv"},
            "needs": ["client_id", "first_name"],
            "pseudonymize": ["client_id"],
            "recipient_certificate": "matrix-job/recipient-cert.pem",
        }
        r = w.client.post("/api/v1/shares/jobs", headers=w.h("data_steward"), json=body)
        assert r.status_code == 202, r.text
        _JOBS[str(base)] = str(r.json()["id"])
    return _JOBS[str(base)]


CASES: dict[tuple[str, str], Callable[[World, str], Call]] = {
    ("GET", "/api/v1/audit/records"): lambda w, r: ("/api/v1/audit/records?limit=5", None),
    ("POST", "/api/v1/audit/checkpoints"): lambda w, r: ("/api/v1/audit/checkpoints", None),
    ("GET", "/api/v1/audit/export"): lambda w, r: ("/api/v1/audit/export", None),
    ("GET", "/api/v1/audit/public-key"): lambda w, r: ("/api/v1/audit/public-key", None),
    ("POST", "/api/v1/accounting/csv"): lambda w, r: ("/api/v1/accounting/csv", {"person": PERSON}),
    ("POST", "/api/v1/accounting/pdf"): lambda w, r: ("/api/v1/accounting/pdf", {"person": PERSON}),
    ("POST", "/api/v1/accounting/fhir"): lambda w, r: ("/api/v1/accounting/fhir", {"person": PERSON}),
    ("POST", "/api/v1/consents/fhir"): lambda w, r: (
        "/api/v1/consents/fhir",
        to_fhir(ConsentRecord.model_validate(CONSENT)),
    ),
    ("GET", "/api/v1/consents/{consent_id}/fhir"): lambda w, r: (f"/api/v1/consents/{w.new_consent()}/fhir", None),
    ("POST", "/api/v1/consent-forms"): lambda w, r: ("/api/v1/consent-forms", {"request": PERMITTED, "format": "html"}),
    ("POST", "/api/v1/security/categorization"): lambda w, r: (
        "/api/v1/security/categorization",
        {"request": PERMITTED},
    ),
    ("POST", "/api/v1/security/specification"): lambda w, r: (
        "/api/v1/security/specification",
        {"request": PERMITTED},
    ),
    ("POST", "/api/v1/security/assessment"): lambda w, r: ("/api/v1/security/assessment", {"request": PERMITTED}),
    ("POST", "/api/v1/security/five-safes"): lambda w, r: ("/api/v1/security/five-safes", {"request": PERMITTED}),
    ("POST", "/api/v1/shares/plan"): lambda w, r: ("/api/v1/shares/plan", SHARE),
    ("POST", "/api/v1/shares/runs"): lambda w, r: ("/api/v1/shares/runs", {**SHARE, "agreement": w.new_agreement()}),
    ("GET", "/api/v1/shares/runs/{share_id}"): lambda w, r: ("/api/v1/shares/runs/s-matrix", None),
    ("POST", "/api/v1/shares/jobs"): lambda w, r: ("/api/v1/shares/jobs", {**SHARE, "agreement": w.new_agreement()}),
    ("GET", "/api/v1/shares/jobs/{job_id}"): lambda w, r: (f"/api/v1/shares/jobs/{share_job(w)}", None),
    ("GET", "/api/v1/shares/jobs/{job_id}/package"): lambda w, r: (f"/api/v1/shares/jobs/{share_job(w)}/package", None),
    ("POST", "/api/v1/linkage/jobs"): lambda w, r: ("/api/v1/linkage/jobs", {"kind": "dedupe", "file_a": "none.csv"}),
}
