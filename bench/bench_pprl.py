"""PPRL benchmark: sharewise's Bloom-filter encoding and Dice matching side by side with clkhash + anonlink.

Run: uv run python bench/bench_pprl.py [--records 100000] [--block 20000] [--repeat 3] [--skip-baseline]

Rows, all in one run on the same machine:
- FEBRL4 (5,000 x 5,000): encode both files, match (every pair; LSH), one-to-one, F1 against the truth at the
  schema's threshold and the best F1 over a grid of thresholds; the same with clkhash (a comparable schema: the same
  prepared fields, 1,024-bit filters, bigrams, the same bits per token, dates as positional digits) and anonlink
  (every pair with its native popcount Dice, then its greedy solver), scored by the same code.
- Scale: encoding `--records` synthetic records (bench_linkage's generator) with sharewise, and a subset with clkhash.
- A dense block of `--block` x `--block` sharewise encodings matched every pair (best and range of `--repeat`
  runs), with LSH (share of the every-pair matches it finds), with the xor_fold schema (unbalanced: what the popcount
  bound prunes), and through anonlink's Dice on the very same encodings (the number of pairs at or above the
  threshold must agree).
- The compiled kernels' first call (numba import, then compile or load from its cache) is timed on its own, before
  any other row, so no matching row includes it.

Matching speed is given two ways. "considered/s": every pair of A x B over wall seconds, as anonlink reports it (a
pair the popcount bound rules out counts as considered). "computed/s": pairs whose AND-popcount was actually
computed. They are equal for balanced encodings (every weight is the same, the bound prunes nothing); the 100 M/s
target is read as considered/s, which on balanced encodings is also computed/s.

clkhash and anonlink are not sharewise dependencies: they are installed into their own virtualenv
(~/.cache/sharewise-bench/anonlink, reused when present) and run in a subprocess. If that fails, the reason is
printed and only the baseline rows are skipped.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_linkage import synthetic_people
from sharewise.linkage.evaluate import Accuracy, febrl4, pair_accuracy
from sharewise.linkage.pprl import kernels
from sharewise.linkage.pprl.encode import encode
from sharewise.linkage.pprl.match import MatchOptions, MatchResult, match, one_to_one
from sharewise.linkage.pprl.schema import DEFAULT_SCHEMA, LinkageSchema
from sharewise.linkage.prepare import prepare

SECRET = b"benchmark-secret-not-for-real-use-0001"
BASELINE_PACKAGES = ["clkhash==0.18.3", "anonlink==0.15.3", "setuptools<80"]  # anonlink imports pkg_resources
FIELDS = ("given_std", "surname_std", "dob", "ssn", "street_std", "city_std", "zip")
GRID = (0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9)  # thresholds tried, untimed, for the best F1 of each
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "sharewise-bench" / "anonlink"

# Run by the baseline virtualenv's Python: argv[1] is a directory holding config.json and the inputs.
BASELINE_SCRIPT = r"""
import array, csv, json, os, sys, time
from pathlib import Path
import numpy as np
from bitarray import bitarray
from clkhash import clk
from clkhash.schema import from_json_dict
from anonlink.candidate_generation import find_candidate_pairs
from anonlink.similarities import dice_coefficient_accelerated
from anonlink.solving import greedy_solve, pairs_from_groups

work = Path(sys.argv[1])
config = json.loads((work / "config.json").read_text())


def feature(spec):
    name, n, k, positional = spec
    return {"identifier": name, "format": {"type": "string", "encoding": "utf-8"},
            "hashing": {"comparison": {"type": "ngram", "n": n, "positional": positional},
                        "strategy": {"bitsPerToken": k}, "hash": {"type": "blakeHash"},
                        "missingValue": {"sentinel": ""}}}


schema = from_json_dict({"version": 3, "clkConfig": {"l": config["bits"], "kdf": {"type": "HKDF", "hash": "SHA256",
                         "keySize": 64}}, "features": [feature(f) for f in config["features"]]})


def rows(path):
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        next(reader)
        data = list(reader)
    return [r[0] for r in data], [r[1:] for r in data]


def timed(fn):
    start = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - start


def cpu_timed(fn):  # this process and its finished children (clkhash's encoding processes)
    before = os.times()
    value, seconds = timed(fn)
    after = os.times()
    cpu = sum(after[:4]) - sum(before[:4])
    return value, seconds, cpu


