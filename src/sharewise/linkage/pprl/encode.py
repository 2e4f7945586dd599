"""Keyed, hardened Bloom-filter (CLK) encodings of prepared person columns, computed with numpy.

Each field's tokens are hashed with HMAC-SHA256 under a key derived from the shared secret and the field name
(per-field salting; random hashing rather than double hashing, which the pattern-mining attack of Kroll and
Steinmetzer exploits). The filter is then balanced (the filter and its complement, permuted with a keyed
permutation: every encoding has the same number of ones, which defeats frequency attacks on Hamming weight)
and/or XOR-folded, as the schema says.

How it is computed, so that cost grows with distinct tokens and distinct values rather than records, and no
Python loop runs per record or per value:

- HMAC runs once per distinct token of a field (hundreds of q-grams), giving its k bit positions.
- Balancing is folded into the token filters. The balanced encoding is P([f, ~f]) for a fixed keyed bit
  permutation P, and P([f, ~f]) = P([f, f]) XOR P([0, 1...1]); P([f, f]) is the OR, over the bits p set in f,
  of the two bits P(p) and P(p + bits). So each token's filter is built directly in the permuted, balanced
  layout, everything after that is OR, and one constant XOR finishes the encoding.
- A field's filter for each distinct value is the OR of its tokens' filters, one token position at a time over
  all values (values sorted by token count, so each pass covers a contiguous prefix).
- A record's encoding is the OR of its fields' value filters, gathered by dictionary index, in cache-sized
  chunks of records spread over the machine's cores (numpy releases the GIL for these operations).
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import TypeVar

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from sharewise.domain.errors import InvalidDataError, Problem
from sharewise.linkage.pprl.schema import FieldSpec, LinkageSchema

Bits = npt.NDArray[np.uint8]  # packed bits, one row per record
Words = npt.NDArray[np.uint64]  # the same bits as 64-bit words (byte order irrelevant: only OR and XOR touch them)
Index = npt.NDArray[np.intp]
MAX_LEN = 40
MIN_SECRET_BYTES = 16
CHUNK_BYTES = 1 << 20  # rows handled per pass: about a megabyte of filters, so a pass stays in cache
PAIR_TABLE = 1 << 22  # largest table of token pairs (distinct tokens squared) worth building
_T = TypeVar("_T")


def check_secret(secret: bytes) -> None:
    if len(secret.strip()) < MIN_SECRET_BYTES:
        raise InvalidDataError(
            "secret too short",
            [Problem("secret", f"at least {MIN_SECRET_BYTES} bytes of random data, shared out of band")],
        )


def _key(secret: bytes, label: str) -> bytes:
    return hmac.new(secret, b"sharewise-pprl/1/" + label.encode(), hashlib.sha256).digest()


def secret_check(secret: bytes, schema: LinkageSchema) -> str:
    """A short keyed tag that two parties' encodings share exactly when they used the same secret and schema."""
    return _key(secret, "check/" + schema.fingerprint()).hex()[:16]


def _workers() -> int:
    return max(1, min(2, os.cpu_count() or 1))


def _parallel(tasks: list[Callable[[], _T]], workers: int) -> list[_T]:
    if workers <= 1 or len(tasks) <= 1:
        return [task() for task in tasks]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(lambda task: task(), tasks))


