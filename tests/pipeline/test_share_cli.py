"""The share commands: plan, key, run, verify, dictionary propose and synth, end to end on synthetic data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
import yaml
from typer.testing import CliRunner

from sharewise.cli.share import app, dictionary_app, synth
from tests.pipeline.certs import make_recipient

runner = CliRunner()


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SHAREWISE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("SHAREWISE_KEY_DIR", str(tmp_path / "keys"))
    monkeypatch.setenv("SHAREWISE_CACHE_DIR", "off")
    synth_app = typer.Typer()
    synth_app.command()(synth)
    result = runner.invoke(synth_app, ["--out", str(tmp_path / "syn"), "--people", "400", "--programs", "snap,tanf"])
    assert result.exit_code == 0, result.output
    make_recipient(tmp_path, "tanf")
    share = {
        "agreement": "agr-snap-tanf",
        "share_id": "snap-tanf-1",
        "request": {
            "source": {"program": "snap"},
            "recipient": {"name": "TANF unit", "kind": "state_or_local_agency", "program": "tanf"},
            "purpose": "eligibility_determination",
            "data": ["identity", "contact", "eligibility_and_benefits"],
            "form": "identified",
        },
        "dictionary": "syn/dictionary-snap.yaml",
        "source": {"csv": "syn/snap.csv"},
        "needs": ["record_id", "first_name", "last_name", "ssn", "birth_date", "monthly_benefit"],
        "pseudonymize": ["record_id", "ssn"],
        "output": "csv",
        "recipient_certificate": "tanf-cert.pem",
    }
    (tmp_path / "share.yaml").write_text(yaml.safe_dump(share), encoding="utf-8")
    return tmp_path


def test_plan_lists_what_leaves_and_what_stays_with_reasons(workdir: Path) -> None:
    result = runner.invoke(app, ["plan", str(workdir / "share.yaml")])
    assert result.exit_code == 0, result.output
    assert "permitted" in result.output and "pseudonymize" in result.output
    assert "street" in result.output and "minimum necessary" in result.output
    assert "does not replace legal advice" in " ".join(result.output.split())


def test_plan_says_how_the_recipient_receives_the_data(workdir: Path) -> None:
    result = runner.invoke(app, ["plan", str(workdir / "share.yaml")])
    assert "output: csv, pseudonyms as 64 hex digits (text)" in " ".join(result.output.split())
    share = yaml.safe_load((workdir / "share.yaml").read_text(encoding="utf-8"))
    fast = {**share, "output": "parquet", "parquet_encodings": "v2", "token_format": "bytes"}
    (workdir / "share.yaml").write_text(yaml.safe_dump(fast), encoding="utf-8")
    result = runner.invoke(app, ["plan", str(workdir / "share.yaml")])
    words = " ".join(result.output.split())
    assert "output: parquet, format 2 encodings (recent readers only), pseudonyms as 32-byte binary values" in words
    as_json = json.loads(runner.invoke(app, ["plan", str(workdir / "share.yaml"), "--format", "json"]).output)
    assert as_json["output"] == {"format": "parquet", "parquet_encodings": "v2", "token_format": "bytes"}
    assert any("does not replace legal advice" in notice for notice in as_json["notices"])
    (workdir / "share.yaml").write_text(
        yaml.safe_dump({**share, "pseudonymize": [], "output": "parquet"}), encoding="utf-8"
    )
    plain = runner.invoke(app, ["plan", str(workdir / "share.yaml"), "--format", "json"])
    assert json.loads(plain.output)["output"] == {
        "format": "parquet",
        "parquet_encodings": "compatible",
        "token_format": None,
    }
    # Tables of counts are always written with the compatible encodings, whatever the share file asks.
    request = {**share["request"], "form": "aggregate", "data": ["demographics", "eligibility_and_benefits"]}
    counts = {**share, "request": request, "needs": ["sex", "household_size"], "pseudonymize": []}
    counts |= {"output": "parquet", "parquet_encodings": "v2", "aggregate": {"by": ["sex", "household_size"]}}
    (workdir / "share.yaml").write_text(yaml.safe_dump(counts), encoding="utf-8")
    table = runner.invoke(app, ["plan", str(workdir / "share.yaml"), "--format", "json"])
    assert table.exit_code == 0, table.output
    assert json.loads(table.output)["output"]["parquet_encodings"] == "compatible"


def test_run_needs_the_agreement_key_then_publishes_a_package_that_verifies(workdir: Path) -> None:
    missing = runner.invoke(app, ["run", str(workdir / "share.yaml"), "--out", str(workdir / "out")])
    assert missing.exit_code == 4 and "share key agr-snap-tanf" in missing.output
    assert runner.invoke(app, ["key", "agr-snap-tanf"]).exit_code == 0
    done = runner.invoke(app, ["run", str(workdir / "share.yaml"), "--out", str(workdir / "out")])
    assert done.exit_code == 0, done.output
    package = workdir / "out" / "snap-tanf-1.p7m"
    assert package.exists()
    assert runner.invoke(app, ["signer-key", "--out", str(workdir / "signer.pem")]).exit_code == 0
    verified = runner.invoke(
        app,
        [
            "verify",
            str(package),
            "--cert",
            str(workdir / "tanf-cert.pem"),
            "--key",
            str(workdir / "tanf-key.pem"),
            "--signer-key",
            str(workdir / "signer.pem"),
            "--extract",
            str(workdir / "got"),
        ],
    )
    assert verified.exit_code == 0, verified.output
    assert "intact" in verified.output and "pinned key" in verified.output
    header = (workdir / "got" / "data" / "part-0.csv").read_text(encoding="utf-8").splitlines()[0]
    assert header == "record_id,first_name,last_name,ssn,birth_date,monthly_benefit"
    again = runner.invoke(app, ["run", str(workdir / "share.yaml"), "--out", str(workdir / "out")])
    assert again.exit_code == 5 and "never overwritten" in again.output


def verified_parquet_share(workdir: Path, **options: str | None) -> str:
    """What `share verify` tells the recipient of the workdir's share run as Parquet with the options (None: unset)."""
    share = yaml.safe_load((workdir / "share.yaml").read_text(encoding="utf-8"))
    share = {**share, "output": "parquet", **{k: v for k, v in options.items() if v is not None}}
    (workdir / "share.yaml").write_text(yaml.safe_dump(share), encoding="utf-8")
    assert runner.invoke(app, ["key", "agr-snap-tanf"]).exit_code == 0
    done = runner.invoke(app, ["run", str(workdir / "share.yaml"), "--out", str(workdir / "out")])
    assert done.exit_code == 0, done.output
    certificate, key = str(workdir / "tanf-cert.pem"), str(workdir / "tanf-key.pem")
    verified = runner.invoke(
        app, ["verify", str(workdir / "out" / "snap-tanf-1.p7m"), "--cert", certificate, "--key", key]
    )
    assert verified.exit_code == 0, verified.output
    return verified.output


