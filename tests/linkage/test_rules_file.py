"""A custom cannot-link rules file: validated with every problem located, applied by link files, link dedupe and
link evaluate, and recorded in the audit trail by its SHA-256 (never its path)."""

from __future__ import annotations

import csv
import hashlib
from importlib import resources
from pathlib import Path

import pyarrow as pa
import pytest
from typer.testing import CliRunner

from sharewise.audit.sink import MemoryAuditSink
from sharewise.cli.link import link_app
from sharewise.domain.errors import InvalidDataError, NotFoundError
from sharewise.linkage.constraints import CannotLinkRules, default_rules, provenance, read_rules
from sharewise.linkage.link import LinkOptions
from sharewise.linkage.model import TrainingOptions
from sharewise.services import linkage

runner = CliRunner()
LIGHT = TrainingOptions(u_max_pairs=2e5, em_max_pairs=1e5)
# A rule that holds for nearly every true pair of FEBRL (a duplicate keeps its surname): its effect cannot be missed.
SAME_SURNAME = (
    "format: sharewise-cannot-link/1\n"
    "rules:\n"
    "  - id: same-surname\n"
    "    summary: Records with one surname are two people (a rule no one should use; for tests).\n"
    "    all: [{surname_equal: {}}]\n"
)


def _write(tmp_path: Path, name: str, text: str | bytes) -> Path:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def _problems(path: Path) -> list[str]:
    with pytest.raises(InvalidDataError, match="invalid cannot-link rules") as caught:
        read_rules(path)
    return [str(p) for p in caught.value.problems]


def test_a_rules_file_carries_its_sha256_and_the_shipped_one_is_known(tmp_path: Path) -> None:
    path = _write(tmp_path, "rules.yaml", SAME_SURNAME)
    rules = read_rules(path)
    assert rules.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert [r.id for r in rules.enabled] == ["same-surname"] and provenance(rules) == "file"
    shipped = resources.files("sharewise.linkage").joinpath("data", "cannot_link.yaml").read_bytes()
    assert default_rules().sha256 == hashlib.sha256(shipped).hexdigest() and provenance(default_rules()) == "shipped"
    # A copy of the shipped file is the shipped rules, whatever it is called.
    assert provenance(read_rules(_write(tmp_path, "copy.yaml", shipped))) == "shipped"
    assert provenance(CannotLinkRules(())) == "code"


def test_rules_files_that_are_not_rules_are_refused_with_a_located_reason(tmp_path: Path) -> None:
    assert _problems(_write(tmp_path, "broken.yaml", "format: sharewise-cannot-link/1\nrules: [\n  - id: x\n")) == [
        "broken.yaml:3: not valid YAML"
    ]
    assert _problems(
        _write(tmp_path, "latin1.yaml", "format: sharewise-cannot-link/1 # Zo\xeb\n".encode("latin-1"))
    ) == ["latin1.yaml: not UTF-8 text"]
    assert _problems(_write(tmp_path, "empty.yaml", "")) == ["empty.yaml: a mapping with format and rules"]
    assert _problems(_write(tmp_path, "huge.yaml", "# " + "x" * (1 << 20) + "\n")) == [
        "huge.yaml: larger than 1 MiB: not a rules file"
    ]
    folder = tmp_path / "folder.yaml"
    folder.mkdir()
    assert _problems(folder) == ["folder.yaml: a folder, not a rules file"]
    with pytest.raises(NotFoundError) as caught:
        read_rules(tmp_path / "private" / "missing.yaml")
    assert "private" not in str(caught.value.problems[0])  # the file's name, not its folder


def test_unknown_fields_kinds_and_parameters_are_each_named(tmp_path: Path) -> None:
    found = _problems(
        _write(
            tmp_path,
            "rules.yaml",
            "format: sharewise-cannot-link/1\n"
            "unknown_given_name: [baby]\n"  # misspelt: would be ignored without a word
            "rules:\n"
            "  - id: ssn\n"
            "    summary: s\n"
            "    colour: red\n"
            "    all: [{ssn_differs: {min_digits: 3}}, {zip_differs: {}}, {not: {not: {dob_equal: {}}}}]\n",
        )
    )
    for expected in (
        "rules.yaml: unknown fields: unknown_given_name (fields: format, rules, unknown_given_names)",
        "rules.yaml: rules[0]: unknown fields: colour",
        "rules.yaml: rules[0].all[0].ssn_differs.min_digits: from 4 to 12",
        "rules.yaml: rules[0].all[1]: unknown condition 'zip_differs'",
        "rules.yaml: rules[0].all[2].not: unknown condition 'not'",
    ):
        assert any(f.startswith(expected) for f in found), (expected, found)


def test_rules_given_with_the_rules_off_are_refused_and_the_audit_names_the_rules_by_digest(tmp_path: Path) -> None:
    custom = read_rules(_write(tmp_path, "rules.yaml", SAME_SURNAME))
    with pytest.raises(InvalidDataError, match="invalid option"):
        LinkOptions(cannot_link=False, cannot_link_rules=custom)
    assert LinkOptions().rules == default_rules() and LinkOptions(cannot_link=False).rules is None
    assert LinkOptions().audit_details() == {
        "backend": "duckdb",
        "cannot_link": True,
        "cannot_link_rules": "shipped",
        "cannot_link_rules_sha256": default_rules().sha256,
    }
    details = LinkOptions(cannot_link_rules=custom, backend="spark").audit_details()
    assert details["cannot_link_rules"] == "file" and details["cannot_link_rules_sha256"] == custom.sha256
    assert details["backend"] == "spark"
    assert LinkOptions(cannot_link=False).audit_details() == {"backend": "duckdb", "cannot_link": False}
    assert LinkOptions(cannot_link_rules=CannotLinkRules(())).audit_details()["cannot_link_rules_sha256"] is None


