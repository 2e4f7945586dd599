"""Every SQL statement of share execution, written once in DuckDB's dialect and translated by sqlglot."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from functools import cache, lru_cache
from importlib import resources
from typing import Any

import sqlglot
from sqlglot import exp

from sharewise.pipeline.spec import (
    AGE_TOP_CODED,
    BIRTH_YEAR,
    DATE_SHIFT,
    KEEP,
    PSEUDONYMIZE,
    YEAR,
    ZIP3,
    DateShift,
    FieldPlan,
)

SOURCE = "sw_source"  # the view a backend registers over the input
KEY_TABLE = "sw_pseudonym_key"  # one row: the HMAC inner and outer pads of the agreement's key
_KEY_ALIAS = "sw_k"
HMAC_FUNCTION = "sw_hmac_sha256"  # (ipad BLOB, opad BLOB, message BLOB) -> VARCHAR, hex HMAC-SHA256
HMAC_BYTES_FUNCTION = "sw_hmac_sha256_bytes"  # the same HMAC as its 32 bytes (BLOB): token_format bytes
# How pseudonym tokens are written: "bytes" (the HMAC's 32 bytes, a binary column: Parquet's
# default) or "hex" (64 lowercase hex digits, text: CSV's only form, Parquet's on request).
# docs/adr/0005-binary-tokens-in-parquet.md says why Parquet defaults to bytes.
TOKEN_FORMATS = ("hex", "bytes")


def default_token_format(output: str) -> str:
    """How pseudonyms are written when the share does not say: as bytes in Parquet, as hex in CSV."""
    return "bytes" if output == "parquet" else "hex"


GROUP_COLUMN = "sw_group_size"

# Date shifts are HMACs under the agreement's pseudonym key of this label followed by the
# person's value. The label starts with 0xFF, a byte no UTF-8 text contains, so no pseudonym
# (the HMAC of a value's UTF-8 text) can ever equal a date-shift digest.
DATE_SHIFT_LABEL = b"\xffsharewise/date-shift/v1\x00"
DATE_SHIFT_DIGITS = 12  # hex digits of the digest read as an integer: 48 bits, so the modulo bias is < 2^-35
_SHIFT_DIGEST = "sw_shift_digest"
_SHIFT_REMAINDER = "sw_shift_remainder"
_SHIFT_KEY_ALIAS = "sw_dk"

SQL_TYPES = {"string": "VARCHAR", "integer": "BIGINT", "decimal": "DOUBLE", "date": "DATE", "boolean": "BOOLEAN"}

# First characters that make a spreadsheet read a cell as a formula (OWASP CSV injection).
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def quote(name: str) -> str:
    """A quoted identifier."""
    return '"' + name.replace('"', '""') + '"'


def literal(value: str) -> str:
    """A quoted string literal."""
    return "'" + value.replace("'", "''") + "'"


@lru_cache(maxsize=512)
def render(sql: str, dialect: str) -> str:
    """Translate a statement from DuckDB's dialect into the engine's, with HMAC calls written out in SQL.

    The DuckDB backend defines HMAC_FUNCTION itself (compiled, or as the same SQL in a macro);
    other engines get the SQL expression in place of each call.
    """
    if dialect == "duckdb":
        return sql
    tree = sqlglot.parse_one(sql, read="duckdb").transform(_expand_hmac_call)
    return str(tree.sql(dialect=dialect))


def _expand_hmac_call(node: exp.Expression) -> Any:
    name = str(node.name).lower() if isinstance(node, exp.Anonymous) else None
    if name in (HMAC_FUNCTION, HMAC_BYTES_FUNCTION):
        ipad, opad, message = (arg.sql(dialect="duckdb") for arg in node.expressions)
        expression = hmac_sha256_sql(ipad, opad, message, as_bytes=name == HMAC_BYTES_FUNCTION)
        return sqlglot.parse_one(expression, read="duckdb")
    return node


@cache
def restricted_zip3() -> tuple[str, ...]:
    """The shipped three-digit ZIP prefixes that Safe Harbor reports as 000."""
    text = resources.files("sharewise.data").joinpath("restricted_zip3.csv").read_text(encoding="utf-8")
    rows = [r for r in csv.reader(line for line in text.splitlines() if not line.startswith("#")) if r]
    return tuple(r[0] for r in rows[1:])


def typed(plan: FieldPlan) -> str:
    """The source column cast to the dictionary's type (text inputs are read untyped)."""
    column = quote(plan.name)
    if plan.type == "date" and plan.date_format:
        return f"CAST(STRPTIME(CAST({column} AS VARCHAR), {literal(plan.date_format)}) AS DATE)"
    return f"CAST({column} AS {SQL_TYPES[plan.type]})"