def test_verify_tells_the_recipient_which_readers_open_v2_parquet(workdir: Path) -> None:
    output = verified_parquet_share(workdir, parquet_encodings="v2", token_format="hex")
    assert "format 2 encodings" in output and "Spark 3.3+" in output and "binary" not in output


@pytest.mark.parametrize("token_format", ["bytes", None])
def test_verify_tells_the_recipient_that_pseudonyms_are_bytes(workdir: Path, token_format: str | None) -> None:
    output = verified_parquet_share(workdir, token_format=token_format)  # None: Parquet's default, bytes
    assert "32-byte binary values" in output and "format 2" not in output


def test_verify_says_nothing_of_binary_for_hex_tokens(workdir: Path) -> None:
    assert "binary" not in verified_parquet_share(workdir, token_format="hex")


def test_verify_rejects_a_package_for_someone_else(workdir: Path) -> None:
    runner.invoke(app, ["key", "agr-snap-tanf"])
    assert runner.invoke(app, ["run", str(workdir / "share.yaml"), "--out", str(workdir / "out")]).exit_code == 0
    make_recipient(workdir, "other")
    result = runner.invoke(
        app,
        [
            "verify",
            str(workdir / "out" / "snap-tanf-1.p7m"),
            "--cert",
            str(workdir / "other-cert.pem"),
            "--key",
            str(workdir / "other-key.pem"),
        ],
    )
    assert result.exit_code == 8


def test_an_unapproved_request_exits_not_permitted(workdir: Path) -> None:
    share = yaml.safe_load((workdir / "share.yaml").read_text(encoding="utf-8"))
    share["request"]["recipient"] = {"kind": "public"}
    share["request"]["purpose"] = "public_disclosure"
    (workdir / "share.yaml").write_text(yaml.safe_dump(share), encoding="utf-8")
    result = runner.invoke(app, ["plan", str(workdir / "share.yaml")])
    assert result.exit_code == 6 and "not permitted" in result.output


def test_dictionary_propose_writes_a_proposal_to_review(workdir: Path) -> None:
    result = runner.invoke(
        dictionary_app,
        ["propose", str(workdir / "syn" / "tanf.csv"), "--program", "tanf", "--out", str(workdir / "d.yaml")],
    )
    assert result.exit_code == 0, result.output
    proposal = yaml.safe_load((workdir / "d.yaml").read_text(encoding="utf-8"))
    assert proposal["status"] == "proposed"
    assert proposal["fields"]["ssn"]["kind"] == "ssn" and proposal["fields"]["email"]["kind"] == "email"


def test_an_impossible_date_in_a_share_file_or_dictionary_is_an_error_not_a_traceback(workdir: Path) -> None:
    share_file = workdir / "share.yaml"
    share_file.write_text(share_file.read_text(encoding="utf-8") + "as_of: 2026-02-30\n", encoding="utf-8")
    result = runner.invoke(app, ["plan", str(share_file)])
    assert result.exit_code == 2 and "impossible date" in result.output and "Traceback" not in result.output
    share_file.write_text(share_file.read_text(encoding="utf-8").replace("as_of: 2026-02-30\n", ""), encoding="utf-8")
    dictionary = workdir / "syn" / "dictionary-snap.yaml"
    dictionary.write_text(dictionary.read_text(encoding="utf-8") + "reviewed_on: 2026-02-30\n", encoding="utf-8")
    result = runner.invoke(app, ["plan", str(share_file)])
    assert result.exit_code == 2 and "malformed data dictionary" in result.output