def _chunks(n: int, row_bytes: int) -> Iterator[tuple[int, int]]:
    step = max(1, CHUNK_BYTES // max(row_bytes, 1))
    for start in range(0, n, step):
        yield start, min(n, start + step)


@dataclass(frozen=True)
class _Layout:
    """Where each bit of the plain filter lands in the encoding before folding, and the constant XORed last."""

    width: int  # bits before folding
    targets: npt.NDArray[np.int64]  # (schema.bits, copies): output positions of each plain filter bit
    constant: Words  # (width / 64,)


def _layout(secret: bytes, schema: LinkageSchema) -> _Layout:
    """The keyed balanced layout: output bit 8j + i is bit perm_j[i] of byte order[j] of [filter, complement]."""
    bits = schema.bits
    if "balance" not in schema.hardening:
        return _Layout(bits, np.arange(bits, dtype=np.int64)[:, None], np.zeros(bits // 64, dtype=np.uint64))
    n_bytes = 2 * bits // 8
    seed = int.from_bytes(_key(secret, "permutation/" + schema.fingerprint())[:16], "big")
    rng = np.random.default_rng(seed)
    byte_order = rng.permutation(n_bytes)
    within = np.stack([rng.permutation(8) for _ in range(n_bytes)])  # once per output byte, not per record
    source = (byte_order[:, None] * 8 + within).ravel()  # output bit -> bit of [filter, complement]
    target = np.empty(2 * bits, dtype=np.int64)
    target[source] = np.arange(2 * bits, dtype=np.int64)
    constant = np.zeros(2 * bits, dtype=np.bool_)
    constant[target[bits:]] = True  # P([0, 1...1]): where the complement's ones land
    return _Layout(2 * bits, np.stack([target[:bits], target[bits:]], axis=1), _pack_words(constant[None, :])[0])


def _pack_words(flags: npt.NDArray[np.bool_]) -> Words:
    return np.ascontiguousarray(np.packbits(flags, axis=1)).view(np.uint64)


def _scatter(positions: npt.NDArray[np.int64], width: int) -> Words:
    """Filters (one row per row of positions) with the given bit positions set, packed as words."""
    out = np.zeros((len(positions), width // 8), dtype=np.uint8)
    rows = np.repeat(np.arange(len(positions)), positions.shape[1])
    flat = positions.ravel()
    np.bitwise_or.at(out, (rows, flat >> 3), np.right_shift(np.uint8(0x80), (flat & 7).astype(np.uint8)))
    return out.view(np.uint64)


# Tokens: each distinct value of a field as integer token codes in a (values, slots) matrix whose valid slots are a
# prefix of each row (`counts` of them), and how a code is turned into the bytes that are hashed.


@dataclass(frozen=True)
class _Tokens:
    codes: npt.NDArray[np.uint32]
    counts: npt.NDArray[np.int64]
    as_bytes: Callable[[int], bytes]


def _fixed_width(values: pa.Array, min_width: int = 1) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.int64]]:
    """Values' UTF-8 bytes cut at MAX_LEN, as a zero-padded matrix as wide as the longest, and their lengths.

    Nulls are empty; a length does not count trailing NUL bytes (as numpy's fixed-width bytes type has it).
    """
    binary = values.cast(pa.large_binary())
    n = len(binary)
    buffers = binary.buffers()
    offsets = (
        np.frombuffer(buffers[1], dtype=np.int64, count=n + 1, offset=8 * binary.offset)
        if n
        else np.zeros(1, dtype=np.int64)
    )
    data = np.frombuffer(buffers[2], dtype=np.uint8) if n and buffers[2] is not None else np.zeros(0, np.uint8)
    starts = offsets[:-1]
    sizes = np.minimum(offsets[1:] - starts, MAX_LEN)
    if binary.null_count:
        sizes[~np.asarray(pc.is_valid(binary).to_numpy(zero_copy_only=False), dtype=np.bool_)] = 0
    width = max(min_width, int(sizes.max()) if n else 0)
    columns = np.arange(width, dtype=np.int64)
    inside = columns[None, :] < sizes[:, None]
    matrix = np.zeros((n, width), dtype=np.uint8)
    if len(data):
        matrix[inside] = data[(starts[:, None] + columns[None, :])[inside]]
    nonzero = matrix != 0
    lengths = np.where(nonzero.any(axis=1), width - np.argmax(nonzero[:, ::-1], axis=1), 0)
    return matrix, lengths.astype(np.int64)


def _qgram_tokens(values: pa.Array, q: int) -> _Tokens:
    """Every q-gram of every value, padded with q-1 underscores at each end, as big-endian integer codes."""
    matrix, lengths = _fixed_width(values)
    (n, longest), pad = matrix.shape, q - 1
    width = longest + 2 * pad
    padded = np.zeros((n, width), dtype=np.uint32)
    padded[:, pad : pad + longest] = matrix
    if pad:
        padded[:, :pad] = ord("_")
        rows = np.arange(n)
        for j in range(pad):  # q-1 columns of end padding, at each value's own end
            padded[rows, lengths + pad + j] = ord("_")
    grams = width - q + 1
    codes = np.zeros((n, grams), dtype=np.uint32)
    for j in range(q):
        codes = np.left_shift(codes, np.uint32(8)) | padded[:, j : j + grams]
    counts = np.where(lengths > 0, lengths + pad, 0)
    return _Tokens(codes, counts, lambda code: code.to_bytes(4, "big").lstrip(b"\0"))


def _date_tokens(values: pa.Array) -> _Tokens:
    """Year, month and day of ISO dates as three tagged tokens (a transposed day and month still share the year)."""
    matrix, lengths = _fixed_width(values, min_width=10)
    digits = matrix.astype(np.uint32) - ord("0")
    year = digits[:, 0] * 1000 + digits[:, 1] * 100 + digits[:, 2] * 10 + digits[:, 3]
    month = digits[:, 5] * 10 + digits[:, 6]
    day = digits[:, 8] * 10 + digits[:, 9]
    codes = np.stack([(1 << 24) | year, (2 << 24) | month, (3 << 24) | day], axis=1).astype(np.uint32)
    return _Tokens(codes, np.where(lengths == 10, 3, 0), lambda code: code.to_bytes(4, "big"))


def _exact_tokens(values: pa.Array) -> _Tokens:
    """The whole value as one token: its index among the distinct values, hashed by the value's content."""
    texts: list[str | None] = values.to_pylist()
    counts = np.array([1 if text else 0 for text in texts], dtype=np.int64)
    return _Tokens(
        np.arange(len(texts), dtype=np.uint32)[:, None], counts, lambda code: (texts[code] or "").encode("utf-8")
    )


def _token_ids(tokens: _Tokens) -> tuple[npt.NDArray[np.uint32], npt.NDArray[np.int32]]:
    """The distinct token codes, and each slot's index among them (len(distinct) for slots past a value's end)."""
    valid = np.arange(tokens.codes.shape[1])[None, :] < tokens.counts[:, None]
    if not valid.any():
        return np.zeros(0, dtype=np.uint32), np.zeros(tokens.codes.shape, dtype=np.int32)
    top = int(tokens.codes.max(initial=0, where=valid))
    if top < 1 << 20:  # q-grams up to q=2: a table beats sorting
        masked = np.where(valid, tokens.codes, np.uint32(top + 1))  # past the end: a code no token has
        present = np.zeros(top + 2, dtype=np.bool_)
        present[masked] = True
        present[top + 1] = False
        distinct = np.flatnonzero(present).astype(np.uint32)
        lookup = np.cumsum(present, dtype=np.int32) - 1
        lookup[top + 1] = len(distinct)
        return distinct, lookup[masked]
    distinct, inverse = np.unique(tokens.codes[valid], return_inverse=True)
    ids = np.full(tokens.codes.shape, len(distinct), dtype=np.int32)
    ids[valid] = inverse
    return distinct, ids


def _token_positions(
    spec: FieldSpec, key: bytes, codes: list[int], tokens: _Tokens, bits: int
) -> npt.NDArray[np.int64]:
    """The k bit positions of each distinct token: HMAC-SHA256 under the field key, 4 bytes a position."""
    size = 4 * spec.k
    rounds = range(-(-size // hashlib.sha256().digest_size))
    digests = bytearray()
    for code in codes:  # once per distinct token of the field (hundreds), never per record
        token = tokens.as_bytes(code)
        digest = b"".join(hmac.digest(key, i.to_bytes(2, "big") + token, "sha256") for i in rounds)
        digests += digest[:size]
    return np.frombuffer(bytes(digests), dtype=">u4").astype(np.int64).reshape(len(codes), spec.k) % bits


def _pairs(
    token_filters: Words, ids: npt.NDArray[np.int32], counts: npt.NDArray[np.int64]
) -> tuple[Words, npt.NDArray[np.int32], npt.NDArray[np.int64]]:
    """Adjacent slots (0, 1), (2, 3)... merged into one: the filter of each distinct pair of tokens, built once.

    A field has few distinct tokens, so pairs are indexed by a table (no sorting), and the per-value passes halve.
    """
    n_tokens = len(token_filters)  # the last one is the empty token, past a value's end
    if ids.shape[1] < 2 or n_tokens * n_tokens > PAIR_TABLE:
        return token_filters, ids, counts
    if ids.shape[1] % 2:
        ids = np.concatenate([ids, np.full((len(ids), 1), n_tokens - 1, dtype=np.int32)], axis=1)
    codes = ids[:, 0::2].astype(np.int64) * n_tokens + ids[:, 1::2]
    present = np.zeros(n_tokens * n_tokens, dtype=np.bool_)
    present[codes] = True
    pairs = np.flatnonzero(present)
    lookup = np.cumsum(present, dtype=np.int32) - 1
    pair_filters = token_filters[pairs // n_tokens] | token_filters[pairs % n_tokens]
    return pair_filters, lookup[codes], (counts + 1) // 2


def _value_filters(
    spec: FieldSpec, values: pa.Array, secret: bytes, schema: LinkageSchema, layout: _Layout
) -> tuple[Words, Index]:
    """The field's filter of each distinct value, in the encoding's layout (before the constant and folding), in an
    order of their own, and where each distinct value's filter is in that order."""
    if spec.tokenizer == "qgram":
        tokens = _qgram_tokens(values, spec.q)
    elif spec.tokenizer == "date":
        tokens = _date_tokens(values)
    else:
        tokens = _exact_tokens(values)
    distinct, ids = _token_ids(tokens)
    positions = _token_positions(spec, _key(secret, "field/" + spec.name), distinct.tolist(), tokens, schema.bits)
    token_filters = _scatter(
        layout.targets[positions].reshape(len(distinct), spec.k * layout.targets.shape[1]), layout.width
    )
    token_filters = np.concatenate([token_filters, np.zeros((1, token_filters.shape[1]), np.uint64)])
    token_filters, ids, counts = _pairs(token_filters, ids, tokens.counts)
    order = np.argsort(-counts, kind="stable")  # most tokens first: slot j is valid on a prefix
    counts, ids = counts[order], ids[order]
    filters = np.zeros((len(order), token_filters.shape[1]), dtype=np.uint64)
    scratch = np.empty_like(filters[: max(1, CHUNK_BYTES // (layout.width // 8))])
    for start, stop in _chunks(len(order), layout.width // 8):
        block, block_counts = filters[start:stop], counts[start:stop]
        for slot in range(int(block_counts[0]) if stop > start else 0):
            rows = int(np.count_nonzero(block_counts > slot))
            np.take(token_filters, ids[start : start + rows, slot], axis=0, out=scratch[:rows])
            np.bitwise_or(block[:rows], scratch[:rows], out=block[:rows])
    rank = np.empty(len(order), dtype=np.intp)
    rank[order] = np.arange(len(order))
    return filters, rank


def _field(
    prepared: pa.Table, spec: FieldSpec, secret: bytes, schema: LinkageSchema, layout: _Layout
) -> tuple[Words, Index]:
    """One field's value filters and, for each record, the row of its value's filter."""
    values, index = _dictionary(prepared, spec.name)
    filters, rank = _value_filters(spec, values, secret, schema, layout)
    return filters, rank[index]


def _dictionary(prepared: pa.Table, name: str) -> tuple[pa.Array, Index]:
    """A column's distinct values (a null among them, if any) and each record's index into them."""
    column = prepared.column(name).combine_chunks()
    if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
        try:
            column = column.cast(pa.string())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise InvalidDataError("wrong column type", [Problem(name, f"text expected, not {column.type}")]) from exc
    encoded = pc.dictionary_encode(column, null_encoding="encode")
    return encoded.dictionary, np.asarray(encoded.indices.to_numpy(zero_copy_only=False), dtype=np.intp)


def _assemble(fields: list[tuple[Words, Index]], layout: _Layout, n: int, workers: int) -> Words:
    """Each record's encoding: the OR of its fields' value filters, XOR the layout's constant."""
    out = np.empty((n, layout.width // 64), dtype=np.uint64)

    def fill(start: int, stop: int) -> None:
        block = out[start:stop]
        block[:] = 0
        scratch = np.empty_like(block)
        for filters, index in fields:
            np.take(filters, index[start:stop], axis=0, out=scratch)
            np.bitwise_or(block, scratch, out=block)
        np.bitwise_xor(block, layout.constant, out=block)

    _parallel([partial(fill, start, stop) for start, stop in _chunks(n, layout.width // 8)], workers)
    return out


def encode(prepared: pa.Table, schema: LinkageSchema, secret: bytes) -> Bits:
    """The hardened encodings of prepared records, one packed row of schema.encoded_bits bits per record."""
    check_secret(secret)
    missing = [f.name for f in schema.fields if f.name not in prepared.column_names]
    if missing:
        raise InvalidDataError(
            "missing columns", [Problem("input", f"the schema encodes {m}, which is absent") for m in missing]
        )
    if schema.bits < 64 or schema.bits % 64:
        raise InvalidDataError("invalid linkage schema", [Problem("bits", "a multiple of 64, at least 64")])
    layout = _layout(secret, schema)
    workers = _workers()
    fields = _parallel([partial(_field, prepared, spec, secret, schema, layout) for spec in schema.fields], workers)
    words = _assemble(fields, layout, prepared.num_rows, workers)
    result = words.view(np.uint8)
    if "xor_fold" in schema.hardening:
        half = result.shape[1] // 2
        result = np.bitwise_xor(result[:, :half], result[:, half:])
    return np.ascontiguousarray(result)
