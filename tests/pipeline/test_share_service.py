"""Running a share: only approved shares run, every run is audited, and failures publish nothing."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from sharewise.audit.signing import CheckpointSigner
from sharewise.audit.sink import StoreAuditSink
from sharewise.audit.trail import AuditTrail
from sharewise.domain.errors import AccessDeniedError, InvalidDataError, NotFoundError, NotPermittedError, StorageError
from sharewise.domain.events import AuditEvent, DisclosureEvent
from sharewise.pipeline.duckdb_backend import DuckDBBackend
from sharewise.policy.model import LawPack
from sharewise.security.keys import FileKeyProvider
from sharewise.services import shares, workflow
from sharewise.store.database import open_store
from sharewise.wiring import Control, Settings
from tests.conftest import POSTGRES_ADMIN
from tests.pipeline.certs import make_recipient
from tests.pipeline.data import HEADER, client_rows, write_clients

TODAY = dt.date(2026, 11, 25)
SNAP_TO_TANF = {
    "as_of": "2026-03-01",
    "source": {"program": "snap"},
    "recipient": {"name": "Lakeview TANF unit", "kind": "state_or_local_agency", "program": "tanf"},
    "purpose": "eligibility_determination",
    "data": ["identity", "contact", "eligibility_and_benefits"],
    "form": "identified",
}


class FakeSink:
    """Keeps what it is told; can be told to fail."""

    def __init__(self, fail: bool = False) -> None:
        self.events: list[AuditEvent] = []
        self.disclosures: list[DisclosureEvent] = []
        self.fail = fail

    def record(self, event: AuditEvent) -> None:
        self.events.append(event)

    def record_disclosure(self, event: DisclosureEvent, actor: str) -> None:
        if self.fail:
            raise StorageError("audit store unavailable")
        self.disclosures.append(event)


def now() -> dt.datetime:
    return dt.datetime(2026, 11, 25, 12, tzinfo=dt.UTC)


@pytest.fixture
def setup(tmp_path: Path) -> dict[str, Any]:
    write_clients(tmp_path)
    cert, key = make_recipient(tmp_path)
    keys = FileKeyProvider(tmp_path / "keys")
    keys.create_pseudonym_key("agr-1")
    share = {
        "share_id": "s-1",
        "agreement": "agr-1",
        "request": SNAP_TO_TANF,
        "dictionary": "dictionary.yaml",
        "source": {"csv": "clients.csv"},
        "needs": ["client_id", "first_name", "ssn", "zip", "benefit", "note"],
        "pseudonymize": ["client_id", "ssn"],
        "recipient_certificate": cert.name,
    }
    return {"dir": tmp_path, "share": share, "cert": cert, "key": key, "keys": keys}


def control_in(directory: Path) -> Control:
    store = open_store(f"sqlite:///{directory / 'sharewise.db'}")
    trail = AuditTrail(now, CheckpointSigner(Ed25519PrivateKey.generate()))
    return Control(store, trail, StoreAuditSink(store, trail), Settings(key_dir=directory / "keys"))


def run(setup: dict[str, Any], law: LawPack, sink: FakeSink, actor: str = "u-7", **changes: Any) -> shares.ShareResult:
    definition = shares.parse_share({**setup["share"], **changes}, law, setup["dir"])
    backend = DuckDBBackend(threads=2)
    control = control_in(setup["dir"])
    try:
        return shares.run(
            control, definition, law, TODAY, backend, setup["keys"], setup["dir"] / "out", actor, sink=sink
        )
    finally:
        backend.close()
        control.store.dispose()


def test_once_users_are_registered_only_data_stewards_run_shares_under_a_registered_agreement(
    setup: dict[str, Any], law: LawPack
) -> None:
    control = control_in(setup["dir"])
    workflow.add_agency(control, "dhs", "Department of Human Services", None)
    workflow.add_user(control, "admin", "Admin", "dhs", {"administrator"}, None)
    workflow.add_user(control, "clerk", "Clerk", "dhs", {"requester"}, "admin")
    workflow.add_user(control, "steward", "Steward", "dhs", {"data_steward"}, "admin")
    control.store.dispose()
    sink = FakeSink()
    with pytest.raises(AccessDeniedError, match="run shares"):
        run(setup, law, sink, actor="clerk")
    with pytest.raises(AccessDeniedError, match="who is acting"):
        run(setup, law, sink, actor="")
    with pytest.raises(NotFoundError, match="agr-1"):  # a steward needs a registered, active agreement
        run(setup, law, sink, actor="steward")
    assert not sink.disclosures and not (setup["dir"] / "out").exists()


def test_an_approved_share_is_published_verified_and_disclosed(setup: dict[str, Any], law: LawPack) -> None:
    sink = FakeSink()
    result = run(setup, law, sink)
    verified = shares.verify_package(result.package.path, setup["cert"], setup["key"], extract_to=setup["dir"] / "got")
    manifest = verified.manifest
    assert manifest["output"]["rows"] == 60 and manifest["law_hash"] == result.plan.determination.law_hash
    assert manifest["share_spec"]["dropped"] and manifest["pseudonym_key_id"] == result.key_id
    assert [d.name for d in result.plan.spec.dropped if d.reason.startswith("unmapped")] == ["secret_flag"]
    assert "note" not in manifest["output"]["columns"]  # case_records is not covered by the determination
    [disclosure] = sink.disclosures
    assert (
        disclosure.share_id == "s-1"
        and disclosure.row_count == 60
        and disclosure.package_sha256 == result.package.sha256
    )
    assert disclosure.legal_basis == ("snap.program-administration",) and disclosure.agreement_id == "agr-1"
    assert [e.action for e in sink.events] == ["share-executed"]
    assert sink.events[0].actor == "u-7"


def test_a_share_with_v2_parquet_encodings_says_so_in_its_manifest(setup: dict[str, Any], law: LawPack) -> None:
    result = run(setup, law, FakeSink(), parquet_encodings="v2")
    verified = shares.verify_package(result.package.path, setup["cert"], setup["key"], extract_to=setup["dir"] / "got")
    assert verified.manifest["output"]["parquet_encodings"] == "v2" and verified.manifest["output"]["rows"] == 60
    default = run(setup, law, FakeSink(), share_id="s-2")
    manifest = shares.verify_package(default.package.path, setup["cert"], setup["key"]).manifest
    assert manifest["output"]["parquet_encodings"] == "compatible"


def test_a_share_with_bytes_tokens_says_so_and_its_tokens_are_the_hex_ones_as_bytes(
    setup: dict[str, Any], law: LawPack
) -> None:
    import pyarrow.parquet as pq

    tokens = {}
    for share_id, token_format in (("s-hex", "hex"), ("s-bytes", "bytes")):
        result = run(setup, law, FakeSink(), share_id=share_id, token_format=token_format)
        got = setup["dir"] / share_id
        manifest = shares.verify_package(result.package.path, setup["cert"], setup["key"], extract_to=got).manifest
        assert manifest["output"]["token_format"] == token_format
        tokens[token_format] = pq.read_table(got / "data" / "part-0.parquet").column("client_id").to_pylist()
    assert [bytes(t).hex() for t in tokens["bytes"]] == tokens["hex"] and len(tokens["hex"]) == 60


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"token_format": "base64"}, "hex or bytes"),
        ({"token_format": "bytes", "output": "csv"}, "only for parquet output"),
    ],
)
def test_the_token_format_is_checked_with_the_share_file(
    setup: dict[str, Any], law: LawPack, changes: dict[str, str], message: str
) -> None:
    with pytest.raises(InvalidDataError) as caught:
        shares.parse_share({**setup["share"], **changes}, law, setup["dir"])
    [problem] = caught.value.problems
    assert problem.location == "share: token_format" and message in problem.message


def test_two_agreements_give_unjoinable_pseudonyms(setup: dict[str, Any], law: LawPack) -> None:
    import pyarrow.parquet as pq

    setup["keys"].create_pseudonym_key("agr-2")
    tokens = []
    for agreement in ("agr-1", "agr-2"):
        result = run(setup, law, FakeSink(), agreement=agreement, share_id=f"s-{agreement}")
        shares.verify_package(result.package.path, setup["cert"], setup["key"], extract_to=setup["dir"] / agreement)
        tokens.append(
            set(pq.read_table(setup["dir"] / agreement / "data" / "part-0.parquet").column("client_id").to_pylist())
        )
    assert len(tokens[0]) == 60 and not tokens[0] & tokens[1]


def test_a_share_without_a_permitted_determination_does_not_run(setup: dict[str, Any], law: LawPack) -> None:
    request = {**SNAP_TO_TANF, "source": {"program": "sud_treatment"}, "data": ["sud_treatment_information"]}
    request["recipient"] = {"kind": "law_enforcement"}
    request["purpose"] = "law_enforcement"
    sink = FakeSink()
    with pytest.raises(NotPermittedError, match="not permitted"):
        run(setup, law, sink, request=request)
    assert [(e.action, e.outcome) for e in sink.events] == [("share-refused", "failure")]
    assert not (setup["dir"] / "out").exists()


def test_a_failed_audit_write_publishes_nothing(setup: dict[str, Any], law: LawPack) -> None:
    sink = FakeSink(fail=True)
    with pytest.raises(StorageError):
        run(setup, law, sink)
    assert list((setup["dir"] / "out").iterdir()) == []
    assert [(e.action, e.outcome) for e in sink.events] == [("share-failed", "failure")]


def test_a_missing_pseudonym_key_stops_the_share(setup: dict[str, Any], law: LawPack) -> None:
    sink = FakeSink()
    with pytest.raises(NotFoundError, match="agr-none"):
        run(setup, law, sink, agreement="agr-none")
    assert not sink.disclosures


def test_a_malformed_input_is_reported_without_personal_data(setup: dict[str, Any], law: LawPack) -> None:
    path = setup["dir"] / "clients.csv"
    rows = client_rows(5)
    text = ",".join(HEADER) + "\n" + "".join(",".join(r) + "\n" for r in rows) + "C9,Zebulon Quirke,extra\n"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(InvalidDataError) as caught:
        run(setup, law, FakeSink())
    message = caught.value.message + " ".join(str(p) for p in caught.value.problems)
    assert "clients.csv:7" in message and "Zebulon" not in message


def test_a_full_disk_while_extracting_publishes_nothing(
    setup: dict[str, Any], law: LawPack, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full(self: DuckDBBackend, sql: str, directory: Path, fmt: str, *options: object) -> None:
        raise StorageError("the disk is full while the engine wrote the extract; nothing was published")

    monkeypatch.setattr(DuckDBBackend, "write", full)
    sink = FakeSink()
    with pytest.raises(StorageError, match="disk is full"):
        run(setup, law, sink)
    assert not (setup["dir"] / "out").exists() or list((setup["dir"] / "out").iterdir()) == []
    assert sink.events[-1].action == "share-failed"


def test_the_share_file_reports_every_problem(law: LawPack, tmp_path: Path) -> None:
    with pytest.raises(InvalidDataError) as caught:
        shares.parse_share({"agreement": "../x", "source": {}, "output": "xlsx", "extra": 1}, law, tmp_path)
    where = {p.location.split(": ")[-1] for p in caught.value.problems}
    assert {"agreement", "source", "output", "extra", "needs", "dictionary"} <= where


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"parquet_encodings": "v3"}, "compatible or v2"),
        ({"parquet_encodings": "v2", "output": "csv"}, "only for parquet"),
    ],
)
def test_parquet_encodings_are_checked_with_the_share_file(
    setup: dict[str, Any], law: LawPack, changes: dict[str, str], message: str
) -> None:
    with pytest.raises(InvalidDataError) as caught:
        shares.parse_share({**setup["share"], **changes}, law, setup["dir"])
    [problem] = caught.value.problems
    assert problem.location == "share: parquet_encodings" and message in problem.message


@pytest.fixture
def postgres_table() -> Iterator[tuple[str, str]]:
    table = f"clients_{uuid.uuid4().hex[:8]}"
    columns = ", ".join(f'"{h}" text' for h in HEADER)
    with psycopg.connect(POSTGRES_ADMIN, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f"CREATE TABLE {table} ({columns})")
        with conn.cursor() as cur, cur.copy(f"COPY {table} FROM STDIN") as copy:
            for row in client_rows():
                copy.write_row(row)
    try:
        yield POSTGRES_ADMIN, table
    finally:
        with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as conn:
            conn.execute(f"DROP TABLE IF EXISTS {table}")


def test_a_postgresql_table_is_shared_like_a_file(
    setup: dict[str, Any], law: LawPack, postgres_table: tuple[str, str]
) -> None:
    dsn, table = postgres_table
    result = run(setup, law, FakeSink(), source={"postgres": {"dsn": dsn, "table": table}})
    assert result.extract.rows == 60


def test_share_files_round_trip_through_yaml(setup: dict[str, Any], law: LawPack) -> None:
    path = setup["dir"] / "share.yaml"
    path.write_text(yaml.safe_dump(setup["share"]), encoding="utf-8")
    definition = shares.read_share(path, law)
    assert definition.pseudonymize == ("client_id", "ssn") and definition.output == "parquet"


def test_a_source_whose_content_is_not_what_the_share_file_says_is_refused_before_anything_runs(
    setup: dict[str, Any], law: LawPack
) -> None:
    csv_text = (setup["dir"] / "clients.csv").read_bytes()
    (setup["dir"] / "clients.parquet").write_bytes(csv_text)  # CSV text under a Parquet claim
    sink = FakeSink()
    with pytest.raises(InvalidDataError) as caught:
        run(setup, law, sink, source={"parquet": "clients.parquet"})
    assert "not Parquet" in caught.value.message
    assert not (setup["dir"] / "out").exists() or not any((setup["dir"] / "out").iterdir())
    assert sink.disclosures == []
    (setup["dir"] / "clients.csv").write_bytes(b"PAR1" + csv_text[:40] + b"PAR1")  # Parquet bytes claimed as CSV
    with pytest.raises(InvalidDataError) as caught:
        run(setup, law, FakeSink())
    assert "not CSV" in caught.value.message
