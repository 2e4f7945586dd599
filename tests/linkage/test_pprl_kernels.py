"""The compiled PPRL kernels give exactly what the numpy matcher they replaced gave, and compile, cache and thread sanely.

`numpy_every_pair` and `numpy_dice_pairs` are the numpy code of the matcher before the kernels (float32 products of
unpacked bits, tiled, with the popcount bound; AND and bitwise_count over gathered rows), kept here as the reference:
the same pairs, in the same order, with scores equal as float32 values (not approximately).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sharewise.linkage.pprl import kernels
from sharewise.linkage.pprl import match as match_module
from sharewise.linkage.pprl.encode import encode
from sharewise.linkage.pprl.match import MatchOptions, match
from sharewise.linkage.pprl.schema import DEFAULT_SCHEMA, LinkageSchema
from sharewise.linkage.prepare import prepare

SECRET = b"a-secret-shared-out-of-band-0001"
Bits = npt.NDArray[np.uint8]
Pairs = tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.float32]]

# The numpy matcher the kernels replaced (sharewise before numba), unchanged but for names.

REF_TILE_A, REF_TILE_B = 64, 256


def _count_window(count: npt.NDArray[np.int64], threshold: float) -> tuple[float, float]:
    if threshold <= 0:
        return 0.0, float("inf")
    slack = 1e-6
    low = float(count.min()) * threshold / (2.0 - threshold) * (1 - slack)
    high = float(count.max()) * (2.0 - threshold) / threshold * (1 + slack)
    return low, high


def numpy_every_pair(a_bits: Bits, b_bits: Bits, threshold: float) -> Pairs:
    """Every pair at or above the threshold, by float32 products of unpacked bits, sorted by (left, right)."""
    count_a = match_module.popcounts(np.ascontiguousarray(a_bits).view(np.uint64))
    count_b = match_module.popcounts(np.ascontiguousarray(b_bits).view(np.uint64))
    order_a, order_b = np.argsort(count_a, kind="stable"), np.argsort(count_b, kind="stable")
    sorted_a, sorted_b = count_a[order_a], count_b[order_b]
    lefts, rights, scores = [], [], []
    for a_start in range(0, len(order_a), REF_TILE_A):
        rows_a = order_a[a_start : a_start + REF_TILE_A]
        low, high = _count_window(sorted_a[a_start : a_start + REF_TILE_A], threshold)
        b_lo = int(np.searchsorted(sorted_b, low, side="left"))
        b_hi = int(np.searchsorted(sorted_b, high, side="right"))
        if b_hi <= b_lo:
            continue
        fa = np.unpackbits(a_bits[rows_a], axis=1).astype(np.float32)
        ca = count_a[rows_a]
        for b_start in range(b_lo, b_hi, REF_TILE_B):
            rows_b = order_b[b_start : min(b_hi, b_start + REF_TILE_B)]
            fb = np.unpackbits(b_bits[rows_b], axis=1).astype(np.float32)
            cb = count_b[rows_b]
            both = fa @ fb.T
            floor = threshold * float(ca.min() + cb.min()) / 2.0 * (1 - 1e-6) if threshold > 0 else -1.0
            li, ri = np.nonzero(both >= floor)
            if not len(li):
                continue
            score = match_module._similarity(both[li, ri], ca[li] + cb[ri])
            keep = match_module._at_least(score, threshold)
            lefts.append(rows_a[li[keep]])
            rights.append(rows_b[ri[keep]])
            scores.append(score[keep])
    if not lefts:
        return np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.float32)
    left, right, score = np.concatenate(lefts), np.concatenate(rights), np.concatenate(scores)
    order = np.lexsort((right, left))
    return left[order].astype(np.int64), right[order].astype(np.int64), score[order]


def numpy_dice_pairs(
    a_bits: Bits, b_bits: Bits, left: npt.NDArray[np.int64], right: npt.NDArray[np.int64]
) -> npt.NDArray[np.float32]:
    """The similarity of the given pairs: AND, bitwise_count and a sum over 64-bit words."""
    a, b = np.ascontiguousarray(a_bits).view(np.uint64), np.ascontiguousarray(b_bits).view(np.uint64)
    both = np.bitwise_count(a[left] & b[right]).sum(axis=1, dtype=np.int64)
    total = match_module.popcounts(a)[left] + match_module.popcounts(b)[right]
    return match_module._similarity(both, total)


def assert_same(result: match_module.MatchResult, expected: Pairs) -> None:
    assert np.array_equal(result.left, expected[0])
    assert np.array_equal(result.right, expected[1])
    assert result.similarity.dtype == np.float32
    assert np.array_equal(result.similarity, expected[2])  # float32 equality, not approximately


# Strategies: random filters of any density (empty and full rows too), and B holding noisy copies of A's rows.

thresholds = st.one_of(st.sampled_from([0.0, 0.5, 0.6, 0.7, 0.75, 0.8, 0.9, 1.0]), st.floats(0.05, 1.0))


@st.composite
def filter_pairs(draw: st.DrawFn) -> tuple[Bits, Bits]:
    words = draw(st.integers(1, 5))
    n_a, n_b = draw(st.integers(1, 40)), draw(st.integers(1, 40))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    density = rng.choice([0.0, 0.02, 0.1, 0.3, 0.5, 0.7, 1.0], size=(n_a, 1)) * rng.uniform(0.5, 1.0, size=(n_a, 1))
    a = np.packbits(rng.random((n_a, 64 * words)) < density, axis=1)
    copies = a[rng.integers(0, n_a, n_b)] ^ np.packbits(
        rng.random((n_b, 64 * words)) < draw(st.sampled_from([0.0, 0.03, 0.1])), axis=1
    )
    fresh = np.packbits(rng.random((n_b, 64 * words)) < rng.uniform(0, 1, size=(n_b, 1)), axis=1)
    b = np.where(rng.random((n_b, 1)) < 0.6, copies, fresh).astype(np.uint8)
    return a, b


@pytest.fixture
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Chunks and tiles of a few rows, outputs that start at one pair, two threads: every kernel path runs."""
    monkeypatch.setattr(kernels, "CHUNK_ROWS", 5)
    monkeypatch.setattr(kernels, "TILE_B", 7)
    monkeypatch.setattr(kernels, "CHUNK_PAIRS", 11)
    monkeypatch.setattr(kernels, "FIRST_CAPACITY", 1)
    monkeypatch.setattr(kernels, "threads", lambda: 2)


