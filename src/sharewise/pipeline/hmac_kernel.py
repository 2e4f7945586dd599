"""HMAC-SHA256 pseudonyms in compiled code, for engines that can call a vectorized function (DuckDB).

Neither engine has HMAC, and computing it in SQL as SHA256(opad || UNHEX(SHA256(ipad || m)))
costs four SHA-256 compressions per value in the engine's portable SHA-256, plus a hex round
trip. Here the key's inner and outer SHA-256 states after its 64-byte pads (the "midstates")
are computed once, so a value under 56 bytes costs two compressions, and the 64 lowercase hex
digits are written straight into an Arrow buffer. The tokens are byte for byte those of the SQL
expression and of Python's `hmac` (RFC 2104, hex of HMAC-SHA256 of the message bytes).

Two engines compute the same tokens; both are checked at start-up against `hashlib` on test
vectors, and of those that pass, the faster on this machine is used (a race of a few
milliseconds, `fastest`):

- "openssl": OpenSSL's `SHA256_Transform`, one value at a time (it uses the CPU's SHA
  instructions where there are any), found in the libcrypto that Python itself loaded or else
  the system's.
- "simd": values hashed 16 side by side, the 64 rounds written as LLVM IR on vectors of 16
  32-bit lanes (a numba intrinsic), which LLVM compiles for the CPU at hand (AVX-512, AVX2,
  SSE). On a CPU without SHA instructions it was about four times faster than OpenSSL
  (116 against 499 ns per token on the project's machine of 2026-11-26); with them it may be slower.

If OpenSSL's symbol is missing or wrong, "simd" uses a compression compiled by numba for its
midstates and long values; if numba cannot compile at all, `compiled_hmac()` says so and the
engine keeps the SQL expression. The loops are compiled with `nogil`, so engine threads hash
concurrently.

Compiled code is cached on disk (`cache=True`: next to this file, else in the user's cache
directory, numba's own fallback); where neither is writable, it is compiled in each process
instead (a few seconds once per process), never an error. From a warm cache, start-up is about
1 s (loading the cached code) after numba's own import.

This module holds no key: a `HexTokens` function holds the two midstates of one key, which are
as secret as the key (they let anyone compute its tokens), and it is dropped with the engine's
connection. Values and keys never appear in its errors.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import hashlib
import hmac
import importlib
import logging
import sys
import threading
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
from numpy.typing import NDArray

try:
    import numba as _numba
    from numba.extending import intrinsic

    carray: Any = getattr(_numba, "carray")  # noqa: B009 (not in numba's declared exports): a pointer as an array
    _intrinsic: Any = intrinsic
except ImportError:  # without numba the engine keeps the SQL expression (compiled_hmac() is None)
    carray = None
    _intrinsic = None

log = logging.getLogger(__name__)

DIGEST_HEX = 64  # characters of a token: 32 bytes of HMAC-SHA256 as lowercase hex
DIGEST_BYTES = 32  # bytes of a token written as bytes (token_format: bytes)

_IV = np.array(
    [0x6A09E667, 0xBB67AE85, 0x3C6EF372, 0xA54FF53A, 0x510E527F, 0x9B05688C, 0x1F83D9AB, 0x5BE0CD19],
    dtype=np.uint32,
)
_K = np.array(
    [
        0x428A2F98,
        0x71374491,
        0xB5C0FBCF,
        0xE9B5DBA5,
        0x3956C25B,
        0x59F111F1,
        0x923F82A4,
        0xAB1C5ED5,
        0xD807AA98,
        0x12835B01,
        0x243185BE,
        0x550C7DC3,
        0x72BE5D74,
        0x80DEB1FE,
        0x9BDC06A7,
        0xC19BF174,
        0xE49B69C1,
        0xEFBE4786,
        0x0FC19DC6,
        0x240CA1CC,
        0x2DE92C6F,
        0x4A7484AA,
        0x5CB0A9DC,
        0x76F988DA,
        0x983E5152,
        0xA831C66D,
        0xB00327C8,
        0xBF597FC7,
        0xC6E00BF3,
        0xD5A79147,
        0x06CA6351,
        0x14292967,
        0x27B70A85,
        0x2E1B2138,
        0x4D2C6DFC,
        0x53380D13,
        0x650A7354,
        0x766A0ABB,
        0x81C2C92E,
        0x92722C85,
        0xA2BFE8A1,
        0xA81A664B,
        0xC24B8B70,
        0xC76C51A3,
        0xD192E819,
        0xD6990624,
        0xF40E3585,
        0x106AA070,
        0x19A4C116,
        0x1E376C08,
        0x2748774C,
        0x34B0BCB5,
        0x391C0CB3,
        0x4ED8AA4A,
        0x5B9CCA4F,
        0x682E6FF3,
        0x748F82EE,
        0x78A5636F,
        0x84C87814,
        0x8CC70208,
        0x90BEFFFA,
        0xA4506CEB,
        0xBEF9A3F7,
        0xC67178F2,
    ],
    dtype=np.int64,
)
# The two hex digits of each byte value as one 16-bit store (in this machine's byte order).
_HEX_PAIRS = np.frombuffer(b"".join(f"{b:02x}".encode() for b in range(256)), dtype=np.uint16).copy()
_CONTEXT_WORDS = 28  # uint32 words of OpenSSL's SHA256_CTX (h[8], Nl, Nh, data[16], num, md_len): the state is h


def _compress_portable(state_ptr: Any, block_ptr: Any) -> None:
    """One SHA-256 compression of the 64-byte block into the 8-word state (native-endian words).

    Numba's integers widen past 32 bits, so the arithmetic is on int64 with explicit masks.
    It has the signature of OpenSSL's SHA256_Transform, so the same loop can call either.
    """
    state = carray(state_ptr, (8,), np.uint32)
    block = carray(block_ptr, (64,), np.uint8)
    w = np.empty(64, np.int64)
    for t in range(16):
        w[t] = (
            (np.int64(block[4 * t]) << 24)
            | (np.int64(block[4 * t + 1]) << 16)
            | (np.int64(block[4 * t + 2]) << 8)
            | np.int64(block[4 * t + 3])
        )
    for t in range(16, 64):
        x = w[t - 15]
        y = w[t - 2]
        s0 = (((x >> 7) | (x << 25)) ^ ((x >> 18) | (x << 14)) ^ (x >> 3)) & 0xFFFFFFFF
        s1 = (((y >> 17) | (y << 15)) ^ ((y >> 19) | (y << 13)) ^ (y >> 10)) & 0xFFFFFFFF
        w[t] = (w[t - 16] + s0 + w[t - 7] + s1) & 0xFFFFFFFF
    a = np.int64(state[0])
    b = np.int64(state[1])
    c = np.int64(state[2])
    d = np.int64(state[3])
    e = np.int64(state[4])
    f = np.int64(state[5])
    g = np.int64(state[6])
    h = np.int64(state[7])
    for t in range(64):
        big_s1 = (((e >> 6) | (e << 26)) ^ ((e >> 11) | (e << 21)) ^ ((e >> 25) | (e << 7))) & 0xFFFFFFFF
        choose = (e & f) ^ ((e ^ 0xFFFFFFFF) & g)
        t1 = h + big_s1 + choose + _K[t] + w[t]
        big_s0 = (((a >> 2) | (a << 30)) ^ ((a >> 13) | (a << 19)) ^ ((a >> 22) | (a << 10))) & 0xFFFFFFFF
        majority = (a & b) ^ (a & c) ^ (b & c)
        h = g
        g = f
        f = e
        e = (d + t1) & 0xFFFFFFFF
        d = c
        c = b
        b = a
        a = (t1 + big_s0 + majority) & 0xFFFFFFFF
    state[0] = (np.int64(state[0]) + a) & 0xFFFFFFFF
    state[1] = (np.int64(state[1]) + b) & 0xFFFFFFFF
    state[2] = (np.int64(state[2]) + c) & 0xFFFFFFFF
    state[3] = (np.int64(state[3]) + d) & 0xFFFFFFFF
    state[4] = (np.int64(state[4]) + e) & 0xFFFFFFFF
    state[5] = (np.int64(state[5]) + f) & 0xFFFFFFFF
    state[6] = (np.int64(state[6]) + g) & 0xFFFFFFFF
    state[7] = (np.int64(state[7]) + h) & 0xFFFFFFFF


def _write_hex_py(hex_out: NDArray[np.uint16], at: int, digest: NDArray[np.uint32]) -> None:
    """The 8 digest words as 64 lowercase hex digits, two per 16-bit store, from hex_out[at] on."""
    for j in range(8):
        word = np.int64(digest[j])
        hex_out[at + 4 * j] = _HEX_PAIRS[(word >> 24) & 0xFF]
        hex_out[at + 4 * j + 1] = _HEX_PAIRS[(word >> 16) & 0xFF]
        hex_out[at + 4 * j + 2] = _HEX_PAIRS[(word >> 8) & 0xFF]
        hex_out[at + 4 * j + 3] = _HEX_PAIRS[word & 0xFF]


def _write_bytes_py(out: NDArray[np.uint16], at: int, digest: NDArray[np.uint32]) -> None:
    """The 8 digest words as their 32 big-endian bytes, two per 16-bit store, from out[at] on."""
    for j in range(8):
        word = np.int64(digest[j])
        out[at + 2 * j] = ((word >> 24) & 0xFF) | (((word >> 16) & 0xFF) << 8)
        out[at + 2 * j + 1] = ((word >> 8) & 0xFF) | ((word & 0xFF) << 8)


def _write_token_py(out: NDArray[np.uint16], at: int, digest: NDArray[np.uint32], raw: bool) -> None:
    """The digest as 64 hex digits, or as its 32 bytes when raw, from out[at] on (16-bit units)."""
    if raw:
        _write_bytes(out, at, digest)
    else:
        _write_hex(out, at, digest)


def _token_offsets_py(
    rows: int,
    validity: NDArray[np.uint8],
    validity_offset: int,
    out_offsets: NDArray[np.int32] | NDArray[np.int64],
    width: int,
) -> None:
    """Where each token goes: width bytes for each value that is not null, none for a null (validity bit 0).

    So a value is null exactly when out_offsets[i + 1] == out_offsets[i].
    """
    check_nulls = validity.shape[0] > 0
    written = 0
    out_offsets[0] = 0
    for i in range(rows):
        if check_nulls:
            bit = validity_offset + i
            if (validity[bit >> 3] >> (bit & 7)) & 1 == 0:
                out_offsets[i + 1] = written
                continue
        written += width
        out_offsets[i + 1] = written


def _last_block_py(
    transform: Any,
    context_ptr: int,
    data: NDArray[np.uint8],
    data_ptr: int,
    start: int,
    length: int,
    block: NDArray[np.uint8],
) -> None:
    """Absorb all of a value's inner-hash blocks but the last through transform; write the last into block.

    The state at context_ptr holds the ipad midstate on entry, so the length in bits counts the
    64 pad bytes. The last block is the value's tail, 0x80, zeros and that length; when the 0x80
    fits but the length does not (a tail of 56 to 63 bytes), the tail's block is absorbed too and
    the last block is zeros and the length. block must be all zeros on entry.
    """
    done = 0
    while length - done >= 64:
        transform(context_ptr, data_ptr + start + done)
        done += 64
    tail = length - done
    for j in range(tail):
        block[j] = data[start + done + j]
    block[tail] = 0x80
    if tail >= 56:
        transform(context_ptr, block.ctypes.data)
        block[:] = 0
    bits = (np.int64(length) + 64) * 8
    for j in range(8):
        block[63 - j] = (bits >> (8 * j)) & 0xFF


def _hmac_hex_rows(
    transform: Any,
    inner: NDArray[np.uint32],
    outer: NDArray[np.uint32],
    offsets: NDArray[np.int64],
    data: NDArray[np.uint8],
    validity: NDArray[np.uint8],
    validity_offset: int,
    out: NDArray[np.uint8],
    out_offsets: NDArray[np.int32] | NDArray[np.int64],
    raw: bool,
) -> None:
    """HMAC-SHA256 of each value data[offsets[i]:offsets[i+1]] into out as hex (or bytes when raw); a null gets nothing.

    The inner hash starts from the ipad midstate (see _last_block); the outer hash is one block:
    the 32-byte inner digest, 0x80, zeros and the length 96 * 8, of which only the digest changes.
    """
    rows = offsets.shape[0] - 1
    context = np.zeros(_CONTEXT_WORDS, np.uint32)
    block = np.zeros(64, np.uint8)
    final = np.zeros(16, np.uint32)  # the outer block as big-endian words, built in native order below
    final_bytes = final.view(np.uint8)
    final_bytes[32] = 0x80
    final_bytes[62] = 0x03  # 96 bytes = 768 bits = 0x0300
    hex_out = out.view(np.uint16)
    context_ptr = context.ctypes.data
    block_ptr = block.ctypes.data
    final_ptr = final.ctypes.data
    data_ptr = data.ctypes.data
    _token_offsets(rows, validity, validity_offset, out_offsets, DIGEST_BYTES if raw else DIGEST_HEX)
    for i in range(rows):
        if out_offsets[i + 1] == out_offsets[i]:
            continue  # null
        start = offsets[i]
        length = offsets[i + 1] - start
        context[:8] = inner
        _last_block(transform, context_ptr, data, data_ptr, start, length, block)
        transform(context_ptr, block_ptr)
        block[:] = 0
        # The inner digest's big-endian bytes, as words stored little-endian (on a big-endian
        # machine the self-test fails and HMAC stays in SQL).
        for j in range(8):
            word = np.int64(context[j])
            final[j] = ((word & 0xFF) << 24) | ((word & 0xFF00) << 8) | ((word >> 8) & 0xFF00) | (word >> 24)
        context[:8] = outer
        transform(context_ptr, final_ptr)
        _write_token(hex_out, out_offsets[i] >> 1, context[:8], raw)


def _jit(function: Callable[..., Any], **options: Any) -> Any:
    """numba.njit with an on-disk cache where there is a writable place for one, else without."""
    import numba

    try:
        return numba.njit(cache=True, nogil=True, **options)(function)
    except RuntimeError:  # numba: "cannot cache function ...: no locator available"
        return numba.njit(cache=False, nogil=True, **options)(function)


_LANES = 16  # values hashed side by side, one per 32-bit lane of LLVM vectors (zmm, or two ymm, or four xmm)


def _sha256_lanes_typing(typingctx: Any, state: Any, block: Any) -> Any:
    """One SHA-256 compression in each of _LANES lanes: state[:, lane] absorbs the block words block[:, lane].

    state is uint32[8, _LANES] and block uint32[16, _LANES] (C order, so row j holds word j of
    every lane: one vector). The 64 rounds are written out as LLVM IR on vectors of _LANES
    32-bit integers, so the working variables and the message schedule stay in registers and
    every rotation is one funnel shift (one instruction on AVX-512). LLVM splits the vectors for
    the CPU it compiles for; no lane depends on another. numba compiles loops over arrays into
    much slower code here: its integers are 64-bit and every round goes through memory.
    """
    from llvmlite import ir
    from numba import types
    from numba.core import cgutils

    matrix = types.Array(types.uint32, 2, "C")
    if state != matrix or block != matrix:
        return None

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        word = ir.IntType(32)
        vector = ir.VectorType(word, _LANES)
        funnel = cgutils.get_or_insert_function(  # type: ignore[no-untyped-call]
            builder.module, ir.FunctionType(vector, [vector, vector, vector]), f"llvm.fshr.v{_LANES}i32"
        )
        state_at = builder.bitcast(
            context.make_array(signature.args[0])(context, builder, args[0]).data, vector.as_pointer()
        )
        block_at = builder.bitcast(
            context.make_array(signature.args[1])(context, builder, args[1]).data, vector.as_pointer()
        )

        def splat(value: int) -> Any:
            return ir.Constant(vector, [value] * _LANES)

        def rotr(x: Any, n: int) -> Any:
            return builder.call(funnel, [x, x, splat(n)])

        def xor3(x: Any, y: Any, z: Any) -> Any:
            return builder.xor(builder.xor(x, y), z)

        def row(at: Any, index: int) -> Any:
            return builder.gep(at, [ir.Constant(word, index)])

        w = [builder.load(row(block_at, t), align=4) for t in range(16)]
        for t in range(16, 64):
            x, y = w[t - 15], w[t - 2]
            s0 = xor3(rotr(x, 7), rotr(x, 18), builder.lshr(x, splat(3)))
            s1 = xor3(rotr(y, 17), rotr(y, 19), builder.lshr(y, splat(10)))
            w.append(builder.add(builder.add(w[t - 16], s0), builder.add(w[t - 7], s1)))
        initial = [builder.load(row(state_at, j), align=4) for j in range(8)]
        a, b, c, d, e, f, g, h = initial
        for t in range(64):
            big_s1 = xor3(rotr(e, 6), rotr(e, 11), rotr(e, 25))
            choose = builder.xor(builder.and_(e, f), builder.and_(builder.not_(e), g))
            t1 = builder.add(builder.add(builder.add(h, big_s1), builder.add(choose, splat(int(_K[t])))), w[t])
            big_s0 = xor3(rotr(a, 2), rotr(a, 13), rotr(a, 22))
            majority = xor3(builder.and_(a, b), builder.and_(a, c), builder.and_(b, c))
            h, g, f, e, d, c, b = g, f, e, builder.add(d, t1), c, b, a
            a = builder.add(t1, builder.add(big_s0, majority))
        for j, value in enumerate((a, b, c, d, e, f, g, h)):
            builder.store(builder.add(initial[j], value), row(state_at, j), align=4)
        return context.get_dummy_value()

    return types.void(state, block), codegen


_sha256_lanes: Any = _intrinsic(_sha256_lanes_typing) if _intrinsic is not None else None


def _finish_lanes_py(
    outer: NDArray[np.uint32],
    state: NDArray[np.uint32],
    block: NDArray[np.uint32],
    n: int,
    targets: NDArray[np.int64],
    hex_out: NDArray[np.uint16],
    raw: bool,
) -> None:
    """The lanes' last inner blocks are loaded: finish the inner hashes, hash each digest under the outer state, write tokens.

    Lanes from n on hold stale values; they are hashed too (the vectors are whole) and ignored.
    """
    _sha256_lanes(state, block)
    for j in range(8):
        for lane in range(_LANES):
            block[j, lane] = state[j, lane]
            state[j, lane] = outer[j]
    for lane in range(_LANES):
        block[8, lane] = 0x80000000  # the outer block: the 32-byte digest, 0x80, zeros, length 96 * 8
        for j in range(9, 15):
            block[j, lane] = 0
        block[15, lane] = 768
    _sha256_lanes(state, block)
    for lane in range(n):
        _write_token(hex_out, targets[lane] >> 1, state[:, lane], raw)


def _hmac_hex_lanes(
    transform: Any,
    inner: NDArray[np.uint32],
    outer: NDArray[np.uint32],
    offsets: NDArray[np.int64],
    data: NDArray[np.uint8],
    validity: NDArray[np.uint8],
    validity_offset: int,
    out: NDArray[np.uint8],
    out_offsets: NDArray[np.int32] | NDArray[np.int64],
    raw: bool,
) -> None:
    """The tokens of _hmac_hex_rows, with the values hashed _LANES at a time.

    Every value's blocks but the last go through transform (none for a value under 56 bytes,
    most identifiers); its last block then takes a lane with the state reached, so every lane
    has exactly one block to go. Every token's place in the output is known before hashing
    (64 characters, or 32 bytes when raw, per value that is not null).
    """
    rows = offsets.shape[0] - 1
    _token_offsets(rows, validity, validity_offset, out_offsets, DIGEST_BYTES if raw else DIGEST_HEX)
    hex_out = out.view(np.uint16)
    state = np.zeros((8, _LANES), np.uint32)
    lanes = np.zeros((16, _LANES), np.uint32)
    targets = np.empty(_LANES, np.int64)
    block = np.zeros(64, np.uint8)  # one value's last block, as bytes (zeroed after each value)
    words = block.view(np.uint32)  # the same bytes as native (little-endian) words
    context = np.zeros(_CONTEXT_WORDS, np.uint32)
    context_ptr = context.ctypes.data
    data_ptr = data.ctypes.data
    n = 0
    for i in range(rows):
        if out_offsets[i + 1] == out_offsets[i]:
            continue  # null
        start = offsets[i]
        context[:8] = inner
        _last_block(transform, context_ptr, data, data_ptr, start, offsets[i + 1] - start, block)
        for j in range(8):
            state[j, n] = context[j]
        for j in range(16):
            x = words[j]
            lanes[j, n] = (x >> 24) | ((x >> 8) & 0xFF00) | ((x << 8) & 0xFF0000) | (x << 24)
        block[:] = 0
        targets[n] = out_offsets[i]
        n += 1
        if n == _LANES:
            _finish_lanes(outer, state, lanes, n, targets, hex_out, raw)
            n = 0
    if n:
        _finish_lanes(outer, state, lanes, n, targets, hex_out, raw)


def _lane_helper(function: Callable[..., Any], **options: Any) -> Any:
    """A helper the loops call, compiled like them (numba calls only compiled functions); without numba, as is."""
    return _jit(function, **options) if carray is not None else function


_write_hex = _lane_helper(_write_hex_py)
_write_bytes = _lane_helper(_write_bytes_py)
_write_token = _lane_helper(_write_token_py, inline="always")
_last_block = _lane_helper(_last_block_py, inline="always")  # per value: a call cost the lanes about 8%
_token_offsets = _lane_helper(_token_offsets_py)
_finish_lanes = _lane_helper(_finish_lanes_py)


class Engine:
    """A compiled HMAC loop bound to one single-value SHA-256 compression (OpenSSL's or numba's).

    "openssl" runs every value through that compression; "simd" hashes values side by side in
    vector lanes and uses the compression only for the key's midstates and long values.
    """

    def __init__(self, name: str, transform: Any, rows: Any) -> None:
        self.name = name  # "openssl" or "simd"
        self._transform = transform
        self._rows = rows

    def midstates(self, ipad: bytes, opad: bytes) -> tuple[NDArray[np.uint32], NDArray[np.uint32]]:
        """The SHA-256 states after the 64-byte inner and outer pads of a key."""
        if len(ipad) != 64 or len(opad) != 64:
            raise ValueError("HMAC-SHA256 pads are 64 bytes each")
        states = []
        for pad in (ipad, opad):
            context = np.zeros(_CONTEXT_WORDS, np.uint32)
            context[:8] = _IV
            block = np.frombuffer(pad, dtype=np.uint8).copy()
            self._transform(context.ctypes.data, block.ctypes.data)
            states.append(context[:8].copy())
        return states[0], states[1]

    def hex_rows(
        self,
        inner: NDArray[np.uint32],
        outer: NDArray[np.uint32],
        offsets: NDArray[np.int64],
        data: NDArray[np.uint8],
        validity: NDArray[np.uint8],
        validity_offset: int,
        raw: bool = False,
    ) -> tuple[NDArray[np.uint8], NDArray[np.int32] | NDArray[np.int64]]:
        """Tokens of a batch as Arrow buffers (data, offsets): hex digits, or the 32 bytes when raw; the GIL is released.

        Offsets are 32-bit (an Arrow string or binary array) unless the batch has 2^31 bytes or more.
        """
        rows = offsets.shape[0] - 1
        width = DIGEST_BYTES if raw else DIGEST_HEX
        out = np.empty(rows * width, np.uint8)
        out_offsets = np.empty(rows + 1, np.int32 if rows * width < 2**31 else np.int64)
        self._rows(self._transform, inner, outer, offsets, data, validity, validity_offset, out, out_offsets, raw)
        return out, out_offsets


class HexTokens:
    """The hex HMAC-SHA256 of each value of an Arrow array under one key, as an Arrow string array.

    With raw=True, the 32 bytes of each HMAC instead, as an Arrow binary array (token_format: bytes).
    Callable from several engine threads at once: it keeps no state but the key's midstates.
    """

    def __init__(self, engine: Engine, ipad: bytes, opad: bytes, raw: bool = False) -> None:
        self.engine = engine
        self.raw = raw
        self._inner, self._outer = engine.midstates(ipad, opad)

    def __repr__(self) -> str:
        return f"HexTokens(engine={self.engine.name!r}, raw={self.raw})"  # never the midstates

    def __call__(self, values: pa.Array | pa.ChunkedArray) -> pa.Array:
        if isinstance(values, pa.ChunkedArray):
            values = values.combine_chunks() if values.num_chunks != 1 else values.chunk(0)
        values = _as_binary(values)
        rows = len(values)
        if rows == 0:
            return _binary_array([]) if self.raw else _binary_array([]).view(pa.string())
        buffers = values.buffers()
        width = np.int32 if values.type == pa.binary() else np.int64
        offsets = np.frombuffer(buffers[1], dtype=width)[values.offset : values.offset + rows + 1].astype(np.int64)
        data = np.frombuffer(buffers[2], dtype=np.uint8) if buffers[2] is not None else np.zeros(0, np.uint8)
        if values.null_count and buffers[0] is not None:
            validity = np.frombuffer(buffers[0], dtype=np.uint8)
        else:
            validity = np.zeros(0, np.uint8)
        out, out_offsets = self.engine.hex_rows(
            self._inner, self._outer, offsets, data, validity, values.offset, self.raw
        )
        null_bitmap = _validity_bitmap(values) if values.null_count else None
        small = out_offsets.dtype == np.int32
        if self.raw:
            kind = pa.binary() if small else pa.large_binary()
        else:
            kind = pa.string() if small else pa.large_string()
        return pa.Array.from_buffers(
            kind,
            rows,
            [null_bitmap, pa.py_buffer(out_offsets), pa.py_buffer(out)],
            null_count=values.null_count,
        )


def _binary_array(values: list[bytes]) -> pa.Array:
    """An Arrow binary array built from its buffers (pa.array() on a list imports pandas, if installed)."""
    offsets = np.zeros(len(values) + 1, np.int32)
    offsets[1:] = np.cumsum([len(v) for v in values], dtype=np.int64)
    return pa.Array.from_buffers(
        pa.binary(), len(values), [None, pa.py_buffer(offsets), pa.py_buffer(b"".join(values))]
    )


def _as_binary(values: pa.Array) -> pa.Array:
    """The values as an Arrow binary or large_binary array (text is its UTF-8 bytes, unchanged)."""
    kind = values.type
    if kind in (pa.binary(), pa.large_binary()):
        return values
    if kind == pa.string():
        return values.view(pa.binary())
    if kind == pa.large_string():
        return values.view(pa.large_binary())
    if pa.types.is_string_view(kind) or pa.types.is_binary_view(kind):
        return values.cast(pa.large_binary())
    raise TypeError(f"HMAC tokens are computed over text or bytes, not {kind}")


def _validity_bitmap(values: pa.Array) -> pa.Buffer | None:
    """The array's validity as a bitmap starting at bit 0 (the input may be a slice)."""
    bitmap = values.buffers()[0]
    if bitmap is None:
        return None
    if values.offset == 0:
        return bitmap
    return values.is_valid().buffers()[1]


