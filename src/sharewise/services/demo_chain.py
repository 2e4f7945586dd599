"""The whole-chain demo: a request reviewed and approved, an agreement signed, a share run, accounted for."""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from sharewise.domain.consent import PersonIdentifiers
from sharewise.pipeline.duckdb_backend import DuckDBBackend
from sharewise.pipeline.synth import generate
from sharewise.policy.model import LawPack
from sharewise.security.keys import FileKeyProvider
from sharewise.security.secrets import FileSecrets
from sharewise.services import accounting, agreement_registry, documents, initiatives, shares
from sharewise.services import audit as audit_service
from sharewise.services import workflow as wf
from sharewise.wiring import Control, Settings, control_for

DEMO_DATA = Path(__file__).resolve().parents[1] / "data" / "demo"

REQUEST = {
    "source": {"agency": "Lakeview County DHS, Medicaid Division", "program": "medicaid"},
    "recipient": {"name": "Lakeview County DHS, TANF Unit", "kind": "state_or_local_agency", "program": "tanf"},
    "purpose": "eligibility_determination",
    "data": ["identity", "eligibility_and_benefits"],
    "form": "identified",
    "facts": {"hipaa_public_benefit_sharing_authorized": True},
}


@dataclass(frozen=True)
class ChainStep:
    """One step of the chain and what it produced."""

    title: str
    result: str


def run_chain(
    workdir: Path, law: LawPack, people: int = 1000, say: Callable[[ChainStep], None] | None = None
) -> list[ChainStep]:
    """Run the chain in a fresh workspace (its own SQLite store, keys directory and files)."""
    steps: list[ChainStep] = []

    def step(title: str, result: str) -> None:
        item = ChainStep(title, result)
        steps.append(item)
        if say:
            say(item)

    workdir.mkdir(parents=True, exist_ok=True)
    settings = workspace_settings(workdir)
    control = control_for(settings)
    today = control.trail.clock().date()
    _people_and_places(control)
    step("Directory", "agencies dhs (Medicaid) and tanf; requester, reviewers and approvers with separate roles")

    proposal = initiatives.parse_proposal(
        {
            "name": "Lakeview family stability partnership",
            "vision": "Families apply once; programs coordinate, with privacy built in.",
            "agencies": ["dhs", "tanf"],
            "sponsors": [{"name": "Jordan Ellis", "agency": "dhs", "title": "Director"}],
            "stakeholders": [{"group": "lived_experience_and_advocates", "name": "Parent advisory council"}],
        },
        "demo initiative",
    )
    initiative = initiatives.create(control, "tara", proposal)
    step("Initiative", f"{initiative}: vision, sponsor, stakeholders, the toolkit's ten steps")

    request_id = wf.create_request(
        control,
        law,
        "tara",
        "Medicaid enrollment for TANF eligibility",
        "TANF workers verify Medicaid enrollment instead of asking families for proof.",
        REQUEST,
        recipient_agency="dhs",
        initiative_id=initiative,
    )
    wf.submit(control, "tara", request_id)
    wf.review(control, law, "paul", request_id, "approve", "identity and eligibility only: minimum necessary")
    wf.review(control, law, "lena", request_id, "approve", None)
    record = wf.show(control, "lena", request_id)
    outcome = record.determination["outcome"] if record.determination else "?"
    pathways = ", ".join(a["pathway"] for a in (record.determination or {}).get("authorities", []) if a["pathway"])
    wf.review(control, law, "sam", request_id, "approve", "safeguards specification accepted")
    step("Request", f"{request_id}: program, legal (determination {outcome}: {pathways}) and security reviews")
    wf.approve(control, "dana", request_id, "approve", None)
    wf.approve(control, "tom", request_id, "approve", None)
    step("Approval", "leadership of both agencies approved")

    request_file = workdir / "request.yaml"
    request_file.write_text(yaml.safe_dump(REQUEST, sort_keys=False), encoding="utf-8")
    parties_file = DEMO_DATA / "parties.yaml"
    agreement_doc = workdir / "agreement.docx"
    documents.draft_agreement_file(law, request_file, parties_file, "docx", agreement_doc, today)
    agreement_id = agreement_registry.record_draft(
        control, law, "tara", request_file, parties_file, agreement_doc, request_id=request_id
    )
    agreement_registry.submit_for_review(control, "tara", agreement_id)
    agreement_registry.sign(control, "dana", agreement_id, "discloser")
    agreement_registry.sign(control, "tom", agreement_id, "recipient")
    agreement_registry.activate(control, "dana", agreement_id)
    wf.execute_agreement(control, "dana", request_id, agreement_id)
    step(
        "Agreement",
        f"{agreement_id}: drafted with its required clauses ({agreement_doc.name}), signed by both parties, active",
    )

    synth = generate(workdir / "synthetic", people=people, programs=("medicaid",), seed=11, today=today)
    del synth
    cert = _recipient_certificate(workdir)
    keys = FileKeyProvider(settings.keys / "shares")
    keys.create_pseudonym_key(agreement_id)
    definition = shares.parse_share(
        {
            "share_id": f"{agreement_id}-first",
            "agreement": agreement_id,
            "request": REQUEST,
            "dictionary": str(workdir / "synthetic" / "dictionary-medicaid.yaml"),
            "source": {"csv": str(workdir / "synthetic" / "medicaid.csv")},
            "needs": ["record_id", "first_name", "last_name", "birth_date", "eligibility_group", "enrollment_date"],
            "pseudonymize": ["record_id"],
            "recipient_certificate": str(cert),
        },
        law,
        workdir,
    )
    backend = DuckDBBackend(threads=2)
    try:
        result = shares.run(
            control,
            definition,
            law,
            today,
            backend,
            keys,
            workdir / "packages",
            "steward",
            person_index_key=FileSecrets(settings.keys).key("person-index"),
        )
    finally:
        backend.close()
    dropped = len(result.plan.spec.dropped)
    step(
        "Share",
        f"{result.extract.rows} records, {len(result.extract.columns)} fields ({dropped} withheld), record id pseudonymized; encrypted package {result.package.path.name}",
    )

    report = audit_service.verify(control)
    step("Audit trail", f"{'intact' if report.ok else 'TAMPERED'}: {report.records} records verified")

    first = next(csv.DictReader((workdir / "synthetic" / "medicaid.csv").open(encoding="utf-8")))
    person = PersonIdentifiers(
        given_name=first["first_name"],
        family_name=first["last_name"],
        date_of_birth=dt.date.fromisoformat(first["birth_date"]),
    )
    acc = accounting.accounting_for(control, law, person, None, "privacy-officer")
    listed = "; ".join(
        f"{e.at.date()} to {e.recipient} for {e.purpose} ({'; '.join(e.citations)})" for e in acc.entries
    )
    step("Accounting of disclosures", f"for one synthetic person: {listed or 'nothing listed'}")
    control.store.dispose()
    return steps