@settings(max_examples=60, deadline=None)
@given(filter_pairs(), thresholds)
def test_every_pair_equals_the_numpy_matcher_on_random_filters(pair: tuple[Bits, Bits], threshold: float) -> None:
    a, b = pair
    with pytest.MonkeyPatch.context() as patch:
        for name, value in (("CHUNK_ROWS", 5), ("TILE_B", 7), ("FIRST_CAPACITY", 1)):
            patch.setattr(kernels, name, value)
        patch.setattr(kernels, "threads", lambda: 2)
        result = match(a, b, MatchOptions(threshold=threshold, blocking="none", resolution="all"))
    assert_same(result, numpy_every_pair(a, b, threshold))
    assert len(result.left) <= result.comparisons <= len(a) * len(b)


@settings(max_examples=40, deadline=None)
@given(filter_pairs(), thresholds)
def test_lsh_candidates_are_scored_as_the_numpy_matcher_scored_them(pair: tuple[Bits, Bits], threshold: float) -> None:
    a, b = pair
    options = MatchOptions(threshold=threshold, blocking="lsh", resolution="all", bands=20, per_band=2.0)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(kernels, "CHUNK_PAIRS", 11)
        patch.setattr(kernels, "threads", lambda: 2)
        result = match(a, b, options)
    left, right = match_module._lsh_candidates(a, b, options)
    score = numpy_dice_pairs(a, b, left, right)
    keep = score >= np.float32(threshold)
    assert_same(result, (left[keep], right[keep], score[keep]))
    assert result.comparisons == len(left)