class _ProcessEngine:
    """The one compiled engine of this process, built on first use, or why there is none."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.engine: Engine | None = None
        self.error: str | None = None


_process = _ProcessEngine()


def compiled_hmac() -> Engine | None:
    """The compiled HMAC engine of this process (the faster of those that check out here), or None.

    Built once, on first use, and checked against Python's hmac on test vectors; None (with the
    reason logged once, no data in it) if numba is unavailable or no engine is right.
    """
    with _process.lock:
        if _process.engine is None and _process.error is None:
            try:
                _process.engine = _build_engine()
            except Exception as exc:  # any failure means: use the SQL expression instead
                _process.error = type(exc).__name__
                log.warning("compiled HMAC unavailable (%s); pseudonyms are computed in SQL", _process.error)
        return _process.engine


def _cfunc(function: Callable[..., Any], signature: Any) -> Any:
    import numba

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", category=numba.NumbaWarning)
            return numba.cfunc(signature, cache=True, nogil=True)(function)
    except RuntimeError:
        return numba.cfunc(signature, cache=False, nogil=True)(function)


def _build_engine() -> Engine:
    """Of the engines that pass the self-test, the fastest on this machine."""
    candidates = checked_engines()
    if not candidates:
        raise RuntimeError("the compiled SHA-256 compressions disagree with hashlib")
    return fastest(candidates)


def checked_engines() -> list[Engine]:
    """Every engine that passes the self-test here: OpenSSL's, then simd (on OpenSSL's compression if it passed)."""
    candidates: list[Engine] = []
    openssl = openssl_engine()
    if openssl is not None:
        if self_test(openssl):
            candidates.append(openssl)
        else:
            log.warning("OpenSSL's SHA256_Transform disagrees with hashlib; using the portable compression")
    lanes = simd_engine(candidates[0]._transform if candidates else None)
    if self_test(lanes):
        candidates.append(lanes)
    return candidates


# Identifiers of the length pseudonymized in practice (a case number, an SSN): what the engines race on.
_RACE_VALUES = 8192
_RACE_ROUNDS = 3


def fastest(engines: list[Engine]) -> Engine:
    """The engine that hashes a batch of short identifiers fastest here (best of a few rounds each, interleaved).

    The CPU decides: with SHA instructions OpenSSL's one-value-at-a-time compression wins; without
    them (many cloud CPUs) the lanes' vector code is about four times faster. Tokens are the same
    either way, so the choice changes only the speed; it costs some milliseconds once per process.
    """
    if len(engines) == 1:
        return engines[0]
    values = _binary_array([b"C%010d" % i for i in range(_RACE_VALUES)])
    functions = [HexTokens(engine, b"\x36" * 64, b"\x5c" * 64) for engine in engines]
    best = [float("inf")] * len(engines)
    for _ in range(_RACE_ROUNDS):
        for index, function in enumerate(functions):
            start = time.perf_counter()
            function(values)
            best[index] = min(best[index], time.perf_counter() - start)
    chosen = engines[best.index(min(best))]
    log.debug(
        "compiled HMAC: %s (%s)",
        chosen.name,
        ", ".join(f"{e.name} {b * 1e3:.1f} ms" for e, b in zip(engines, best, strict=True)),
    )
    return chosen


def openssl_engine() -> Engine | None:
    """The HMAC loop on OpenSSL's compression, one value at a time, unchecked (see self_test), or None if there is none."""
    transform = openssl_transform()
    return Engine("openssl", transform, _jit(_hmac_hex_rows)) if transform is not None else None


