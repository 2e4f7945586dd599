"""Compiled kernels (numba) for PPRL matching: AND-popcounts of two parties' encodings, keeping only the pairs that
reach the threshold.

Why compiled: the Dice similarity of two Bloom-filter encodings is a popcount of a AND b over a few dozen 64-bit
words. numpy can only get there by materialising a AND b for every pair, or by float32 products of unpacked bits
(4,096 flops for one 2,048-bit pair, 13 M pairs per CPU-second). A compiled loop keeps the rows in cache, lets LLVM
vectorize the word loop into the CPU's vector popcount, and writes out only the few pairs that pass.

Every decision is integer arithmetic: the caller passes `need`, the least |a AND b| whose float32 Dice reaches the
threshold for each total weight |a| + |b|, so keep-or-drop here is exactly the scoring code's decision (match.py
scores the kept pairs with the same function that built `need`).

Threads: the kernels release the GIL and a pool of Python threads hands out chunks of A's rows as threads finish.
numba's `prange` splits the rows evenly up front, so on a shared machine it waits for the busiest core, and it
cannot grow per-chunk outputs. The thread count is numba's: NUMBA_NUM_THREADS if set, else the cores this process
may run on.

Compiling takes 5-15 seconds on 2 shared cores, once: `cache=True` stores the machine code where numba finds a
writable place (NUMBA_CACHE_DIR if set, else the package's `__pycache__`, else the user cache directory,
`~/.cache/numba` or under XDG_CACHE_HOME), and later processes load it in well under a second (plus about half a
second to import numba, which match.py therefore imports only when it matches). When no place is writable the
kernels still work, compiled again in each process, and one warning says so.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any

import numba
import numpy as np
import numpy.typing as npt
from numba import types
from numba.extending import intrinsic

log = logging.getLogger(__name__)

Words = npt.NDArray[np.uint64]
Ints = npt.NDArray[np.int64]
CHUNK_ROWS = 64  # rows of A a thread takes at a time (16 KB of 2,048-bit encodings: they stay in L1)
TILE_B = 512  # rows of B met by every row of a chunk before moving on (128 KB: they stay in L2)
CHUNK_PAIRS = 1 << 20  # candidate pairs a thread takes at a time
FIRST_CAPACITY = 1024  # pairs a chunk's output holds before it grows (doubling)

_uncached: list[str] = []  # kernels numba could not cache (no writable cache directory)


def _popcount_typing(typingctx: Any, word: Any) -> Any:
    """LLVM's ctpop on one 64-bit word (numba has no popcount); in a loop, LLVM vectorizes it."""
    if word != types.uint64:
        return None

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        return builder.ctpop(args[0])

    return types.int64(types.uint64), codegen


def _popcount_py(word: np.uint64) -> int:
    return int(word).bit_count()


# NUMBA_DISABLE_JIT=1 (for debugging) runs the kernels as Python, where an intrinsic cannot be called.
_popcount: Any = _popcount_py if numba.config.DISABLE_JIT else intrinsic(_popcount_typing)  # type: ignore[attr-defined]


def _compile(function: Callable[..., Any]) -> Any:
    """The function compiled without the GIL, its machine code cached on disk when numba finds a writable place."""
    try:
        return numba.njit(nogil=True, cache=True)(function)
    except RuntimeError:  # numba: "cannot cache function ...: no locator available"
        if not _uncached:
            log.warning("no writable numba cache directory: PPRL kernels are compiled again in each process")
        _uncached.append(function.__name__)
        return numba.njit(nogil=True)(function)


def _row_py(
    a: Words, b: Words, i: int, start: int, stop: int, count_i: int, count_b: Ints, need: Ints, out: Ints, n: int
) -> int:
    """Row i of A against rows start..stop of B; passing pairs appended to out (3 columns) from row n."""
    words = a.shape[1]
    for j in range(start, stop):
        both = 0
        for w in range(words):
            both += _popcount(a[i, w] & b[j, w])
        if both >= need[count_i + count_b[j]]:
            out[n, 0] = i
            out[n, 1] = j
            out[n, 2] = both
            n += 1
    return n


