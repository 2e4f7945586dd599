"""Crash consistency: kill -9 during writes loses no committed record and leaves the chain intact."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import select

from sharewise.audit.signing import CheckpointSigner
from sharewise.audit.trail import AuditTrail
from sharewise.store.database import Store, open_store
from sharewise.store.schema import audit_records

WRITER = r"""
import datetime as dt, sys
from cryptography.hazmat.primitives import serialization
from sharewise.audit.signing import CheckpointSigner
from sharewise.audit.trail import AuditTrail
from sharewise.domain.events import AuditEvent
from sharewise.store.database import open_store
store = open_store(sys.argv[1], migrate=False)
key = serialization.load_pem_private_key(open(sys.argv[2], "rb").read(), password=None)
trail = AuditTrail(lambda: dt.datetime.now(dt.UTC), CheckpointSigner(key), checkpoint_every=3)
i = 0
while True:
    with store.transaction() as conn:
        seq = trail.append(conn, AuditEvent(action="share-executed", actor="w", subject_type="share", subject_id=f"s-{i}"))
    print(seq, flush=True)  # acknowledged only after commit
    i += 1
"""


def _crash_rounds(url: str, tmp_path: Path, rounds: int = 4) -> None:
    store: Store = open_store(url)
    key = Ed25519PrivateKey.generate()
    key_file = tmp_path / "key.pem"
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    acknowledged: set[int] = set()
    rng = random.Random(7)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    for _ in range(rounds):
        proc = subprocess.Popen(
            [sys.executable, "-c", WRITER, url, str(key_file)], stdout=subprocess.PIPE, text=True, env=env
        )
        assert proc.stdout is not None
        # Wait until it is writing, then kill it at a random moment.
        first = proc.stdout.readline()
        assert first.strip().isdigit(), "the writer did not start"
        acknowledged.add(int(first))
        time.sleep(rng.uniform(0.05, 0.4))
        proc.send_signal(signal.SIGKILL)
        rest, _ = proc.communicate()
        acknowledged |= {int(line) for line in rest.split() if line.isdigit()}
    trail = AuditTrail(lambda: None, CheckpointSigner(key))  # type: ignore[arg-type, return-value]
    with store.transaction() as conn:
        report = trail.verify(conn, key.public_key())
        stored = {int(s) for s in conn.execute(select(audit_records.c.seq)).scalars()}
    assert report.ok, report.findings
    assert acknowledged <= stored, f"committed records lost: {sorted(acknowledged - stored)[:5]}"
    assert stored == set(range(1, max(stored) + 1))
    store.dispose()


def test_kill_during_writes_on_sqlite_loses_nothing_committed(tmp_path: Path) -> None:
    _crash_rounds(f"sqlite:///{tmp_path / 'crash.db'}", tmp_path)


def test_kill_during_writes_on_postgresql_loses_nothing_committed(postgres_store: Store, tmp_path: Path) -> None:
    _crash_rounds(postgres_store.url, tmp_path)
