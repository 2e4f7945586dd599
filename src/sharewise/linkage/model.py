"""The Splink model: default comparisons and blocking rules over prepared columns, and unsupervised training."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import splink.comparison_level_library as cll
import splink.comparison_library as cl
from splink import Linker, SettingsCreator, block_on
from splink.internals.exceptions import SplinkException

# Splink reports progress through logging; sharewise shows its own progress and keeps data out of logs.
SPLINK_LOG_LEVEL = logging.ERROR


@dataclass(frozen=True)
class TrainingOptions:
    """How hard to train: pairs sampled for u, pairs used per EM session, and the seed."""

    u_max_pairs: float = 1e6
    em_max_pairs: float = 5e5
    seed: int = 42


def available_columns(tables: Sequence[pa.Table]) -> set[str]:
    """Prepared columns with at least one value in every input (a comparison needs data on both sides)."""
    names = set(tables[0].column_names)
    result = set()
    for name in names:
        if all(t.num_rows - t.column(name).null_count > 0 for t in tables):
            column = tables[0].column(name)
            if pa.types.is_list(column.type) and all(
                pc.max(pc.list_value_length(t.column(name))).as_py() == 0 for t in tables
            ):
                continue
            result.add(name)
    return result


def _name(col: str, formal: str | None, phon: str, parts: str | None, label: str) -> cl.CustomComparison:
    levels: list[Any] = [
        cll.NullLevel(col),
        cll.ExactMatchLevel(col).configure(tf_adjustment_column=col, label_for_charts=f"{label} exact"),
    ]
    if formal:
        levels.append(
            cll.ArrayIntersectLevel(formal, 1).configure(label_for_charts=f"{label} nickname of the same name")
        )
    levels.append(cll.JaroWinklerLevel(col, 0.92))
    if parts:
        levels.append(cll.ArrayIntersectLevel(parts, 1).configure(label_for_charts=f"{label} shares a compound part"))
    levels += [
        cll.ExactMatchLevel(phon).configure(label_for_charts=f"{label} sounds alike"),
        cll.JaroWinklerLevel(col, 0.8),
        cll.ElseLevel(),
    ]
    return cl.CustomComparison(levels, output_column_name=col, comparison_description=label)


def comparisons(available: set[str]) -> list[Any]:
    """The default comparisons, for the prepared columns that have data."""
    result: list[Any] = []
    if "given_std" in available:
        result.append(
            _name(
                "given_std", "given_formal" if "given_formal" in available else None, "given_phon", None, "given name"
            )
        )
    if "surname_std" in available:
        result.append(_name("surname_std", None, "surname_phon", "surname_parts", "surname"))
    if "middle_std" in available:
        result.append(
            cl.CustomComparison(
                [
                    cll.NullLevel("middle_std"),
                    cll.ExactMatchLevel("middle_std"),
                    cll.ExactMatchLevel("middle_initial").configure(label_for_charts="middle initial"),
                    cll.ElseLevel(),
                ],
                output_column_name="middle_std",
            )
        )
    if "dob" in available:
        result.append(
            cl.CustomComparison(
                [
                    cll.NullLevel("dob"),
                    cll.ExactMatchLevel("dob").configure(label_for_charts="date of birth exact"),
                    cll.CustomLevel(
                        "substr(dob_l, 1, 4) = substr(dob_r, 1, 4) AND substr(dob_l, 6, 2) = substr(dob_r, 9, 2)"
                        " AND substr(dob_l, 9, 2) = substr(dob_r, 6, 2)",
                        label_for_charts="day and month transposed",
                    ),
                    cll.DamerauLevenshteinLevel("dob", 1).configure(label_for_charts="one digit off"),
                    cll.CustomLevel(
                        "substr(dob_l, 1, 7) = substr(dob_r, 1, 7)", label_for_charts="same year and month"
                    ),
                    cll.DamerauLevenshteinLevel("dob", 2).configure(label_for_charts="two digits off"),
                    cll.ElseLevel(),
                ],
                output_column_name="dob",
            )
        )
    if "ssn" in available:
        result.append(
            cl.CustomComparison(
                [
                    cll.NullLevel("ssn"),
                    cll.ExactMatchLevel("ssn").configure(label_for_charts="SSN exact"),
                    cll.DamerauLevenshteinLevel("ssn", 1).configure(label_for_charts="SSN one digit off"),
                    cll.ExactMatchLevel("ssn_last4").configure(label_for_charts="SSN last four (partial SSN)"),
                    cll.ElseLevel(),
                ],
                output_column_name="ssn",
            )
        )
    if "street_std" in available:
        levels: list[Any] = [
            cll.NullLevel("street_std"),
            cll.ExactMatchLevel("street_std").configure(tf_adjustment_column="street_std"),
        ]
        if "house_number" in available:
            levels.append(
                cll.And(cll.ExactMatchLevel("house_number"), cll.JaroWinklerLevel("street_std", 0.88)).configure(
                    label_for_charts="same house number, similar street"
                )
            )
        levels += [cll.JaroWinklerLevel("street_std", 0.8), cll.ElseLevel()]
        result.append(cl.CustomComparison(levels, output_column_name="street_std"))
    if "city_std" in available:
        result.append(
            cl.CustomComparison(
                [
                    cll.NullLevel("city_std"),
                    cll.ExactMatchLevel("city_std").configure(tf_adjustment_column="city_std"),
                    cll.JaroWinklerLevel("city_std", 0.88),
                    cll.ElseLevel(),
                ],
                output_column_name="city_std",
            )
        )
    if "zip" in available:
        result.append(
            cl.CustomComparison(
                [
                    cll.NullLevel("zip"),
                    cll.ExactMatchLevel("zip").configure(tf_adjustment_column="zip"),
                    cll.DamerauLevenshteinLevel("zip", 1),
                    cll.CustomLevel("substr(zip_l, 1, 3) = substr(zip_r, 1, 3)", label_for_charts="same ZIP3"),
                    cll.ElseLevel(),
                ],
                output_column_name="zip",
            )
        )
    if "phone" in available:
        result.append(
            cl.CustomComparison(
                [
                    cll.NullLevel("phone"),
                    cll.ExactMatchLevel("phone"),
                    cll.DamerauLevenshteinLevel("phone", 1),
                    cll.ElseLevel(),
                ],
                output_column_name="phone",
            )
        )
    if "sex" in available:
        result.append(cl.ExactMatch("sex"))
    if "state_std" in available:
        result.append(cl.ExactMatch("state_std"))
    return result


def blocking_rules(available: set[str]) -> list[Any]:
    """Rules that generate candidate pairs: each is cheap, and together they forgive any one bad field."""
    candidates = [
        ("ssn",),
        ("dob", "given_phon"),
        ("dob", "surname_phon"),
        ("given_phon", "surname_phon", "dob_year"),
        ("surname_std", "zip"),
        ("given_std", "zip", "house_number"),
        ("phone",),
        ("dob", "zip"),
    ]
    return [block_on(*cols) for cols in candidates if set(cols) <= available]


def training_rules(available: set[str]) -> list[Any]:
    """EM blocking rules: each leaves some comparisons free to be estimated (m by EM)."""
    candidates = [("dob",), ("given_phon", "surname_phon"), ("ssn",)]
    return [block_on(*cols) for cols in candidates if set(cols) <= available]


def deterministic_rules(available: set[str]) -> list[Any]:
    candidates = [("ssn", "dob"), ("given_std", "surname_std", "dob")]
    return [block_on(*cols) for cols in candidates if set(cols) <= available]


def settings(link_type: str, available: set[str]) -> SettingsCreator:
    return SettingsCreator(
        link_type=link_type,  # type: ignore[arg-type]
        unique_id_column_name="record_id",
        comparisons=list(comparisons(available)),
        blocking_rules_to_generate_predictions=blocking_rules(available),
        retain_intermediate_calculation_columns=True,
        retain_matching_columns=True,
        max_iterations=20,
    )


def train(linker: Linker, available: set[str], options: TrainingOptions) -> None:
    """Unsupervised training: the prior from deterministic rules, u by random sampling, m by EM."""
    rules = deterministic_rules(available)
    if rules:
        linker.training.estimate_probability_two_random_records_match(rules, recall=0.7)
    settings_obj = linker._settings_obj
    if not 0 < settings_obj._probability_two_random_records_match < 1:
        # No deterministic match at all (e.g. a first batch without duplicates): fall back to a small prior.
        settings_obj._probability_two_random_records_match = 1e-6
    prior = settings_obj._probability_two_random_records_match
    linker.training.estimate_u_using_random_sampling(max_pairs=options.u_max_pairs, seed=options.seed)
    for rule in training_rules(available):
        try:
            linker.training.estimate_parameters_using_expectation_maximisation(
                rule, estimate_without_term_frequencies=True, max_pairs=options.em_max_pairs
            )
        except (SplinkException, ValueError):
            # A rule with no pairs (a file without duplicates, an empty column) trains nothing; the others still do,
            # and comparisons left untrained keep Splink's default m probabilities.
            continue
        finally:
            # The prior is estimated from deterministic rules over all pairs; EM only sees blocked pairs.
            settings_obj._probability_two_random_records_match = prior
