"""The linkage unit's matcher: Dice similarity of encodings, LSH blocking, one-to-one or clustering. Sees encodings only."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from sharewise.domain.errors import InvalidDataError, Problem

Pairs = tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.float32]]


@dataclass(frozen=True)
class MatchOptions:
    """Threshold on Dice similarity, blocking (lsh or none), and how matches are resolved."""

    threshold: float = 0.7
    blocking: str = "lsh"  # lsh | none
    resolution: str = "one_to_one"  # one_to_one | clusters | all
    bands: int = 40
    per_band: float = 4.0  # expected false candidates per record and band (sets the band width)
    max_block: int = 2000
    seed: int = 7
    chunk: int = 1_000_000


@dataclass(frozen=True)
class MatchResult:
    """Matched index pairs with their Dice similarity, and how many comparisons were computed."""

    left: npt.NDArray[np.int64]
    right: npt.NDArray[np.int64]
    similarity: npt.NDArray[np.float32]
    comparisons: int


def _words(bits: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint64]:
    if bits.ndim != 2 or bits.shape[1] % 8:
        raise InvalidDataError("wrong encodings", [Problem("clk", "encodings must be a whole number of 64-bit words")])
    return np.ascontiguousarray(bits).view(np.uint64)


def dice_pairs(
    a: npt.NDArray[np.uint64],
    b: npt.NDArray[np.uint64],
    left: npt.NDArray[np.int64],
    right: npt.NDArray[np.int64],
    chunk: int,
) -> npt.NDArray[np.float32]:
    """Dice similarity of the given pairs, in chunks (AND, popcount, sum over 64-bit words)."""
    count_a = np.bitwise_count(a).sum(axis=1, dtype=np.int32)
    count_b = np.bitwise_count(b).sum(axis=1, dtype=np.int32)
    out = np.empty(len(left), dtype=np.float32)
    for start in range(0, len(left), chunk):
        li, ri = left[start : start + chunk], right[start : start + chunk]
        both = np.bitwise_count(a[li] & b[ri]).sum(axis=1, dtype=np.int32)
        total = count_a[li] + count_b[ri]
        out[start : start + chunk] = np.where(total > 0, 2.0 * both / np.maximum(total, 1), 0.0)
    return out


def _lsh_candidates(
    a: npt.NDArray[np.uint8], b: npt.NDArray[np.uint8], options: MatchOptions
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Hamming LSH: pairs that agree on every sampled bit of at least one band (bits sampled at random)."""
    rng = np.random.default_rng(options.seed)
    ua, ub = np.unpackbits(a, axis=1), np.unpackbits(b, axis=1)
    nbits = ua.shape[1]
    # Band width from how often random (non-matching) pairs agree on a bit: about one false candidate per record.
    sample = min(2000, len(ua), len(ub))
    agree = float(np.mean(ua[rng.integers(0, len(ua), sample)] == ub[rng.integers(0, len(ub), sample)]))
    agree = min(max(agree, 0.5), 0.99)
    width = int(np.clip(np.ceil(np.log(options.per_band / max(len(ub), 2)) / np.log(agree)), 8, 63))
    weights = (np.uint64(1) << np.arange(width, dtype=np.uint64)).astype(np.uint64)
    lefts, rights = [], []
    for _ in range(options.bands):
        positions = rng.choice(nbits, size=width, replace=False)
        ka = (ua[:, positions].astype(np.uint64) * weights).sum(axis=1, dtype=np.uint64)
        kb = (ub[:, positions].astype(np.uint64) * weights).sum(axis=1, dtype=np.uint64)
        order = np.argsort(kb, kind="stable")
        sorted_kb = kb[order]
        lo = np.searchsorted(sorted_kb, ka, side="left")
        hi = np.searchsorted(sorted_kb, ka, side="right")
        counts = hi - lo
        counts[counts > options.max_block] = 0  # a degenerate block (e.g. all zeros) says nothing
        total = int(counts.sum())
        if not total:
            continue
        left = np.repeat(np.arange(len(ka), dtype=np.int64), counts)
        offsets = np.arange(total, dtype=np.int64) - np.repeat(np.cumsum(counts) - counts, counts)
        right = order[np.repeat(lo, counts) + offsets]
        lefts.append(left)
        rights.append(right.astype(np.int64))
    if not lefts:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    keys = np.unique(np.concatenate(lefts) * np.int64(len(ub)) + np.concatenate(rights))
    return keys // len(ub), keys % len(ub)