_row = _compile(_row_py)


def _two_rows_py(
    a: Words, b: Words, i: int, start: int, stop: int, count_a: Ints, count_b: Ints, need: Ints, out: Ints, n: int
) -> int:
    """Rows i and i + 1 of A against rows start..stop of B: each word of B is loaded once for two pairs."""
    words = a.shape[1]
    count_0, count_1 = count_a[i], count_a[i + 1]
    for j in range(start, stop):
        both_0 = 0
        both_1 = 0
        for w in range(words):
            word = b[j, w]
            both_0 += _popcount(a[i, w] & word)
            both_1 += _popcount(a[i + 1, w] & word)
        count_j = count_b[j]
        if both_0 >= need[count_0 + count_j]:
            out[n, 0] = i
            out[n, 1] = j
            out[n, 2] = both_0
            n += 1
        if both_1 >= need[count_1 + count_j]:
            out[n, 0] = i + 1
            out[n, 1] = j
            out[n, 2] = both_1
            n += 1
    return n


_two_rows = _compile(_two_rows_py)


def _dense_chunk_py(
    a: Words,
    b: Words,
    count_a: Ints,
    count_b: Ints,
    lo: Ints,
    hi: Ints,
    need: Ints,
    first: int,
    last: int,
    tile: int,
    capacity: int,
) -> Ints:
    """Rows first..last of A, each against its window lo..hi of B, in tiles of B: (row of A, row of B, |a AND b|)."""
    begin, end = b.shape[0], 0
    for i in range(first, last):
        if lo[i] < hi[i]:
            begin = min(begin, lo[i])
            end = max(end, hi[i])
    out = np.empty((capacity, 3), dtype=np.int64)
    n = 0
    for tile_start in range(begin, end, tile):
        tile_stop = min(end, tile_start + tile)
        i = first
        while i < last:
            s0, e0 = max(lo[i], tile_start), min(hi[i], tile_stop)
            s1, e1 = tile_start, tile_start  # empty unless there is a row i + 1
            if i + 1 < last:
                s1, e1 = max(lo[i + 1], tile_start), min(hi[i + 1], tile_stop)
            wanted = n + max(e0 - s0, 0) + max(e1 - s1, 0)
            if wanted > out.shape[0]:
                bigger = np.empty((max(2 * out.shape[0], wanted), 3), dtype=np.int64)
                bigger[:n] = out[:n]
                out = bigger
            common_start, common_stop = max(s0, s1), min(e0, e1)
            if common_start < common_stop:  # both rows meet [common_start, common_stop) together, the rest alone
                n = _row(a, b, i, s0, common_start, count_a[i], count_b, need, out, n)
                n = _two_rows(a, b, i, common_start, common_stop, count_a, count_b, need, out, n)
                n = _row(a, b, i, common_stop, e0, count_a[i], count_b, need, out, n)
                n = _row(a, b, i + 1, s1, common_start, count_a[i + 1], count_b, need, out, n)
                n = _row(a, b, i + 1, common_stop, e1, count_a[i + 1], count_b, need, out, n)
            else:
                n = _row(a, b, i, s0, e0, count_a[i], count_b, need, out, n)
                if i + 1 < last:
                    n = _row(a, b, i + 1, s1, e1, count_a[i + 1], count_b, need, out, n)
            i += 2
    return out[:n]


_dense_chunk = _compile(_dense_chunk_py)


def _candidate_chunk_py(
    a: Words, b: Words, count_a: Ints, count_b: Ints, left: Ints, right: Ints, need: Ints, first: int, last: int
) -> Ints:
    """Candidate pairs first..last: (pair index, |a AND b|) of those that reach the threshold."""
    words = a.shape[1]
    out = np.empty((last - first, 2), dtype=np.int64)
    n = 0
    for k in range(first, last):
        i, j = left[k], right[k]
        both = 0
        for w in range(words):
            both += _popcount(a[i, w] & b[j, w])
        if both >= need[count_a[i] + count_b[j]]:
            out[n, 0] = k
            out[n, 1] = both
            n += 1
    return out[:n]


