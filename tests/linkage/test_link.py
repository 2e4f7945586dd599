"""Linkage in the clear with Splink: accuracy floors, explanations, deduplication and the person index."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pytest

from sharewise.audit.sink import MemoryAuditSink
from sharewise.domain.errors import InvalidDataError
from sharewise.linkage.evaluate import cluster_accuracy, pair_accuracy
from sharewise.linkage.link import LinkOptions, link
from sharewise.linkage.person_index import PersonIndex, assign
from sharewise.linkage.prepare import prepare
from sharewise.services import linkage


def test_link_files_meets_accuracy_floor_and_explains_weights(
    tmp_path: Path, febrl_small: tuple[pa.Table, ...]
) -> None:
    a, b, ta, tb = febrl_small
    explain = tmp_path / "why.html"
    result = link(prepare(a), prepare(b), LinkOptions(threshold=0.5, one_to_one=True, explain_path=explain))
    accuracy = pair_accuracy(result.pairs, ta, tb)
    assert accuracy.precision >= 0.99 and accuracy.recall >= 0.97, accuracy
    assert "dob" in result.comparisons and "ssn" in result.comparisons
    assert explain.read_text(encoding="utf-8").lstrip().lower().startswith("<!doctype html")


def test_dedupe_with_index_keeps_ids_stable_across_batches(tmp_path: Path, febrl_small: tuple[pa.Table, ...]) -> None:
    a, b, ta, tb = febrl_small
    first, second = tmp_path / "first.csv", tmp_path / "second.csv"
    pacsv.write_csv(a, first)
    pacsv.write_csv(b, second)
    index = tmp_path / "people.duckdb"
    sink = MemoryAuditSink()
    options = LinkOptions(threshold=0.9)
    linkage.dedupe_file(first, tmp_path / "c1.csv", options, index_path=index, sink=sink)
    before = PersonIndex(index)
    ids_before = before.persons()
    before.close()
    outcome = linkage.dedupe_file(second, tmp_path / "c2.csv", options, index_path=index, sink=sink)
    after = PersonIndex(index)
    ids_after = after.persons()
    after.close()
    unchanged = sum(ids_after[r] == p for r, p in ids_before.items())
    assert unchanged >= 0.99 * len(ids_before)
    # Most second-batch records join the person of their first-batch original.
    truth = dict(
        zip(
            ta.column("record_id").to_pylist() + tb.column("record_id").to_pylist(),
            ta.column("entity_id").to_pylist() + tb.column("entity_id").to_pylist(),
            strict=True,
        )
    )
    clusters = pa.table({"record_id": list(ids_after), "cluster_id": list(ids_after.values())})
    accuracy = cluster_accuracy(clusters, pa.table({"record_id": list(truth), "entity_id": list(truth.values())}))
    assert accuracy.precision >= 0.98 and accuracy.recall >= 0.95, accuracy
    assert outcome.details["batch"] == 2
    assert [e.action for e in sink.events] == ["linkage-run", "linkage-run"]
    assert all(str(v) not in ("", None) for e in sink.events for v in e.details.values())
    with pytest.raises(InvalidDataError, match="already indexed"):
        linkage.dedupe_file(second, tmp_path / "c3.csv", options, index_path=index)


def test_new_batch_adds_to_existing_persons_without_renumbering() -> None:
    existing = {"r1": "P000000001", "r2": "P000000002"}
    clusters = {"r1": "c1", "r2": "c2", "r3": "c1", "r4": "c4"}
    result = assign(existing, clusters, next_number=3)
    assert result.persons == {"r1": "P000000001", "r2": "P000000002", "r3": "P000000001", "r4": "P000000003"}
    assert [(e.event, e.person_id) for e in result.events] == [("created", "P000000003")]


def test_merges_keep_the_oldest_id_and_are_recorded() -> None:
    result = assign({"r1": "P000000001", "r2": "P000000002"}, {"r1": "c", "r2": "c"}, next_number=3)
    assert set(result.persons.values()) == {"P000000001"}
    assert [(e.event, e.person_id, e.other_person_id) for e in result.events] == [
        ("merged", "P000000002", "P000000001")
    ]


def test_splits_keep_the_id_with_the_larger_part_and_are_recorded() -> None:
    existing = {"r1": "P000000001", "r2": "P000000001", "r3": "P000000001"}
    result = assign(existing, {"r1": "a", "r2": "a", "r3": "b"}, next_number=2)
    assert result.persons == {"r1": "P000000001", "r2": "P000000001", "r3": "P000000002"}
    assert [(e.event, e.person_id, e.other_person_id) for e in result.events] == [("split", "P000000002", "P000000001")]


def test_empty_name_and_date_columns_leave_nothing_to_compare(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_text("record_id,given_name,surname,dob\n1,,,\n2,,,\n", encoding="utf-8")
    with pytest.raises(InvalidDataError, match="nothing to compare"):
        linkage.dedupe_file(path, tmp_path / "c.csv", LinkOptions())
