"""Per-person date shifting: every date of a person moves by one keyed shift, equal to Python's hmac, on every engine."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import hmac
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow.parquet as pq
import pytest
import yaml
from typer.testing import CliRunner

from sharewise.domain.errors import InvalidDataError, NotFoundError
from sharewise.pipeline.backend import Backend, CsvInput, PseudonymPads
from sharewise.pipeline.dictionary import parse_dictionary
from sharewise.pipeline.duckdb_backend import DuckDBBackend
from sharewise.pipeline.extract import ExtractResult, extract
from sharewise.pipeline.spec import (
    DATE_SHIFT,
    KEEP,
    AggregateOptions,
    DateShiftOptions,
    ShareSpec,
    build_spec,
)
from sharewise.pipeline.sql import DATE_SHIFT_LABEL, KEY_TABLE, hmac_sha256, literal
from sharewise.policy.model import LawPack
from sharewise.security.keys import FileKeyProvider
from sharewise.services import shares
from tests.pipeline.certs import make_recipient
from tests.pipeline.test_share_service import SNAP_TO_TANF, TODAY, FakeSink, control_in

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

AS_OF = dt.date(2026, 3, 1)
KEY = bytes(range(32))
OTHER_KEY = bytes(range(100, 132))
PEOPLE = 40
CATEGORIES = ["identity", "demographics", "eligibility_and_benefits"]
DATES = ("birth_date", "visit_on", "closed_on", "referred")

DICTIONARY: dict[str, Any] = {
    "program": "snap",
    "status": "confirmed",
    "fields": {
        "client_id": {"category": "identity", "identifier": "direct", "kind": "unique_id", "type": "string"},
        "member_no": {"category": "identity", "identifier": "direct", "kind": "unique_id", "type": "integer"},
        "first_name": {"category": "identity", "identifier": "direct", "kind": "name", "type": "string"},
        "sex": {"category": "demographics", "identifier": "quasi", "type": "string"},
        "birth_date": {"category": "identity", "identifier": "direct", "kind": "birth_date", "type": "date"},
        "visit_on": {"category": "eligibility_and_benefits", "identifier": "other", "type": "date"},
        "closed_on": {"category": "eligibility_and_benefits", "identifier": "other", "type": "date"},
        "referred": {
            "category": "eligibility_and_benefits",
            "identifier": "other",
            "type": "date",
            "date_format": "%m/%d/%Y",
        },
        "benefit": {"category": "eligibility_and_benefits", "identifier": "other", "type": "decimal"},
    },
}
HEADER = [*DICTIONARY["fields"], "unmapped_flag"]
NEEDS = ["client_id", "birth_date", "visit_on", "closed_on", "referred", "benefit"]


def visit_rows() -> list[dict[str, str]]:
    """Three visits for each of 40 people (the last still open), and one visit with no person."""
    rows = []
    for p in range(PEOPLE):
        for j in range(3):
            visit = dt.date(2024, 1, 1) + dt.timedelta(days=p * 3 + j * 40)
            rows.append(
                {
                    "client_id": f"P{p:03d}",
                    "member_no": f"{p + 7:05d}",  # leading zeros: an integer person field is keyed by its number
                    "first_name": f"Name{p}",
                    "sex": "F" if p % 2 else "M",
                    "birth_date": dt.date(1950 + p, 1 + p % 12, 1 + p % 28).isoformat(),
                    "visit_on": visit.isoformat(),
                    "closed_on": "" if j == 2 else (visit + dt.timedelta(days=10 + j)).isoformat(),
                    "referred": (visit - dt.timedelta(days=5)).strftime("%m/%d/%Y"),
                    "benefit": f"{100 + p * 3 + j}.25",  # unique: it pairs each output row with its source
                    "unmapped_flag": "Y",
                }
            )
    rows.append({**rows[0], "client_id": "", "member_no": "", "benefit": "999.25", "visit_on": "2024-06-01"})
    return rows


def write_visits(directory: Path, rows: list[dict[str, str]] | None = None) -> Path:
    path = directory / "visits.csv"
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=HEADER)
        writer.writeheader()
        writer.writerows(visit_rows() if rows is None else rows)
    return path


def shift_of(key: bytes, person: str, max_days: int) -> int:
    """The reference: HMAC-SHA256 of the label and the person's text, 48 bits modulo 2 max, onto -max..-1, 1..max."""
    digest = hmac.new(key, DATE_SHIFT_LABEL + person.encode("utf-8"), hashlib.sha256).hexdigest()
    r = int(digest[:12], 16) % (2 * max_days)
    return r - max_days + 1 if r >= max_days else r - max_days


