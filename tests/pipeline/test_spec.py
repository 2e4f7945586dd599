"""The share specification keeps only the minimum necessary, in the form the law requires, and says why."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sharewise.domain.errors import InvalidDataError
from sharewise.pipeline.dictionary import KINDS, LIMITED_DATA_SET_REMOVES, DataDictionary, FieldEntry, parse_dictionary
from sharewise.pipeline.spec import AGE_TOP_CODED, BIRTH_YEAR, PSEUDONYMIZE, YEAR, ZIP3, build_spec
from sharewise.policy.model import LawPack
from tests.pipeline.data import DICTIONARY, HEADER

CATEGORIES = ["identity", "demographics", "contact", "case_records", "eligibility_and_benefits", "health_information"]


@pytest.fixture(scope="module")
def dictionary(law: LawPack) -> DataDictionary:
    return parse_dictionary(DICTIONARY, law.vocabulary.data_categories)


def test_each_dropped_field_has_its_reason(dictionary: DataDictionary) -> None:
    spec = build_spec(dictionary, HEADER, ["client_id", "note"], ["identity"], "identified")
    reasons = {d.name: d.reason for d in spec.dropped}
    assert spec.columns == ("client_id",)
    assert reasons["secret_flag"].startswith("unmapped")
    assert reasons["ssn"].startswith("minimum necessary")
    assert "case_records is not covered" in reasons["note"]


def test_a_needed_field_that_no_dictionary_maps_is_an_error(dictionary: DataDictionary) -> None:
    with pytest.raises(InvalidDataError) as caught:
        build_spec(dictionary, HEADER, ["client_id", "secret_flag", "missing"], CATEGORIES, "identified")
    assert [p.location for p in caught.value.problems] == ["needs: secret_flag", "needs: missing"]


def test_a_limited_data_set_removes_direct_identifiers_but_keeps_dates_and_zip(dictionary: DataDictionary) -> None:
    spec = build_spec(
        dictionary,
        HEADER,
        ["client_id", "first_name", "ssn", "birth_date", "zip", "phone"],
        CATEGORIES,
        "limited_data_set",
    )
    assert set(spec.columns) == {"client_id", "birth_date", "zip"}
    assert {d.name for d in spec.dropped} >= {"first_name", "ssn", "phone"}


def test_deidentified_data_takes_safe_harbor_reductions(dictionary: DataDictionary) -> None:
    spec = build_spec(
        dictionary, HEADER, ["birth_date", "age", "zip", "certified_on", "sex"], CATEGORIES, "deidentified"
    )
    transforms = {f.name: f.transform for f in spec.fields}
    assert transforms == {
        "birth_date": BIRTH_YEAR,
        "age": AGE_TOP_CODED,
        "zip": ZIP3,
        "certified_on": YEAR,
        "sex": "keep",
    }
    assert set(spec.quasi_identifiers) == {"birth_date", "age", "zip", "certified_on", "sex"}


def test_deidentified_data_allows_no_pseudonyms(dictionary: DataDictionary) -> None:
    with pytest.raises(InvalidDataError, match="invalid share"):
        build_spec(dictionary, HEADER, ["client_id"], CATEGORIES, "deidentified", pseudonymize=["client_id"])


def test_nothing_to_share_is_an_error(dictionary: DataDictionary) -> None:
    with pytest.raises(InvalidDataError):
        build_spec(dictionary, HEADER, ["ssn"], ["demographics"], "identified")


# Property tests over random dictionaries, requests and determinations.

IDENTIFIERS = st.sampled_from(["direct", "quasi", "sensitive", "other"])


@st.composite
def entries(draw: st.DrawFn) -> list[FieldEntry]:
    names = draw(st.lists(st.from_regex(r"[a-z]{1,6}", fullmatch=True), min_size=1, max_size=10, unique=True))
    out = []
    for name in names:
        identifier = draw(IDENTIFIERS)
        kind = (
            draw(st.sampled_from(sorted(KINDS)))
            if identifier == "direct"
            else draw(st.sampled_from([None, "age", "zip"]))
        )
        type_ = (
            "date"
            if kind in ("birth_date", "date")
            else "integer"
            if kind == "age"
            else draw(st.sampled_from(["string", "integer", "date"]))
        )
        out.append(FieldEntry(name, draw(st.sampled_from(CATEGORIES)), identifier, type_, kind))
    return out


@settings(max_examples=200, deadline=None)
@given(
    fields=entries(),
    data=st.data(),
    form=st.sampled_from(["identified", "limited_data_set", "deidentified"]),
)
def test_minimum_necessary_columns_are_within_requested_and_permitted(
    fields: list[FieldEntry], data: st.DataObject, form: str
) -> None:
    dictionary = DataDictionary("p", tuple(fields))
    names = [f.name for f in fields]
    needed = data.draw(st.lists(st.sampled_from(names), min_size=1, unique=True))
    permitted = data.draw(st.lists(st.sampled_from(CATEGORIES), unique=True))
    try:
        spec = build_spec(dictionary, [*names, "unmapped"], needed, permitted, form)
    except InvalidDataError:
        return  # nothing may leave
    assert set(spec.columns) <= set(needed)
    assert all(plan.category in permitted for plan in spec.fields)  # the category it leaves with
    assert "unmapped" not in spec.columns
    assert set(spec.columns) | {d.name for d in spec.dropped} == {*names, "unmapped"}


@settings(max_examples=200, deadline=None)
@given(fields=entries(), data=st.data())
def test_deidentified_specs_never_carry_a_direct_identifier_unreduced(
    fields: list[FieldEntry], data: st.DataObject
) -> None:
    dictionary = DataDictionary("p", tuple(fields))
    needed = data.draw(st.lists(st.sampled_from([f.name for f in fields]), min_size=1, unique=True))
    try:
        spec = build_spec(dictionary, [f.name for f in fields], needed, CATEGORIES, "deidentified")
    except InvalidDataError:
        return
    for plan in spec.fields:
        assert plan.transform != PSEUDONYMIZE
        if plan.identifier == "direct" or plan.kind is not None:
            assert plan.transform in (ZIP3, YEAR, BIRTH_YEAR, AGE_TOP_CODED)
        if plan.type == "date":
            assert plan.transform in (YEAR, BIRTH_YEAR)


@settings(max_examples=100, deadline=None)
@given(fields=entries(), data=st.data())
def test_limited_data_sets_never_carry_the_sixteen_identifiers(fields: list[FieldEntry], data: st.DataObject) -> None:
    dictionary = DataDictionary("p", tuple(fields))
    needed = data.draw(st.lists(st.sampled_from([f.name for f in fields]), min_size=1, unique=True))
    try:
        spec = build_spec(dictionary, [f.name for f in fields], needed, CATEGORIES, "limited_data_set")
    except InvalidDataError:
        return
    assert not any(p.kind in LIMITED_DATA_SET_REMOVES for p in spec.fields)


def test_safe_harbor_reductions_count_as_demographics_in_deidentified_shares(dictionary: DataDictionary) -> None:
    spec = build_spec(dictionary, HEADER, ["birth_date", "zip", "first_name", "sex"], ["demographics"], "deidentified")
    assert {f.name: f.category for f in spec.fields} == {
        "birth_date": "demographics",
        "zip": "demographics",
        "sex": "demographics",
    }