def simd_engine(transform: Any | None = None) -> Engine:
    """The HMAC loop that hashes values side by side in vector lanes, unchecked (see self_test).

    transform serves the key's midstates and values of 56 bytes or more: OpenSSL's when it passed
    its self-test, else the compression compiled here.
    """
    if transform is None:
        from numba import types

        transform = _cfunc(_compress_portable, types.void(types.voidptr, types.voidptr)).ctypes
    return Engine("simd", transform, _jit(_hmac_hex_lanes))


_TRANSFORM_TYPE = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p)
_libraries: list[ctypes.CDLL] = []  # kept loaded for the life of the process


def openssl_transform() -> Any | None:
    """OpenSSL's SHA256_Transform(SHA256_CTX *, const unsigned char *) as a ctypes function, or None.

    Looked up first in the libcrypto this Python process already loaded for hashlib (same library,
    nothing new mapped), then in the system's. Only on Linux: elsewhere loading an unversioned
    libcrypto can abort the process (macOS), so the portable compression is used.
    """
    if not sys.platform.startswith("linux"):
        return None
    for path in _libcrypto_candidates():
        try:
            library = ctypes.CDLL(path)
            symbol = library.SHA256_Transform
        except (OSError, AttributeError):
            continue
        _libraries.append(library)
        address = ctypes.cast(symbol, ctypes.c_void_p).value
        if address:
            return _TRANSFORM_TYPE(address)
    return None


