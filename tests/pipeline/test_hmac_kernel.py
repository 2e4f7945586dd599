"""The compiled HMAC-SHA256 kernels: equal to Python's hmac on both engines, nulls kept, the faster chosen, failures fall back."""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import shutil
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numba
import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sharewise.pipeline import hmac_kernel
from sharewise.pipeline.backend import PseudonymPads
from sharewise.pipeline.hmac_kernel import (
    Engine,
    HexTokens,
    compiled_hmac,
    fastest,
    openssl_engine,
    self_test,
    simd_engine,
)

KEYS = st.binary(min_size=0, max_size=100)  # shorter and longer than a block: longer ones are hashed first
MESSAGES = st.lists(st.one_of(st.none(), st.binary(max_size=200)), max_size=20)
ENGINES: dict[str, Engine] = {}


def engine(name: str) -> Engine:
    """Each engine once per test run (compiling is the slow part).

    "simd" runs on the compression compiled here (as when OpenSSL is missing or wrong), "simd+openssl"
    on OpenSSL's for its midstates and long values (as sharewise builds it when both pass).
    """
    if name not in ENGINES:
        if name == "openssl":
            built = openssl_engine()
        elif name == "simd+openssl":
            built = simd_engine(engine("openssl")._transform)
        else:
            built = simd_engine()
        # The project's machines (Linux, OpenSSL 3) have it: its absence is a failure to see, not to skip;
        # sharewise itself would fall back to the simd engine alone (tested below).
        assert built is not None, f"no {name} SHA-256 compression on this machine (libcrypto without SHA256_Transform?)"
        ENGINES[name] = built
    return ENGINES[name]


def expected(key: bytes, messages: list[bytes | None]) -> list[str | None]:
    return [None if m is None else hmac.new(key, m, hashlib.sha256).hexdigest() for m in messages]


def tokens(name: str, key: bytes, values: pa.Array | pa.ChunkedArray) -> list[Any]:
    pads = PseudonymPads.from_key(key)
    return HexTokens(engine(name), pads.ipad, pads.opad)(values).to_pylist()


@pytest.mark.parametrize("name", ["openssl", "simd", "simd+openssl"])
@settings(max_examples=60, deadline=None)
@given(key=KEYS, messages=MESSAGES)
def test_each_compression_gives_the_hmac_python_computes(name: str, key: bytes, messages: list[bytes | None]) -> None:
    assert tokens(name, key, pa.array(messages, pa.binary())) == expected(key, messages)


@pytest.mark.parametrize("name", ["openssl", "simd", "simd+openssl"])
@settings(max_examples=40, deadline=None)
@given(key=KEYS, messages=MESSAGES)
def test_bytes_tokens_are_the_digests_python_computes(name: str, key: bytes, messages: list[bytes | None]) -> None:
    pads = PseudonymPads.from_key(key)
    result = HexTokens(engine(name), pads.ipad, pads.opad, raw=True)(pa.array(messages, pa.binary()))
    assert result.type == pa.binary()
    assert result.to_pylist() == [None if m is None else hmac.new(key, m, hashlib.sha256).digest() for m in messages]


@pytest.mark.parametrize("name", ["openssl", "simd", "simd+openssl"])
def test_every_padding_boundary_and_non_ascii_text(name: str) -> None:
    key = bytes(range(32))
    texts = ["", "x", "é" * 27, "a" * 55, "a" * 56, "a" * 63, "a" * 64, "a" * 119, "a" * 120, "Zoë 李 \U0001f600" * 9]
    assert tokens(name, key, pa.array(texts)) == expected(key, [t.encode("utf-8") for t in texts])


def test_the_process_engine_is_one_that_checks_out() -> None:
    built = compiled_hmac()
    assert built is not None and self_test(built)
    assert built.name in ("openssl", "simd")


@pytest.mark.parametrize("name", ["simd", "simd+openssl"])
def test_full_lane_groups_remainders_nulls_and_long_values_mixed(name: str) -> None:
    """More values than lanes, so whole groups, a last partial group, and long values inside groups."""
    rng = np.random.default_rng(7)
    messages: list[bytes | None] = []
    for _ in range(200):
        length = int(rng.choice([0, 5, 11, 55, 56, 63, 64, 65, 130]))
        messages.append(None if rng.random() < 0.1 else rng.integers(0, 256, length, dtype=np.uint8).tobytes())
    key = b"lanes"
    assert tokens(name, key, pa.array(messages, pa.binary())) == expected(key, messages)
    assert tokens(name, key, pa.array(messages, pa.binary()).slice(37, 101)) == expected(key, messages[37:138])


class _Slowed(Engine):
    """An engine that takes 20 ms longer for each batch."""

    def hex_rows(self, *args: Any) -> Any:
        time.sleep(0.02)
        return super().hex_rows(*args)


def test_the_faster_engine_is_chosen_whatever_the_order() -> None:
    quick = engine("simd")
    slow = _Slowed("slow", quick._transform, quick._rows)
    assert fastest([slow, quick]) is quick
    assert fastest([quick, slow]) is quick
    assert fastest([slow]) is slow  # one candidate: no race


