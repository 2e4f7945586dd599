"""Pseudonyms are keyed HMAC-SHA256: deterministic for a key, different across keys, equal to Python's hmac.

On DuckDB they are computed by the compiled kernel, elsewhere (and on DuckDB without it) in SQL;
both give the same 64 hex digits, so packages made either way under one key still join.
"""

from __future__ import annotations

import hashlib
import hmac

import pytest
import sqlglot
from hypothesis import given, settings
from hypothesis import strategies as st

from sharewise.pipeline.backend import PseudonymPads
from sharewise.pipeline.duckdb_backend import DuckDBBackend
from sharewise.pipeline.sql import DATE_SHIFT_LABEL, KEY_TABLE, hmac_sha256, hmac_sha256_sql, literal, render

COMPILED = DuckDBBackend(threads=1)
IN_SQL = DuckDBBackend(threads=1, compiled_hmac=False)
# Up to 80 characters of up to 4 bytes each: many values are over 55 bytes (two or more blocks).
VALUES = st.text(alphabet=st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)), max_size=80)
KEYS = st.binary(min_size=32, max_size=32)


def token(key: bytes, value: str | None, engine: DuckDBBackend = COMPILED, label: bytes = b"") -> str | None:
    engine.register_key(PseudonymPads.from_key(key))
    sql = f"SELECT {hmac_sha256('NULL' if value is None else literal(value), 'sw_k', label)} FROM {KEY_TABLE} AS sw_k"
    found = engine.query(sql)[0][0]
    return None if found is None else str(found)


def reference(key: bytes, value: str, label: bytes = b"") -> str:
    return hmac.new(key, label + value.encode("utf-8"), hashlib.sha256).hexdigest()


def test_duckdb_uses_the_compiled_kernel_unless_told_not_to() -> None:
    token(bytes(32), "x")
    token(bytes(32), "x", IN_SQL)
    assert COMPILED.hmac_engine in ("openssl", "simd") and IN_SQL.hmac_engine == "sql"


@settings(max_examples=150, deadline=None)
@given(key=KEYS, value=VALUES)
def test_the_engine_computes_the_same_hmac_as_python(key: bytes, value: str) -> None:
    assert token(key, value) == token(key, value, IN_SQL) == reference(key, value)


@settings(max_examples=60, deadline=None)
@given(key=KEYS, value=VALUES)
def test_the_date_shift_digest_is_the_same_compiled_and_in_sql(key: bytes, value: str) -> None:
    compiled = token(key, value, COMPILED, DATE_SHIFT_LABEL)
    assert compiled == token(key, value, IN_SQL, DATE_SHIFT_LABEL) == reference(key, value, DATE_SHIFT_LABEL)


@settings(max_examples=100, deadline=None)
@given(key=KEYS, other=KEYS, value=VALUES)
def test_pseudonyms_are_deterministic_per_key_and_differ_across_keys(key: bytes, other: bytes, value: str) -> None:
    first = token(key, value)
    assert token(key, value) == first
    if other != key:
        assert token(other, value) != first


@pytest.mark.parametrize("engine", [COMPILED, IN_SQL], ids=["compiled", "sql"])
def test_null_stays_null_and_empty_text_has_a_token(engine: DuckDBBackend) -> None:
    key = bytes(range(32))
    assert token(key, None, engine) is None
    assert token(key, "", engine) == reference(key, "")


def test_keys_longer_than_a_block_are_hashed_first_as_rfc_2104_says() -> None:
    key = bytes(range(100))
    assert token(key, "x") == token(key, "x", IN_SQL) == reference(key, "x")


def test_a_new_key_replaces_the_compiled_function_too() -> None:
    first, second = bytes(range(32)), bytes(range(1, 33))
    assert token(first, "same") == reference(first, "same")
    assert token(second, "same") == reference(second, "same")


def test_a_table_of_many_rows_on_two_threads_matches_the_sql_path() -> None:
    """Large enough for DuckDB to call the function from both threads at once."""
    key = b"k" * 32
    sql = (
        f"SELECT sum(hash({hmac_sha256('v', 'sw_k')})), count({hmac_sha256('v', 'sw_k')}) FROM "
        f"(SELECT CASE WHEN i % 97 = 0 THEN NULL ELSE repeat('é', CAST(i % 70 AS INTEGER)) || CAST(i AS VARCHAR) END "
        f"AS v FROM range(300000) AS t(i)) CROSS JOIN {KEY_TABLE} AS sw_k"
    )
    results = []
    for compiled in (True, False):
        engine = DuckDBBackend(threads=2, compiled_hmac=compiled)
        engine.register_key(PseudonymPads.from_key(key))
        results.append(engine.query(sql)[0])
        engine.close()
    assert results[0] == results[1] and results[0][1] == 300000 - 300000 // 97 - 1


def test_the_key_is_in_no_sql_text_the_engine_holds() -> None:
    key = bytes(range(7, 39))
    pads = PseudonymPads.from_key(key)
    COMPILED.register_key(pads)
    definitions = " ".join(
        str(r[0])
        for r in COMPILED.query("SELECT macro_definition FROM duckdb_functions() WHERE macro_definition IS NOT NULL")
    )
    assert "sw_hmac_sha256_compiled" in definitions
    for secret in (key, pads.ipad, pads.opad):
        assert secret.hex() not in definitions.lower()


def test_spark_gets_the_same_sql_expression_as_before() -> None:
    """Other engines run HMAC written out in SQL, exactly the statement sharewise generated before the kernel."""
    message = 'ENCODE(CAST("ssn" AS VARCHAR))'
    new = f"SELECT {hmac_sha256(chr(34) + 'ssn' + chr(34))} AS t FROM sw_source CROSS JOIN {KEY_TABLE} AS sw_k"
    old = f"SELECT {hmac_sha256_sql('sw_k.ipad', 'sw_k.opad', message)} AS t FROM sw_source CROSS JOIN {KEY_TABLE} AS sw_k"
    assert render(new, "spark") == sqlglot.transpile(old, read="duckdb", write="spark")[0]
    assert "sw_hmac_sha256" not in render(new, "spark") and "SHA2(" in render(new, "spark")
    plain = 'SELECT YEAR(CAST("d" AS DATE)) AS y FROM sw_source'
    assert render(plain, "spark") == sqlglot.transpile(plain, read="duckdb", write="spark")[0]
    assert render(new, "duckdb") == new