def hmac_sha256(expr: str, key_alias: str = _KEY_ALIAS, label: bytes = b"", as_bytes: bool = False) -> str:
    """HMAC-SHA256 (RFC 2104) of label followed by the UTF-8 text of expr, as 64 lowercase hex digits.

    as_bytes: the HMAC's 32 bytes instead (HMAC_BYTES_FUNCTION; other engines get UNHEX of the hex).

    A call of HMAC_FUNCTION on the key table's pads and the message bytes: the DuckDB backend
    defines it (compiled, see hmac_kernel), render() writes it out as SQL for other engines.
    The key never appears in the SQL text; its pads sit in a one-row table the backend registers.
    """
    message = f"ENCODE(CAST({expr} AS VARCHAR))"
    if label:
        message = f"UNHEX({literal(label.hex())}) || {message}"
    function = HMAC_BYTES_FUNCTION if as_bytes else HMAC_FUNCTION
    return f"{function}({key_alias}.ipad, {key_alias}.opad, {message})"


def hmac_sha256_sql(ipad: str, opad: str, message: str, as_bytes: bool = False) -> str:
    """HMAC-SHA256 as 64 hex digits in SQL (its 32 bytes when as_bytes): neither engine has HMAC, both have SHA-256.

    H((K^opad) || H((K^ipad) || m)): four SHA-256 compressions for a message under 56 bytes, as
    each pad is a whole block; the inner digest goes from hex back to bytes for the outer hash.
    """
    hexed = f"SHA256({opad} || UNHEX(SHA256({ipad} || {message})))"
    return f"UNHEX({hexed})" if as_bytes else hexed


def zip3(expr: str) -> str:
    """The first three digits of a ZIP code, or 000 for a restricted prefix; NULL if it is no ZIP code."""
    digits = f"SUBSTRING(LPAD(TRIM(CAST({expr} AS VARCHAR)), 5, '0'), 1, 3)"
    restricted = ", ".join(literal(z) for z in restricted_zip3())
    return (
        f"CASE WHEN NOT REGEXP_MATCHES(LPAD(TRIM(CAST({expr} AS VARCHAR)), 5, '0'), '^[0-9]{{5}}') THEN NULL "
        f"WHEN {digits} IN ({restricted}) THEN '000' ELSE {digits} END"
    )


def hex_to_integer(expr: str, digits: int) -> str:
    """The first `digits` lowercase hex digits of expr as a non-negative integer.

    Written digit by digit because the engines share no hex-to-integer function (DuckDB casts
    '0x..' text, Spark has CONV); each digit is widened to BIGINT first, as Spark's ANSI mode
    raises on INTEGER overflow.
    """
    terms = [
        f"(CAST(STRPOS('0123456789abcdef', SUBSTRING({expr}, {i + 1}, 1)) AS BIGINT) - 1) * {16 ** (digits - 1 - i)}"
        for i in range(digits)
    ]
    return "(" + " + ".join(terms) + ")"


def shift_days(max_days: int) -> str:
    """The person's shift from the remainder r in [0, 2 max): r < max gives r - max (-max..-1), else r - max + 1 (1..max).

    So the shift is uniform over the 2 max whole days from -max to +max, never 0; NULL stays NULL.
    """
    r = _SHIFT_REMAINDER
    return f"CAST(CASE WHEN {r} >= {max_days} THEN {r} - {max_days - 1} ELSE {r} - {max_days} END AS INTEGER)"


