"""Benchmark share execution: rows per second and peak memory on DuckDB against a plain COPY floor, and Spark.

Run: `uv run python bench/bench_share.py` (10 million rows on DuckDB, 1 million on Spark, about
3-4 minutes on 2 cores). `--rows N` and `--spark-rows N` scale it; `--spark-rows 0` skips Spark.
`--date-shift DAYS` also runs the spec with both dates shifted per person (keyed by client_id,
up to DAYS either way) instead of the year reduction, and reports its cost against the spec.
The share runs four times: with the defaults (tokens as their 32 bytes, compatible Parquet
encodings), with `token_format: hex` (64 hex digits, text), with `parquet_encodings: v2`
(DELTA_LENGTH_BYTE_ARRAY for the tokens; fewer readers open it), and with hex and v2. The
previous version's default is run as a baseline: hex tokens written by DuckDB's own COPY (before
pyarrow wrote shares with settings per column, ADR 0005). The floor is also run at DuckDB's own
defaults (Snappy), the issue's literal floor, and each share's ratio is printed against both.
`--repeat N` runs the floors and the shares N times, interleaved, and reports the best of each
(single runs on a shared machine move by 5-10%).
`--variants` also writes the same share in other ways, to show what each cost is: HMAC in SQL
instead of the compiled kernel, zstd at DuckDB's default level, Snappy; and the share on each
compiled HMAC engine that passes its self-test here (the process uses the faster).

The spec is the issue's typical one: a projection of 7 of 10 columns, two HMAC-SHA256
pseudonyms, a date reduced to its year and a ZIP code reduced to three digits (000 for the
restricted prefixes). The floor, run on the same data in the same process, is DuckDB's own
`COPY (SELECT needed columns) TO parquet`, with the writer settings the share uses. Peak memory is
the process's peak resident set size sampled every 20 ms while each step runs; the extract is
also run on a quarter of the rows to show that memory does not grow with the row count. CPU is
the process's CPU seconds (all DuckDB threads): on a loaded machine, rows per CPU-second moves
less than rows per second. The compiled HMAC's start-up (import numba, load or compile the
kernel, self-test) is a once-per-process cost, timed on its own before the share.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import psutil

from sharewise.pipeline import hmac_kernel
from sharewise.pipeline.backend import Backend, ParquetInput, PseudonymPads
from sharewise.pipeline.duckdb_backend import PARQUET_OPTIONS, DuckDBBackend
from sharewise.pipeline.extract import extract
from sharewise.pipeline.spec import DATE_SHIFT, KEEP, PSEUDONYMIZE, YEAR, ZIP3, DateShift, FieldPlan, ShareSpec
from sharewise.pipeline.sql import base_sql

AS_OF = dt.date(2026, 3, 1)
KEY = bytes(range(32))
NEEDED = ["client_id", "ssn", "birth_date", "zip", "sex", "benefit", "certified_on"]

SPEC = ShareSpec(
    form="limited_data_set",
    fields=(
        FieldPlan("client_id", "identity", "direct", "string", PSEUDONYMIZE, "unique_id"),
        FieldPlan("ssn", "identity", "direct", "string", PSEUDONYMIZE, "ssn"),
        FieldPlan("birth_date", "identity", "direct", "date", YEAR, "birth_date"),
        FieldPlan("zip", "contact", "direct", "string", ZIP3, "zip"),
        FieldPlan("sex", "demographics", "quasi", "string", KEEP),
        FieldPlan("benefit", "eligibility_and_benefits", "other", "decimal", KEEP),
        FieldPlan("certified_on", "eligibility_and_benefits", "other", "date", KEEP),
    ),
    dropped=(),
    permitted_categories=("identity", "contact", "demographics", "eligibility_and_benefits"),
)


def shifted_spec(max_days: int) -> ShareSpec:
    """The same spec with both dates shifted per person instead of reduced to a year."""
    fields = tuple(dataclasses.replace(f, transform=DATE_SHIFT) if f.type == "date" else f for f in SPEC.fields)
    person = FieldPlan("client_id", "identity", "direct", "string", KEEP, "unique_id")
    return dataclasses.replace(SPEC, fields=fields, date_shift=DateShift(person, max_days))


def generate(path: Path, rows: int) -> None:
    """Synthetic typed rows made by DuckDB itself (Faker would take longer than the benchmark)."""
    import duckdb

    duckdb.execute(
        f"""COPY (SELECT 'C' || LPAD(CAST(i AS VARCHAR), 10, '0') AS client_id,
                  'First' || CAST(i % 5000 AS VARCHAR) AS first_name,
                  'Last' || CAST((i * 7) % 20000 AS VARCHAR) AS last_name,
                  '9' || LPAD(CAST(hash(i) % 100000000 AS VARCHAR), 8, '0') AS ssn,
                  DATE '1930-01-01' + CAST(hash(i, 1) % 32000 AS INTEGER) AS birth_date,
                  LPAD(CAST(hash(i, 2) % 99999 AS VARCHAR), 5, '0') AS zip,
                  CASE WHEN i % 2 = 0 THEN 'F' ELSE 'M' END AS sex,
                  CAST(hash(i, 3) % 100000 AS DOUBLE) / 100 AS benefit,
                  DATE '2020-01-01' + CAST(hash(i, 4) % 2000 AS INTEGER) AS certified_on,
                  'note ' || CAST(i % 1000 AS VARCHAR) AS case_note
              FROM range({rows}) AS t(i)) TO '{path}' (FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE 122880)"""
    )


@dataclasses.dataclass(frozen=True)
class Measure:
    seconds: float
    cpu: float  # CPU seconds of the whole process (every engine thread)
    peak: int  # peak RSS in bytes

    def line(self, rows: int) -> str:
        return (
            f"{self.seconds:6.2f} s  {rows / self.seconds / 1e6:5.2f} M rows/s  CPU {self.cpu:6.2f} s "
            f"({rows / self.cpu / 1e6:4.2f} M rows per CPU-s)  peak RSS {self.peak / 2**20:,.0f} MiB"
        )


def measured(fn: Callable[[], object]) -> Measure:
    """Seconds, CPU seconds, and the peak RSS in bytes while fn ran."""
    process = psutil.Process()
    peak = process.memory_info().rss
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.wait(0.02):
            peak = max(peak, process.memory_info().rss)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    start = time.perf_counter()
    cpu = time.process_time()
    try:
        fn()
    finally:
        elapsed = time.perf_counter() - start
        cpu = time.process_time() - cpu
        done.set()
        sampler.join()
    return Measure(elapsed, cpu, max(peak, process.memory_info().rss))


def run_extract(
    backend: Backend,
    source: Path,
    out: Path,
    spec: ShareSpec = SPEC,
    parquet_encodings: str = "compatible",
    token_format: str | None = None,
) -> int:
    backend.register_input(ParquetInput(source))
    pads = PseudonymPads.from_key(KEY)
    return extract(
        backend, spec, out, "parquet", AS_OF, pads, parquet_encodings=parquet_encodings, token_format=token_format
    ).rows


def copy_share(source: Path, target: Path, options: str, threads: int, compiled_hmac: bool = True) -> None:
    """The share's SQL, hex tokens, written by DuckDB's COPY with the given writer options.

    With PARQUET_OPTIONS this is the previous version's default share (before ADR 0005).
    """
    backend = DuckDBBackend(threads=threads, compiled_hmac=compiled_hmac)
    backend.register_input(ParquetInput(source))
    backend.register_key(PseudonymPads.from_key(KEY))
    backend.con.execute(f"COPY ({base_sql(SPEC.fields, AS_OF.year)}) TO '{target}' ({options})")
    backend.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--spark-rows", type=int, default=1_000_000)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    parser.add_argument(
        "--date-shift", type=int, default=0, metavar="DAYS", help="also measure per-person date shifting"
    )
    parser.add_argument("--variants", action="store_true", help="also measure SQL HMAC, zstd level 3 and Snappy")
    parser.add_argument(
        "--repeat", type=int, default=1, metavar="N", help="best of N interleaved rounds of the floors and shares"
    )
    args = parser.parse_args()
    rows = args.rows
    work = Path(tempfile.mkdtemp(prefix="sharewise-bench-"))
    try:
        print(
            f"machine: {os.cpu_count()} cores, {psutil.virtual_memory().total / 2**30:.0f} GiB; DuckDB threads {args.threads}; "
            f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}"
        )
        source = work / "input.parquet"
        seconds = measured(lambda: generate(source, rows)).seconds
        print(f"generated {rows:,} rows in {seconds:.1f} s ({source.stat().st_size / 2**20:.0f} MiB parquet)")

        start = time.perf_counter()
        engine = hmac_kernel.compiled_hmac()
        print(
            f"compiled HMAC start-up: {time.perf_counter() - start:.2f} s "
            f"(engine: {engine.name if engine else 'none, HMAC in SQL'})"
        )

        columns = ", ".join(NEEDED)

        def copy_floor(options: str) -> Callable[[], object]:
            def step() -> object:
                floor = DuckDBBackend(threads=args.threads)
                try:
                    floor.register_input(ParquetInput(source))
                    target = work / "floor.parquet"
                    return floor.con.execute(f"COPY (SELECT {columns} FROM sw_source) TO '{target}' ({options})")
                finally:
                    floor.close()

            return step

        def share(name: str, encodings: str, token_format: str | None) -> Callable[[], object]:
            def step() -> object:
                shutil.rmtree(work / name, ignore_errors=True)
                backend = DuckDBBackend(threads=args.threads)
                try:
                    return run_extract(
                        backend, source, work / name, parquet_encodings=encodings, token_format=token_format
                    )
                finally:
                    backend.close()

            return step

        # (label, output directory or None for a floor, step): the floor, the share with the defaults
        # and with each output option, and the floor at DuckDB's own defaults (the literal floor).
        shares: tuple[tuple[str, str, str, str | None], ...] = (
            ("share, defaults (bytes, compatible)", "share", "compatible", None),
            ("share, token_format hex", "share-hex", "compatible", "hex"),
            ("share, parquet_encodings v2", "share-v2", "v2", None),
            ("share, hex and v2", "share-hex-v2", "v2", "hex"),
        )

        def previous() -> object:
            (work / "previous").mkdir(exist_ok=True)
            copy_share(source, work / "previous" / "part-0.parquet", PARQUET_OPTIONS, args.threads)
            return None

        steps: list[tuple[str, str | None, Callable[[], object]]] = [
            ("floor  (plain COPY of the needed columns)", None, copy_floor(PARQUET_OPTIONS)),
            *((label, directory, share(directory, enc, fmt)) for label, directory, enc, fmt in shares),
            ("previous version (hex, DuckDB's COPY)", "previous", previous),
            ("floor at DuckDB's defaults (Snappy)", None, copy_floor("FORMAT parquet")),
        ]
        rounds: dict[str, list[Measure]] = {label: [] for label, _, _ in steps}
        for _ in range(args.repeat):  # interleaved, so a change in the machine's load hits every step alike
            for label, _, step in steps:
                rounds[label].append(measured(step))
        best = {label: min(ms, key=lambda m: m.seconds) for label, ms in rounds.items()}
        floor_m, share_m, literal = best[steps[0][0]], best[steps[1][0]], best[steps[-1][0]]
        for label, directory, _ in steps:
            m = best[label]
            if directory is None:
                print(f"{label + ':':42} {m.line(rows)}")
                continue
            size = sum(f.stat().st_size for f in (work / directory).rglob("*.parquet"))
            print(f"{label + ':':42} {m.line(rows)}  ({size / 2**20:,.0f} MiB)")
            print(
                f"  ratio to the floor: {m.seconds / floor_m.seconds:.2f}x (CPU {m.cpu / floor_m.cpu:.2f}x); "
                f"to the floor at DuckDB's defaults: {m.seconds / literal.seconds:.2f}x"
            )
        before = best["previous version (hex, DuckDB's COPY)"]
        print(
            f"defaults against the previous version: {before.seconds / share_m.seconds:.2f}x as fast "
            f"(CPU {before.cpu / share_m.cpu:.2f}x less)"
        )
        if args.repeat > 1:
            print(f"best of {args.repeat} interleaved rounds; each round's seconds:")
            for label, ms in rounds.items():
                print(f"  {label:40} {' '.join(f'{m.seconds:.2f}' for m in ms)}")

        if args.variants:
            for label, options, compiled in (
                ("share, HMAC in SQL", PARQUET_OPTIONS, False),
                ("share, zstd at DuckDB's default level 3", "FORMAT parquet, COMPRESSION zstd", True),
                ("share, Snappy", "FORMAT parquet, COMPRESSION snappy", True),
            ):
                target = work / f"variant-{len(list(work.glob('variant-*')))}.parquet"
                m = measured(lambda: copy_share(source, target, options, args.threads, compiled))  # noqa: B023
                print(f"{label + ':':42} {m.line(rows)}  ({target.stat().st_size / 2**20:,.0f} MiB)")
            chosen = hmac_kernel._process.engine
            try:
                for candidate in hmac_kernel.checked_engines():
                    hmac_kernel._process.engine = candidate
                    target = work / f"engine-{candidate.name}.parquet"
                    m = measured(lambda: copy_share(source, target, PARQUET_OPTIONS, args.threads))  # noqa: B023
                    print(f"{'share on the ' + candidate.name + ' engine:':42} {m.line(rows)}")
            finally:
                hmac_kernel._process.engine = chosen

        if args.date_shift:
            backend = DuckDBBackend(threads=args.threads)
            spec = shifted_spec(args.date_shift)
            shift_m = measured(lambda: run_extract(backend, source, work / "share-shifted", spec))
            backend.close()
            print(f"share with dates shifted (±{args.date_shift} d):  {shift_m.line(rows)}")
            print(
                f"ratio shifted / share: {shift_m.seconds / share_m.seconds:.2f}x; "
                f"shifted / floor: {shift_m.seconds / floor_m.seconds:.2f}x"
            )

        quarter = work / "quarter.parquet"
        generate(quarter, rows // 4)
        backend = DuckDBBackend(threads=args.threads)
        q_m = measured(lambda: run_extract(backend, quarter, work / "share-quarter"))
        backend.close()
        print(
            f"share on {rows // 4:,} rows:               {q_m.seconds:6.2f} s  peak RSS {q_m.peak / 2**20:,.0f} MiB (memory vs row count)"
        )

        if args.spark_rows:
            from sharewise.pipeline.spark_backend import SparkBackend, local_session

            spark_source = work / "spark-input.parquet"
            generate(spark_source, args.spark_rows)
            start = time.perf_counter()
            session = local_session(cores=args.threads, app="sharewise-bench")
            print(f"spark  session start: {time.perf_counter() - start:.1f} s")
            spark = SparkBackend(session)
            run_extract(spark, spark_source, work / "spark-warmup")  # JIT and catalogue warm-up
            spark_s = measured(lambda: run_extract(spark, spark_source, work / "spark-share")).seconds
            print(
                f"spark  (same spec, {args.spark_rows:,} rows): {spark_s:6.2f} s  {args.spark_rows / spark_s / 1e6:5.2f} M rows/s (driver RSS not meaningful: the JVM is a child process)"
            )
            session.stop()
        print(f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
