"""The `link` and `pprl` commands: outputs, exit codes, and no personal data in messages."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

from typer.testing import CliRunner

from sharewise.cli.link import link_app, pprl_app

runner = CliRunner()


def test_link_files_writes_matches_csv(tmp_path: Path, febrl_files: tuple[Path, Path]) -> None:
    a, b = febrl_files
    out = tmp_path / "matches.csv"
    result = runner.invoke(link_app, ["files", str(a), str(b), "--out", str(out), "--one-to-one", "--no-audit"])
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert list(rows[0]) == ["left_id", "right_id", "match_probability"]
    assert len(rows) >= 550


def test_pprl_encode_then_match_writes_matches(tmp_path: Path, febrl_files: tuple[Path, Path]) -> None:
    a, b = febrl_files
    secret = tmp_path / "secret"
    secret.write_bytes(b"shared-out-of-band-0123456789abcdef")
    for name, path in (("a", a), ("b", b)):
        result = runner.invoke(
            pprl_app,
            [
                "encode",
                str(path),
                "--secret-file",
                str(secret),
                "--out",
                str(tmp_path / f"{name}.parquet"),
                "--no-audit",
            ],
        )
        assert result.exit_code == 0, result.output
    out = tmp_path / "m.csv"
    result = runner.invoke(
        pprl_app, ["match", str(tmp_path / "a.parquet"), str(tmp_path / "b.parquet"), "--out", str(out), "--no-audit"]
    )
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert list(rows[0]) == ["left_id", "right_id", "similarity"] and len(rows) >= 550


def test_missing_columns_exit_2_naming_columns_not_values(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("record_id,given_name\n1,Zebulon\n", encoding="utf-8")
    result = runner.invoke(link_app, ["dedupe", str(bad), "--out", str(tmp_path / "c.csv"), "--no-audit"])
    assert result.exit_code == 2
    assert "surname" in result.output and "Zebulon" not in result.output


def test_match_refuses_a_file_that_is_not_encodings(tmp_path: Path) -> None:
    bad = tmp_path / "a.parquet"
    bad.write_text("record_id,ssn\n1,912345678\n", encoding="utf-8")
    result = runner.invoke(pprl_app, ["match", str(bad), str(bad), "--out", str(tmp_path / "m.csv"), "--no-audit"])
    assert result.exit_code == 2 and "912345678" not in result.output


def test_dedupe_retrain_trains_a_new_model_instead_of_reusing_the_saved_one(
    tmp_path: Path, febrl_batches: tuple[Path, Path, dict[str, str]], first_batch_index: Path
) -> None:
    index = tmp_path / "people.duckdb"
    shutil.copy(first_batch_index, index)  # its model is fit for reuse (see test_link)
    out = tmp_path / "c2.csv"
    result = runner.invoke(
        link_app, ["dedupe", str(febrl_batches[1]), "--out", str(out), "--index", str(index), "--retrain", "--no-audit"]
    )
    assert result.exit_code == 0, result.output
    assert "index batch 2" in result.output and "model trained (trained by batch 2)" in result.output
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert list(rows[0]) == ["record_id", "person_id"] and len(rows) == 300


def test_dedupe_of_a_single_record_is_refused_in_one_line(tmp_path: Path) -> None:
    one = tmp_path / "one.csv"
    one.write_text("record_id,given_name,surname,dob\n1,Ann,Lee,2000-01-02\n", encoding="utf-8")
    result = runner.invoke(link_app, ["dedupe", str(one), "--out", str(tmp_path / "c.csv"), "--no-audit"])
    assert result.exit_code == 2, result.output
    assert "nothing to deduplicate" in result.output and "two or more" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