def date_shift_source(shift: DateShift) -> str:
    """The source view with each row's shift remainder added, from the keyed digest of its person field.

    The digest is computed once per row in an inner query, then read as an integer modulo 2 max:
    a person with no value gets NULL, and so do all their dates (never left unshifted).
    """
    digest = hmac_sha256(typed(shift.person), _SHIFT_KEY_ALIAS, DATE_SHIFT_LABEL)
    keyed = f"SELECT {SOURCE}.*, {digest} AS {_SHIFT_DIGEST} FROM {SOURCE} CROSS JOIN {KEY_TABLE} AS {_SHIFT_KEY_ALIAS}"
    remainder = f"{hex_to_integer(_SHIFT_DIGEST, DATE_SHIFT_DIGITS)} % {2 * shift.max_days}"
    return f"(SELECT sw_keyed.*, {remainder} AS {_SHIFT_REMAINDER} FROM ({keyed}) AS sw_keyed) AS sw_dated"


def transformed(plan: FieldPlan, as_of_year: int, shift: DateShift | None = None, token_format: str = "hex") -> str:
    """A field after its transformation (for de-identified data: before any generalization).

    token_format: how a pseudonym is written, one of TOKEN_FORMATS.
    """
    value = typed(plan)
    if plan.transform == KEEP:
        return value
    if plan.transform == DATE_SHIFT:
        if shift is None:
            raise ValueError("a shifted date needs the share's date shift")
        return f"{value} + {shift_days(shift.max_days)}"
    if plan.transform == PSEUDONYMIZE:
        return hmac_sha256(value, as_bytes=token_format == "bytes")
    if plan.transform == YEAR:
        return f"YEAR({value})"
    if plan.transform == BIRTH_YEAR:
        # Years of birth of people who may be over 89 on the as-of date are withheld.
        return f"CASE WHEN YEAR({value}) <= {as_of_year - 90} THEN NULL ELSE YEAR({value}) END"
    if plan.transform == AGE_TOP_CODED:
        return f"LEAST({value}, 90)"  # rendered as 90+ at output
    if plan.transform == ZIP3:
        return zip3(value)
    raise ValueError(f"unknown transform {plan.transform}")


def base_sql(
    plans: Sequence[FieldPlan], as_of_year: int, shift: DateShift | None = None, token_format: str = "hex"
) -> str:
    """SELECT of every planned field, transformed, from the source view (with each row's date shift, if any)."""
    if token_format not in TOKEN_FORMATS:
        raise ValueError(f"unknown token format {token_format}")
    columns = ", ".join(f"{transformed(p, as_of_year, shift, token_format)} AS {quote(p.name)}" for p in plans)
    needs_key = any(p.transform == PSEUDONYMIZE for p in plans)
    join = f" CROSS JOIN {KEY_TABLE} AS {_KEY_ALIAS}" if needs_key else ""
    source = date_shift_source(shift) if shift is not None else SOURCE
    return f"SELECT {columns} FROM {source}{join}"


def _band(expr: str, width: int) -> str:
    low = f"CAST(FLOOR({expr} / {width}) * {width} AS BIGINT)"
    return f"CAST({low} AS VARCHAR) || '-' || CAST({low} + {width - 1} AS VARCHAR)"


def _age_text(expr: str, inner: str) -> str:
    return f"CASE WHEN {expr} IS NULL THEN NULL WHEN {expr} >= 90 THEN '90+' ELSE {inner} END"


_SUPPRESSED = "CAST(NULL AS VARCHAR)"


def hierarchy(plan: FieldPlan) -> list[str]:
    """Generalization levels of a field of de-identified data, level 0 first, fully suppressed last."""
    c = quote(plan.name)
    if plan.transform in (YEAR, BIRTH_YEAR) or (plan.transform == KEEP and plan.type == "integer"):
        return [c, _band(c, 5), _band(c, 10), _SUPPRESSED]
    if plan.transform == AGE_TOP_CODED:
        return [
            _age_text(c, f"CAST({c} AS VARCHAR)"),
            _age_text(c, _band(c, 5)),
            _age_text(c, _band(c, 10)),
            _SUPPRESSED,
        ]
    if plan.transform == ZIP3:
        return [c, f"CASE WHEN {c} = '000' THEN '000' ELSE SUBSTRING({c}, 1, 1) || 'xx' END", _SUPPRESSED]
    return [c, _SUPPRESSED]


