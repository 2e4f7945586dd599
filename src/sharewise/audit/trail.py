"""The audit trail: hash-chained records, signed checkpoints, and verification that says where."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import Connection, func, insert, select, update

from sharewise.audit.signing import CheckpointSigner, key_id_of, verify_signature
from sharewise.domain.errors import InvalidDataError
from sharewise.domain.events import AuditEvent
from sharewise.store.schema import audit_checkpoints, audit_head, audit_records

GENESIS = "0" * 64
FIELDS = ("seq", "at", "action", "actor", "agency", "source", "subject_type", "subject_id", "outcome", "details")
ACTION_PATTERN = "kebab-case past tense, e.g. consent-revoked"


def canonical(value: Any) -> str:
    """The one JSON form that is hashed: sorted keys, no spaces, UTF-8."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def chain_hash(prev_hash: str, fields: dict[str, Any]) -> str:
    """SHA-256 over the previous hash and this record's canonical fields."""
    return hashlib.sha256(f"{prev_hash}\n{canonical(fields)}".encode()).hexdigest()


def checkpoint_message(seq: int, record_hash: str, at: str) -> bytes:
    return f"sharewise-audit-checkpoint\n{seq}\n{record_hash}\n{at}".encode()


def _timestamp(at: dt.datetime) -> str:
    if at.tzinfo is None:
        raise InvalidDataError("audit timestamps must be timezone-aware")
    return at.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class Checkpoint:
    """A signed statement that the chain's record `seq` has hash `hash`."""

    seq: int
    hash: str
    at: str
    key_id: str
    signature: str

    def to_json(self) -> dict[str, Any]:
        return {"seq": self.seq, "hash": self.hash, "at": self.at, "key_id": self.key_id, "signature": self.signature}


@dataclass
class Finding:
    """One problem found while verifying, and where."""

    seq: int | None
    kind: str  # modified | missing | reordered_or_inserted | truncated | bad_checkpoint | head_mismatch
    message: str


@dataclass
class VerifyReport:
    """What verification found."""

    records: int = 0
    checkpoints: int = 0
    findings: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.findings


