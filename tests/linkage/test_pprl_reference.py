"""The vectorized PPRL encoder and matcher give exactly what straightforward reference implementations give.

The references below follow the written method one record and one pair at a time, in plain Python. The known
digests pin the encodings made before the encoder was vectorized: two parties running different sharewise
versions must still produce matching encodings, and nothing in the schema fingerprint or the secret check would
notice if they did not.
"""

from __future__ import annotations

import hashlib
import hmac

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sharewise.domain.errors import InvalidDataError
from sharewise.linkage.pprl import encode as encode_module
from sharewise.linkage.pprl import kernels
from sharewise.linkage.pprl import match as match_module
from sharewise.linkage.pprl.encode import encode
from sharewise.linkage.pprl.match import MatchOptions, match
from sharewise.linkage.pprl.schema import DEFAULT_SCHEMA, FieldSpec, LinkageSchema

SECRET = b"a-secret-shared-out-of-band-0001"

GIVEN = ["ann", "anne", "bartholomew", "jo", "", None, "josé", "maryann", "x" * 45, "zoë-ann", "a"]
SURNAME = ["smith", "smyth", "obrien", None, "garcia lopez", "nguyen", "", "van der berg"]
DOB = ["1980-01-02", "1980-02-01", "2001-12-31", None, "", "19800102", "abcdefghij"]
SEX = ["F", "M", None, ""]
SSN = ["123456789", None, "987654321", "12345678"]
STREET = ["1 ELM ST", "12 N MAIN ST APT 4", None, "PO BOX 9", "ÅNGSTRÖM VÄGEN 1234567890 1234567890 12345"]
CITY = ["springfield", None, "shelbyville"]
ZIP = ["62701", "62702", None]
EXTRA = (
    *DEFAULT_SCHEMA.fields,
    FieldSpec("phone", "exact", 1, 5),
    FieldSpec("city_std", "qgram", 3, 3),
    FieldSpec("zip", "qgram", 1, 2),
)
SCHEMAS = {
    "default": DEFAULT_SCHEMA,
    "folded": LinkageSchema("folded", 1, DEFAULT_SCHEMA.fields, hardening=("xor_fold",)),
    "balanced-folded": LinkageSchema("bf", 1, EXTRA[:9], bits=512, hardening=("balance", "xor_fold")),
    "plain": LinkageSchema("plain", 3, EXTRA[:5] + EXTRA[9:], bits=256, hardening=()),
}
# SHA-256 of encode(fixed_people(), schema, SECRET).tobytes(), computed with the encoder before vectorization.
KNOWN_DIGESTS = {
    "default": "23cf39fada18d5717aa9f3c1b40c7faf469eb9265ec5af6c269f52e02be35c74",
    "folded": "892c62de8f1d620b2d690ad88d9fd0caa05c1db0508233a7d980348e94986291",
    "balanced-folded": "0a7a3f50483108e2e38f45b5cc925e38e903cf74756d67dd36a097f9041e3fec",
    "plain": "51f7f5d1541aa13add6b4242ce090e9244e116514873192f6db8fb701854fcc7",
}


def fixed_people(n: int = 60) -> pa.Table:
    def pick(pool: list[str | None], step: int) -> list[str | None]:
        return [pool[(i * step) % len(pool)] for i in range(n)]

    return pa.table(
        {
            "given_std": pick(GIVEN, 1),
            "surname_std": pick(SURNAME, 3),
            "dob": pick(DOB, 5),
            "sex": pick(SEX, 7),
            "ssn": pick(SSN, 2),
            "street_std": pick(STREET, 3),
            "city_std": pick(CITY, 1),
            "zip": pick(ZIP, 2),
            "phone": [str(1000 + i * 7919 % 97) for i in range(n)],
        },
        schema=pa.schema([(name, pa.string()) for name in ENCODED]),
    )


ENCODED = ("given_std", "surname_std", "dob", "sex", "ssn", "street_std", "city_std", "zip", "phone")


# The reference encoder: one record, one field, one token at a time.


def _raw(value: str | None) -> bytes:
    return (value or "").encode("utf-8")[: encode_module.MAX_LEN].rstrip(b"\0")