_ENCODED: dict[str, tuple[Bits, Bits]] = {}
SCHEMAS = {
    "default": DEFAULT_SCHEMA,
    "folded": LinkageSchema("folded", 1, DEFAULT_SCHEMA.fields, hardening=("xor_fold",)),
}


def febrl_encodings(febrl: tuple[pa.Table, ...], schema: str) -> tuple[Bits, Bits]:
    """The FEBRL4 slice's two files encoded (once per test session and schema)."""
    if schema not in _ENCODED:
        _ENCODED[schema] = (
            encode(prepare(febrl[0]), SCHEMAS[schema], SECRET),
            encode(prepare(febrl[1]), SCHEMAS[schema], SECRET),
        )
    return _ENCODED[schema]


@settings(max_examples=16, deadline=None)
@given(
    st.sampled_from(["default", "folded"]),
    thresholds,
    st.integers(0, 300),
    st.integers(0, 300),
    st.integers(1, 300),
)
def test_every_pair_equals_the_numpy_matcher_on_febrl_encodings(
    febrl_small: tuple[pa.Table, ...], schema: str, threshold: float, start_a: int, start_b: int, length: int
) -> None:
    """FEBRL4 records, balanced (every weight equal: nothing pruned) and XOR-folded (weights differ: pruned)."""
    ea, eb = febrl_encodings(febrl_small, schema)
    a, b = ea[start_a : start_a + length], eb[start_b : start_b + length]
    result = match(a, b, MatchOptions(threshold=threshold, blocking="none", resolution="all"))
    assert_same(result, numpy_every_pair(a, b, threshold))
    if schema == "default":
        assert result.comparisons == len(a) * len(b)


def test_febrl_slice_matches_its_true_pairs_with_one_to_one_as_before(febrl_small: tuple[pa.Table, ...]) -> None:
    ea, eb = febrl_encodings(febrl_small, "default")
    result = match(ea, eb, MatchOptions(blocking="none"))
    every = numpy_every_pair(ea, eb, DEFAULT_SCHEMA.threshold)
    keep = match_module.one_to_one(*every)
    assert_same(result, (every[0][keep], every[1][keep], every[2][keep]))
    assert len(result.left) >= 0.99 * len(ea)  # the slice holds 600 records and their 600 duplicates