result = {}
ids_a, rows_a = rows(work / "a.csv")
ids_b, rows_b = rows(work / "b.csv")
(clks_a, clks_b), seconds, cpu = cpu_timed(lambda: (clk.generate_clks(rows_a, schema, config["secret"]),
                                                clk.generate_clks(rows_b, schema, config["secret"])))
result["febrl_encode_seconds"], result["febrl_encode_cpu"] = seconds, cpu
result["febrl_records"] = len(rows_a) + len(rows_b)
candidates, seconds, cpu = cpu_timed(lambda: find_candidate_pairs([clks_a, clks_b], dice_coefficient_accelerated,
                                                              config["threshold"]))
result["febrl_candidates_seconds"], result["febrl_candidates_cpu"] = seconds, cpu
result["febrl_comparisons"] = len(rows_a) * len(rows_b)
groups, seconds = timed(lambda: greedy_solve(candidates))
result["febrl_solve_seconds"] = seconds
result["febrl_pairs"] = [[ids_a[i], ids_b[j]] for i, j in pairs_from_groups(groups)]
# The best F1 over a grid of thresholds (untimed, favours the baseline): candidates once at the lowest.
low = find_candidate_pairs([clks_a, clks_b], dice_coefficient_accelerated, min(config["grid"]))
sims, (dset_a, dset_b), (rec_a, rec_b) = low
grid = {}
for t in config["grid"]:
    keep = [i for i, s in enumerate(sims) if s >= t]  # still sorted by similarity, as the solver expects
    chosen = (array.array("d", [sims[i] for i in keep]),
              (array.array("I", [dset_a[i] for i in keep]), array.array("I", [dset_b[i] for i in keep])),
              (array.array("I", [rec_a[i] for i in keep]), array.array("I", [rec_b[i] for i in keep])))
    grid[str(t)] = [[ids_a[i], ids_b[j]] for i, j in pairs_from_groups(greedy_solve(chosen))]
result["febrl_grid"] = grid

_, scale_rows = rows(work / "scale.csv")
_, seconds = timed(lambda: clk.generate_clks(scale_rows, schema, config["secret"], max_workers=config["workers"]))
result["scale_encode_seconds"] = seconds
result["scale_records"] = len(scale_rows)


def bitarrays(path, width):
    raw = np.fromfile(path, dtype=np.uint8).reshape(-1, width)
    out = []
    for row in raw:
        bits = bitarray(endian="big")
        bits.frombytes(row.tobytes())
        out.append(bits)
    return out


block_a = bitarrays(work / "block_a.bin", config["block_bytes"])
block_b = bitarrays(work / "block_b.bin", config["block_bytes"])
(sims, _), seconds, cpu = cpu_timed(lambda: dice_coefficient_accelerated([block_a, block_b], config["threshold"]))
result["block_seconds"], result["block_cpu"] = seconds, cpu
result["block_comparisons"] = len(block_a) * len(block_b)
result["block_pairs"] = len(sims)
(work / "result.json").write_text(json.dumps(result))
"""


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    start = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - start


def cpu_timed(fn: Callable[[], Any]) -> tuple[Any, float, float]:
    """The value, wall seconds, and CPU seconds of this process (all threads: BLAS and encoder workers)."""
    start, cpu = time.perf_counter(), time.process_time()
    value = fn()
    return value, time.perf_counter() - start, time.process_time() - cpu


def repeated(fn: Callable[[], Any], times: int) -> tuple[Any, float, float, float]:
    """The value, the best and the median wall seconds of `times` runs, and the CPU seconds of the best one."""
    runs = [cpu_timed(fn) for _ in range(max(1, times))]
    best = min(runs, key=lambda run: run[1])
    return best[0], best[1], float(np.median([run[1] for run in runs])), best[2]


def speed(considered: int, computed: int, wall: float, cpu: float) -> str:
    """Pairs considered and AND-popcounts computed, per wall second and per CPU-second."""
    return (
        f"{considered / wall / 1e6:.1f}M considered/s, {computed / wall / 1e6:.1f}M computed/s "
        f"({considered / max(cpu, 1e-9) / 1e6:.1f}M / {computed / max(cpu, 1e-9) / 1e6:.1f}M per CPU-second)"
    )


def first_call() -> str:
    """The kernels' first use in this process: numba's import, then compile or load from the on-disk cache."""
    tiny = np.random.default_rng(0).integers(0, 256, size=(8, 256), dtype=np.uint8)
    _, wall, _ = cpu_timed(
        lambda: (match(tiny, tiny, MatchOptions(blocking="none")), match(tiny, tiny, MatchOptions()))
    )
    stats = [kernels._dense_chunk.stats, kernels._candidate_chunk.stats]
    hits = sum(sum(s.cache_hits.values()) for s in stats)
    misses = sum(sum(s.cache_misses.values()) for s in stats)
    how = "loaded from cache" if hits and not misses else "compiled" if misses else "not cached"
    return f"{wall:6.2f}s  {how} ({stats[0].cache_path}); {kernels.threads()} threads (NUMBA_NUM_THREADS)"


def line(label: str, text: str) -> None:
    print(f"  {label:<44} {text}", flush=True)


def f1_text(acc: Accuracy) -> str:
    return f"P={acc.precision:.4f} R={acc.recall:.4f} F1={acc.f1:.4f}"


def baseline_python(venv: Path) -> tuple[Path | None, str]:
    """The baseline virtualenv's Python, creating it if needed; or None and why not."""
    python = venv / "bin" / "python"
    check = [str(python), "-c", "import clkhash, anonlink, bitarray"]
    if python.exists() and subprocess.run(check, check=False, capture_output=True).returncode == 0:
        return python, f"reused {venv}"
    uv = shutil.which("uv")
    if uv:
        steps = [
            [uv, "venv", str(venv), "-p", "3.11", "-q", "--allow-existing"],
            [uv, "pip", "install", "-q", "-p", str(python), *BASELINE_PACKAGES],
        ]
    else:  # the standard library's venv and pip, from PyPI like uv
        steps = [
            [sys.executable, "-m", "venv", str(venv)],
            [str(python), "-m", "pip", "install", "-q", *BASELINE_PACKAGES],
        ]
    for step in steps:
        done = subprocess.run(step, check=False, capture_output=True, text=True)
        if done.returncode:
            return None, f"`{' '.join(step)}` failed: {(done.stderr or done.stdout).strip()[-300:]}"
    done = subprocess.run(check, check=False, capture_output=True, text=True)
    if done.returncode:
        return None, f"installed, but the import failed: {done.stderr.strip()[-300:]}"
    return python, f"created {venv}"


