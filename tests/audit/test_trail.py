"""The audit chain detects every kind of change, and says where."""

from __future__ import annotations

import datetime as dt
import threading
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, select, text, update

from sharewise.audit.signing import CheckpointSigner, load_or_create_signer
from sharewise.audit.trail import AuditTrail, chain_hash, read_checkpoints
from sharewise.domain.errors import InvalidDataError
from sharewise.domain.events import AuditEvent
from sharewise.store.database import Store
from sharewise.store.schema import audit_checkpoints, audit_head, audit_records
from tests.conftest import drop_append_only_triggers

SIGNER = CheckpointSigner(Ed25519PrivateKey.generate())


def clock() -> dt.datetime:
    return dt.datetime(2026, 11, 25, 12, 0, tzinfo=dt.UTC)


def event(i: int) -> AuditEvent:
    return AuditEvent(
        action="consent-recorded", actor=f"user-{i % 3}", subject_type="consent", subject_id=f"c-{i}", details={"n": i}
    )


def filled(store: Store, n: int = 10, every: int = 5) -> AuditTrail:
    trail = AuditTrail(clock, SIGNER, checkpoint_every=every)
    for i in range(n):
        with store.transaction() as conn:
            trail.append(conn, event(i))
    return trail


def verify(store: Store, trail: AuditTrail, external: list | None = None):  # type: ignore[no-untyped-def]
    with store.transaction() as conn:
        return trail.verify(conn, SIGNER.public_key, external)


def kinds(report) -> set[str]:  # type: ignore[no-untyped-def]
    return {f.kind for f in report.findings}


def test_an_untouched_chain_verifies(store: Store) -> None:
    trail = filled(store)
    report = verify(store, trail)
    assert report.ok and report.records == 10 and report.checkpoints == 2


def test_modifying_a_record_is_found_at_that_record(store: Store) -> None:
    trail = filled(store)
    with store.transaction() as conn:
        drop_append_only_triggers(conn, store.is_sqlite)
        conn.execute(update(audit_records).where(audit_records.c.seq == 4).values(actor="someone-else"))
    report = verify(store, trail)
    assert [(f.seq, f.kind) for f in report.findings] == [(4, "modified")]


def test_rewriting_the_rest_of_the_chain_is_caught_by_the_signed_checkpoint(store: Store) -> None:
    trail = filled(store)
    with store.transaction() as conn:
        drop_append_only_triggers(conn, store.is_sqlite)
        rows = [dict(r._mapping) for r in conn.execute(select(audit_records).order_by(audit_records.c.seq))]
        prev = rows[2]["hash"]
        for row in rows[3:]:  # the attacker recomputes every hash from record 4 on
            if row["seq"] == 4:
                row["actor"] = "someone-else"
            fields = {
                k: row[k]
                for k in (
                    "seq",
                    "at",
                    "action",
                    "actor",
                    "agency",
                    "source",
                    "subject_type",
                    "subject_id",
                    "outcome",
                    "details",
                )
            }
            new = chain_hash(prev, fields)
            conn.execute(
                update(audit_records)
                .where(audit_records.c.seq == row["seq"])
                .values(actor=row["actor"], prev_hash=prev, hash=new)
            )
            prev = new
        conn.execute(update(audit_head).values(hash=prev))
    report = verify(store, trail)
    assert (5, "modified") in [(f.seq, f.kind) for f in report.findings]


def test_deleting_a_record_is_found(store: Store) -> None:
    trail = filled(store)
    with store.transaction() as conn:
        drop_append_only_triggers(conn, store.is_sqlite)
        conn.execute(delete(audit_records).where(audit_records.c.seq == 7))
    report = verify(store, trail)
    assert (7, "missing") in [(f.seq, f.kind) for f in report.findings]


def test_reordering_records_is_found(store: Store) -> None:
    trail = filled(store)
    with store.transaction() as conn:
        drop_append_only_triggers(conn, store.is_sqlite)
        a, b = (
            dict(conn.execute(select(audit_records).where(audit_records.c.seq == s)).one()._mapping) for s in (2, 3)
        )
        for target, source in ((2, b), (3, a)):
            values = {k: v for k, v in source.items() if k != "seq"}
            conn.execute(update(audit_records).where(audit_records.c.seq == target).values(**values))
    report = verify(store, trail)
    assert "reordered_or_inserted" in kinds(report) or "modified" in kinds(report)
    assert {f.seq for f in report.findings} & {2, 3}


def test_inserting_a_record_is_found(store: Store) -> None:
    trail = filled(store, n=4, every=100)
    with store.transaction() as conn:
        last = conn.execute(select(audit_records).where(audit_records.c.seq == 4)).one()
        fake = {**dict(last._mapping), "seq": 5, "actor": "intruder", "prev_hash": last.hash, "hash": "f" * 64}
        conn.execute(audit_records.insert().values(**fake))
    report = verify(store, trail)
    assert {(f.seq, f.kind) for f in report.findings} >= {(5, "modified")}