def spec_for(
    law: LawPack,
    columns: list[str],
    needs: list[str] = NEEDS,
    form: str = "identified",
    by: str = "client_id",
    max_days: int = 180,
    **options: Any,
) -> ShareSpec:
    dictionary = parse_dictionary(DICTIONARY, law.vocabulary.data_categories)
    return build_spec(
        dictionary, columns, needs, CATEGORIES, form, date_shift=DateShiftOptions(by, max_days), **options
    )


def shared(
    backend: Backend, law: LawPack, directory: Path, key: bytes = KEY, fmt: str = "parquet", **spec: Any
) -> tuple[ExtractResult, list[dict[str, Any]]]:
    columns = backend.register_input(CsvInput(directory / "visits.csv"))
    out = directory / f"out-{len(list(directory.glob('out-*')))}"
    result = extract(backend, spec_for(law, columns, **spec), out, fmt, AS_OF, PseudonymPads.from_key(key))
    rows: list[dict[str, Any]] = []
    for name in result.files:
        if fmt == "parquet":
            rows += pq.read_table(out / name).to_pylist()
        else:
            with (out / name).open(encoding="utf-8", newline="") as handle:
                rows += list(csv.DictReader(handle))
    return result, rows


@pytest.fixture
def duck() -> Iterator[DuckDBBackend]:
    engine = DuckDBBackend(threads=2)
    yield engine
    engine.close()


def source_date(row: dict[str, str], name: str) -> dt.date | None:
    if not row[name]:
        return None
    if name == "referred":
        return dt.datetime.strptime(row[name], "%m/%d/%Y").date()
    return dt.date.fromisoformat(row[name])


def test_each_date_moves_by_the_hmac_python_computes_for_the_person(
    duck: DuckDBBackend, law: LawPack, tmp_path: Path
) -> None:
    write_visits(tmp_path)
    result, rows = shared(duck, law, tmp_path)
    source = {r["benefit"]: r for r in visit_rows()}
    assert result.rows == 3 * PEOPLE + 1 == len(rows)
    checked = 0
    for row in rows:
        src = source[f"{row['benefit']:.2f}"]
        if not src["client_id"]:
            continue
        days = dt.timedelta(days=shift_of(KEY, src["client_id"], 180))
        for name in DATES:
            before = source_date(src, name)
            assert row[name] == (before + days if before else None), name
            checked += before is not None
        assert row["client_id"] == src["client_id"]  # the person field itself leaves as asked (here: kept)
    assert checked == 4 * 3 * PEOPLE - PEOPLE  # every date of every person, less the open visits' closing dates


def test_a_person_keeps_one_shift_across_rows_and_runs_so_intervals_are_preserved(law: LawPack, tmp_path: Path) -> None:
    write_visits(tmp_path)
    runs = []
    for _ in range(2):
        engine = DuckDBBackend(threads=2)
        try:
            runs.append(sorted(shared(engine, law, tmp_path)[1], key=lambda r: r["benefit"]))
        finally:
            engine.close()
    assert runs[0] == runs[1]
    source = {r["benefit"]: r for r in visit_rows()}
    by_person: dict[str, list[tuple[dict[str, Any], dict[str, str]]]] = {}
    for row in runs[0]:
        src = source[f"{row['benefit']:.2f}"]
        if src["client_id"]:
            by_person.setdefault(src["client_id"], []).append((row, src))
    assert len(by_person) == PEOPLE
    shifts = set()
    for visits in by_person.values():
        moved = {
            (row[name] - before).days
            for row, src in visits
            for name in DATES
            if (before := source_date(src, name)) is not None
        }
        assert len(moved) == 1  # one shift for all of a person's dates, in every row
        shifts |= moved
        (first, first_src), *others = visits
        for row, src in others:
            before = source_date(src, "visit_on")
            first_before = source_date(first_src, "visit_on")
            assert before and first_before and (row["visit_on"] - first["visit_on"]) == (before - first_before)
        for row, src in visits:
            opened, closed = source_date(src, "visit_on"), source_date(src, "closed_on")
            if opened and closed:
                assert row["closed_on"] - row["visit_on"] == closed - opened
    assert len(shifts) > PEOPLE // 2  # people are shifted differently from one another