def clkhash_features(schema: LinkageSchema) -> list[tuple[str, int, int, bool]]:
    """sharewise's fields for clkhash: the same bigrams and bits per token; dates as positional unigrams."""
    features = []
    for spec in schema.fields:
        if spec.name not in FIELDS:
            continue
        if spec.tokenizer == "date":  # three tokens of k bits; ten positional characters of about 3k/10 bits
            features.append((spec.name, 1, max(1, round(3 * spec.k / 10)), True))
        else:
            features.append((spec.name, spec.q, spec.k, False))
    return features


def write_rows(path: Path, ids: list[str], prepared: pa.Table) -> None:
    columns = {"record_id": pa.array(ids, pa.string())}
    for name in FIELDS:
        columns[name] = prepared.column(name).fill_null("")
    pacsv.write_csv(pa.table(columns), path)


def run_baseline(
    python: Path,
    febrl: tuple[pa.Table, pa.Table, pa.Table, pa.Table],
    scale_prepared: pa.Table,
    block: tuple[np.ndarray, np.ndarray],
    args: argparse.Namespace,
) -> dict[str, Any] | None:
    a, b, _, _ = febrl
    with tempfile.TemporaryDirectory(prefix="bench-pprl-") as tmp:
        work = Path(tmp)
        write_rows(work / "a.csv", a.column("record_id").to_pylist(), prepare(a))
        write_rows(work / "b.csv", b.column("record_id").to_pylist(), prepare(b))
        subset = scale_prepared.slice(0, args.baseline_records)
        write_rows(work / "scale.csv", [str(i) for i in range(subset.num_rows)], subset)
        block[0].tofile(work / "block_a.bin")
        block[1].tofile(work / "block_b.bin")
        config = {
            "bits": DEFAULT_SCHEMA.bits,
            "features": clkhash_features(DEFAULT_SCHEMA),
            "secret": SECRET.decode(),
            "threshold": DEFAULT_SCHEMA.threshold,
            "grid": list(GRID),
            "workers": args.workers,
            "block_bytes": int(block[0].shape[1]),
        }
        (work / "config.json").write_text(json.dumps(config))
        script = work / "baseline.py"
        script.write_text(BASELINE_SCRIPT)
        done = subprocess.run([str(python), str(script), str(work)], check=False, capture_output=True, text=True)
        if done.returncode:
            print(f"  clkhash/anonlink run failed: {done.stderr.strip()[-500:]}")
            return None
        result: dict[str, Any] = json.loads((work / "result.json").read_text())
        return result


