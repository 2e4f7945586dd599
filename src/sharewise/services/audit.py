"""Audit use cases: verify the chain, sign a checkpoint, export, and list records."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import select

from sharewise.audit.signing import load_public_key, public_key_pem
from sharewise.audit.trail import Checkpoint, VerifyReport, canonical, read_checkpoints
from sharewise.domain.errors import InvalidDataError
from sharewise.domain.events import AuditEvent
from sharewise.services.authorization import authorize
from sharewise.store.schema import audit_records
from sharewise.wiring import Control
from sharewise.workflow.access import User, require_role
from sharewise.workflow.store import SqlWorkflowStore


def verify(
    control: Control,
    checkpoint_files: list[Path] | None = None,
    public_key_file: Path | None = None,
    actor: str = "system",
) -> VerifyReport:
    """Verify the whole chain against its own and any exported checkpoints; the check is recorded, with who asked."""
    external: list[Checkpoint] = []
    for path in checkpoint_files or []:
        external += read_checkpoints(path)
    public_key: Ed25519PublicKey | None
    if public_key_file is not None:
        try:
            public_key = load_public_key(public_key_file.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise InvalidDataError(f"cannot read public key {public_key_file}") from exc
    else:
        public_key = control.trail.signer.public_key if control.trail.signer else None
    with control.store.transaction() as conn:
        report = control.trail.verify(conn, public_key, external)
        control.trail.append(
            conn,
            AuditEvent(
                action="audit-verified",
                actor=actor,
                subject_type="audit",
                subject_id="chain",
                outcome="success" if report.ok else "failure",
                details={"records": report.records, "findings": len(report.findings)},
            ),
        )
    return report


CHECKPOINT_SIGNERS = ("auditor", "security_officer", "administrator")


def checkpoint(control: Control, out: Path | None, actor_id: str | None = None) -> Checkpoint | None:
    """Sign the chain's head now; optionally append the checkpoint to a file kept elsewhere.

    Auditors, security officers and administrators (anyone while no user is registered); signing
    a checkpoint protects the trail and changes nothing in it.
    """
    with control.store.transaction() as conn:
        user = authorize(conn, actor_id, CHECKPOINT_SIGNERS, "sign audit checkpoints")
        control.trail.append(
            conn,
            AuditEvent(
                action="checkpoint-signed",
                actor=user.id if user else (actor_id or "system"),
                agency=user.agency_id if user else None,
                subject_type="audit",
                subject_id="chain",
            ),
        )
        cp = control.trail.checkpoint(conn)
    if cp is not None and out is not None:
        with out.open("a", encoding="utf-8") as handle:
            handle.write(canonical({"type": "checkpoint", **cp.to_json()}) + "\n")
    return cp


def _auditor(control: Control, actor_id: str) -> User:
    """Only auditors read the audit trail in full."""
    with control.store.transaction() as conn:
        user = SqlWorkflowStore().user(conn, actor_id)
    require_role(user, "auditor", "read the audit trail")
    return user


def export(control: Control, out: Path, actor_id: str) -> int:
    """Export every record and checkpoint (JSON lines) plus the public key beside it (auditors)."""
    user = _auditor(control, actor_id)
    with control.store.transaction() as conn:
        control.trail.append(
            conn,
            AuditEvent(
                action="audit-exported", actor=user.id, agency=user.agency_id, subject_type="audit", subject_id="chain"
            ),
        )
    with control.store.transaction() as conn:
        count = control.trail.export(conn, out)
    if control.trail.signer is not None:
        out.with_suffix(".pub.pem").write_text(public_key_pem(control.trail.signer.public_key), encoding="utf-8")
    return count


def log(
    control: Control, actor_id: str, subject_type: str | None = None, subject_id: str | None = None, limit: int = 50
) -> list[dict[str, Any]]:
    """The newest records, optionally for one subject (auditors)."""
    _auditor(control, actor_id)
    query = select(audit_records).order_by(audit_records.c.seq.desc()).limit(limit)
    if subject_type:
        query = query.where(audit_records.c.subject_type == subject_type)
    if subject_id:
        query = query.where(audit_records.c.subject_id == subject_id)
    with control.store.transaction() as conn:
        return [dict(r._mapping) for r in conn.execute(query).all()]