def test_two_agreements_shift_the_same_person_differently(duck: DuckDBBackend, law: LawPack, tmp_path: Path) -> None:
    write_visits(tmp_path)
    source = {r["benefit"]: r for r in visit_rows()}
    per_key = []
    for key in (KEY, OTHER_KEY):
        _, rows = shared(duck, law, tmp_path, key=key)
        shifts = {}
        for row in rows:
            src = source[f"{row['benefit']:.2f}"]
            visit = source_date(src, "visit_on")
            if src["client_id"] and visit:
                shifts[src["client_id"]] = (row["visit_on"] - visit).days
                assert shifts[src["client_id"]] == shift_of(key, src["client_id"], 180)
        per_key.append(shifts)
    assert len(per_key[0]) == PEOPLE
    assert sum(per_key[0][p] == per_key[1][p] for p in per_key[0]) <= 3  # 1 in 360 by chance


def test_nulls_stay_null_and_a_record_without_a_person_leaves_no_date(
    duck: DuckDBBackend, law: LawPack, tmp_path: Path
) -> None:
    write_visits(tmp_path)
    _, rows = shared(duck, law, tmp_path)
    open_visits = [r for r in rows if r["client_id"] is not None and r["closed_on"] is None]
    assert len(open_visits) == PEOPLE and all(r["visit_on"] is not None for r in open_visits)
    [nobody] = [r for r in rows if r["client_id"] is None]
    assert all(nobody[name] is None for name in DATES)  # no shift can be derived: the dates are withheld, never raw
    assert nobody["benefit"] == 999.25


@pytest.mark.parametrize("max_days", [1, 5])
def test_shifts_are_whole_days_from_minus_max_to_max_and_never_zero(
    duck: DuckDBBackend, law: LawPack, tmp_path: Path, max_days: int
) -> None:
    base = visit_rows()[0]
    people = [f"person-{i}" for i in range(2000)]
    write_visits(tmp_path, [{**base, "client_id": p, "visit_on": "2024-02-29"} for p in people])
    _, rows = shared(duck, law, tmp_path, needs=["client_id", "visit_on"], max_days=max_days)
    shifts = {r["client_id"]: (r["visit_on"] - dt.date(2024, 2, 29)).days for r in rows}
    assert shifts == {p: shift_of(KEY, p, max_days) for p in people}
    expected = {d for d in range(-max_days, max_days + 1) if d != 0}
    assert set(shifts.values()) == expected
    for value in expected:  # about uniform: each of the 2 max values near 2000 / (2 max) times
        share = sum(1 for s in shifts.values() if s == value) / len(people)
        assert abs(share - 1 / len(expected)) < 0.35 / len(expected)


def test_an_integer_person_field_is_keyed_by_its_number(duck: DuckDBBackend, law: LawPack, tmp_path: Path) -> None:
    write_visits(tmp_path)
    _, rows = shared(duck, law, tmp_path, needs=["member_no", "visit_on", "benefit"], by="member_no")
    source = {r["benefit"]: r for r in visit_rows()}
    for row in rows:
        src = source[f"{row['benefit']:.2f}"]
        visit = source_date(src, "visit_on")
        if src["member_no"] and visit:
            assert row["visit_on"] == visit + dt.timedelta(days=shift_of(KEY, str(int(src["member_no"])), 180))