def pairs_table(pairs: list[list[str]]) -> pa.Table:
    return pa.table(
        {
            "left_id": pa.array([p[0] for p in pairs], pa.string()),
            "right_id": pa.array([p[1] for p in pairs], pa.string()),
        }
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=100_000, help="synthetic records encoded at scale")
    parser.add_argument("--block", type=int, default=20_000, help="side of the dense block matched every pair")
    parser.add_argument("--baseline-records", type=int, default=20_000, help="records clkhash encodes at scale")
    parser.add_argument("--workers", type=int, default=2, help="clkhash encoding processes at scale")
    parser.add_argument("--repeat", type=int, default=3, help="encoding and matching runs (best, median or range)")
    parser.add_argument("--skip-baseline", action="store_true", help="sharewise rows only")
    parser.add_argument("--venv", type=Path, default=CACHE, help="the clkhash/anonlink virtualenv")
    args = parser.parse_args()
    load = os.getloadavg()
    print(f"PPRL benchmark on {os.cpu_count()} cores (load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} at start)")
    print("  time: wall seconds (encoding: best of --repeat runs); cpu: this process's CPU seconds, all threads")
    line("kernels' first call (import numba, compile/load)", first_call())

    a, b, ta, tb = febrl4()
    pa_, pb = prepare(a), prepare(b)
    threshold = DEFAULT_SCHEMA.threshold
    print(f"FEBRL4, 5,000 x 5,000, threshold {threshold} (target: F1 >= 0.99 with PPRL)")
    (ea, eb), enc_wall, enc_median, enc_cpu = repeated(
        lambda: (encode(pa_, DEFAULT_SCHEMA, SECRET), encode(pb, DEFAULT_SCHEMA, SECRET)), args.repeat
    )
    n_febrl = a.num_rows + b.num_rows
    line(
        "sharewise encode (default schema, balanced)",
        f"{enc_wall:6.2f}s  {n_febrl / enc_wall:,.0f} records/s (median {n_febrl / enc_median:,.0f})  cpu {enc_cpu:.2f}s",
    )
    ids_a, ids_b = np.array(a.column("record_id").to_pylist()), np.array(b.column("record_id").to_pylist())
    for blocking in ("none", "lsh"):
        result, wall, median, cpu = repeated(partial(match, ea, eb, MatchOptions(blocking=blocking)), args.repeat)
        acc = pair_accuracy(pa.table({"left_id": ids_a[result.left], "right_id": ids_b[result.right]}), ta, tb)
        everything = len(ea) * len(eb)
        line(
            f"sharewise match ({'every pair' if blocking == 'none' else 'LSH'}, 1:1)",
            f"{wall:6.2f}s (median {median:.2f}s)  {f1_text(acc)}  {speed(everything, result.comparisons, wall, cpu)}",
        )

    every = match(ea, eb, MatchOptions(threshold=min(GRID), blocking="none", resolution="all"))
    grid = []
    for t in GRID:
        keep = every.similarity >= np.float32(t)
        best = one_to_one(every.left[keep], every.right[keep], every.similarity[keep])
        chosen = pa.table({"left_id": ids_a[every.left[keep][best]], "right_id": ids_b[every.right[keep][best]]})
        grid.append((t, pair_accuracy(chosen, ta, tb)))
    t_best, acc_best = max(grid, key=lambda x: x[1].f1)
    line("sharewise, best threshold of a grid", f"t={t_best}  {f1_text(acc_best)}")

    print("Scale (targets: encoding >= 200,000 records/s; matching >= 100M comparisons/s on 2 cores)")
    people, _ = synthetic_people(max(1, int(args.records / 1.3)), 0.3)
    prepared = prepare(people)
    bits, wall, median, cpu = repeated(lambda: encode(prepared, DEFAULT_SCHEMA, SECRET), args.repeat)
    line(
        f"sharewise encode {people.num_rows:,} records",
        f"{wall:6.2f}s  {people.num_rows / wall:,.0f} records/s (median {people.num_rows / median:,.0f})  "
        f"cpu {cpu:.2f}s ({people.num_rows / cpu:,.0f} records per CPU-second)",
    )
    side = min(args.block, len(bits) // 2)
    block = (bits[:side], bits[side : 2 * side])
    runs: list[tuple[MatchResult, float, float]] = [
        cpu_timed(lambda: match(block[0], block[1], MatchOptions(blocking="none", resolution="all")))
        for _ in range(max(1, args.repeat))
    ]
    dense, wall, cpu = min(runs, key=lambda run: run[1])
    rates = sorted(side * side / run[1] / 1e6 for run in runs)
    line(
        f"sharewise match {side:,} x {side:,}, every pair",
        f"{wall:6.2f}s  {speed(side * side, dense.comparisons, wall, cpu)}, {len(dense.left):,} pairs >= {threshold}; "
        f"{len(runs)} runs: {rates[0]:.1f}-{rates[-1]:.1f}M considered/s",
    )
    lsh, wall, cpu = cpu_timed(lambda: match(block[0], block[1], MatchOptions(blocking="lsh", resolution="all")))
    found = len(
        set(zip(lsh.left.tolist(), lsh.right.tolist(), strict=True))
        & set(zip(dense.left.tolist(), dense.right.tolist(), strict=True))
    )
    line(
        "  same block, LSH blocking (40 bands)",
        f"{wall:6.2f}s  {speed(side * side, lsh.comparisons, wall, cpu)}, "
        f"finds {found / max(len(dense.left), 1):.1%} of the every-pair matches",
    )
    folded_schema = LinkageSchema("folded", 1, DEFAULT_SCHEMA.fields, hardening=("xor_fold",))
    folded = encode(prepared.slice(0, 2 * side), folded_schema, SECRET)
    fresult, wall, cpu = cpu_timed(
        lambda: match(folded[:side], folded[side:], MatchOptions(blocking="none", resolution="all"))
    )
    everything = side * side
    line(
        f"  same, xor_fold schema ({folded.shape[1] * 8} bits, unbalanced)",
        f"{wall:6.2f}s  {speed(everything, fresult.comparisons, wall, cpu)} "
        f"({1 - fresult.comparisons / everything:.0%} pruned by the popcount bound)",
    )

    if args.skip_baseline:
        return
    print("clkhash 0.18.3 + anonlink 0.15.3 (separate virtualenv, subprocess)")
    python, how = baseline_python(args.venv)
    if python is None:
        print(f"  baseline skipped: {how}")
        return
    line("virtualenv", how)
    base = run_baseline(python, (a, b, ta, tb), prepared, block, args)
    if base is None:
        return
    acc = pair_accuracy(pairs_table(base["febrl_pairs"]), ta, tb)
    enc = base["febrl_encode_seconds"]
    line(
        "clkhash encode FEBRL4 (1 process: < 10k records)",
        f"{enc:6.2f}s  {base['febrl_records'] / enc:,.0f} records/s  cpu {base['febrl_encode_cpu']:.2f}s",
    )
    cand, solve = base["febrl_candidates_seconds"], base["febrl_solve_seconds"]
    line(
        f"anonlink every pair + greedy solve, t={threshold}",
        f"{cand + solve:6.2f}s  {f1_text(acc)}  {base['febrl_comparisons'] / cand / 1e6:.1f}M comparisons/s "
        f"(candidates {cand:.2f}s, cpu {base['febrl_candidates_cpu']:.2f}s; solve {solve:.2f}s)",
    )
    scored: list[tuple[float, Accuracy]] = [
        (float(t), pair_accuracy(pairs_table(p), ta, tb)) for t, p in base["febrl_grid"].items()
    ]
    t_anonlink, acc_anonlink = max(scored, key=lambda x: x[1].f1)
    line("anonlink, best threshold of a grid", f"t={t_anonlink}  {f1_text(acc_anonlink)}")
    enc = base["scale_encode_seconds"]
    line(
        f"clkhash encode {base['scale_records']:,} records ({args.workers} processes)",
        f"{enc:6.2f}s  {base['scale_records'] / enc:,.0f} records/s (its worker processes' CPU is not counted)",
    )
    agree = "same" if base["block_pairs"] == len(dense.left) else f"DIFFERENT from sharewise's {len(dense.left):,}"
    line(
        f"anonlink Dice on the same {side:,} x {side:,} block",
        f"{base['block_seconds']:6.2f}s  {base['block_comparisons'] / base['block_seconds'] / 1e6:.1f}M comparisons/s, "
        f"cpu {base['block_cpu']:.2f}s ({base['block_comparisons'] / base['block_cpu'] / 1e6:.1f}M per CPU-second), "
        f"{base['block_pairs']:,} pairs >= {threshold} ({agree})",
    )


def finish() -> None:
    load = os.getloadavg()
    print(f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} at the end")


if __name__ == "__main__":
    main()
    finish()
