"""Three-valued conditions: unknown is unknown, never false."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from sharewise.policy import condition as c


def lookup_from(values: dict[str, Any]) -> c.Lookup:
    return lambda path: values.get(path, c.MISSING)


def test_missing_fact_is_unknown_and_named() -> None:
    cond, _ = c.parse({"fact": "facts.court_order"})
    assert cond is not None
    assert c.evaluate(cond, lookup_from({})) == (None, frozenset({"facts.court_order"}))


def test_false_member_decides_all_even_with_unknowns() -> None:
    cond, _ = c.parse({"all": [{"fact": "facts.court_order"}, {"fact": "purpose", "eq": "audit"}]})
    assert cond is not None
    assert c.evaluate(cond, lookup_from({"purpose": "research"}))[0] is False


def test_true_member_decides_any_even_with_unknowns() -> None:
    cond, _ = c.parse({"any": [{"fact": "facts.court_order"}, {"fact": "purpose", "eq": "audit"}]})
    assert cond is not None
    assert c.evaluate(cond, lookup_from({"purpose": "audit"}))[0] is True


def test_not_keeps_unknown() -> None:
    cond, _ = c.parse({"not": {"fact": "facts.opted_out_of_directory"}})
    assert cond is not None
    assert c.evaluate(cond, lookup_from({}))[0] is None
    assert c.evaluate(cond, lookup_from({"facts.opted_out_of_directory": False}))[0] is True


def test_list_operators() -> None:
    values = lookup_from({"data": ("identity", "contact")})
    for raw, expected in [
        ({"fact": "data", "contains": "identity"}, True),
        ({"fact": "data", "contains_any": ["ssa_data", "contact"]}, True),
        ({"fact": "data", "subset_of": ["identity", "contact", "demographics"]}, True),
        ({"fact": "data", "subset_of": ["identity"]}, False),
    ]:
        cond, problems = c.parse(raw)
        assert cond is not None, problems
        assert c.evaluate(cond, values)[0] is expected


def test_parse_reports_every_problem() -> None:
    _, problems = c.parse({"all": [{"fact": "purpose", "equals": "x"}, {"nope": 1}, {"fact": "data", "in": []}]})
    assert len(problems) == 3


def test_reasons_name_the_facts_used() -> None:
    cond, _ = c.parse(
        {
            "all": [
                {"fact": "purpose", "in": ["audit", "research"]},
                {"fact": "facts.written_request"},
            ]
        }
    )
    assert cond is not None
    reasons = c.reasons(cond, lookup_from({"purpose": "audit", "facts.written_request": True}))
    assert reasons == ["purpose = audit", "facts.written_request is true"]


tv = st.sampled_from([True, False, None])


def _atom_for(value: bool | None, name: str) -> tuple[c.Condition, dict[str, Any]]:
    atom = c.Atom(f"facts.{name}", "is", True)
    return atom, ({} if value is None else {f"facts.{name}": value})


@given(st.lists(tv, min_size=1, max_size=6))
def test_all_and_any_follow_kleene_logic(values: list[bool | None]) -> None:
    atoms = []
    env: dict[str, Any] = {}
    for i, v in enumerate(values):
        atom, more = _atom_for(v, f"f{i}")
        atoms.append(atom)
        env.update(more)
    lookup = lookup_from(env)
    all_value = c.evaluate(c.All(tuple(atoms)), lookup)[0]
    any_value = c.evaluate(c.AnyOf(tuple(atoms)), lookup)[0]
    expected_all = False if False in values else (None if None in values else True)
    expected_any = True if True in values else (None if None in values else False)
    assert all_value is expected_all
    assert any_value is expected_any


@given(st.lists(tv, min_size=1, max_size=6), st.integers(min_value=0, max_value=5))
def test_learning_a_fact_never_flips_a_known_answer(values: list[bool | None], index: int) -> None:
    # Monotonicity: a known result stays known when an unknown fact becomes known.
    atoms = []
    env: dict[str, Any] = {}
    for i, v in enumerate(values):
        atom, more = _atom_for(v, f"f{i}")
        atoms.append(atom)
        env.update(more)
    cond = c.All((c.AnyOf(tuple(atoms[: len(atoms) // 2 + 1])), c.Not(atoms[-1])))
    before = c.evaluate(cond, lookup_from(env))[0]
    i = index % len(values)
    if values[i] is None:
        for learned in (True, False):
            after = c.evaluate(cond, lookup_from({**env, f"facts.f{i}": learned}))[0]
            if before is not None:
                assert after is before


def test_reasons_for_a_negated_test_read_the_right_way_round() -> None:
    cond, _ = c.parse({"not": {"fact": "recipient.kind", "eq": "data_subject"}})
    assert cond is not None
    assert c.reasons(cond, lookup_from({"recipient.kind": "court"})) == [
        "recipient.kind is not data_subject (it is court)"
    ]
    held, _ = c.parse({"fact": "recipient.kind", "in": ["court", "grand_jury"]})
    assert held is not None
    assert c.reasons(held, lookup_from({"recipient.kind": "public"})) == [
        "recipient.kind is not one of court, grand_jury (it is public)"
    ]
