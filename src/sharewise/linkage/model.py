"""The Splink model: default comparisons and blocking rules over prepared columns, unsupervised training, and the
trained model as saved and reused."""

from __future__ import annotations

import copy
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc
import splink.comparison_level_library as cll
import splink.comparison_library as cl
from splink import Linker, SettingsCreator, block_on
from splink.internals.exceptions import SplinkException

from sharewise.domain.errors import InvalidDataError, Problem

if TYPE_CHECKING:
    from splink.internals.splink_dataframe import SplinkDataFrame

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


# The share of one person's record pairs whose given names are unrelated (not equal, no nickname of the same
# name, not similar, not sounding alike, not swapped with the surname): fixed, not learned. EM cannot learn it where
# twins live: they agree on surname, date of birth and home, so EM takes them for one person with two given names,
# and a different given name then weighs too little to keep twins apart.
GIVEN_NAME_UNRELATED_M = 1e-3


def _name(
    col: str, formal: str | None, phon: str, parts: str | None, label: str, other: str | None = None
) -> cl.CustomComparison:
    """A name comparison, from exact (term-frequency adjusted) to unrelated; `other` is the other name column, for
    given name and surname swapped."""
    unrelated: Any = cll.ElseLevel()
    if col == "given_std":
        unrelated = unrelated.configure(m_probability=GIVEN_NAME_UNRELATED_M, fix_m_probability=True)
    levels: list[Any] = [
        cll.NullLevel(col),
        cll.ExactMatchLevel(col).configure(tf_adjustment_column=col, label_for_charts=f"{label} exact"),
    ]
    if formal:
        levels.append(
            cll.ArrayIntersectLevel(formal, 1).configure(label_for_charts=f"{label} nickname of the same name")
        )
    levels.append(cll.JaroWinklerLevel(col, 0.92))
    if other:
        levels.append(
            cll.CustomLevel(f"{col}_l = {other}_r OR {other}_l = {col}_r").configure(
                label_for_charts="given name and surname swapped"
            )
        )
    if parts:
        levels.append(cll.ArrayIntersectLevel(parts, 1).configure(label_for_charts=f"{label} shares a compound part"))
    levels += [
        cll.ExactMatchLevel(phon).configure(label_for_charts=f"{label} sounds alike"),
        cll.JaroWinklerLevel(col, 0.8),
        unrelated,
    ]
    return cl.CustomComparison(levels, output_column_name=col, comparison_description=label)


def comparisons(available: set[str]) -> list[Any]:
    """The default comparisons, for the prepared columns that have data."""
    result: list[Any] = []
    if "given_std" in available:
        result.append(
            _name(
                "given_std",
                "given_formal" if "given_formal" in available else None,
                "given_phon",
                None,
                "given name",
                "surname_std" if "surname_std" in available else None,
            )
        )
    if "surname_std" in available:
        result.append(
            _name(
                "surname_std",
                None,
                "surname_phon",
                "surname_parts",
                "surname",
                "given_std" if "given_std" in available else None,
            )
        )
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
        result.append(_home(available))
    else:
        result += _places(available)
    if "sex" in available:
        result.append(cl.ExactMatch("sex"))
    return result


def _home(available: set[str]) -> cl.CustomComparison:
    """Street, ZIP, city, state and phone as one comparison: where a person lives, counted once.

    Family members, twins and unrelated households at one address agree on all of these together; compared one by
    one, each agreement counted again as independent evidence and outweighed a different given name, date of birth
    and SSN (synthetic data with households: precision 0.42 at 10,000 people; see docs/linkage.md).
    """
    has = available.__contains__
    levels: list[Any] = [cll.NullLevel("street_std")]
    if has("phone"):
        levels.append(
            cll.And(cll.ExactMatchLevel("street_std"), cll.ExactMatchLevel("phone")).configure(
                label_for_charts="same street address and phone"
            )
        )
    if has("zip"):
        levels.append(
            cll.And(cll.ExactMatchLevel("street_std"), cll.ExactMatchLevel("zip")).configure(
                label_for_charts="same street address and ZIP"
            )
        )
    levels.append(cll.ExactMatchLevel("street_std").configure(label_for_charts="same street address"))
    if has("house_number"):
        levels.append(
            cll.And(cll.ExactMatchLevel("house_number"), cll.JaroWinklerLevel("street_std", 0.88)).configure(
                label_for_charts="same house number, similar street"
            )
        )
    if has("zip"):
        levels.append(
            cll.And(cll.JaroWinklerLevel("street_std", 0.88), cll.ExactMatchLevel("zip")).configure(
                label_for_charts="similar street, same ZIP"
            )
        )
    if has("phone"):
        levels.append(cll.ExactMatchLevel("phone").configure(label_for_charts="same phone, another address"))
    if has("zip") and has("city_std"):
        levels.append(
            cll.And(cll.ExactMatchLevel("zip"), cll.ExactMatchLevel("city_std")).configure(
                label_for_charts="same ZIP and city, another street"
            )
        )
    levels.append(cll.JaroWinklerLevel("street_std", 0.8).configure(label_for_charts="similar street"))
    if has("zip"):
        levels.append(cll.ExactMatchLevel("zip").configure(label_for_charts="same ZIP, another street"))
    if has("city_std"):
        levels.append(cll.ExactMatchLevel("city_std").configure(label_for_charts="same city, another street"))
    if has("zip"):
        levels.append(cll.CustomLevel("substr(zip_l, 1, 3) = substr(zip_r, 1, 3)", label_for_charts="same ZIP3"))
    levels.append(cll.ElseLevel())
    return cl.CustomComparison(levels, output_column_name="address", comparison_description="home address")


