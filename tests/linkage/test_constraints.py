"""Cannot-link constraints: twins stay apart, one person's varied records still link, chains are split."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pytest
from splink import DuckDBAPI, Linker

from sharewise.domain.errors import InvalidDataError, NotFoundError
from sharewise.linkage.constraints import (
    COLUMNS,
    CannotLinkRules,
    apply_constraints,
    default_rules,
    describe,
    parse_rules,
    read_rules,
)
from sharewise.linkage.evaluate import cluster_accuracy
from sharewise.linkage.model import TrainingOptions, available_columns, train
from sharewise.linkage.prepare import prepare
from sharewise.linkage.sources import STANDARD_COLUMNS, read_people
from sharewise.pipeline.synth import SynthRates, generate
from sharewise.services.linkage import SYNTH_MAPPING

NO_RULES = CannotLinkRules(())


def people(*rows: dict[str, str]) -> pa.Table:
    """Standard person records (missing columns empty), prepared for linkage."""
    columns = {c: [row.get(c) for row in rows] for c in STANDARD_COLUMNS}
    return prepare(pa.table({c: pa.array(v, pa.string()) for c, v in columns.items()}))


def predictions(*pairs: tuple[str, str, float]) -> pa.Table:
    """A predictions table as Splink writes it: (record_id_l, record_id_r, match_weight, match_probability)."""
    weights = [w for _, _, w in pairs]
    return pa.table(
        {
            "match_weight": pa.array(weights, pa.float64()),
            "match_probability": pa.array([2**w / (1 + 2**w) for w in weights], pa.float64()),
            "record_id_l": pa.array([a for a, _, _ in pairs], pa.string()),
            "record_id_r": pa.array([b for _, b, _ in pairs], pa.string()),
        }
    )


@pytest.fixture
def con() -> Iterator[duckdb.DuckDBPyConnection]:
    connection = duckdb.connect()
    yield connection
    connection.close()


def clusters_of(con: duckdb.DuckDBPyConnection, records: pa.Table, scored: pa.Table, **kw: Any) -> dict[str, str]:
    con.register("preds", scored)
    result = apply_constraints(con, "preds", records, 0.9, **kw)
    return dict(zip(result.clusters["record_id"].to_pylist(), result.clusters["cluster_id"].to_pylist(), strict=True))


HOME = {"surname": "Okafor", "street_address": "12 Elm St", "city": "Dayton", "zip": "45402", "phone": "9375550101"}


def test_twins_with_different_given_names_stay_apart(con: duckdb.DuckDBPyConnection) -> None:
    records = people(
        {"record_id": "a1", "given_name": "Emma", "dob": "2015-04-09", "sex": "F", "ssn": "900-12-3456", **HOME},
        {"record_id": "a2", "given_name": "Emma", "dob": "2015-04-09", "sex": "F", **HOME},
        {"record_id": "b1", "given_name": "Olivia", "dob": "2015-04-09", "sex": "F", **HOME},  # no SSN
        {"record_id": "b2", "given_name": "Olivia", "dob": "2015-04-09", "sex": "F", "ssn": "900-65-4321", **HOME},
    )
    scored = predictions(("a1", "a2", 20), ("b1", "b2", 20), ("a1", "b1", 14), ("a2", "b2", 12), ("a1", "b2", 8))
    clusters = clusters_of(con, records, scored)
    assert clusters == {"a1": "a1", "a2": "a1", "b1": "b1", "b2": "b1"}
    assert clusters_of(con, records, scored, rules=NO_RULES) == dict.fromkeys(("a1", "a2", "b1", "b2"), "a1")
    con.register("preds", scored)
    result = apply_constraints(con, "preds", records, 0.9)
    # a1-b2: SSNs and given names differ; the others: same birthday, unrelated names, no SSN to say otherwise.
    assert result.vetoed == {"ssn-and-given-name-differ": 1, "same-birth-date-given-name-differs": 2}
    assert result.clusters_split == 0
    remaining = con.execute(f"SELECT record_id_l, record_id_r FROM {result.edges} ORDER BY 1, 2").fetchall()
    assert remaining == [("a1", "a2"), ("b1", "b2")]


def with_compared_columns(scored: pa.Table, records: pa.Table) -> pa.Table:
    """The predictions with each record's prepared columns as `<column>_l` and `_r`, as Splink retains them."""
    rows = {r["record_id"]: r for r in records.to_pylist()}
    for column in COLUMNS:
        for side in ("l", "r"):
            values = [rows[i][column] for i in scored[f"record_id_{side}"].to_pylist()]
            scored = scored.append_column(f"{column}_{side}", pa.array(values, records.schema.field(column).type))
    return scored