_candidate_chunk = _compile(_candidate_chunk_py)


def threads() -> int:
    """Threads the kernels run on: numba's NUMBA_NUM_THREADS (by default the cores this process may use)."""
    return max(1, int(numba.config.NUMBA_NUM_THREADS))  # type: ignore[attr-defined]


def _run(tasks: list[Callable[[], Ints]]) -> list[Ints]:
    workers = min(threads(), len(tasks))
    if workers <= 1:
        return [task() for task in tasks]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(lambda task: task(), tasks))


def _check(a: Words, b: Words, count_a: Ints, count_b: Ints, need: Ints) -> None:
    """The kernels index without bounds checks: refuse inputs that would make them read out of bounds."""
    if a.dtype != np.uint64 or b.dtype != np.uint64 or a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ValueError("encodings must be two 2-D uint64 arrays with the same number of words")
    if not (a.flags.c_contiguous and b.flags.c_contiguous):
        raise ValueError("encodings must be C-contiguous")
    if count_a.shape != (a.shape[0],) or count_b.shape != (b.shape[0],):
        raise ValueError("one weight per encoding")
    if need.ndim != 1 or len(need) < 2 * 64 * a.shape[1] + 1:
        raise ValueError("need must cover every total weight")
    for counts in (count_a, count_b):
        if len(counts) and (int(counts.min()) < 0 or int(counts.max()) > 64 * a.shape[1]):
            raise ValueError("weights out of range")


def dense_pairs(
    a: Words, b: Words, count_a: Ints, count_b: Ints, lo: Ints, hi: Ints, need: Ints
) -> tuple[Ints, Ints, Ints]:
    """Every pair (i, j) with lo[i] <= j < hi[i] whose |a_i AND b_j| >= need[|a_i| + |b_j|]: rows, rows, counts.

    Rows of A should be sorted by weight, so that neighbouring rows have overlapping windows of B.
    """
    _check(a, b, count_a, count_b, need)
    if lo.shape != (a.shape[0],) or hi.shape != (a.shape[0],):
        raise ValueError("one window per row of A")
    if len(lo) and (int(lo.min()) < 0 or int(hi.max()) > b.shape[0]):
        raise ValueError("windows out of range")
    n_a = a.shape[0]
    tile, capacity = max(1, TILE_B), max(1, FIRST_CAPACITY)
    chunks = [(start, min(n_a, start + max(1, CHUNK_ROWS))) for start in range(0, n_a, max(1, CHUNK_ROWS))]
    tasks: list[Callable[[], Ints]] = [
        partial(_dense_chunk, a, b, count_a, count_b, lo, hi, need, first, last, tile, capacity)
        for first, last in chunks
    ]
    found = [part for part in _run(tasks) if len(part)]
    if not found:
        return np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.int64)
    table = np.concatenate(found)
    return table[:, 0].copy(), table[:, 1].copy(), table[:, 2].copy()


def candidate_pairs(
    a: Words, b: Words, count_a: Ints, count_b: Ints, left: Ints, right: Ints, need: Ints
) -> tuple[Ints, Ints]:
    """Of the candidate pairs (left[k], right[k]), those whose |a AND b| >= need[|a| + |b|]: indices k, counts."""
    _check(a, b, count_a, count_b, need)
    if left.shape != right.shape or left.ndim != 1:
        raise ValueError("one left and one right row per candidate pair")
    if len(left) and (
        int(left.min()) < 0 or int(right.min()) < 0 or int(left.max()) >= len(a) or int(right.max()) >= len(b)
    ):
        raise ValueError("candidate rows out of range")
    step = max(1, CHUNK_PAIRS)
    tasks: list[Callable[[], Ints]] = [
        partial(_candidate_chunk, a, b, count_a, count_b, left, right, need, first, min(len(left), first + step))
        for first in range(0, len(left), step)
    ]
    found = [part for part in _run(tasks) if len(part)]
    if not found:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    table = np.concatenate(found)
    return table[:, 0].copy(), table[:, 1].copy()


def uncached() -> list[str]:
    """The kernels numba could not cache in this process (empty when the cache works)."""
    return list(_uncached)
