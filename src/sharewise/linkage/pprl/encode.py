"""Keyed, hardened Bloom-filter (CLK) encodings of prepared person columns, computed with numpy.

Each field's tokens are hashed with HMAC-SHA256 under a key derived from the shared secret and the field name
(per-field salting; random hashing rather than double hashing, which the pattern-mining attack of Kroll and
Steinmetzer exploits). The filter is then balanced (the filter and its complement, permuted with a keyed
permutation: every encoding has the same number of ones, which defeats frequency attacks on Hamming weight)
and/or XOR-folded, as the schema says. Tokens are hashed once per distinct token, filters are built once per
distinct field value, and records are assembled with array operations: no Python loop runs per record.
"""

from __future__ import annotations

import hashlib
import hmac

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from sharewise.domain.errors import InvalidDataError, Problem
from sharewise.linkage.pprl.schema import FieldSpec, LinkageSchema

Bits = npt.NDArray[np.uint8]  # packed bits, one row per record
MAX_LEN = 40
MIN_SECRET_BYTES = 16


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


def _fixed_width(values: list[str | None]) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.int64]]:
    """Distinct values as a zero-padded byte matrix (n, MAX_LEN) and their lengths."""
    raw = np.array([(v or "").encode("utf-8")[:MAX_LEN] for v in values], dtype=f"S{MAX_LEN}")
    matrix = raw.view(np.uint8).reshape(len(values), MAX_LEN)
    lengths = np.char.str_len(raw).astype(np.int64)
    return matrix, lengths


def _qgram_codes(
    matrix: npt.NDArray[np.uint8], lengths: npt.NDArray[np.int64], q: int
) -> tuple[npt.NDArray[np.uint32], npt.NDArray[np.bool_]]:
    """Every padded q-gram of every value as one integer code, with a mask of the real ones."""
    n = matrix.shape[0]
    pad = q - 1
    width = MAX_LEN + 2 * pad
    padded = np.zeros((n, width), dtype=np.uint32)
    padded[:, pad : pad + MAX_LEN] = matrix
    if pad:
        padded[:, :pad] = ord("_")
        rows = np.arange(n)
        for j in range(pad):  # q-1 columns of end padding, at each value's own end
            padded[rows, lengths + pad + j] = ord("_")
    grams = width - q + 1
    codes = np.zeros((n, grams), dtype=np.uint32)
    for j in range(q):
        codes = np.left_shift(codes, np.uint32(8)) | padded[:, j : j + grams]
    valid = np.arange(grams)[None, :] < (lengths + pad)[:, None]
    valid &= (lengths > 0)[:, None]
    return codes, valid


def _date_codes(values: list[str | None]) -> tuple[npt.NDArray[np.uint32], npt.NDArray[np.bool_]]:
    """Year, month and day of ISO dates as three tagged tokens (a transposed day and month still share the year)."""
    matrix, lengths = _fixed_width(values)
    ok = lengths == 10
    digits = matrix.astype(np.uint32) - ord("0")
    year = digits[:, 0] * 1000 + digits[:, 1] * 100 + digits[:, 2] * 10 + digits[:, 3]
    month = digits[:, 5] * 10 + digits[:, 6]
    day = digits[:, 8] * 10 + digits[:, 9]
    codes = np.stack([(1 << 24) | year, (2 << 24) | month, (3 << 24) | day], axis=1).astype(np.uint32)
    return codes, np.repeat(ok[:, None], 3, axis=1)


def _exact_codes(values: list[str | None]) -> tuple[npt.NDArray[np.uint32], npt.NDArray[np.bool_]]:
    """The whole value as one token (its index among the distinct values is hashed by content below)."""
    codes = np.arange(len(values), dtype=np.uint32)[:, None]
    return codes, np.array([[bool(v)] for v in values], dtype=np.bool_).reshape(len(values), 1)


def _token_bytes(spec: FieldSpec, code: int, values: list[str | None]) -> bytes:
    if spec.tokenizer == "exact":
        return (values[code] or "").encode("utf-8")
    if spec.tokenizer == "date":
        return code.to_bytes(4, "big")
    return code.to_bytes(4, "big").lstrip(b"\0")