def reference_tokens(spec: FieldSpec, value: str | None) -> list[bytes]:
    if spec.tokenizer == "exact":
        return [value.encode("utf-8")] if value else []
    raw = _raw(value)
    if spec.tokenizer == "date":
        if len(raw) != 10:
            return []
        d = [(c - ord("0")) & 0xFFFFFFFF for c in raw]
        parts = (d[0] * 1000 + d[1] * 100 + d[2] * 10 + d[3], d[5] * 10 + d[6], d[8] * 10 + d[9])
        return [
            (((tag << 24) | part) & 0xFFFFFFFF).to_bytes(4, "big") for tag, part in zip((1, 2, 3), parts, strict=True)
        ]
    if not raw:
        return []
    padded = b"_" * (spec.q - 1) + raw + b"_" * (spec.q - 1)
    return [padded[i : i + spec.q].lstrip(b"\0") for i in range(len(padded) - spec.q + 1)]


def reference_positions(key: bytes, token: bytes, k: int, bits: int) -> list[int]:
    digest = b"".join(hmac.new(key, i.to_bytes(2, "big") + token, hashlib.sha256).digest() for i in range(k // 8 + 1))
    return [int.from_bytes(digest[4 * i : 4 * i + 4], "big") % bits for i in range(k)]


def reference_source(schema: LinkageSchema, secret: bytes) -> list[int]:
    """For each bit of the balanced encoding, which bit of [filter, complement] it holds."""
    label = b"sharewise-pprl/1/permutation/" + schema.fingerprint().encode()
    seed = int.from_bytes(hmac.new(secret, label, hashlib.sha256).digest()[:16], "big")
    rng = np.random.default_rng(seed)
    n_bytes = 2 * schema.bits // 8
    byte_order = rng.permutation(n_bytes)
    within = [rng.permutation(8) for _ in range(n_bytes)]
    return [8 * int(byte_order[j]) + int(within[j][i]) for j in range(n_bytes) for i in range(8)]


def reference_encode(table: pa.Table, schema: LinkageSchema, secret: bytes) -> npt.NDArray[np.uint8]:
    keys = {
        spec.name: hmac.new(secret, b"sharewise-pprl/1/field/" + spec.name.encode(), hashlib.sha256).digest()
        for spec in schema.fields
    }
    source = reference_source(schema, secret) if "balance" in schema.hardening else []
    rows = []
    for record in table.to_pylist():
        plain = [0] * schema.bits
        for spec in schema.fields:
            for token in reference_tokens(spec, record[spec.name]):
                for position in reference_positions(keys[spec.name], token, spec.k, schema.bits):
                    plain[position] = 1
        bits = plain
        if "balance" in schema.hardening:
            balanced = plain + [1 - x for x in plain]
            bits = [balanced[s] for s in source]
        if "xor_fold" in schema.hardening:
            half = len(bits) // 2
            bits = [x ^ y for x, y in zip(bits[:half], bits[half:], strict=True)]
        rows.append(np.packbits(np.array(bits, dtype=np.uint8)))
    return np.array(rows, dtype=np.uint8).reshape(table.num_rows, schema.encoded_bits // 8)


# The reference matcher: every pair, Python integers.


def reference_pairs(
    a: npt.NDArray[np.uint8], b: npt.NDArray[np.uint8], threshold: float
) -> dict[tuple[int, int], float]:
    ints_a = [int.from_bytes(row.tobytes(), "big") for row in a]
    ints_b = [int.from_bytes(row.tobytes(), "big") for row in b]
    pairs = {}
    for i, x in enumerate(ints_a):
        for j, y in enumerate(ints_b):
            total = x.bit_count() + y.bit_count()
            score = np.float32(2 * (x & y).bit_count() / max(total, 1))
            if score >= np.float32(threshold):
                pairs[(i, j)] = float(score)
    return pairs


def as_pairs(result: match_module.MatchResult) -> dict[tuple[int, int], float]:
    return {(int(i), int(j)): float(s) for i, j, s in zip(result.left, result.right, result.similarity, strict=True)}


@pytest.fixture
def small_tiles(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tiles and chunks of a few rows, two workers: every multi-tile, multi-chunk and growing path runs on small data."""
    monkeypatch.setattr(encode_module, "CHUNK_BYTES", 600)
    monkeypatch.setattr(encode_module, "_workers", lambda: 2)
    monkeypatch.setattr(kernels, "CHUNK_ROWS", 7)
    monkeypatch.setattr(kernels, "TILE_B", 13)
    monkeypatch.setattr(kernels, "CHUNK_PAIRS", 100)
    monkeypatch.setattr(kernels, "FIRST_CAPACITY", 1)
    monkeypatch.setattr(kernels, "threads", lambda: 2)


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_encodings_are_those_of_the_previous_encoder(name: str) -> None:
    bits = encode(fixed_people(), SCHEMAS[name], SECRET)
    assert hashlib.sha256(bits.tobytes()).hexdigest() == KNOWN_DIGESTS[name]


@pytest.mark.parametrize("pair_table", [encode_module.PAIR_TABLE, 0])
@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_encoder_equals_the_reference_encoder(
    name: str, pair_table: int, small_tiles: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(encode_module, "PAIR_TABLE", pair_table)  # 0: one token a pass, no table of token pairs
    people = fixed_people()
    assert np.array_equal(encode(people, SCHEMAS[name], SECRET), reference_encode(people, SCHEMAS[name], SECRET))


texts = st.one_of(st.none(), st.text(alphabet="abcz _-'0189éß\u4e2d", max_size=44))
dates = st.one_of(
    texts, st.dates().map(lambda d: d.isoformat()), st.text(alphabet="0123456789-/x", min_size=10, max_size=10)
)


@settings(max_examples=30, deadline=None)
@given(
    st.lists(st.tuples(texts, texts, dates, texts, texts), min_size=0, max_size=6),
    st.sampled_from(sorted(SCHEMAS)),
    st.binary(min_size=16, max_size=24),
)
def test_encoder_equals_the_reference_on_any_values(
    rows: list[tuple[str | None, ...]], name: str, secret_tail: bytes
) -> None:
    columns = list(zip(*rows, strict=True)) if rows else [()] * 5
    people = pa.table(
        {
            "given_std": pa.array(columns[0], pa.string()),
            "surname_std": pa.array(columns[1], pa.string()),
            "dob": pa.array(columns[2], pa.string()),
            "sex": pa.array(columns[3], pa.string()),
            "ssn": pa.array(columns[4], pa.string()),
            "street_std": pa.array(columns[1], pa.string()),
            "city_std": pa.array(columns[0], pa.string()),
            "zip": pa.array(columns[4], pa.string()),
            "phone": pa.array(columns[3], pa.string()),
        }
    )
    secret = b"s" + secret_tail.replace(b" ", b"x")
    assert np.array_equal(encode(people, SCHEMAS[name], secret), reference_encode(people, SCHEMAS[name], secret))


def test_chunked_text_columns_encode_like_one_chunk() -> None:
    people = fixed_people()
    chunked = pa.Table.from_batches(people.to_batches(max_chunksize=7))
    large = people.cast(pa.schema([(name, pa.large_string()) for name in people.column_names]))
    expected = encode(people, DEFAULT_SCHEMA, SECRET)
    assert chunked.column("given_std").num_chunks > 1
    assert np.array_equal(encode(chunked, DEFAULT_SCHEMA, SECRET), expected)
    assert np.array_equal(encode(large, DEFAULT_SCHEMA, SECRET), expected)


def test_no_records_give_no_encodings() -> None:
    assert encode(fixed_people(0), DEFAULT_SCHEMA, SECRET).shape == (0, DEFAULT_SCHEMA.encoded_bits // 8)


def test_a_filter_length_that_is_not_whole_words_is_refused() -> None:
    with pytest.raises(InvalidDataError, match="invalid linkage schema") as caught:
        encode(fixed_people(3), LinkageSchema("odd", 1, DEFAULT_SCHEMA.fields, bits=1000), SECRET)
    assert "multiple of 64" in str(caught.value.problems[0])


def test_a_column_that_is_not_text_is_refused_by_name_without_values() -> None:
    people = fixed_people(3).set_column(4, "ssn", pa.array([[1], [2], [3]], pa.list_(pa.int64())))
    with pytest.raises(InvalidDataError, match="wrong column type") as caught:
        encode(people, DEFAULT_SCHEMA, SECRET)
    assert caught.value.problems[0].location == "ssn"
    assert "123456789" not in str(caught.value.problems[0])


def _noisy_copies(rng: np.random.Generator, n: int, words: int) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.uint8]]:
    """Unbalanced encodings with very different weights, and B holding noisy copies of A's rows (so pairs match)."""
    density = rng.uniform(0.02, 0.6, size=(n, 1))
    a = np.packbits(rng.random((n, words * 64)) < density, axis=1)
    flips = np.packbits(rng.random((n, words * 64)) < 0.04, axis=1)
    b = np.concatenate([(a ^ flips)[: n // 2], np.packbits(rng.random((n - n // 2, words * 64)) < 0.3, axis=1)])
    return a, b[rng.permutation(n)]


@pytest.mark.parametrize("threshold", [0.0, 0.5, 0.7, 0.9, 1.0])
def test_every_pair_matching_equals_the_reference(threshold: float, small_tiles: None) -> None:
    a, b = _noisy_copies(np.random.default_rng(3), 90, 4)
    b[5] = 0  # an empty encoding: similarity 0 with anything
    result = match(a, b, MatchOptions(threshold=threshold, blocking="none", resolution="all"))
    expected = reference_pairs(a, b, threshold)
    assert as_pairs(result) == pytest.approx(expected, abs=1e-6)
    assert list(zip(result.left.tolist(), result.right.tolist(), strict=True)) == sorted(expected)


def test_popcount_bound_skips_pairs_that_cannot_reach_the_threshold(small_tiles: None) -> None:
    a, b = _noisy_copies(np.random.default_rng(4), 120, 4)
    result = match(a, b, MatchOptions(threshold=0.8, blocking="none", resolution="all"))
    assert result.comparisons < 0.8 * len(a) * len(b)
    assert as_pairs(result) == pytest.approx(reference_pairs(a, b, 0.8), abs=1e-6)


def test_balanced_encodings_are_all_compared_and_match_the_reference(small_tiles: None) -> None:
    people = fixed_people()
    bits = encode(people, DEFAULT_SCHEMA, SECRET)
    a, b = bits[:30], bits[30:]
    result = match(a, b, MatchOptions(threshold=0.6, blocking="none", resolution="all"))
    assert result.comparisons == len(a) * len(b)  # every weight equal: the bound prunes nothing
    assert as_pairs(result) == pytest.approx(reference_pairs(a, b, 0.6), abs=1e-6)


def test_lsh_pairs_are_scored_exactly_and_are_among_every_pair(small_tiles: None) -> None:
    a, b = _noisy_copies(np.random.default_rng(5), 200, 4)
    lsh = match(a, b, MatchOptions(threshold=0.7, blocking="lsh", resolution="all", bands=30, per_band=2.0))
    everything = reference_pairs(a, b, 0.7)
    assert 0 < len(lsh.left) <= len(everything)
    for pair, score in as_pairs(lsh).items():
        assert everything[pair] == pytest.approx(score, abs=1e-6)
    assert lsh.comparisons < len(a) * len(b)


def test_a_pair_exactly_at_the_threshold_is_kept_by_both_paths() -> None:
    # |a| = 10, |b| = 10, |a AND b| = 7: Dice exactly 0.7.
    a = np.zeros((1, 8), dtype=np.uint8)
    b = np.zeros((1, 8), dtype=np.uint8)
    a[0, :2] = [0xFF, 0xC0]
    b[0, :2] = [0xFE, 0x07]
    for blocking in ("none", "lsh"):
        result = match(a, b, MatchOptions(threshold=0.7, blocking=blocking, resolution="all", bands=64))
        assert as_pairs(result) == pytest.approx({(0, 0): 0.7}), blocking


def reference_greedy(pairs: dict[tuple[int, int], float]) -> set[tuple[int, int]]:
    """Best pair first, then the best pair of two free records, and so on (ties: lower left, then lower right)."""
    taken_left: set[int] = set()
    taken_right: set[int] = set()
    chosen = set()
    for (i, j), _ in sorted(pairs.items(), key=lambda item: (-item[1], item[0][0], item[0][1])):
        if i not in taken_left and j not in taken_right:
            chosen.add((i, j))
            taken_left.add(i)
            taken_right.add(j)
    return chosen


@pytest.mark.parametrize("rounds", [64, 1])
def test_one_to_one_is_the_greedy_matching(rounds: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(match_module, "MAX_ROUNDS", rounds)  # 1: the pair-by-pair finish does most of the work
    rng = np.random.default_rng(7)
    for _ in range(20):
        n = int(rng.integers(1, 60))
        left, right = rng.integers(0, 12, n), rng.integers(0, 12, n)
        score = np.round(rng.random(n), 1).astype(np.float32)  # many ties
        pairs: dict[tuple[int, int], float] = {}
        for i, j, x in zip(left.tolist(), right.tolist(), score.tolist(), strict=True):
            pairs[(i, j)] = max(pairs.get((i, j), 0.0), x)
        left = np.array([p[0] for p in pairs], dtype=np.int64)
        right = np.array([p[1] for p in pairs], dtype=np.int64)
        score = np.array(list(pairs.values()), dtype=np.float32)
        keep = match_module.one_to_one(left, right, score)
        assert set(zip(left[keep].tolist(), right[keep].tolist(), strict=True)) == reference_greedy(pairs)
        assert not (match_module.mutual_best(left, right, score) & ~keep).any()


def test_one_to_one_matching_gives_each_record_one_partner(small_tiles: None) -> None:
    a, b = _noisy_copies(np.random.default_rng(6), 80, 4)
    every = match(a, b, MatchOptions(threshold=0.5, blocking="none", resolution="all"))
    best = match(a, b, MatchOptions(threshold=0.5, blocking="none", resolution="one_to_one"))
    assert set(zip(best.left.tolist(), best.right.tolist(), strict=True)) == reference_greedy(as_pairs(every))
    assert len(set(best.left.tolist())) == len(best.left) and len(set(best.right.tolist())) == len(best.right)


def test_encodings_of_different_or_partial_word_lengths_are_refused() -> None:
    with pytest.raises(InvalidDataError, match="wrong encodings"):
        match(np.zeros((2, 16), np.uint8), np.zeros((2, 8), np.uint8), MatchOptions())
    with pytest.raises(InvalidDataError, match="wrong encodings"):
        match(np.zeros((2, 12), np.uint8), np.zeros((2, 12), np.uint8), MatchOptions())
    with pytest.raises(InvalidDataError, match="invalid option"):
        match(np.zeros((2, 8), np.uint8), np.zeros((2, 8), np.uint8), MatchOptions(blocking="sorted"))


def test_a_missing_column_is_refused_by_name() -> None:
    with pytest.raises(InvalidDataError, match="missing columns") as caught:
        encode(fixed_people(3).drop_columns(["dob"]), DEFAULT_SCHEMA, SECRET)
    assert "dob" in str(caught.value.problems[0])


@pytest.mark.parametrize("blocking", ["none", "lsh"])
def test_nothing_at_the_threshold_gives_no_pairs(blocking: str, small_tiles: None) -> None:
    a = np.packbits(np.eye(64, dtype=np.bool_)[:20], axis=1)  # one bit each: Dice 0 between different rows
    b = np.packbits(np.eye(64, dtype=np.bool_)[30:50], axis=1)
    result = match(a, b, MatchOptions(threshold=0.5, blocking=blocking, resolution="one_to_one"))
    assert len(result.left) == len(result.right) == len(result.similarity) == 0
    assert result.left.dtype == np.int64 and result.similarity.dtype == np.float32


def test_weights_too_far_apart_are_never_multiplied() -> None:
    a = np.packbits(np.eye(64, dtype=np.bool_)[:20], axis=1)  # weight 1
    b = np.full((5, 8), 0xFF, np.uint8)  # weight 64: Dice at most 2 / 65
    result = match(a, b, MatchOptions(threshold=0.5, blocking="none", resolution="all"))
    assert result.comparisons == 0 and len(result.left) == 0