def test_truncating_the_tail_is_found_even_when_the_head_is_moved_back(store: Store, tmp_path: Path) -> None:
    trail = filled(store, n=10, every=5)
    export = tmp_path / "export.jsonl"
    with store.transaction() as conn:
        trail.export(conn, export)
        drop_append_only_triggers(conn, store.is_sqlite)
        conn.execute(delete(audit_records).where(audit_records.c.seq > 7))
        tail = conn.execute(select(audit_records.c.hash).where(audit_records.c.seq == 7)).scalar_one()
        conn.execute(update(audit_head).values(seq=7, hash=tail))
        conn.execute(delete(audit_checkpoints).where(audit_checkpoints.c.seq > 7))
    assert verify(store, trail).ok  # the database alone now looks consistent...
    report = verify(store, trail, read_checkpoints(export))  # ...but the checkpoint kept outside does not
    assert (8, "truncated") in [(f.seq, f.kind) for f in report.findings]


def test_a_forged_checkpoint_is_rejected(store: Store) -> None:
    trail = filled(store)
    with store.transaction() as conn:
        drop_append_only_triggers(conn, store.is_sqlite)
        conn.execute(update(audit_checkpoints).where(audit_checkpoints.c.seq == 5).values(hash="0" * 64))
    assert "bad_checkpoint" in kinds(verify(store, trail))


def test_concurrent_writers_lose_and_duplicate_nothing(store: Store) -> None:
    trail = AuditTrail(clock, SIGNER, checkpoint_every=7)
    errors: list[BaseException] = []

    def writer(w: int) -> None:
        try:
            for i in range(15):
                with store.transaction() as conn:
                    trail.append(conn, event(w * 100 + i))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    report = verify(store, trail)
    assert report.ok and report.records == 60
    with store.transaction() as conn:
        ids = [r[0] for r in conn.execute(select(audit_records.c.subject_id))]
    assert len(ids) == len(set(ids)) == 60


def test_a_failed_action_leaves_no_audit_record(store: Store) -> None:
    trail = filled(store, n=3)
    with pytest.raises(RuntimeError), store.transaction() as conn:
        trail.append(conn, event(99))
        raise RuntimeError("the action failed after its audit record was written")
    assert verify(store, trail).records == 3


def test_actions_must_be_kebab_case_past_tense(store: Store) -> None:
    trail = filled(store, n=0)
    with pytest.raises(InvalidDataError), store.transaction() as conn:
        trail.append(conn, AuditEvent(action="RevokeConsent", actor="u", subject_type="consent", subject_id="c"))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    seq=st.integers(min_value=1, max_value=6),
    column=st.sampled_from(["at", "action", "actor", "subject_id", "outcome", "details"]),
)
def test_any_single_change_is_detected(tmp_path_factory: pytest.TempPathFactory, seq: int, column: str) -> None:
    from sharewise.store.database import open_store

    store = open_store(f"sqlite:///{tmp_path_factory.mktemp('chain') / 'db.sqlite'}")
    trail = filled(store, n=6, every=100)
    with store.transaction() as conn:
        drop_append_only_triggers(conn, True)
        conn.execute(text(f"UPDATE audit_records SET {column} = {column} || 'x' WHERE seq = :s"), {"s": seq})
    assert (seq, "modified") in [(f.seq, f.kind) for f in verify(store, trail).findings]
    store.dispose()


def test_the_database_refuses_to_change_or_delete_audit_records(store: Store) -> None:
    from sharewise.domain.errors import StorageError

    filled(store, n=2)
    with pytest.raises(StorageError), store.transaction() as conn:
        conn.execute(update(audit_records).where(audit_records.c.seq == 1).values(actor="someone-else"))
    with pytest.raises(StorageError), store.transaction() as conn:
        conn.execute(delete(audit_records))
    with store.transaction() as conn:
        assert [r.actor for r in conn.execute(select(audit_records).order_by(audit_records.c.seq))] == [
            "user-0",
            "user-1",
        ]


def test_processes_starting_at_once_share_one_whole_audit_signing_key(tmp_path: Path) -> None:
    """The CLI and the server may create the checkpoint key together: each gets the one key, never a partial file."""
    start = threading.Barrier(8)
    key_ids: list[str] = []

    def open_signer() -> None:
        start.wait()
        key_ids.append(load_or_create_signer(tmp_path / "keys" / "audit-signing.pem").key_id)

    threads = [threading.Thread(target=open_signer) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert len(key_ids) == 8 and len(set(key_ids)) == 1
    assert [p.name for p in (tmp_path / "keys").iterdir()] == ["audit-signing.pem"]