def _places(available: set[str]) -> list[Any]:
    """City, ZIP, phone and state compared one by one, when there is no street address to anchor them."""
    result: list[Any] = []
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
    """EM blocking rules: each leaves some comparisons free to be estimated (m by EM).

    The date-of-birth rule also asks for a given name that sounds alike: on the date of birth alone, twins (same
    surname, home and date of birth) are most of the non-random pairs, and EM takes them for one person whose records
    disagree on given name and SSN, which then weigh too little to keep twins and families apart.
    """
    by_birth = ("dob", "given_phon") if "given_phon" in available else ("dob",)
    candidates = [by_birth, ("given_phon", "surname_phon"), ("ssn",)]
    return [block_on(*cols) for cols in candidates if set(cols) <= available]


def deterministic_rules(available: set[str]) -> list[Any]:
    candidates = [("ssn", "dob"), ("given_std", "surname_std", "dob")]
    return [block_on(*cols) for cols in candidates if set(cols) <= available]


def settings(link_type: str, available: set[str], prior: float | None = None) -> SettingsCreator:
    extra: dict[str, Any] = {} if prior is None else {"probability_two_random_records_match": prior}
    return SettingsCreator(
        link_type=link_type,  # type: ignore[arg-type]
        unique_id_column_name="record_id",
        comparisons=list(comparisons(available)),
        blocking_rules_to_generate_predictions=blocking_rules(available),
        retain_intermediate_calculation_columns=True,
        retain_matching_columns=True,
        max_iterations=20,
        **extra,
    )


# The prior when the deterministic rules find no match at all (e.g. a first batch without duplicates).
FALLBACK_PRIOR = 1e-6
# The recall assumed of the deterministic rules when estimating the prior.
DETERMINISTIC_RECALL = 0.7
# Matching pairs the deterministic rules must find before a trained model is worth reusing: fewer, and EM has
# estimated m from (almost) no matches, so the next batch trains again.
MIN_EVIDENCE = 50
MODEL_FORMAT = "sharewise-splink-model/1"


@dataclass(frozen=True)
class TrainedModel:
    """A trained Splink model (Splink's own JSON: comparisons, m and u, the prior) and what it was trained on."""

    settings: dict[str, Any]
    columns: frozenset[str]  # the prepared columns that had data when it was trained
    records: int
    evidence: int  # matching pairs the deterministic rules found (0: trained without a known match)

    @property
    def comparisons(self) -> tuple[str, ...]:
        return tuple(str(c["output_column_name"]) for c in self.settings["comparisons"])

    @property
    def prior(self) -> float:
        return float(self.settings["probability_two_random_records_match"])

    @property
    def dialect(self) -> str:
        """The SQL dialect of the engine that trained it (models saved before Spark existed: DuckDB's)."""
        return str(self.settings.get("sql_dialect") or "duckdb")

    def settings_for(self, dialect: str) -> dict[str, Any]:
        """Splink's settings for an engine of this SQL dialect, with the trained parameters.

        Splink saves each comparison level as SQL in the dialect of the engine that trained it, and loads it as
        written whatever the engine (on Spark, DuckDB's double-quoted column names would read as text). So for
        another engine sharewise rebuilds its own comparisons and blocking rules for the columns the model was
        trained on, checks that they render to exactly the saved SQL in the training dialect, and takes the
        other dialect's SQL level by level, keeping every m and u probability, the prior and the term-frequency
        settings. A model whose SQL sharewise would not write (another version's comparisons) is refused.
        """
        if dialect == self.dialect:
            return self.settings
        link_type = str(self.settings.get("link_type"))
        creator = settings(link_type, set(self.columns))
        try:
            source = creator.create_settings_dict(self.dialect)
            target = creator.create_settings_dict(dialect)
        except (SplinkException, ValueError, KeyError, TypeError) as exc:
            raise _unportable(dialect) from exc
        if _conditions(source) != _conditions(self.settings) or _rules(source) != _rules(self.settings):
            raise _unportable(dialect)
        result = copy.deepcopy(self.settings)
        for comparison, rebuilt in zip(result["comparisons"], target["comparisons"], strict=True):
            for level, level_rebuilt in zip(comparison["comparison_levels"], rebuilt["comparison_levels"], strict=True):
                level["sql_condition"] = level_rebuilt["sql_condition"]
        result["blocking_rules_to_generate_predictions"] = target["blocking_rules_to_generate_predictions"]
        result["sql_dialect"] = dialect
        return result

    def reusable_for(self, link_type: str, available: set[str]) -> bool:
        """Whether linking data with these columns may use this model instead of training again."""
        return (
            self.evidence >= MIN_EVIDENCE and self.settings.get("link_type") == link_type and self.columns <= available
        )

    def to_json(self) -> str:
        return json.dumps(
            {
                "format": MODEL_FORMAT,
                "columns": sorted(self.columns),
                "records": self.records,
                "evidence": self.evidence,
                "splink": self.settings,
            }
        )

    @classmethod
    def from_json(cls, text: str, where: str) -> TrainedModel:
        """Read a saved model; InvalidDataError (located at `where`) when it is not one sharewise wrote."""
        try:
            data = json.loads(text)
            if not isinstance(data, dict) or data.get("format") != MODEL_FORMAT:
                raise ValueError("not a sharewise model")
            settings = data["splink"]
            if not isinstance(settings, dict) or not isinstance(settings.get("comparisons"), list):
                raise ValueError("no comparisons")
            if not all(isinstance(c, dict) and "output_column_name" in c for c in settings["comparisons"]):
                raise ValueError("unnamed comparison")
            model = cls(settings, frozenset(data["columns"]), int(data["records"]), int(data["evidence"]))
            if not 0 < model.prior < 1:
                raise ValueError("prior out of range")
        except (ValueError, KeyError, TypeError) as exc:
            raise InvalidDataError(
                "the saved linkage model cannot be read", [Problem(where, "not a sharewise model; train a new one")]
            ) from exc
        return model