def test_slices_chunks_and_every_text_layout_give_the_same_tokens() -> None:
    key = b"agreement key"
    values = ["alpha", None, "beta", "é" * 40, None, "", "gamma"]
    want = expected(key, [None if v is None else v.encode() for v in values])
    plain = pa.array(values, pa.string())
    assert tokens("openssl", key, plain.slice(2)) == want[2:]  # a slice: offsets and validity start mid-buffer
    assert tokens("openssl", key, plain.slice(1, 3)) == want[1:4]
    assert tokens("openssl", key, pa.chunked_array([plain.slice(0, 3), plain.slice(3)])) == want
    assert tokens("openssl", key, pa.array(values, pa.large_string())) == want
    assert tokens("openssl", key, pa.array(values, pa.string_view())) == want
    assert tokens("openssl", key, pa.array([], pa.binary())) == []


def test_a_null_gets_no_characters_in_the_output_buffer() -> None:
    result = HexTokens(engine("openssl"), b"\x36" * 64, b"\x5c" * 64)(pa.array([None, "a", None, None]))
    assert result.null_count == 3 and len(result.buffers()[2]) >= 64
    assert np.frombuffer(result.buffers()[1], np.int32).tolist() == [0, 0, 64, 64, 64]


def test_values_that_are_not_text_or_bytes_are_refused_without_showing_them() -> None:
    with pytest.raises(TypeError) as refused:
        HexTokens(engine("openssl"), b"\x36" * 64, b"\x5c" * 64)(pa.array([123456789]))
    assert "123456789" not in str(refused.value)


def test_pads_of_the_wrong_length_are_refused() -> None:
    with pytest.raises(ValueError, match="64 bytes"):
        HexTokens(engine("openssl"), b"\x36" * 32, b"\x5c" * 64)


def test_the_function_shows_its_engine_but_never_the_key_state() -> None:
    pads = PseudonymPads.from_key(bytes(range(32)))
    function = HexTokens(engine("openssl"), pads.ipad, pads.opad)
    inner, _ = engine("openssl").midstates(pads.ipad, pads.opad)
    assert repr(function) == "HexTokens(engine='openssl', raw=False)"
    assert format(int(inner[0]), "x") not in repr(function) and str(int(inner[0])) not in repr(function)


def test_a_compression_that_disagrees_with_hashlib_fails_the_self_test() -> None:
    right = engine("simd")
    assert self_test(right)
    noop = numba.cfunc(numba.types.void(numba.types.voidptr, numba.types.voidptr))(lambda state, block: None)
    broken = Engine("broken", noop.ctypes, right._rows)  # a real function pointer that leaves the state unchanged
    assert not self_test(broken)
    pads = PseudonymPads.from_key(b"k")
    assert HexTokens(broken, pads.ipad, pads.opad)(pa.array(["a"])).to_pylist() != expected(b"k", [b"a"])


def test_a_wrong_openssl_is_replaced_by_the_portable_compression(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hmac_kernel, "openssl_transform", lambda: hmac_kernel._TRANSFORM_TYPE(0xDEAD))
    monkeypatch.setattr(hmac_kernel, "self_test", lambda e: e.name != "openssl")  # never calls address 0xDEAD
    assert hmac_kernel._build_engine().name == "simd"
    monkeypatch.setattr(hmac_kernel, "openssl_transform", lambda: None)
    assert hmac_kernel._build_engine().name == "simd"


@pytest.fixture
def fresh_process_engine(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(hmac_kernel, "_process", hmac_kernel._ProcessEngine())
    yield


def test_when_nothing_compiles_there_is_no_engine_and_the_reason_names_no_data(
    fresh_process_engine: None, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def fail() -> Engine:
        raise RuntimeError("secret-value-in-message")

    monkeypatch.setattr(hmac_kernel, "_build_engine", fail)
    with caplog.at_level(logging.WARNING, logger="sharewise.pipeline.hmac_kernel"):
        assert compiled_hmac() is None
        assert compiled_hmac() is None  # decided once per process
    assert "RuntimeError" in caplog.text and "secret-value" not in caplog.text
    assert len(caplog.records) == 1


def test_without_a_writable_cache_directory_it_compiles_in_memory_and_still_works(tmp_path: Path) -> None:
    """A package directory and user cache nobody can write (as root, a file where a directory must be)."""
    module = tmp_path / "pkg" / "kernel_copy.py"
    module.parent.mkdir()
    shutil.copy(Path(hmac_kernel.__file__), module)
    (module.parent / "__pycache__").write_text("not a directory")
    blocked = tmp_path / "blocked"
    blocked.write_text("a file, so nothing can be created under it")
    script = textwrap.dedent(
        """
        import hashlib, hmac, sys
        import pyarrow as pa
        import kernel_copy as k
        engine = k.compiled_hmac()
        key = bytes(range(32))
        block = key.ljust(64, b"\\0")
        tokens = k.HexTokens(engine, bytes(b ^ 0x36 for b in block), bytes(b ^ 0x5C for b in block))
        got = tokens(pa.array(["abc", "x" * 100])).to_pylist()
        assert got == [hmac.new(key, m, hashlib.sha256).hexdigest() for m in (b"abc", b"x" * 100)], got
        print(engine.name, type(engine._rows._cache).__name__)
        """
    )
    env = {
        **os.environ,
        "NUMBA_CACHE_DIR": str(blocked / "numba"),
        "HOME": str(blocked),
        "XDG_CACHE_HOME": str(blocked),
    }
    env["PYTHONPATH"] = str(module.parent)
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, check=False, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    name, cache = done.stdout.split()
    assert name in ("openssl", "simd") and cache == "NullCache"
