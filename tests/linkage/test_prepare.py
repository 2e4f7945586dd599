"""Preparation rules: names, nicknames, accents, compound surnames, dates, USPS addresses, SSNs, phonetics."""

from __future__ import annotations

import pyarrow as pa

from sharewise.linkage import prepare as p
from sharewise.linkage.tables import nicknames, street_suffixes, unit_designators


def test_accents_and_punctuation_fold_to_one_name() -> None:
    assert p.standard_name("José") == p.standard_name("JOSE") == "jose"
    assert p.standard_name("O'Brien") == "obrien"
    assert p.standard_name("Mary-Ann") == p.standard_name("Mary Ann") == "maryann"


def test_placeholder_names_are_null() -> None:
    assert p.standard_name("UNKNOWN") is None
    assert p.standard_name("  ") is None


def test_compound_surname_parts_drop_particles() -> None:
    assert p.surname_parts("García-López") == ["garcia", "lopez"]
    assert p.surname_parts("van der Berg") == ["berg"]


def test_nickname_maps_to_its_formal_names() -> None:
    assert p.formal_names("Bill") == ["bill", "william"]
    assert "patricia" in p.formal_names("Pat") and "patrick" in p.formal_names("Pat")
    assert len(nicknames()) > 150


def test_dates_in_several_layouts_parse_to_iso() -> None:
    for text in ("1980-03-05", "19800305", "03/05/1980", "3/5/80", "March 5, 1980", "5 Mar 1980"):
        assert p.parse_date(text) == "1980-03-05", text
    assert p.parse_date("05/03/1980", dayfirst=True) == "1980-03-05"


def test_impossible_date_with_day_and_month_transposed_is_swapped_back() -> None:
    assert p.parse_date("1980-25-03") == "1980-03-25"
    assert p.parse_date("25/03/1980") == "1980-03-25"


def test_invalid_dates_are_null() -> None:
    assert p.parse_date("1980-02-31") is None
    assert p.parse_date("not a date") is None
    assert p.parse_date("1700-01-01") is None


def test_street_suffix_directional_and_unit_follow_usps() -> None:
    assert p.standard_street("123 North Main Street Apartment 4") == "123 N MAIN ST APT 4"
    assert p.standard_street("123 n. main st., apt #4") == "123 N MAIN ST APT 4"
    assert p.street_without_unit("123 N MAIN ST APT 4") == "123 N MAIN ST"
    assert street_suffixes()["avenue"] == "AVE" and unit_designators()["suite"] == "STE"


def test_placeholder_ssns_are_null_and_digits_are_kept() -> None:
    assert p.standard_ssn("123-45-6789") is None
    assert p.standard_ssn("000-12-3456") is None
    assert p.standard_ssn("999999999") is None
    assert p.standard_ssn("912-34-5678") == "912345678"


def test_names_that_sound_alike_share_a_phonetic_code() -> None:
    assert p.phonetic("smith") == p.phonetic("smyth")


def test_prepare_runs_rules_per_distinct_value_and_keeps_rows() -> None:
    people = pa.table(
        {
            "record_id": ["1", "2", "3"],
            "given_name": ["Bill", "bill", None],
            "middle_name": [None, "J", None],
            "surname": ["Smith-Jones", "Smith", "Doe"],
            "dob": ["1980-03-05", "03/05/1980", "bad"],
            "sex": ["m", "Male", None],
            "ssn": ["912-34-5678", None, "123456789"],
            "street_address": ["1 Elm Street", "1 elm st", None],
            "city": ["Springfield", "SPRINGFIELD", None],
            "state": ["il", "IL", None],
            "zip": ["62701-1234", "62701", None],
            "phone": ["(217) 555-0101", "1-217-555-0101", None],
        }
    )
    prepared = p.prepare(people)
    assert prepared.column_names == list(p.PREPARED_COLUMNS)
    rows = prepared.to_pylist()
    assert rows[0]["given_formal"] == ["bill", "william"] and rows[0]["surname_parts"] == ["jones", "smith"]
    assert rows[0]["dob"] == rows[1]["dob"] == "1980-03-05" and rows[2]["dob"] is None
    assert rows[0]["street_std"] == rows[1]["street_std"] == "1 ELM ST"
    assert rows[0]["zip"] == "62701" and rows[0]["phone"] == rows[1]["phone"] == "2175550101"
    assert rows[0]["ssn_last4"] == "5678" and rows[2]["ssn"] is None
    assert rows[0]["sex"] == rows[1]["sex"] == "M"