def _field_filters(spec: FieldSpec, values: list[str | None], secret: bytes, bits: int) -> Bits:
    """Packed Bloom filters (one row per distinct value) of one field."""
    if spec.tokenizer == "qgram":
        matrix, lengths = _fixed_width(values)
        codes, valid = _qgram_codes(matrix, lengths, spec.q)
    elif spec.tokenizer == "date":
        codes, valid = _date_codes(values)
    else:
        codes, valid = _exact_codes(values)
    rows, cols = np.nonzero(valid)
    token_codes = codes[rows, cols]
    distinct, inverse = np.unique(token_codes, return_inverse=True)
    key = _key(secret, "field/" + spec.name)
    # One HMAC per distinct token of the field (hundreds), never per record.
    positions = np.empty((len(distinct), spec.k), dtype=np.int64)
    for i, code in enumerate(distinct.tolist()):
        digest = b""
        counter = 0
        while len(digest) < 4 * spec.k:
            digest += hmac.new(
                key, counter.to_bytes(2, "big") + _token_bytes(spec, code, values), hashlib.sha256
            ).digest()
            counter += 1
        positions[i] = np.frombuffer(digest[: 4 * spec.k], dtype=">u4") % bits
    filters = np.zeros((len(values), bits), dtype=np.bool_)
    filters[np.repeat(rows, spec.k), positions[inverse].ravel()] = True
    return np.packbits(filters, axis=1)


def _keyed_layout(
    secret: bytes, schema: LinkageSchema, n_bytes: int
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.uint8]]:
    """A keyed permutation of the bytes, and for each output byte a keyed permutation of its 8 bits (as a table)."""
    seed = int.from_bytes(_key(secret, "permutation/" + schema.fingerprint())[:16], "big")
    rng = np.random.default_rng(seed)
    byte_order = rng.permutation(n_bytes)
    bit_values = np.unpackbits(np.arange(256, dtype=np.uint8)[:, None], axis=1)  # (256, 8)
    tables = np.empty((n_bytes, 256), dtype=np.uint8)
    for j in range(n_bytes):  # once per output byte (hundreds), not per record
        tables[j] = np.packbits(bit_values[:, rng.permutation(8)], axis=1)[:, 0]
    return byte_order, tables


def harden(filters: Bits, schema: LinkageSchema, secret: bytes) -> Bits:
    """Apply the schema's hardening to packed filters: balance (with a keyed permutation) and/or XOR-fold.

    Balancing appends the complement, so every encoding has exactly `bits` ones, then hides which half each
    bit came from with a keyed permutation (bytes permuted, then bits within each byte permuted per position).
    """
    result = filters
    if "balance" in schema.hardening:
        balanced = np.concatenate([result, np.invert(result)], axis=1)
        byte_order, tables = _keyed_layout(secret, schema, balanced.shape[1])
        gathered = np.take(balanced, byte_order, axis=1)
        result = tables[np.arange(balanced.shape[1])[None, :], gathered]
    if "xor_fold" in schema.hardening:
        half = result.shape[1] // 2
        result = np.bitwise_xor(result[:, :half], result[:, half:])
    return np.ascontiguousarray(result)


def encode(prepared: pa.Table, schema: LinkageSchema, secret: bytes) -> Bits:
    """The hardened encodings of prepared records, one packed row of schema.encoded_bits bits per record."""
    check_secret(secret)
    missing = [f.name for f in schema.fields if f.name not in prepared.column_names]
    if missing:
        raise InvalidDataError(
            "missing columns", [Problem("input", f"the schema encodes {m}, which is absent") for m in missing]
        )
    n = prepared.num_rows
    combined = np.zeros((n, schema.bits // 8), dtype=np.uint8)
    for spec in schema.fields:
        column = prepared.column(spec.name).combine_chunks()
        distinct = pc.unique(column)
        values: list[str | None] = distinct.to_pylist()
        filters = _field_filters(spec, values, secret, schema.bits)
        index = pc.index_in(column, value_set=distinct, skip_nulls=False).to_numpy(zero_copy_only=False)
        combined |= filters[index]
    return harden(combined, schema, secret)
