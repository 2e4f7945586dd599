"""Where a share's time goes: the benchmark share taken apart, each piece timed in one process.

Run: `uv run python bench/bench_share_costs.py` (4 million rows, about 2 minutes on 2 cores;
`--rows N` scales it, `--rounds N` sets best-of). It answers the question issue 4's throughput
target leaves open: what would each possible change buy?

It times, on the data and spec of bench_share.py, each the best of a few rounds:
- the floor (a plain COPY of the needed columns), the share as it runs (defaults: 32-byte tokens
  written by pyarrow with settings per column, ADR 0005) and the share's SQL with hex tokens
  written by DuckDB's own COPY (the previous version, which the pieces below take apart);
- the share without pseudonyms (the identifiers written as they are): everything but the tokens;
- the share with DuckDB's built-in sha256() in place of the HMAC: what a function native to DuckDB
  could cost at best (one unkeyed hash, never acceptable for a share; a bound, not an option);
- writing two columns of unique tokens alone, already computed, in four forms: 64 hex digits and
  32 bytes, each with the compatible and the v2 Parquet encodings.

From those it prints the tokens' share of the CPU time and what binary tokens would save (the
analysis behind ADR 0005). The floor and every variant use the share's writer settings (zstd level 1).
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from bench_share import AS_OF, KEY, NEEDED, SPEC, Measure, generate, measured, run_extract
from sharewise.pipeline import hmac_kernel
from sharewise.pipeline.backend import ParquetInput, PseudonymPads
from sharewise.pipeline.duckdb_backend import PARQUET_OPTIONS, DuckDBBackend
from sharewise.pipeline.sql import HMAC_FUNCTION, base_sql

V2 = f"{PARQUET_OPTIONS}, PARQUET_VERSION V2"


def best_of(rounds: int, step: Callable[[], object]) -> Measure:
    """The round with the least CPU time (a loaded machine inflates wall time more than CPU)."""
    return min((measured(step) for _ in range(rounds)), key=lambda m: m.cpu)


def share_step(source: Path, target: Path, threads: int, macro: str | None = None) -> Callable[[], object]:
    """The benchmark share as one COPY; macro replaces the HMAC function's body (None: the compiled HMAC)."""

    def step() -> object:
        backend = DuckDBBackend(threads=threads)
        try:
            backend.register_input(ParquetInput(source))
            backend.register_key(PseudonymPads.from_key(KEY))
            if macro is not None:
                backend.con.execute(f"CREATE OR REPLACE TEMP MACRO {HMAC_FUNCTION}(ipad, opad, message) AS {macro}")
            return backend.con.execute(
                f"COPY ({base_sql(SPEC.fields, AS_OF.year)}) TO '{target}' ({PARQUET_OPTIONS})"
            ).fetchall()
        finally:
            backend.close()

    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=4_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    args = parser.parse_args()
    rows, rounds, threads = args.rows, args.rounds, args.threads
    work = Path(tempfile.mkdtemp(prefix="sharewise-bench-costs-"))
    try:
        print(
            f"machine: {os.cpu_count()} cores; DuckDB threads {threads}; {rows:,} rows; best of {rounds}; "
            f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}"
        )
        source = work / "input.parquet"
        generate(source, rows)
        engine = hmac_kernel.compiled_hmac()
        print(f"compiled HMAC engine: {engine.name if engine else 'none (HMAC in SQL)'}")

        def floor() -> object:
            backend = DuckDBBackend(threads=threads)
            try:
                backend.register_input(ParquetInput(source))
                return backend.con.execute(
                    f"COPY (SELECT {', '.join(NEEDED)} FROM sw_source) TO '{work / 'floor.parquet'}' ({PARQUET_OPTIONS})"
                ).fetchall()
            finally:
                backend.close()

        def as_it_runs() -> object:
            backend = DuckDBBackend(threads=threads)
            try:
                shutil.rmtree(work / "run", ignore_errors=True)
                return run_extract(backend, source, work / "run")
            finally:
                backend.close()

        out = work / "out.parquet"
        measures = {
            "floor (plain COPY of the needed columns)": best_of(rounds, floor),
            "share as it runs (bytes, pyarrow writer)": best_of(rounds, as_it_runs),
            "share through DuckDB's COPY, hex tokens": best_of(rounds, share_step(source, out, threads)),
            "share without pseudonyms": best_of(rounds, share_step(source, out, threads, "message")),
            "share with DuckDB's sha256() instead": best_of(
                rounds, share_step(source, out, threads, "sha256(message)")
            ),
        }

        import duckdb

        con = duckdb.connect()
        con.execute(f"SET threads = {threads}")
        con.execute("SET preserve_insertion_order = false")
        con.execute(
            f"CREATE TABLE hex AS SELECT sha256(CAST(i AS VARCHAR)) AS a, sha256(CAST(-i AS VARCHAR)) AS b "
            f"FROM range({rows}) AS t(i)"
        )
        con.execute("CREATE TABLE bin AS SELECT unhex(a) AS a, unhex(b) AS b FROM hex")
        for label, table, options in (
            ("two token columns alone: hex", "hex", PARQUET_OPTIONS),
            ("two token columns alone: hex, v2", "hex", V2),
            ("two token columns alone: 32 bytes", "bin", PARQUET_OPTIONS),
            ("two token columns alone: 32 bytes, v2", "bin", V2),
        ):
            measures[label] = best_of(
                rounds,
                lambda: con.execute(f"COPY {table} TO '{out}' ({options})").fetchall(),  # noqa: B023
            )
        con.close()

        for label, m in measures.items():
            print(f"{label + ':':42} {m.line(rows)}")

        def per_row(label: str) -> float:
            return measures[label].cpu / rows * 1e6

        share = per_row("share through DuckDB's COPY, hex tokens")
        without = per_row("share without pseudonyms")
        hex_write = per_row("two token columns alone: hex")
        bin_write = per_row("two token columns alone: 32 bytes")
        print("CPU-µs a row:")
        print(
            f"  floor {per_row('floor (plain COPY of the needed columns)'):.2f}; "
            f"share as it runs {per_row('share as it runs (bytes, pyarrow writer)'):.2f}; "
            f"share through DuckDB's COPY with hex tokens {share:.2f}"
        )
        print(f"  the two tokens (share - share without pseudonyms): {share - without:.2f}")
        print(
            f"    of which writing them as hex: {hex_write:.2f} (v2 {per_row('two token columns alone: hex, v2'):.2f})"
        )
        print(f"    computing them (HMAC and DuckDB's UDF calls): {share - without - hex_write:.2f}")
        print(f"  as 32-byte tokens the share would be about {share - hex_write + bin_write:.2f}")
        print(
            f"  (v2 and 32 bytes: {share - hex_write + per_row('two token columns alone: 32 bytes, v2'):.2f}); "
            f"1.5 M rows/s on {threads} cores allows {threads / 1.5:.2f} at best"
        )
        print(f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