class AuditTrail:
    """Appends records to the chain inside the caller's transaction, and verifies the chain."""

    def __init__(
        self,
        clock: Callable[[], dt.datetime],
        signer: CheckpointSigner | None = None,
        checkpoint_every: int = 100,
    ) -> None:
        self.clock = clock
        self.signer = signer
        self.checkpoint_every = checkpoint_every

    def append(self, conn: Connection, event: AuditEvent) -> int:
        """Append one record in the caller's transaction; return its sequence number."""
        _check_event(event)
        head = conn.execute(
            select(audit_head.c.seq, audit_head.c.hash).where(audit_head.c.id == 1).with_for_update()
        ).one()
        seq = int(head.seq) + 1
        fields = {
            "seq": seq,
            "at": _timestamp(event.at or self.clock()),
            "action": event.action,
            "actor": event.actor,
            "agency": event.agency,
            "source": event.source,
            "subject_type": event.subject_type,
            "subject_id": event.subject_id,
            "outcome": event.outcome,
            "details": canonical(dict(event.details)),
        }
        record_hash = chain_hash(head.hash, fields)
        conn.execute(insert(audit_records).values(**fields, prev_hash=head.hash, hash=record_hash))
        conn.execute(update(audit_head).where(audit_head.c.id == 1).values(seq=seq, hash=record_hash))
        if self.signer is not None and seq % self.checkpoint_every == 0:
            self._sign(conn, seq, record_hash)
        return seq

    def checkpoint(self, conn: Connection) -> Checkpoint | None:
        """Sign the current head now (None if the chain is empty or no signer is configured)."""
        head = conn.execute(
            select(audit_head.c.seq, audit_head.c.hash).where(audit_head.c.id == 1).with_for_update()
        ).one()
        if self.signer is None or int(head.seq) == 0:
            return None
        existing = conn.execute(select(audit_checkpoints).where(audit_checkpoints.c.seq == head.seq)).first()
        if existing is not None:
            return Checkpoint(int(existing.seq), existing.hash, existing.at, existing.key_id, existing.signature)
        return self._sign(conn, int(head.seq), head.hash)

    def _sign(self, conn: Connection, seq: int, record_hash: str) -> Checkpoint:
        assert self.signer is not None
        at = _timestamp(self.clock())
        signature = self.signer.sign(checkpoint_message(seq, record_hash, at))
        cp = Checkpoint(seq, record_hash, at, self.signer.key_id, signature)
        conn.execute(insert(audit_checkpoints).values(**cp.to_json()))
        return cp

    def checkpoints(self, conn: Connection) -> list[Checkpoint]:
        rows = conn.execute(select(audit_checkpoints).order_by(audit_checkpoints.c.seq)).all()
        return [Checkpoint(int(r.seq), r.hash, r.at, r.key_id, r.signature) for r in rows]

    def records(self, conn: Connection, batch: int = 5000) -> Iterator[dict[str, Any]]:
        """Every record in sequence order, streamed."""
        last = 0
        while True:
            rows = conn.execute(
                select(audit_records).where(audit_records.c.seq > last).order_by(audit_records.c.seq).limit(batch)
            ).all()
            if not rows:
                return
            for row in rows:
                yield dict(row._mapping)
            last = int(rows[-1].seq)

    def verify(
        self,
        conn: Connection,
        public_key: Ed25519PublicKey | None,
        external: list[Checkpoint] | None = None,
    ) -> VerifyReport:
        """Recompute the chain; check the head and every checkpoint; report each finding with its place."""
        report = VerifyReport()
        expected_seq = 1
        prev = GENESIS
        by_seq: dict[int, str] = {}
        wanted = {cp.seq for cp in [*(external or []), *self.checkpoints(conn)]}
        for row in self.records(conn):
            seq = int(row["seq"])
            report.records += 1
            if seq != expected_seq:
                missing = f"{expected_seq}" if seq == expected_seq + 1 else f"{expected_seq}-{seq - 1}"
                report.findings.append(Finding(expected_seq, "missing", f"record(s) {missing} are missing (deleted)"))
            if row["prev_hash"] != prev:
                report.findings.append(
                    Finding(seq, "reordered_or_inserted", f"record {seq} does not follow the record before it")
                )
            fields = {name: row[name] for name in FIELDS}
            if chain_hash(row["prev_hash"], fields) != row["hash"]:
                report.findings.append(Finding(seq, "modified", f"record {seq} was modified after it was written"))
            if seq in wanted:
                by_seq[seq] = row["hash"]
            prev = row["hash"]
            expected_seq = seq + 1
        last_seq = expected_seq - 1
        head = conn.execute(select(audit_head.c.seq, audit_head.c.hash).where(audit_head.c.id == 1)).one()
        if int(head.seq) > last_seq:
            report.findings.append(
                Finding(last_seq + 1, "truncated", f"the chain ends at record {last_seq} but its head says {head.seq}")
            )
        elif int(head.seq) != last_seq or (last_seq and head.hash != prev):
            report.findings.append(
                Finding(last_seq, "head_mismatch", "the chain's head does not match its last record")
            )
        seen: set[tuple[int, str]] = set()
        for cp in [*self.checkpoints(conn), *(external or [])]:
            if (cp.seq, cp.signature) in seen:
                continue
            seen.add((cp.seq, cp.signature))
            report.checkpoints += 1
            if public_key is None or key_id_of(public_key) != cp.key_id:
                report.findings.append(
                    Finding(cp.seq, "bad_checkpoint", f"checkpoint {cp.seq} was signed by an unknown key {cp.key_id}")
                )
                continue
            if not verify_signature(public_key, checkpoint_message(cp.seq, cp.hash, cp.at), cp.signature):
                report.findings.append(
                    Finding(cp.seq, "bad_checkpoint", f"checkpoint {cp.seq} has an invalid signature")
                )
            elif cp.seq > last_seq:
                report.findings.append(
                    Finding(
                        last_seq + 1,
                        "truncated",
                        f"a signed checkpoint covers record {cp.seq}, but the chain ends at {last_seq}",
                    )
                )
            elif by_seq.get(cp.seq) != cp.hash:
                report.findings.append(
                    Finding(cp.seq, "modified", f"record {cp.seq} no longer matches its signed checkpoint")
                )
        return report

    def export(self, conn: Connection, out: Path) -> int:
        """Write every record and checkpoint as JSON lines (for keeping outside the database)."""
        count = 0
        tmp = out.with_name(out.name + ".tmp")
        with tmp.open("w", encoding="utf-8") as handle:
            for row in self.records(conn):
                handle.write(canonical({"type": "record", **row}) + "\n")
                count += 1
            for cp in self.checkpoints(conn):
                handle.write(canonical({"type": "checkpoint", **cp.to_json()}) + "\n")
        tmp.replace(out)
        return count

    def count(self, conn: Connection) -> int:
        return int(conn.execute(select(func.count()).select_from(audit_records)).scalar_one())


def read_checkpoints(path: Path) -> list[Checkpoint]:
    """Checkpoints from an export or a checkpoint file (JSON lines with type checkpoint)."""
    out = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise InvalidDataError(f"cannot read checkpoints file {path}: {exc.strerror}") from exc
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
            if item.get("type") == "checkpoint":
                out.append(Checkpoint(int(item["seq"]), item["hash"], item["at"], item["key_id"], item["signature"]))
        except (ValueError, KeyError, TypeError) as exc:
            raise InvalidDataError(f"{path}:{number}: not a checkpoint line") from exc
    return out


def _check_event(event: AuditEvent) -> None:
    parts = event.action.split("-")
    if (
        len(parts) < 2
        or not all(p.isalpha() and p.islower() for p in parts)
        or not any(p.endswith("ed") for p in parts)
    ):
        raise InvalidDataError(f"audit action '{event.action}' must be {ACTION_PATTERN}")
    if event.outcome not in ("success", "failure"):
        raise InvalidDataError("audit outcome must be success or failure")
    for key, value in event.details.items():
        if not isinstance(value, str | int | float | bool | type(None)):
            raise InvalidDataError(f"audit detail '{key}' must be a plain value (ids, counts, keyed hashes)")