def test_the_predictions_own_columns_and_the_records_give_the_same_answer(con: duckdb.DuckDBPyConnection) -> None:
    records = people(
        {"record_id": "a", "given_name": "Noah", "dob": "2010-09-01", "ssn": "900-11-2222", **HOME},
        {"record_id": "x", "dob": "2010-09-01", **HOME},
        {"record_id": "b", "given_name": "Liam", "dob": "2010-09-01", **HOME},
        {"record_id": "c", "given_name": "Liam", "dob": "2010-09-01", "ssn": "900-33-4444", **HOME},
    )
    scored = predictions(("a", "x", 16), ("x", "b", 11), ("b", "c", 18), ("a", "b", 10), ("a", "c", 9))
    results = []
    for table in (scored, with_compared_columns(scored, records)):
        con.register("preds", table)
        result = apply_constraints(con, "preds", records, 0.9)
        results.append((result.clusters.to_pylist(), result.vetoed, result.clusters_split, result.edges_cut))
    assert results[0] == results[1]
    assert results[0][1] == {"ssn-and-given-name-differ": 1, "same-birth-date-given-name-differs": 1}


def test_a_nickname_and_a_typo_in_the_ssn_still_link(con: duckdb.DuckDBPyConnection) -> None:
    records = people(
        {"record_id": "w1", "given_name": "William", "dob": "1980-01-02", "ssn": "900123456", **HOME},
        {"record_id": "w2", "given_name": "Bill", "dob": "1980-01-02", "ssn": "900123465", **HOME},  # swapped digits
        {"record_id": "w3", "given_name": "Bill", "dob": "1980-01-02", "ssn": "900128456", **HOME},  # one digit off
        {"record_id": "w4", "given_name": "Wiliam", "dob": "1980-02-01", "ssn": "900123456", **HOME},  # typo, d/m
        {"record_id": "w5", "given_name": "W", "dob": "1980-01-02", **HOME},  # an initial
        {"record_id": "w6", "given_name": "Baby Boy", "dob": "1980-01-02", **HOME},  # a newborn's placeholder
    )
    scored = predictions(*[(f"w{i}", f"w{j}", 15) for i in range(1, 7) for j in range(i + 1, 7)])
    assert set(clusters_of(con, records, scored).values()) == {"w1"}


def test_swapped_names_and_a_partial_ssn_are_not_evidence_of_two_people(con: duckdb.DuckDBPyConnection) -> None:
    base = {"dob": "1975-06-30", **HOME}
    records = people(
        {"record_id": "m1", "given_name": "James", "middle_name": "Robert", "ssn": "900-55-1234", **base},
        {"record_id": "m2", "given_name": "Robert", **base},  # goes by the middle name
        {"record_id": "m3", "given_name": "R", "middle_name": "James", "ssn": "1234", **base},  # partial SSN
        {**base, "record_id": "m4", "given_name": "Okafor", "surname": "James", "ssn": "900551234"},  # swapped
    )
    scored = predictions(("m1", "m2", 12), ("m1", "m3", 12), ("m2", "m3", 12), ("m1", "m4", 12), ("m2", "m4", 12))
    assert set(clusters_of(con, records, scored).values()) == {"m1"}