def test_the_cli_refuses_a_bad_rules_file_before_reading_the_data(
    tmp_path: Path, febrl_files: tuple[Path, Path]
) -> None:
    a, b = febrl_files
    out = tmp_path / "out.csv"
    bad = _write(
        tmp_path, "rules.yaml", "format: sharewise-cannot-link/1\nrules: [{id: x, summary: s, all: [{y: {}}]}]\n"
    )
    for args in (
        ["files", str(a), str(b), "--out", str(out)],
        ["dedupe", str(a), "--out", str(out)],
        ["evaluate", "--dataset", "synthetic", "--people", "20"],
    ):
        result = runner.invoke(link_app, [*args, "--cannot-link-rules", str(bad), "--no-audit"])
        assert result.exit_code == 2, result.output
        assert (
            "invalid cannot-link rules" in result.output and "rules[0].all[0]: unknown condition 'y'" in result.output
        )
        missing = runner.invoke(link_app, [*args, "--cannot-link-rules", str(tmp_path / "nope.yaml"), "--no-audit"])
        assert missing.exit_code == 4 and "cannot-link rules not found" in missing.output
        both = runner.invoke(link_app, [*args, "--cannot-link-rules", str(bad), "--no-cannot-link", "--no-audit"])
        assert both.exit_code == 2 and "cannot be used with --no-cannot-link" in both.output
    assert not out.exists()


def test_link_and_dedupe_apply_the_rules_file_given(
    tmp_path: Path,
    febrl_batches: tuple[Path, Path, dict[str, str]],
    febrl_files: tuple[Path, Path],
    febrl_small: tuple[pa.Table, ...],
) -> None:
    first = febrl_batches[0]  # 600 people, 300 of them with a duplicate
    rules = _write(tmp_path, "rules.yaml", SAME_SURNAME)
    persons: dict[str, int] = {}
    for name, extra in (("shipped", []), ("custom", ["--cannot-link-rules", str(rules)])):
        out = tmp_path / f"clusters-{name}.csv"
        result = runner.invoke(link_app, ["dedupe", str(first), "--out", str(out), *extra, "--no-audit"])
        assert result.exit_code == 0, result.output
        persons[name] = len({row["person_id"] for row in csv.DictReader(out.open(encoding="utf-8"))})
    # FEBRL's duplicates mostly keep their surname: with the rule, most of them stay apart.
    assert persons["shipped"] <= 620 and persons["custom"] >= 750, persons
    sink = MemoryAuditSink()
    a, b = febrl_files
    options = LinkOptions(threshold=0.5, one_to_one=True, training=LIGHT, cannot_link_rules=read_rules(rules))
    outcome = linkage.link_files(a, b, tmp_path / "matches.csv", options, sink=sink)
    surname = {
        r["record_id"]: r["surname"] for t in febrl_small[:2] for r in t.select(["record_id", "surname"]).to_pylist()
    }
    pairs = list(csv.DictReader((tmp_path / "matches.csv").open(encoding="utf-8")))
    assert 0 < len(pairs) < 300, len(pairs)  # without the rule: 590 or more
    same = [p for p in pairs if surname[p["left_id"]] is not None and surname[p["left_id"]] == surname[p["right_id"]]]
    assert not same  # a missing surname is no evidence: such pairs may link
    details = sink.events[0].details
    assert outcome.details["cannot_link_rules"] == details["cannot_link_rules"] == "file"
    assert details["cannot_link_rules_sha256"] == hashlib.sha256(rules.read_bytes()).hexdigest()
    assert str(tmp_path) not in str(details) and "rules.yaml" not in str(details)
    assert details["pairs_vetoed"] >= 290  # the audit says how many scored pairs the rule removed
    deduped = MemoryAuditSink()
    custom = LinkOptions(threshold=0.9, training=LIGHT, cannot_link_rules=read_rules(rules))
    linkage.dedupe_file(first, tmp_path / "clusters.csv", custom, sink=deduped)
    assert deduped.events[0].details["pairs_vetoed"] > 0
    assert isinstance(deduped.events[0].details["clusters_split"], int)


def test_evaluate_records_its_engine_and_rules(tmp_path: Path) -> None:
    sink = MemoryAuditSink()
    rules = read_rules(_write(tmp_path, "rules.yaml", SAME_SURNAME))
    rows = linkage.evaluate(("synthetic",), 150, sink=sink, cannot_link_rules=rules)
    assert [r.dataset for r in rows] == ["synthetic"]
    details = sink.events[0].details
    assert details["backend"] == "duckdb" and details["cannot_link_rules_sha256"] == rules.sha256
    with pytest.raises(InvalidDataError, match="invalid option"):
        linkage.evaluate(("synthetic",), 150, cannot_link=False, cannot_link_rules=rules)