def _libcrypto_candidates() -> list[str]:
    with_hashlib: list[str] = []
    try:
        importlib.import_module("_hashlib")  # Python's OpenSSL binding: maps libcrypto if it links it
        with open("/proc/self/maps", encoding="utf-8") as maps:
            for line in maps:
                parts = line.split()
                if len(parts) >= 6 and Path(parts[-1]).name.startswith("libcrypto.so"):
                    with_hashlib.append(parts[-1])
    except (ImportError, OSError):
        pass
    if with_hashlib:
        return list(dict.fromkeys(with_hashlib))
    system = ctypes.util.find_library("crypto")  # runs ldconfig: only when Python loaded none
    return [system] if system else []


# Message lengths around every padding boundary (55/56 bytes: one or two final blocks; 64, 119,
# 120, 128: several blocks), text that is not ASCII, and keys shorter and longer than a block.
_TEST_MESSAGES = [b"", b"a", b"x" * 55, b"y" * 56, b"z" * 63, b"w" * 64, b"v" * 65, b"u" * 119, b"t" * 120]
_TEST_MESSAGES += [b"s" * 128, bytes(range(256)), "Zoë Ñúñez 李".encode(), b"\xffsharewise/date-shift/v1\x00P001"]
_TEST_KEYS = [bytes(range(32)), b"k", bytes(range(100))]


def self_test(engine: Engine) -> bool:
    """Whether the engine's tokens equal Python's hmac on the test vectors (also checks the context layout)."""
    try:
        values = _binary_array(_TEST_MESSAGES)
        for key in _TEST_KEYS:
            block = (hashlib.sha256(key).digest() if len(key) > 64 else key).ljust(64, b"\0")
            ipad = bytes(b ^ 0x36 for b in block)
            opad = bytes(b ^ 0x5C for b in block)
            digests = [hmac.new(key, m, hashlib.sha256).digest() for m in _TEST_MESSAGES]
            if HexTokens(engine, ipad, opad)(values).to_pylist() != [d.hex() for d in digests]:
                return False
            if HexTokens(engine, ipad, opad, raw=True)(values).to_pylist() != digests:
                return False
    except Exception:  # a failing engine is reported as failing, never raised
        return False
    return True