def test_a_transitive_chain_that_would_join_twins_is_split_at_its_weakest_edge(
    con: duckdb.DuckDBPyConnection,
) -> None:
    records = people(
        {"record_id": "a", "given_name": "Noah", "dob": "2010-09-01", "sex": "M", "ssn": "900-11-2222", **HOME},
        {"record_id": "x", "dob": "2010-09-01", "sex": "M", **HOME},  # no given name, no SSN: fits either twin
        {"record_id": "b", "given_name": "Liam", "dob": "2010-09-01", "sex": "M", **HOME},
        {"record_id": "c", "given_name": "Liam", "dob": "2010-09-01", "sex": "M", "ssn": "900-33-4444", **HOME},
    )
    # No scored pair breaks a rule; only the chain a - x - b joins the twins.
    scored = predictions(("a", "x", 16), ("x", "b", 11), ("b", "c", 18))
    con.register("preds", scored)
    result = apply_constraints(con, "preds", records, 0.9)
    assert result.vetoed == {}
    assert result.clusters_split == 1 and result.edges_cut == 1
    assert result.clusters.to_pylist() == [
        {"record_id": "a", "cluster_id": "a"},
        {"record_id": "b", "cluster_id": "b"},
        {"record_id": "c", "cluster_id": "b"},
        {"record_id": "x", "cluster_id": "a"},  # the stronger edge keeps x with Noah
    ]
    remaining = con.execute(f"SELECT record_id_l, record_id_r FROM {result.edges} ORDER BY 1").fetchall()
    assert remaining == [("a", "x"), ("b", "c")]


def test_the_output_is_deterministic_whatever_the_order_of_the_pairs(con: duckdb.DuckDBPyConnection) -> None:
    records = people(
        {"record_id": "a", "given_name": "Noah", "dob": "2010-09-01", "ssn": "900-11-2222", **HOME},
        {"record_id": "x", "dob": "2010-09-01", **HOME},
        {"record_id": "y", "dob": "2010-09-01", **HOME},
        {"record_id": "b", "given_name": "Liam", "dob": "2010-09-01", "ssn": "900-33-4444", **HOME},
    )
    # Equal weights: only the tie-break on record ids decides which edge the split leaves out.
    pairs = [("a", "x", 12.0), ("x", "y", 12.0), ("y", "b", 12.0), ("a", "y", 12.0)]
    runs = [clusters_of(con, records, predictions(*order)) for order in (pairs, pairs[::-1], pairs[1:] + pairs[:1])]
    assert runs[0] == runs[1] == runs[2]
    assert runs[0]["a"] != runs[0]["b"]
    assert all(cluster == min(r for r, c in runs[0].items() if c == cluster) for cluster in runs[0].values())


def test_linking_two_files_vetoes_pairs_by_source_and_record_id(con: duckdb.DuckDBPyConnection) -> None:
    left = people({"record_id": "1", "given_name": "Emma", "dob": "2015-04-09", **HOME})
    right = people(
        {"record_id": "1", "given_name": "Olivia", "dob": "2015-04-09", **HOME},
        {"record_id": "2", "given_name": "Emma", "dob": "2015-04-09", **HOME},
    )
    scored = (
        predictions(("1", "1", 12), ("1", "2", 14))
        .append_column("source_dataset_l", pa.array(["file_a", "file_a"]))
        .append_column("source_dataset_r", pa.array(["file_b", "file_b"]))
    )
    con.register("preds", scored)
    result = apply_constraints(con, "preds", {"file_a": left, "file_b": right}, 0.5, cluster=False)
    assert result.clusters.num_rows == 0
    assert result.vetoed == {"same-birth-date-given-name-differs": 1}
    assert con.execute(f"SELECT record_id_l, record_id_r FROM {result.edges}").fetchall() == [("1", "2")]
    with pytest.raises(InvalidDataError, match="invalid call"):
        apply_constraints(con, "preds", {"file_a": left, "file_b": right}, 0.5)