def output_expressions(plans: Sequence[FieldPlan], levels: dict[str, int]) -> list[str]:
    """Each field at its generalization level (level 0 for fields outside the k-anonymity check)."""
    return [f"{hierarchy(p)[levels.get(p.name, 0)]} AS {quote(p.name)}" for p in plans]


def group_profile_sql(base: str, qi_expressions: Sequence[str], k: int) -> str:
    """Records, equivalence classes, records in classes smaller than k, and the smallest class."""
    groups = ", ".join(qi_expressions)
    return (
        f"WITH sw_base AS ({base}), sw_groups AS (SELECT COUNT(*) AS n FROM sw_base GROUP BY {groups}) "
        f"SELECT COALESCE(SUM(n), 0), COUNT(*), COALESCE(SUM(CASE WHEN n < {k} THEN n ELSE 0 END), 0), "
        f"COALESCE(MIN(CASE WHEN n >= {k} THEN n END), 0), COALESCE(SUM(CASE WHEN n >= {k} THEN 1 ELSE 0 END), 0) "
        "FROM sw_groups"
    )


def k_anonymous_sql(base: str, plans: Sequence[FieldPlan], levels: dict[str, int], k: int) -> str:
    """The generalized records whose equivalence class over the quasi-identifiers has at least k records."""
    qis = [hierarchy(p)[levels[p.name]] for p in plans if p.quasi_identifier]
    outputs = ", ".join(output_expressions(plans, levels))
    if not qis:
        return f"WITH sw_base AS ({base}) SELECT {outputs} FROM sw_base"
    window = f"COUNT(*) OVER (PARTITION BY {', '.join(qis)})"
    return (
        f"WITH sw_base AS ({base}) SELECT {outputs} FROM "
        f"(SELECT sw_base.*, {window} AS {GROUP_COLUMN} FROM sw_base) AS sw_g WHERE {GROUP_COLUMN} >= {k}"
    )


def aggregate_sql(base: str, plans: Sequence[FieldPlan]) -> str:
    """Counts by every dimension (their level-0 form as text); suppression happens on this small table."""
    dims = [f"CAST({hierarchy(p)[0]} AS VARCHAR)" for p in plans]
    select = ", ".join(f"{d} AS {quote(p.name)}" for d, p in zip(dims, plans, strict=True))
    return f"WITH sw_base AS ({base}) SELECT {select}, COUNT(*) AS sw_count FROM sw_base GROUP BY {', '.join(dims)}"


def csv_escaped_sql(select: str, columns: Sequence[tuple[str, bool]]) -> str:
    """Prefix a quote to text cells that a spreadsheet would read as a formula; columns are (name, is_text)."""
    prefixes = ", ".join("CHR(9)" if p == "\t" else "CHR(13)" if p == "\r" else literal(p) for p in FORMULA_PREFIXES)
    parts = []
    for name, is_text in columns:
        c = quote(name)
        if is_text:
            parts.append(f"CASE WHEN SUBSTRING({c}, 1, 1) IN ({prefixes}) THEN '''' || {c} ELSE {c} END AS {c}")
        else:
            parts.append(c)
    return f"SELECT {', '.join(parts)} FROM ({select}) AS sw_out"


def person_index_sql(given: str, family: str, birth: str) -> str:
    """The three person-index fields of every input row, dates as ISO text, for keyed tokens."""
    return (
        f"SELECT CAST({quote(given)} AS VARCHAR) AS sw_given, CAST({quote(family)} AS VARCHAR) AS sw_family, "
        f"CAST({quote(birth)} AS VARCHAR) AS sw_birth FROM {SOURCE}"
    )
