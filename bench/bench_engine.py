"""Benchmark the law engine: pack load, determinations per second, p50/p99, CLI cold start.

Run: `make bench` (or `uv run python bench/bench_engine.py`). The baseline, run in the same
process over the same requests, is the bare decision (per-authority outcomes and the lattice,
without explanations, alternatives, questions, remedies or trace): it shows what the
explanations cost on top of deciding.
"""

from __future__ import annotations

import datetime as dt
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from sharewise.policy.cache import load_law_cached
from sharewise.policy.evaluate import decide, evaluate
from sharewise.policy.load import load_cases_file, load_law
from sharewise.policy.request_parse import parse_request

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = ROOT.parent / "shared" / "law-cases" / "federal.yaml"
TODAY = dt.date(2026, 11, 25)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def timed(fn, repeat: int) -> list[float]:  # type: ignore[no-untyped-def]
    out = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


def main() -> None:
    load_times = timed(load_law, 10)
    with_cases = timed(lambda: load_law().cases, 5)
    with tempfile.TemporaryDirectory() as cache_tmp:
        cache_dir = Path(cache_tmp) / "cache"
        load_law_cached(None, cache_dir)
        cached_times = timed(lambda: load_law_cached(None, cache_dir), 10)
    law = load_law()
    cases = load_cases_file(GOLDEN) + list(law.cases)
    requests = [parse_request(c.request, law.vocabulary) for c in cases]
    for r in requests:  # warm up
        evaluate(law, r, TODAY)

    rounds = 20
    full: list[float] = []
    bare: list[float] = []
    for _ in range(rounds):
        for r in requests:
            start = time.perf_counter()
            evaluate(law, r, TODAY)
            full.append(time.perf_counter() - start)
            start = time.perf_counter()
            decide(law, r, r.as_of or TODAY)
            bare.append(time.perf_counter() - start)

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "request.yaml"
        path.write_text(yaml.safe_dump(cases[0].request))
        exe = str(Path(sys.executable).with_name("sharewise"))
        subprocess.run([exe, "check", str(path)], capture_output=True, check=True)
        cold = timed(lambda: subprocess.run([exe, "check", str(path)], capture_output=True, check=True), 5)
        env = {**os.environ, "SHAREWISE_CACHE_DIR": "off"}
        uncached = timed(lambda: subprocess.run([exe, "check", str(path)], capture_output=True, check=True, env=env), 5)

    ms = 1000.0
    print(f"law pack: {law.law_version}, {len(law.authorities)} authorities, {len(law.all_rules())} rules")
    print(f"requests: {len(requests)} (golden + pack cases) x {rounds} rounds")
    print(f"pack load (parse + validate) median {statistics.median(load_times) * ms:8.1f} ms   target < 300 ms")
    print(f"pack load incl. all cases    median {statistics.median(with_cases) * ms:8.1f} ms")
    print(f"pack load from cache         median {statistics.median(cached_times) * ms:8.1f} ms")
    print(
        f"determination (full, traced) p50 {percentile(full, 0.5) * ms:8.3f} ms  p99 {percentile(full, 0.99) * ms:8.3f} ms"
        f"  {len(full) / sum(full):8.0f} /s   target p50 < 1 ms"
    )
    print(
        f"baseline: bare decision      p50 {percentile(bare, 0.5) * ms:8.3f} ms  p99 {percentile(bare, 0.99) * ms:8.3f} ms"
        f"  {len(bare) / sum(bare):8.0f} /s"
    )
    print(f"explanation overhead (p50)   x{percentile(full, 0.5) / percentile(bare, 0.5):.1f}")
    print(f"CLI cold start (check)       median {statistics.median(cold) * ms:8.0f} ms   target < 1000 ms")
    print(f"CLI cold start, cache off    median {statistics.median(uncached) * ms:8.0f} ms")


if __name__ == "__main__":
    main()
