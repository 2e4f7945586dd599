"""A share killed with SIGKILL mid-run publishes nothing, and the next run clears what it left behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from sharewise.pipeline.duckdb_backend import DuckDBBackend
from sharewise.policy.model import LawPack
from sharewise.security.keys import FileKeyProvider
from sharewise.services import shares
from tests.pipeline.certs import make_recipient
from tests.pipeline.data import write_clients
from tests.pipeline.test_share_service import SNAP_TO_TANF, TODAY, control_in

REPO = Path(__file__).resolve().parents[2]

CHILD = """
import sys, time
from pathlib import Path
sys.path.insert(0, {repo!r})
from sharewise.pipeline.duckdb_backend import DuckDBBackend
from sharewise.policy.load import load_law
from sharewise.security import cms
from sharewise.security.keys import FileKeyProvider
from sharewise.services import shares
from tests.pipeline.test_share_service import TODAY, control_in

base = Path({base!r})
real = cms.envelope

def envelope_then_hang(source, certificate, target, write=None):
    real(source, certificate, target, write)  # the unpublished package and the staging are on disk now
    print("sealed", flush=True)
    time.sleep(600)

cms.envelope = envelope_then_hang
law = load_law()
shares.run(control_in(base), shares.parse_share({share!r}, law, base), law, TODAY, DuckDBBackend(threads=1),
           FileKeyProvider(base / "keys"), base / "out", "u-7", work_dir=base / "work")
"""


def _share(tmp_path: Path) -> dict[str, Any]:
    write_clients(tmp_path)
    cert, _key = make_recipient(tmp_path)
    FileKeyProvider(tmp_path / "keys").create_pseudonym_key("agr-1")
    (tmp_path / "work").mkdir()
    return {
        "share_id": "s-1",
        "agreement": "agr-1",
        "request": SNAP_TO_TANF,
        "dictionary": "dictionary.yaml",
        "source": {"csv": "clients.csv"},
        "needs": ["client_id", "first_name", "ssn", "zip", "benefit"],
        "pseudonymize": ["client_id", "ssn"],
        "recipient_certificate": cert.name,
    }


def test_a_killed_share_publishes_nothing_and_its_leftovers_are_swept(tmp_path: Path, law: LawPack) -> None:
    share = _share(tmp_path)
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD.format(repo=str(REPO), base=str(tmp_path), share=share)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    try:
        assert child.stdout is not None and child.stderr is not None
        line = child.stdout.readline()
        assert line.strip() == "sealed", child.stderr.read()
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
    out, work = tmp_path / "out", tmp_path / "work"
    assert not (out / "s-1.p7m").exists()  # never published
    assert [p.name for p in out.iterdir() if p.name.endswith(".partial")]  # the kill left an unpublished package
    assert [p.name for p in work.iterdir() if p.name.startswith(shares.STAGING_PREFIX)]  # and its staging

    backend = DuckDBBackend(threads=1)
    control = control_in(tmp_path)
    try:
        result = shares.run(
            control,
            shares.parse_share(share, law, tmp_path),
            law,
            TODAY,
            backend,
            FileKeyProvider(tmp_path / "keys"),
            out,
            "u-7",
            work_dir=work,
        )
    finally:
        backend.close()
        control.store.dispose()
    assert result.package.path.exists()
    assert [p.name for p in out.iterdir()] == ["s-1.p7m"]  # the dead run's partial package is gone
    assert list(work.iterdir()) == []  # and its staging
