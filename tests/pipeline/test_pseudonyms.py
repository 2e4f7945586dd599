"""Pseudonyms are keyed HMAC-SHA256: deterministic for a key, different across keys, equal to Python's hmac."""

from __future__ import annotations

import hashlib
import hmac

from hypothesis import given, settings
from hypothesis import strategies as st

from sharewise.pipeline.backend import PseudonymPads
from sharewise.pipeline.duckdb_backend import DuckDBBackend
from sharewise.pipeline.sql import KEY_TABLE, hmac_sha256, literal

ENGINE = DuckDBBackend(threads=1)
VALUES = st.text(alphabet=st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)), max_size=60)
KEYS = st.binary(min_size=32, max_size=32)


def token(key: bytes, value: str) -> str:
    ENGINE.register_key(PseudonymPads.from_key(key))
    sql = f"SELECT {hmac_sha256(literal(value), 'sw_k')} FROM {KEY_TABLE} AS sw_k"
    return str(ENGINE.query(sql)[0][0])


@settings(max_examples=150, deadline=None)
@given(key=KEYS, value=VALUES)
def test_the_engine_computes_the_same_hmac_as_python(key: bytes, value: str) -> None:
    assert token(key, value) == hmac.new(key, value.encode("utf-8"), hashlib.sha256).hexdigest()


@settings(max_examples=100, deadline=None)
@given(key=KEYS, other=KEYS, value=VALUES)
def test_pseudonyms_are_deterministic_per_key_and_differ_across_keys(key: bytes, other: bytes, value: str) -> None:
    first = token(key, value)
    assert token(key, value) == first
    if other != key:
        assert token(other, value) != first


def test_keys_longer_than_a_block_are_hashed_first_as_rfc_2104_says() -> None:
    key = bytes(range(100))
    assert token(key, "x") == hmac.new(key, b"x", hashlib.sha256).hexdigest()