def _dense(a_bits: npt.NDArray[np.uint8], b_bits: npt.NDArray[np.uint8], threshold: float) -> Pairs:
    """Every pair, as matrix products of 0/1 float32 bit matrices (BLAS), keeping pairs at or above threshold."""
    fb = np.unpackbits(b_bits, axis=1).astype(np.float32)
    count_b = fb.sum(axis=1)
    lefts, rights, scores = [], [], []
    step = max(1, 4_000_000 // max(len(fb), 1))
    for start in range(0, len(a_bits), step):
        fa = np.unpackbits(a_bits[start : start + step], axis=1).astype(np.float32)
        both = fa @ fb.T
        dice = 2.0 * both / np.maximum(fa.sum(axis=1)[:, None] + count_b[None, :], 1.0)
        li, ri = np.nonzero(dice >= threshold)
        lefts.append(li.astype(np.int64) + start)
        rights.append(ri.astype(np.int64))
        scores.append(dice[li, ri].astype(np.float32))
    if not lefts:
        return np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.float32)
    return np.concatenate(lefts), np.concatenate(rights), np.concatenate(scores)


def one_to_one(
    left: npt.NDArray[np.int64], right: npt.NDArray[np.int64], score: npt.NDArray[np.float32]
) -> npt.NDArray[np.bool_]:
    """Keep the pairs that are each side's best (mutual best match), ties broken by index."""
    if not len(left):
        return np.zeros(0, dtype=np.bool_)
    order = np.lexsort((right, left, -score))  # best score first
    keep = np.zeros(len(left), dtype=np.bool_)
    _, first_left = np.unique(left[order], return_index=True)
    _, first_right = np.unique(right[order], return_index=True)
    best_left = np.zeros(len(left), dtype=np.bool_)
    best_right = np.zeros(len(left), dtype=np.bool_)
    best_left[order[first_left]] = True
    best_right[order[first_right]] = True
    keep = best_left & best_right
    return keep


def match(a_bits: npt.NDArray[np.uint8], b_bits: npt.NDArray[np.uint8], options: MatchOptions) -> MatchResult:
    """Match two parties' encodings (or one party's against itself when b_bits is a_bits and clusters are asked)."""
    if a_bits.shape[1] != b_bits.shape[1]:
        raise InvalidDataError("wrong encodings", [Problem("clk", "the two files' encodings have different lengths")])
    a, b = _words(a_bits), _words(b_bits)
    if options.blocking == "lsh":
        left, right = _lsh_candidates(a_bits, b_bits, options)
        score = dice_pairs(a, b, left, right, options.chunk)
        compared = len(left)
        keep = score >= options.threshold
        left, right, score = left[keep], right[keep], score[keep]
    elif options.blocking == "none":
        left, right, score = _dense(a_bits, b_bits, options.threshold)
        compared = len(a) * len(b)
    else:
        raise InvalidDataError("invalid option", [Problem("--blocking", "lsh or none")])
    if options.resolution == "one_to_one":
        best = one_to_one(left, right, score)
        left, right, score = left[best], right[best], score[best]
    return MatchResult(left, right, score, comparisons=compared)


def clusters(n_left: int, n_right: int, result: MatchResult) -> npt.NDArray[np.int64]:
    """Group ids (connected components, by min-label propagation) for the n_left + n_right records, left first."""
    labels = np.arange(n_left + n_right, dtype=np.int64)
    u, v = result.left, result.right + n_left
    while True:
        low = np.minimum(labels[u], labels[v])
        before = labels.copy()
        np.minimum.at(labels, u, low)
        np.minimum.at(labels, v, low)
        labels = labels[labels]  # pointer jumping
        if np.array_equal(labels, before):
            break
    _, dense = np.unique(labels, return_inverse=True)
    return np.asarray(dense, dtype=np.int64)