def _twin_pairs(directory: Path, clusters: pa.Table) -> tuple[int, int]:
    """(twin pairs in one cluster, twin pairs): distinct people whose records share a birth date and a phone."""
    truth = {r["record_id"]: r["person_id"] for r in csv.DictReader((directory / "truth.csv").open(encoding="utf-8"))}
    rows = list(csv.DictReader((directory / "people.csv").open(encoding="utf-8")))
    by_key: dict[tuple[str, str], set[str]] = {}
    for r in rows:
        by_key.setdefault((r["birth_date"], r["phone"]), set()).add(truth[r["record_id"]])
    twins = {(a, b) for group in by_key.values() for a in group for b in group if a < b}
    together: set[tuple[str, str]] = set()
    members: dict[str, set[str]] = {}
    for record, cluster in zip(clusters["record_id"].to_pylist(), clusters["cluster_id"].to_pylist(), strict=True):
        members.setdefault(cluster, set()).add(truth[record])
    for group in members.values():
        together |= {(a, b) for a in group for b in group if a < b}
    return len(twins & together), len(twins)


def test_deduplicating_synthetic_twins_keeps_them_apart_without_losing_recall(tmp_path: Path) -> None:
    rates = SynthRates(twins=0.2, household=0.4, shared_address=0.1)
    generate(tmp_path, 1200, ("medicaid",), seed=5, rates=rates)
    (tmp_path / "medicaid.csv").rename(tmp_path / "people.csv")
    records = prepare(read_people(tmp_path / "people.csv", SYNTH_MAPPING, "people"))
    truth = pa.table(
        {
            k: [r[c] for r in csv.DictReader((tmp_path / "truth.csv").open(encoding="utf-8"))]
            for k, c in (("record_id", "record_id"), ("entity_id", "person_id"))
        }
    )
    con = duckdb.connect()
    try:
        data = DuckDBAPI(con).register(records, dataset_display_name="people")
        n = records.num_rows
        available = available_columns([records])
        model = train(data, "dedupe_only", available, TrainingOptions(2e5, 1e5), n, n * (n - 1) // 2)
        linker = Linker(data, model.settings, log_level=None)
        scored = linker.inference.predict(threshold_match_probability=0.9)
        plain = linker.clustering.cluster_pairwise_predictions_at_threshold(scored, threshold_match_probability=0.9)
        before = con.sql(
            f"SELECT CAST(record_id AS VARCHAR) AS record_id, CAST(cluster_id AS VARCHAR) AS cluster_id "
            f"FROM {plain.physical_name}"
        ).to_arrow_table()
        # With no rule, the clusters are Splink's own (connected components, the smallest record id names each).
        unconstrained = apply_constraints(con, scored.physical_name, records, 0.9, rules=NO_RULES).clusters
        assert sorted(unconstrained.to_pylist(), key=str) == sorted(before.to_pylist(), key=str)
        after = apply_constraints(con, scored.physical_name, records, 0.9)
    finally:
        con.close()
    merged_before, twins = _twin_pairs(tmp_path, before)
    merged_after, _ = _twin_pairs(tmp_path, after.clusters)
    assert twins >= 20 and merged_before >= 3, (twins, merged_before)
    assert merged_after == 0
    accuracy_before, accuracy_after = cluster_accuracy(before, truth), cluster_accuracy(after.clusters, truth)
    assert accuracy_after.precision > accuracy_before.precision
    assert accuracy_after.recall >= accuracy_before.recall - 0.002, (accuracy_before, accuracy_after)


def test_the_shipped_rules_are_documented_data() -> None:
    rules = default_rules()
    ids = [r["id"] for r in describe(rules)]
    assert ids == ["ssn-and-given-name-differ", "same-birth-date-given-name-differs", "birth-date-differs-without-ssn"]
    assert [r.id for r in rules.enabled] == ids[:2]
    assert all(rule.summary for rule in rules.rules)
    assert "babyboy" in rules.unknown_given_names


def test_rules_files_with_problems_are_refused_with_every_problem_located(tmp_path: Path) -> None:
    bad = tmp_path / "rules.yaml"
    bad.write_text(
        "format: sharewise-cannot-link/0\n"
        "rules:\n"
        "  - id: Twins\n"
        "    summary: ''\n"
        "    all: [{dob_equal: {}}, {shoe_size_differs: {}}]\n"
        "  - id: near\n"
        "    summary: s\n"
        "    all: [{given_names_unrelated: {similarity: 3, colour: 1}}, {ssn_differs: {min_digits: 7.5}}]\n"
        "  - id: near\n"
        "    summary: s\n"
        "    enabled: maybe\n"
        "    all: [{not: {dob_equal: {}}}]\n"
        "unknown_given_names: [Baby Boy]\n",
        encoding="utf-8",
    )
    with pytest.raises(InvalidDataError) as caught:
        read_rules(bad)
    found = [str(p) for p in caught.value.problems]
    for expected in (
        "rules.yaml: format: must be sharewise-cannot-link/1",
        "rules.yaml: unknown_given_names: a list of lower-case names (letters only)",
        "rules.yaml: rules[0].id: a kebab-case id",
        "rules.yaml: rules[0].summary: a plain-language summary",
        "rules.yaml: rules[0].all[1]: unknown condition 'shoe_size_differs'",
        "rules.yaml: rules[1].all[0].given_names_unrelated.similarity: from 0.5 to 1",
        "rules.yaml: rules[1].all[0].given_names_unrelated.colour: unknown parameter",
        "rules.yaml: rules[1].all[1].ssn_differs.min_digits: an integer",
        "rules.yaml: rules[2].id: 'near' is used twice",
        "rules.yaml: rules[2].enabled: true or false",
        "rules.yaml: rules[2].all: at least one condition that is not negated",
    ):
        assert any(f.startswith(expected) for f in found), (expected, found)
    with pytest.raises(NotFoundError):
        read_rules(tmp_path / "missing.yaml")
    bad.write_text("rules: [\n", encoding="utf-8")
    with pytest.raises(InvalidDataError, match="invalid cannot-link rules"):
        read_rules(bad)
    with pytest.raises(InvalidDataError):
        parse_rules(["not", "a", "mapping"])


def test_a_rules_file_can_change_thresholds_and_switch_rules(con: duckdb.DuckDBPyConnection, tmp_path: Path) -> None:
    records = people(
        {"record_id": "p", "given_name": "Mary", "dob": "2001-02-03", **HOME},
        {"record_id": "q", "given_name": "Maria", "dob": "2001-02-03", **HOME},
    )
    scored = predictions(("p", "q", 15))
    # Mary and Maria: two edits apart and Jaro-Winkler 0.85, so unrelated names by default (twins, not a typo).
    assert clusters_of(con, records, scored) == {"p": "p", "q": "q"}
    lenient = tmp_path / "lenient.yaml"
    lenient.write_text(
        "format: sharewise-cannot-link/1\n"
        "rules:\n"
        "  - id: twins\n"
        "    summary: Same birthday, other given name.\n"
        "    all: [{dob_equal: {}}, {given_names_unrelated: {similarity: 0.8, typo_edits: 2}}]\n",
        encoding="utf-8",
    )
    assert clusters_of(con, records, scored, rules=read_rules(lenient)) == {"p": "p", "q": "p"}
    off = tmp_path / "off.yaml"
    off.write_text("format: sharewise-cannot-link/1\nrules: []\n", encoding="utf-8")
    assert read_rules(off).enabled == ()