def test_the_shift_digest_is_not_the_pseudonym(duck: DuckDBBackend) -> None:
    duck.register_key(PseudonymPads.from_key(KEY))
    pseudonym, digest = duck.query(
        f"SELECT {hmac_sha256(literal('P001'), 'k')}, {hmac_sha256(literal('P001'), 'k', DATE_SHIFT_LABEL)} "
        f"FROM {KEY_TABLE} AS k"
    )[0]
    assert pseudonym == hmac.new(KEY, b"P001", hashlib.sha256).hexdigest()
    assert digest == hmac.new(KEY, DATE_SHIFT_LABEL + b"P001", hashlib.sha256).hexdigest() != pseudonym
    assert DATE_SHIFT_LABEL.startswith(b"\xff")  # never valid UTF-8: no pseudonym input can carry this prefix


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_the_compiled_hmac_shifts_and_pseudonymizes_exactly_as_the_sql_does(
    duck: DuckDBBackend, law: LawPack, tmp_path: Path, fmt: str
) -> None:
    """Packages made before the compiled kernel (HMAC in SQL) and after it, under one key, join."""
    write_visits(tmp_path)
    options: dict[str, Any] = {"needs": [*NEEDS, "first_name"], "pseudonymize": ["client_id", "first_name"]}
    in_sql = DuckDBBackend(threads=2, compiled_hmac=False)
    try:
        _, sql_rows = shared(in_sql, law, tmp_path, fmt=fmt, **options)
    finally:
        in_sql.close()
    _, compiled_rows = shared(duck, law, tmp_path, fmt=fmt, **options)
    assert in_sql.hmac_engine == "sql" and duck.hmac_engine in ("openssl", "simd")

    def ordered(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return sorted(rows, key=lambda r: str(r["benefit"]))

    assert ordered(compiled_rows) == ordered(sql_rows) and len(sql_rows) == 3 * PEOPLE + 1
    tokens = {r["client_id"] for r in compiled_rows if r["client_id"]}
    digests = {hmac.new(KEY, f"P{p:03d}".encode(), hashlib.sha256).digest() for p in range(PEOPLE)}
    assert tokens == (digests if fmt == "parquet" else {d.hex() for d in digests})  # bytes in Parquet, hex in CSV


def test_the_spec_marks_each_date_that_leaves_as_shifted(law: LawPack) -> None:
    spec = spec_for(law, HEADER, needs=[*NEEDS, "first_name"], pseudonymize=["client_id"])
    transforms = {f.name: f.transform for f in spec.fields}
    assert transforms == {
        "client_id": "pseudonymize",
        "first_name": KEEP,
        "birth_date": DATE_SHIFT,
        "visit_on": DATE_SHIFT,
        "closed_on": DATE_SHIFT,
        "referred": DATE_SHIFT,
        "benefit": KEEP,
    }
    assert spec.shifted_dates == ("birth_date", "visit_on", "closed_on", "referred") and spec.needs_key
    assert spec.as_dict()["date_shift"] == {"by": "client_id", "max_days": 180}
    lds = spec_for(law, HEADER, needs=["visit_on", "benefit"], form="limited_data_set", max_days=30)
    assert lds.shifted_dates == ("visit_on",) and lds.date_shift is not None and lds.date_shift.max_days == 30
    assert not build_spec(
        parse_dictionary(DICTIONARY, law.vocabulary.data_categories), HEADER, NEEDS, CATEGORIES, "identified"
    ).needs_key  # off by default: dates leave as they are


@pytest.mark.parametrize(
    ("changes", "where", "why"),
    [
        ({"form": "deidentified"}, "date_shift", "Safe Harbor reduces every date to its year"),
        (
            {"form": "aggregate", "needs": ["sex", "visit_on"], "aggregate": AggregateOptions(by=("sex",))},
            "date_shift",
            "aggregate share",
        ),
        ({"by": "nobody_id"}, "date_shift.by: nobody_id", "the source has no such column"),
        ({"by": "unmapped_flag"}, "date_shift.by: unmapped_flag", "no data dictionary maps this column"),
        ({"by": "sex"}, "date_shift.by: sex", "direct identifier of type string or integer"),
        ({"by": "birth_date"}, "date_shift.by: birth_date", "direct identifier of type string or integer"),
        ({"max_days": 0}, "date_shift.max_days", "from 1 to 3650"),
        ({"max_days": -30}, "date_shift.max_days", "from 1 to 3650"),
        ({"max_days": 3651}, "date_shift.max_days", "from 1 to 3650"),
        ({"needs": ["client_id", "benefit"]}, "date_shift", "nothing to shift"),
    ],
)
def test_a_date_shift_the_share_cannot_honour_is_refused(
    law: LawPack, changes: dict[str, Any], where: str, why: str
) -> None:
    with pytest.raises(InvalidDataError) as caught:
        spec_for(law, HEADER, **changes)
    assert any(p.location == where and why in p.message for p in caught.value.problems), caught.value.problems


def test_dates_are_not_shifted_without_the_agreement_key(duck: DuckDBBackend, law: LawPack, tmp_path: Path) -> None:
    write_visits(tmp_path)
    spec = spec_for(law, duck.register_input(CsvInput(tmp_path / "visits.csv")))
    with pytest.raises(InvalidDataError) as caught:
        extract(duck, spec, tmp_path / "out", "parquet", AS_OF)
    assert [p.location for p in caught.value.problems] == ["date_shift"]
    assert not (tmp_path / "out").exists()


# --- on Spark: the same SQL, the same output ---------------------------------------------------


@pytest.fixture(scope="module")
def spark_session() -> Iterator[SparkSession]:
    # Local mode, two cores; a missing Java fails the run (never skipped). A session that the
    # backend tests already started is reused and left running for them.
    from pyspark.sql import SparkSession

    from sharewise.pipeline.spark_backend import local_session

    running = SparkSession.getActiveSession()
    session = running or local_session(cores=2, app="sharewise-tests")
    yield session
    if running is None:
        session.stop()


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_spark_shifts_exactly_as_duckdb_does(
    spark_session: SparkSession, duck: DuckDBBackend, law: LawPack, tmp_path: Path, fmt: str
) -> None:
    from sharewise.pipeline.spark_backend import SparkBackend

    write_visits(tmp_path)
    spark = SparkBackend(spark_session)
    try:
        options: dict[str, Any] = {"needs": [*NEEDS, "first_name"], "pseudonymize": ["client_id"], "max_days": 90}
        spark_result, spark_rows = shared(spark, law, tmp_path, fmt=fmt, **options)
    finally:
        spark.close()
    duck_result, duck_rows = shared(duck, law, tmp_path, fmt=fmt, **options)

    def ordered(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return sorted(rows, key=lambda r: str(r["benefit"]))

    assert spark_result.rows == duck_result.rows == 3 * PEOPLE + 1
    assert ordered(spark_rows) == ordered(duck_rows)
    if fmt == "parquet":  # and both are right, not merely equal
        source = {r["benefit"]: r for r in visit_rows()}
        for row in spark_rows:
            src = source[f"{row['benefit']:.2f}"]
            before = source_date(src, "birth_date")
            if src["client_id"] and before:
                assert row["birth_date"] == before + dt.timedelta(days=shift_of(KEY, src["client_id"], 90))


# --- the share file, the plan and the package ------------------------------------------------


@pytest.fixture
def setup(tmp_path: Path) -> dict[str, Any]:
    write_visits(tmp_path)
    (tmp_path / "dictionary.yaml").write_text(yaml.safe_dump(DICTIONARY), encoding="utf-8")
    cert, key = make_recipient(tmp_path)
    keys = FileKeyProvider(tmp_path / "keys")
    keys.create_pseudonym_key("agr-1")
    share = {
        "share_id": "s-dates",
        "agreement": "agr-1",
        "request": SNAP_TO_TANF,
        "dictionary": "dictionary.yaml",
        "source": {"csv": "visits.csv"},
        "needs": NEEDS,
        "date_shift": {"by": "client_id", "max_days": 60},
        "recipient_certificate": cert.name,
    }
    return {"dir": tmp_path, "share": share, "cert": cert, "key": key, "keys": keys}


def test_the_share_file_turns_date_shifting_on(setup: dict[str, Any], law: LawPack) -> None:
    definition = shares.parse_share(setup["share"], law, setup["dir"])
    assert definition.date_shift == DateShiftOptions("client_id", 60)
    default = shares.parse_share({**setup["share"], "date_shift": {"by": "member_no"}}, law, setup["dir"])
    assert default.date_shift == DateShiftOptions("member_no", 180)
    off = {k: v for k, v in setup["share"].items() if k != "date_shift"}
    assert shares.parse_share(off, law, setup["dir"]).date_shift is None
    planned = shares.plan(definition, law, TODAY)
    fields = {f["name"]: f["transform"] for f in planned.spec.as_dict()["fields"]}
    assert {n: fields[n] for n in DATES} == dict.fromkeys(DATES, DATE_SHIFT) and fields["client_id"] == KEEP


@pytest.mark.parametrize(
    ("value", "where"),
    [
        ("yes", "share: date_shift"),
        ({"max_days": 30}, "share: date_shift.by"),
        ({"by": "client_id", "max_days": 0}, "share: date_shift.max_days"),
        ({"by": "client_id", "max_days": -1}, "share: date_shift.max_days"),
        ({"by": "client_id", "max_days": "ten"}, "share: date_shift.max_days"),
        ({"by": "client_id", "max_days": True}, "share: date_shift.max_days"),
        ({"by": "client_id", "days": 30}, "share: date_shift.days"),
    ],
)
def test_a_malformed_date_shift_in_a_share_file_is_reported(
    setup: dict[str, Any], law: LawPack, value: Any, where: str
) -> None:
    with pytest.raises(InvalidDataError) as caught:
        shares.parse_share({**setup["share"], "date_shift": value}, law, setup["dir"])
    assert where in [p.location for p in caught.value.problems]


def test_a_deidentified_share_refuses_date_shifting_at_planning(setup: dict[str, Any], law: LawPack) -> None:
    request = {**SNAP_TO_TANF, "form": "deidentified", "data": ["demographics", "eligibility_and_benefits"]}
    definition = shares.parse_share(
        {**setup["share"], "request": request, "needs": ["visit_on", "sex"]}, law, setup["dir"]
    )
    with pytest.raises(InvalidDataError) as caught:
        shares.plan(definition, law, TODAY)
    assert [p.location for p in caught.value.problems] == ["date_shift"]


def run_share(setup: dict[str, Any], law: LawPack, sink: FakeSink, **changes: Any) -> shares.ShareResult:
    definition = shares.parse_share({**setup["share"], **changes}, law, setup["dir"])
    backend = DuckDBBackend(threads=2)
    control = control_in(setup["dir"])
    try:
        return shares.run(
            control, definition, law, TODAY, backend, setup["keys"], setup["dir"] / "out", "u-7", sink=sink
        )
    finally:
        backend.close()
        control.store.dispose()


def test_the_manifest_records_the_shift_settings_and_key_but_no_shift(setup: dict[str, Any], law: LawPack) -> None:
    result = run_share(setup, law, FakeSink())
    got = setup["dir"] / "got"
    manifest = shares.verify_package(result.package.path, setup["cert"], setup["key"], extract_to=got).manifest
    key = setup["keys"].pseudonym_key("agr-1")
    assert result.key_id == key.key_id  # a date shift alone needs the agreement's key
    record = manifest["date_shift"]
    assert set(record) == {"shifted", "fields", "by", "max_days", "method", "key_id", "key_version"}
    assert record["shifted"] is True and record["fields"] == list(DATES)
    assert (record["by"], record["max_days"], record["key_id"], record["key_version"]) == (
        "client_id",
        60,
        key.key_id,
        1,
    )
    assert manifest["share_spec"]["date_shift"] == {"by": "client_id", "max_days": 60}
    source = {r["benefit"]: r for r in visit_rows()}
    rows = pq.read_table(got / "data" / "part-0.parquet").to_pylist()
    assert len(rows) == 3 * PEOPLE + 1
    for row in rows:
        src = source[f"{row['benefit']:.2f}"]
        visit = source_date(src, "visit_on")
        if src["client_id"] and visit:
            assert row["visit_on"] == visit + dt.timedelta(days=shift_of(key.secret, src["client_id"], 60))


def test_a_date_shift_without_an_agreement_key_stops_the_share(setup: dict[str, Any], law: LawPack) -> None:
    sink = FakeSink()
    with pytest.raises(NotFoundError, match="agr-none"):
        run_share(setup, law, sink, agreement="agr-none")
    assert not sink.disclosures and not (setup["dir"] / "out").exists()


def test_share_plan_shows_date_shift_for_each_date_field(
    setup: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sharewise.cli.share import app

    monkeypatch.setenv("SHAREWISE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("SHAREWISE_KEY_DIR", str(tmp_path / "keys"))
    monkeypatch.setenv("SHAREWISE_CACHE_DIR", "off")
    (tmp_path / "share.yaml").write_text(yaml.safe_dump(setup["share"]), encoding="utf-8")
    result = CliRunner().invoke(app, ["plan", str(tmp_path / "share.yaml")])
    assert result.exit_code == 0, result.output
    lines = {line.split()[0]: line for line in result.output.splitlines() if line.startswith("  ")}
    assert all(lines[name].rstrip().endswith(DATE_SHIFT) for name in DATES)
    assert not lines["benefit"].rstrip().endswith(DATE_SHIFT)