@pytest.mark.parametrize("threshold", [-0.5, 0.0, 0.3, 0.7, 2 / 3, 0.7000001, 0.99, 1.0, 1.5, float("nan")])
def test_needed_is_the_least_count_that_reaches_the_threshold(threshold: float) -> None:
    need = match_module.needed(threshold, 300)
    for total in range(301):
        passing = [
            both
            for both in range(total // 2 + 1)
            if match_module._at_least(match_module._similarity(both, total), threshold)
        ]
        assert need[total] == (passing[0] if passing else total // 2 + 1), total
        if passing:  # the score only grows with the count: everything from the least one passes
            assert passing == list(range(passing[0], total // 2 + 1))


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(0, 128), min_size=1, max_size=30), st.lists(st.integers(0, 128), max_size=30), thresholds)
def test_weight_windows_hold_exactly_the_pairs_the_bound_allows(
    weights_a: list[int], weights_b: list[int], threshold: float
) -> None:
    sorted_a, sorted_b = np.sort(np.array(weights_a, np.int64)), np.sort(np.array(weights_b, np.int64))
    need = match_module.needed(threshold, 256)
    lo, hi = match_module._windows(sorted_a, sorted_b, need, 128)
    for i, weight in enumerate(sorted_a.tolist()):
        allowed = [j for j, other in enumerate(sorted_b.tolist()) if min(weight, other) >= need[weight + other]]
        assert list(range(lo[i], hi[i])) == allowed


def test_kernels_refuse_inputs_that_would_read_out_of_bounds() -> None:
    a = np.zeros((3, 2), np.uint64)
    counts = np.zeros(3, np.int64)
    need = match_module.needed(0.5, 256)
    window = (np.zeros(3, np.int64), np.full(3, 3, np.int64))
    ok = (a, a, counts, counts)
    assert len(kernels.dense_pairs(*ok, *window, need)[0]) == 0
    cases: list[tuple[tuple[Any, ...], str]] = [
        ((a.astype(np.int64), a, counts, counts, *window, need), "uint64"),
        ((a, np.zeros((3, 3), np.uint64), counts, counts, *window, need), "same number of words"),
        ((a, np.asfortranarray(np.zeros((3, 2), np.uint64)), counts, counts, *window, need), "C-contiguous"),
        ((a, a, counts[:2], counts, *window, need), "one weight per encoding"),
        ((a, a, counts, counts, *window, need[:100]), "every total weight"),
        ((a, a, counts + 129, counts, *window, need), "weights out of range"),
        ((a, a, counts, counts, window[0], window[1] + 1, need), "windows out of range"),
        ((a, a, counts, counts, window[0][:2], window[1], need), "one window per row"),
    ]
    for args, text in cases:
        with pytest.raises(ValueError, match=text):
            kernels.dense_pairs(*args)
    with pytest.raises(ValueError, match="candidate rows out of range"):
        kernels.candidate_pairs(*ok, np.array([0, 3]), np.array([0, 0]), need)
    with pytest.raises(ValueError, match="candidate rows out of range"):
        kernels.candidate_pairs(*ok, np.array([0]), np.array([-1]), need)
    with pytest.raises(ValueError, match="one left and one right"):
        kernels.candidate_pairs(*ok, np.array([0, 1]), np.array([0]), need)


def test_empty_sides_give_no_pairs() -> None:
    a = np.zeros((0, 16), np.uint8)
    b = np.full((4, 16), 0xF0, np.uint8)
    for left, right in ((a, b), (b, a)):
        result = match(left, right, MatchOptions(threshold=0.5, blocking="none", resolution="all"))
        assert len(result.left) == 0 and result.comparisons == 0
        assert result.left.dtype == np.int64 and result.similarity.dtype == np.float32


def test_one_thread_and_many_threads_agree(
    febrl_small: tuple[pa.Table, ...], monkeypatch: pytest.MonkeyPatch, small_chunks: None
) -> None:
    ea, eb = febrl_encodings(febrl_small, "folded")
    options = MatchOptions(threshold=0.6, blocking="none", resolution="all")
    several = match(ea, eb, options)
    monkeypatch.setattr(kernels, "threads", lambda: 1)
    alone = match(ea, eb, options)
    assert_same(alone, (several.left, several.right, several.similarity))
    assert alone.comparisons == several.comparisons


# Thread count and the compile cache, in fresh processes (each compiles or loads the kernels: seconds, not minutes).


def _python(code: str, env: dict[str, str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith("NUMBA_")} | env
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        check=False,
        env=full,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
    )


MATCH_AND_CHECK = """
    import numpy as np
    from sharewise.linkage.pprl import kernels
    from sharewise.linkage.pprl.match import MatchOptions, match
    rng = np.random.default_rng(1)
    a = np.packbits(rng.random((40, 256)) < 0.3, axis=1)
    b = a ^ np.packbits(rng.random((40, 256)) < 0.02, axis=1)
    dense = match(a, b, MatchOptions(threshold=0.8, blocking="none", resolution="all"))
    lsh = match(a, b, MatchOptions(threshold=0.8, blocking="lsh", resolution="all"))
    A, B = a.view(np.uint64), b.view(np.uint64)
    both = np.bitwise_count(A[:, None, :] & B[None, :, :]).sum(axis=2)
    total = np.bitwise_count(A).sum(1)[:, None] + np.bitwise_count(B).sum(1)[None, :]
    score = (2.0 * both / np.maximum(total, 1.0)).astype(np.float32)
    i, j = np.nonzero(score >= np.float32(0.8))
    assert np.array_equal(dense.left, i) and np.array_equal(dense.right, j)
    assert np.array_equal(dense.similarity, score[i, j])
    assert set(zip(lsh.left.tolist(), lsh.right.tolist())) <= set(zip(i.tolist(), j.tolist()))
    print("ok", len(i), "uncached", ",".join(kernels.uncached()) or "none")
"""


def test_thread_count_is_numbas_and_can_be_overridden() -> None:
    code = "from sharewise.linkage.pprl import kernels; import numba; print(kernels.threads(), numba.config.NUMBA_DEFAULT_NUM_THREADS)"
    default = _python(code, {})
    assert default.returncode == 0, default.stderr
    threads, cores = default.stdout.split()
    assert threads == cores == str(max(1, len(os.sched_getaffinity(0))))
    one = _python(code, {"NUMBA_NUM_THREADS": "1"})
    assert one.returncode == 0, one.stderr
    assert one.stdout.split()[0] == "1"


def test_compiled_kernels_are_cached_and_reused_by_the_next_process(tmp_path: Path) -> None:
    env = {"NUMBA_CACHE_DIR": str(tmp_path / "cache"), "NUMBA_DEBUG_CACHE": "1"}
    first = _python(MATCH_AND_CHECK, env)
    assert first.returncode == 0, first.stderr[-2000:]
    assert "uncached none" in first.stdout
    saved = {p.name.split("-")[0] for p in (tmp_path / "cache").rglob("*.nbc")}
    assert {"kernels._dense_chunk_py", "kernels._candidate_chunk_py"} <= saved
    second = _python(MATCH_AND_CHECK, env)
    assert second.returncode == 0, second.stderr[-2000:]
    assert "data loaded" in second.stdout and "data saved" not in second.stdout  # nothing compiled again


def test_kernels_fall_back_to_the_user_cache_when_the_package_directory_is_not_writable(tmp_path: Path) -> None:
    """numba's own fallback, through sharewise's compile helper: __pycache__ cannot be a directory here."""
    (tmp_path / "__pycache__").write_text("a file, so no cache directory can be made here", encoding="utf-8")
    (tmp_path / "probe.py").write_text(
        "from sharewise.linkage.pprl.kernels import _compile\n\n\ndef _twice_py(x):\n    return 2 * x\n\n\n"
        "twice = _compile(_twice_py)\n",
        encoding="utf-8",
    )
    code = "import probe; from sharewise.linkage.pprl import kernels; print(probe.twice(21), kernels.uncached())"
    done = _python(code, {"XDG_CACHE_HOME": str(tmp_path / "user-cache"), "PYTHONPATH": str(tmp_path)}, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["42", "[]"]
    assert list((tmp_path / "user-cache" / "numba").rglob("probe._twice_py*.nbc"))


def test_kernels_work_when_nothing_can_be_cached(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("", encoding="utf-8")
    env = {"NUMBA_CACHE_DIR": str(blocker / "cache"), "NUMBA_CACHE_LOCATOR_CLASSES": "UserProvidedCacheLocator"}
    done = _python(MATCH_AND_CHECK, env)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "ok" in done.stdout and "uncached none" not in done.stdout
    assert "_dense_chunk_py" in done.stdout
    assert "no writable numba cache directory" in done.stderr
    assert done.stderr.count("no writable numba cache directory") == 1  # said once, not once per kernel


def test_kernels_run_as_python_when_numba_jit_is_disabled() -> None:
    """NUMBA_DISABLE_JIT=1, numba's debugging switch: the same results, only slower."""
    done = _python(MATCH_AND_CHECK, {"NUMBA_DISABLE_JIT": "1"})
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.startswith("ok")
