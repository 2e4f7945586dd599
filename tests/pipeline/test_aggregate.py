"""Aggregate tables hide small cells, and no hidden cell can be recovered by subtraction from a total."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from sharewise.pipeline.aggregate import ALL, recoverable, suppress, tabulate


def test_margins_add_up_to_the_grand_total() -> None:
    cells = tabulate([(("F", "a"), 12), (("M", "a"), 30), (("F", "b"), 40)], 2)
    assert cells[(ALL, ALL)] == 82 and cells[("F", ALL)] == 52 and cells[(ALL, "a")] == 42


def test_a_single_small_cell_takes_a_complementary_cell_with_it() -> None:
    cells = tabulate([(("a",), 3), (("b",), 50), (("c",), 70)], 1)
    table = {c.key: c for c in suppress(cells, 1, 10)}
    assert table[("a",)].suppressed and table[("a",)].primary
    assert table[("b",)].suppressed and not table[("b",)].primary  # the smallest other cell
    assert not table[("c",)].suppressed and not table[(ALL,)].suppressed


@settings(max_examples=200, deadline=None)
@given(
    counts=st.dictionaries(
        st.tuples(st.sampled_from("xyz"), st.sampled_from("pqrs")), st.integers(min_value=1, max_value=40), min_size=1
    ),
    hide=st.integers(min_value=1, max_value=10),
)
def test_no_hidden_cell_is_recoverable_from_one_total(counts: dict[tuple[str, str], int], hide: int) -> None:
    cells = suppress(tabulate(counts.items(), 2), 2, hide)
    assert all(c.suppressed for c in cells if 0 < c.count <= hide)
    assert recoverable(cells, 2) == []