def _people_and_places(control: Control) -> None:
    wf.add_agency(control, "dhs", "Lakeview County DHS (Medicaid Division)", None)
    wf.add_user(control, "ada", "Ada Admin", "dhs", {"administrator"}, None)
    wf.add_agency(control, "tanf", "Lakeview County DHS (TANF Unit)", "ada")
    for uid, name, agency, roles in PEOPLE:
        wf.add_user(control, uid, name, agency, roles, "ada")


# user id, name, agency, roles (besides Ada, dhs's administrator, who registers everyone)
PEOPLE: list[tuple[str, str, str, set[str]]] = [
    ("tia", "Tia TANF Administrator", "tanf", {"administrator"}),
    ("tara", "Tara Requester", "tanf", {"requester"}),
    ("paul", "Paul Program", "dhs", {"program_reviewer"}),
    ("lena", "Lena Legal", "dhs", {"legal_reviewer"}),
    ("sam", "Sam Security", "dhs", {"security_officer"}),
    ("dana", "Dana Director", "dhs", {"approver"}),
    ("tom", "Tom TANF Director", "tanf", {"approver"}),
    ("steward", "Data Steward", "dhs", {"data_steward"}),
    ("privacy-officer", "Privacy Officer", "dhs", {"auditor"}),
]


def workspace_settings(workdir: Path) -> Settings:
    """The settings of a chain workspace (its store, keys and files)."""
    return Settings(data_dir=workdir / "data", key_dir=workdir / "keys", cache_dir=None)


def open_accounts(workdir: Path, password: str) -> list[tuple[str, str, str, str | None]]:
    """Give every person of a chain workspace an account, to browse it in the web application.

    Returns (user, agency, roles, TOTP secret or None) for each; each agency's administrator
    creates its people's accounts, as in a real deployment.
    """
    from sharewise.services import accounts

    control = control_for(workspace_settings(workdir))
    everyone = [("ada", "dhs", {"administrator"}), *((uid, agency, roles) for uid, _n, agency, roles in PEOPLE)]
    everyone.sort(key=lambda p: "administrator" not in p[2])  # administrators first: they open the others
    admins: dict[str, str] = {}
    opened = []
    for user_id, agency, roles in everyone:
        new = accounts.create_account(control, admins.get(agency, "ada"), user_id, password)
        if "administrator" in roles:
            admins.setdefault(agency, user_id)
        opened.append((user_id, agency, ",".join(sorted(roles)), new.totp_secret))
    control.store.dispose()
    return opened


def _recipient_certificate(workdir: Path) -> Path:
    """A demo recipient certificate and key (a real recipient sends its own certificate)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Lakeview TANF Unit (demo)")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=365))
        .sign(key, hashes.SHA256())
    )
    cert_path = workdir / "recipient-cert.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path = workdir / "recipient-key.pem"
    key_path.touch(mode=0o600)
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path
