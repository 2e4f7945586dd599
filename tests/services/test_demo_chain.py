"""The whole-chain demo runs end to end on the embedded defaults."""

from __future__ import annotations

from pathlib import Path

from sharewise.policy.model import LawPack
from sharewise.services.demo_chain import run_chain


def test_the_chain_goes_from_request_to_accounting(law: LawPack, tmp_path: Path) -> None:
    steps = run_chain(tmp_path / "demo", law, people=120)
    titles = [s.title for s in steps]
    assert titles == [
        "Directory",
        "Initiative",
        "Request",
        "Approval",
        "Agreement",
        "Share",
        "Audit trail",
        "Accounting of disclosures",
    ]
    results = {s.title: s.result for s in steps}
    assert "determination permitted" in results["Request"]
    assert results["Audit trail"].startswith("intact")
    assert "45 CFR 164.512(k)(6)" in results["Accounting of disclosures"]
    assert list((tmp_path / "demo" / "packages").glob("*.p7m"))
    assert (tmp_path / "demo" / "keys").is_dir() and not list(
        (tmp_path / "demo" / "data").glob("*.key")
    )  # keys apart from data