def _conditions(splink_settings: dict[str, Any]) -> list[tuple[str, list[str]]]:
    """Each comparison's name and its levels' SQL, in order."""
    return [
        (
            str(c.get("output_column_name")),
            [str(level.get("sql_condition")) for level in c.get("comparison_levels", [])],
        )
        for c in splink_settings.get("comparisons", [])
    ]


def _rules(splink_settings: dict[str, Any]) -> list[str]:
    rules = splink_settings.get("blocking_rules_to_generate_predictions", [])
    return [str(r.get("blocking_rule") if isinstance(r, dict) else r) for r in rules]


def _unportable(dialect: str) -> InvalidDataError:
    return InvalidDataError(
        "the saved linkage model cannot be used on this engine",
        [Problem("model", f"its comparisons are not the ones this version writes for {dialect}; train a new one")],
    )


def _estimated_prior(linker: Linker, available: set[str]) -> float | None:
    """The prior from deterministic rules over all pairs, or None when they find no match (or nearly every pair)."""
    rules = deterministic_rules(available)
    if not rules:
        return None
    try:
        linker.training.estimate_probability_two_random_records_match(rules, recall=DETERMINISTIC_RECALL)
    except ValueError:
        return None  # the rules match more pairs than the recall allows: no usable estimate
    prior = float(linker.misc.save_model_to_json()["probability_two_random_records_match"])
    return prior if 0 < prior < 1 else None


def train(
    inputs: SplinkDataFrame | Sequence[SplinkDataFrame],
    link_type: str,
    available: set[str],
    options: TrainingOptions,
    records: int,
    total_pairs: int,
    u_chunks: int = 10,
) -> TrainedModel:
    """Unsupervised training: the prior from deterministic rules, u by random sampling, m by EM.

    Returns the model as Splink saves it (`linker.misc.save_model_to_json`); predictions load it with
    `Linker(inputs, model.settings_for(dialect))`, the same way a later batch reuses it without training again.
    `u_chunks` is how many passes u sampling may take (it stops early once every level is observed enough).
    """
    linker = Linker(inputs, settings(link_type, available), log_level=None)
    prior = _estimated_prior(linker, available)
    if prior is None:
        linker = Linker(inputs, settings(link_type, available, FALLBACK_PRIOR), log_level=None)
    linker.training.estimate_u_using_random_sampling(
        max_pairs=options.u_max_pairs, seed=options.seed, num_chunks=u_chunks
    )
    for rule in training_rules(available):
        before = linker.misc.save_model_to_json()
        try:
            linker.training.estimate_parameters_using_expectation_maximisation(
                rule, estimate_without_term_frequencies=True, max_pairs=options.em_max_pairs
            )
        except (SplinkException, ValueError):
            # A session that fails (a rule with no pairs; an m probability that underflows to 0) trains nothing; the
            # others still do, and comparisons left untrained keep Splink's default m probabilities. Splink has by then
            # set aside the comparisons the rule blocks on, and its blocking-adjusted prior, in the linker's own
            # settings: carry on from the model as it was before the session.
            linker = Linker(inputs, before, log_level=None)
            continue
    evidence = round(prior * DETERMINISTIC_RECALL * total_pairs) if prior is not None else 0
    saved = linker.misc.save_model_to_json()
    # The prior is estimated from deterministic rules over all pairs; EM only sees blocked pairs, so it keeps it.
    saved["probability_two_random_records_match"] = prior if prior is not None else FALLBACK_PRIOR
    return TrainedModel(saved, frozenset(available), records, evidence)
